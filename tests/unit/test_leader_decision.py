"""The pure leader-election decision: decide(), next_record(), released_record(), Observation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from common.discovery.leader import (
    Action,
    LeaderRecord,
    Observation,
    decide,
    next_record,
    released_record,
)

ME = "http://10.0.0.1:8081"
OTHER = "http://10.0.0.2:8081"
LEASE = 15.0
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def record(holder: str = OTHER, transitions: int = 3, renew: str = "2024-05-01T11:59:59.000Z"):
    return LeaderRecord(
        holder_identity=holder,
        lease_duration_seconds=15,
        acquire_time="2024-05-01T11:00:00.000Z",
        renew_time=renew,
        leader_transitions=transitions,
    )


def observed(rec: LeaderRecord | None, at: float) -> Observation:
    obs = Observation()
    obs.see(rec, at)
    return obs


# ---------------------------------------------------------------------------------------------
# decide


def test_create_when_lock_absent() -> None:
    assert decide(ME, False, Observation(), now=100.0, lease_duration=LEASE) is Action.CREATE


def test_renew_when_ours() -> None:
    obs = observed(record(ME), at=100.0)
    # Ours, even long after the last change: we renew, never "take over" from ourselves.
    assert decide(ME, True, obs, now=100.0, lease_duration=LEASE) is Action.RENEW
    assert decide(ME, True, obs, now=1000.0, lease_duration=LEASE) is Action.RENEW


def test_wait_while_anothers_lease_is_fresh() -> None:
    obs = observed(record(OTHER), at=100.0)
    assert decide(ME, True, obs, now=100.0, lease_duration=LEASE) is Action.WAIT
    assert decide(ME, True, obs, now=114.999, lease_duration=LEASE) is Action.WAIT


def test_take_over_exactly_at_lease_duration_since_last_change() -> None:
    obs = observed(record(OTHER), at=100.0)
    assert decide(ME, True, obs, now=100.0 + LEASE, lease_duration=LEASE) is Action.TAKE_OVER
    assert decide(ME, True, obs, now=200.0, lease_duration=LEASE) is Action.TAKE_OVER


def test_a_renewal_seen_restarts_the_lease_clock() -> None:
    obs = observed(record(OTHER, renew="2024-05-01T11:59:59.000Z"), at=100.0)
    obs.see(record(OTHER, renew="2024-05-01T12:00:10.000Z"), 110.0)
    assert decide(ME, True, obs, now=100.0 + LEASE, lease_duration=LEASE) is Action.WAIT
    assert decide(ME, True, obs, now=110.0 + LEASE, lease_duration=LEASE) is Action.TAKE_OVER


def test_take_over_released_record_at_once() -> None:
    obs = observed(released_record(record(OTHER), T0), at=100.0)
    assert decide(ME, True, obs, now=100.0, lease_duration=LEASE) is Action.TAKE_OVER


def test_take_over_unreadable_record_at_once() -> None:
    rec = LeaderRecord.from_json("{{not json")
    assert rec is None
    obs = observed(rec, at=100.0)
    assert decide(ME, True, obs, now=100.0, lease_duration=LEASE) is Action.TAKE_OVER


# ---------------------------------------------------------------------------------------------
# next_record / released_record


def test_next_record_on_create() -> None:
    new = next_record(ME, Action.CREATE, None, T0, LEASE)
    assert new == LeaderRecord(
        holder_identity=ME,
        lease_duration_seconds=15,
        acquire_time="2024-05-01T12:00:00.000Z",
        renew_time="2024-05-01T12:00:00.000Z",
        leader_transitions=0,
    )


def test_take_over_increments_transitions_and_sets_acquire_time() -> None:
    old = record(OTHER, transitions=3)
    new = next_record(ME, Action.TAKE_OVER, old, T0 + timedelta(milliseconds=250), LEASE)
    assert new.holder_identity == ME
    assert new.leader_transitions == 4
    assert new.acquire_time == "2024-05-01T12:00:00.250Z"
    assert new.renew_time == "2024-05-01T12:00:00.250Z"


def test_take_over_of_released_record_increments_transitions() -> None:
    released = released_record(record(OTHER, transitions=7), T0)
    new = next_record(ME, Action.TAKE_OVER, released, T0 + timedelta(seconds=1), LEASE)
    assert (new.holder_identity, new.leader_transitions) == (ME, 8)


def test_take_over_of_unreadable_record_starts_at_zero() -> None:
    new = next_record(ME, Action.TAKE_OVER, None, T0, LEASE)
    assert (new.holder_identity, new.leader_transitions) == (ME, 0)


def test_renew_keeps_acquire_time_and_transitions() -> None:
    mine = next_record(ME, Action.TAKE_OVER, record(OTHER, transitions=2), T0, LEASE)
    later = T0 + timedelta(seconds=5, milliseconds=7)
    renewed = next_record(ME, Action.RENEW, mine, later, LEASE)
    assert renewed.holder_identity == ME
    assert renewed.acquire_time == mine.acquire_time == "2024-05-01T12:00:00.000Z"
    assert renewed.renew_time == "2024-05-01T12:00:05.007Z"
    assert renewed.leader_transitions == mine.leader_transitions == 3


def test_lease_duration_seconds_is_whole_and_at_least_one() -> None:
    assert next_record(ME, Action.CREATE, None, T0, 60.0).lease_duration_seconds == 60
    assert next_record(ME, Action.CREATE, None, T0, 1.0).lease_duration_seconds == 1
    assert next_record(ME, Action.CREATE, None, T0, 0.3).lease_duration_seconds == 1


def test_released_record() -> None:
    rel = released_record(record(ME, transitions=5), T0)
    assert rel == LeaderRecord("", 1, "2024-05-01T12:00:00.000Z", "2024-05-01T12:00:00.000Z", 5)


# ---------------------------------------------------------------------------------------------
# Observation


def test_observation_moves_changed_at_only_when_text_changes() -> None:
    obs = Observation()
    first = record(OTHER)
    obs.see(first, 10.0)
    assert obs.changed_at == 10.0
    assert obs.record == first
    # An equal record (same text), read again later: the clock does not move.
    obs.see(record(OTHER), 20.0)
    assert obs.changed_at == 10.0
    # A new renewTime is a change.
    obs.see(record(OTHER, renew="2024-05-01T12:00:01.000Z"), 30.0)
    assert obs.changed_at == 30.0
    # The record disappearing (unreadable) is a change too.
    obs.see(None, 40.0)
    assert (obs.record, obs.raw, obs.changed_at) == (None, None, 40.0)
    obs.see(None, 50.0)
    assert obs.changed_at == 40.0


# ---------------------------------------------------------------------------------------------
# LeaderRecord JSON


def test_leader_record_json_field_names() -> None:
    rec = LeaderRecord(ME, 60, "2024-05-01T12:00:00.000Z", "2024-05-01T12:00:30.000Z", 3)
    text = rec.to_json()
    assert list(orjson.loads(text)) == [
        "holderIdentity",
        "leaseDurationSeconds",
        "acquireTime",
        "renewTime",
        "leaderTransitions",
    ]
    assert orjson.loads(text) == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 60,
        "acquireTime": "2024-05-01T12:00:00.000Z",
        "renewTime": "2024-05-01T12:00:30.000Z",
        "leaderTransitions": 3,
    }
    assert LeaderRecord.from_json(text) == rec
    assert LeaderRecord.from_json(text.encode()) == rec


def test_leader_record_reads_client_java_record_with_extra_fields() -> None:
    text = (
        '{"holderIdentity":"http://10.1.2.3:8081","leaseDurationSeconds":60,'
        '"acquireTime":"2025-01-01T00:00:00.000Z","renewTime":"2025-01-01T00:00:05.000Z",'
        '"leaderTransitions":3,"ownerReference":null}'
    )
    rec = LeaderRecord.from_json(text)
    assert rec is not None
    assert (rec.holder_identity, rec.leader_transitions) == ("http://10.1.2.3:8081", 3)


@pytest.mark.parametrize(
    "text", [None, "", b"", "not json", "[1,2]", '"x"', '{"leaderTransitions":"a"}']
)
def test_leader_record_unreadable_is_none(text: str | bytes | None) -> None:
    assert LeaderRecord.from_json(text) is None


def test_leader_record_empty_object_is_released_record() -> None:
    rec = LeaderRecord.from_json("{}")
    assert rec is not None and rec.holder_identity == ""
    assert decide(ME, True, observed(rec, 0.0), now=0.0, lease_duration=LEASE) is Action.TAKE_OVER
