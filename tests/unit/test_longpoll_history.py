"""ChangeHistory: Druid's reset rules, parking, timeout and shutdown (no sockets, no sleeps)."""

from __future__ import annotations

import asyncio

import pytest

from common.aio import wait_until
from common.errors import InvalidInput, ServiceUnavailable
from common.longpoll import ChangeHistory, ChangeRequestsSnapshot, Counter

LONG = 30.0  # a park that only an add or close can end within the test timeout
TINY = 0.01


def history_with(n: int, max_size: int = 1000) -> ChangeHistory[str]:
    h: ChangeHistory[str] = ChangeHistory(max_size=max_size)
    h.add([f"c{i}" for i in range(1, n + 1)])
    return h


def entry(h: ChangeHistory[str], counter: int) -> Counter:
    """The counter a client would hold after seeing change number ``counter``."""
    return next(c for _, c in h._entries if c.counter == counter)


async def test_add_numbers_changes_one_by_one_with_distinct_hashes() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    assert h.last_counter.counter == 0
    last = h.add(["a", "b"])
    assert last.counter == 2
    last = h.add(["c"])
    assert last.counter == 3 and h.last_counter == last
    hashes = [c.hash for _, c in h._entries]
    assert len(set(hashes)) == 3 and hashes == sorted(hashes)


async def test_add_nothing_changes_nothing() -> None:
    h = history_with(2)
    before = h.last_counter
    assert h.add([]) == before


async def test_full_snapshot_carries_current_counter() -> None:
    h = history_with(3)
    snap = h.snapshot(lambda: ["x", "y"])
    assert snap.reset_counter is False
    assert snap.counter == h.last_counter
    assert snap.requests == ["x", "y"]


async def test_delta_returns_every_later_change_and_last_counter() -> None:
    h = history_with(5)
    snap = await h.get_since(2, entry(h, 2).hash, LONG)
    assert snap is not None and not snap.reset_counter
    assert snap.requests == ["c3", "c4", "c5"]
    assert snap.counter == h.last_counter


async def test_zero_counter_on_fresh_history_parks_then_times_out() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    origin = h.last_counter
    assert await h.get_since(0, origin.hash, TINY) is None
    assert h.parked == 0


async def test_a_restarted_history_resets_a_client_of_the_previous_one() -> None:
    """Two lives of one server, neither with a change yet: the client of the first must be
    reset by the second, not parked as if it were up to date (it would then wait out the whole
    long-poll hold without learning that the server restarted)."""
    first: ChangeHistory[str] = ChangeHistory()
    seen = first.snapshot(list).counter
    second: ChangeHistory[str] = ChangeHistory()
    assert seen is not None and seen.counter == second.last_counter.counter == 0
    snap = await second.get_since(seen.counter, seen.hash, LONG)
    assert snap is not None and snap.reset_counter


async def test_zero_counter_gets_all_changes_while_history_is_complete() -> None:
    h = history_with(3)
    snap = await h.get_since(0, h._origin.hash, LONG)
    assert snap is not None and snap.requests == ["c1", "c2", "c3"]
    reset = await h.get_since(0, 12345, LONG)
    assert reset is not None and reset.reset_counter


async def test_up_to_date_counter_with_other_hash_resets() -> None:
    h = history_with(3)
    snap = await h.get_since(3, h.last_counter.hash + 1, LONG)
    assert snap is not None and snap.reset_counter
    assert snap.counter is None and snap.requests is None
    assert snap.reset_cause is not None and "failed to match" in snap.reset_cause


async def test_counter_ahead_of_server_resets() -> None:
    h = history_with(3)
    snap = await h.get_since(4, h.last_counter.hash, LONG)
    assert snap is not None and snap.reset_counter
    assert snap.reset_cause is not None and "> last counter" in snap.reset_cause


async def test_counter_older_than_history_resets() -> None:
    h = history_with(12, max_size=5)
    # last - counter == max_size: the entry needed to check the hash has been dropped.
    snap = await h.get_since(7, 0, LONG)
    assert snap is not None and snap.reset_counter
    assert snap.reset_cause is not None and "not enough history" in snap.reset_cause
    # one newer is still servable
    ok = await h.get_since(8, entry(h, 8).hash, LONG)
    assert ok is not None and not ok.reset_counter
    assert ok.requests == ["c9", "c10", "c11", "c12"]


async def test_hash_mismatch_inside_history_resets() -> None:
    h = history_with(5)
    snap = await h.get_since(2, entry(h, 3).hash, LONG)
    assert snap is not None and snap.reset_counter
    assert snap.reset_cause is not None and "failed to match" in snap.reset_cause


async def test_counter_from_a_previous_process_resets() -> None:
    old = history_with(3)
    held = old.last_counter
    restarted = history_with(3)
    snap = await restarted.get_since(held.counter, held.hash, LONG)
    assert snap is not None and snap.reset_counter


async def test_negative_counter_is_bad_input() -> None:
    h = history_with(1)
    with pytest.raises(InvalidInput):
        await h.get_since(-1, 0, LONG)


async def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ChangeHistory(max_size=0)


async def test_parked_requests_are_all_released_by_one_add() -> None:
    h = history_with(2)
    last = h.last_counter
    waiters = [asyncio.create_task(h.get_since(last.counter, last.hash, LONG)) for _ in range(50)]
    await wait_until(lambda: h.parked == 50, within=5, what="50 parked requests")
    h.add(["new"])
    results = await asyncio.gather(*waiters)
    for snap in results:
        assert snap is not None and snap.requests == ["new"]
        assert snap.counter == h.last_counter
    assert h.parked == 0


async def test_a_change_after_timeout_is_not_lost() -> None:
    h = history_with(1)
    last = h.last_counter
    assert await h.get_since(last.counter, last.hash, TINY) is None
    h.add(["later"])
    snap = await h.get_since(last.counter, last.hash, LONG)
    assert snap is not None and snap.requests == ["later"]


async def test_cancelled_park_leaves_no_waiter() -> None:
    h = history_with(1)
    last = h.last_counter
    task = asyncio.create_task(h.get_since(last.counter, last.hash, LONG))
    await wait_until(lambda: h.parked == 1, within=5, what="a parked request")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.parked == 0
    assert not h._waiters


async def test_close_releases_parked_requests_with_shutdown_error() -> None:
    h = history_with(1)
    last = h.last_counter
    task = asyncio.create_task(h.get_since(last.counter, last.hash, LONG))
    await wait_until(lambda: h.parked == 1, within=5, what="a parked request")
    h.close()
    with pytest.raises(ServiceUnavailable, match=r"Server is shutting down\."):
        await task
    assert h.parked == 0
    with pytest.raises(ServiceUnavailable):
        await h.get_since(0, h.last_counter.hash, LONG)
    with pytest.raises(ServiceUnavailable):
        h.snapshot(list)


async def test_snapshot_json_is_druids_shape() -> None:
    ok = ChangeRequestsSnapshot.success(Counter(counter=7, hash=99), [{"action": "load"}])
    assert ok.to_json() == {
        "resetCounter": False,
        "resetCause": None,
        "counter": {"counter": 7, "hash": 99},
        "requests": [{"action": "load"}],
    }
    reset = ChangeRequestsSnapshot[dict[str, str]].fail("counter > last counter")
    assert reset.to_json() == {
        "resetCounter": True,
        "resetCause": "counter > last counter",
        "counter": None,
        "requests": None,
    }
    parsed = ChangeRequestsSnapshot[dict[str, str]].model_validate(ok.to_json())
    assert parsed == ok


async def test_watchers_parked_at_one_counter_share_one_answer_and_one_encoding() -> None:
    h = history_with(2)
    last = h.last_counter
    waiters = [asyncio.create_task(h.get_since(last.counter, last.hash, LONG)) for _ in range(3)]
    await wait_until(lambda: h.parked == 3, within=5)
    h.add(["c3"])
    answers = await asyncio.gather(*waiters)
    first = answers[0]
    assert first is not None and all(a is first for a in answers)
    assert first.encoded() is first.encoded()
    assert first.encoded() == b'{"resetCounter":false,"resetCause":null,"counter":' + (
        f'{{"counter":3,"hash":{h.last_counter.hash}}},"requests":["c3"]}}'.encode()
    )


async def test_shared_answer_is_per_counter_and_renewed_by_each_add() -> None:
    h = history_with(3)
    at1, at2 = entry(h, 1), entry(h, 2)
    one = h.poll(at1.counter, at1.hash)
    two = h.poll(at2.counter, at2.hash)
    assert one is not None and one.requests == ["c2", "c3"]
    assert two is not None and two.requests == ["c3"]
    assert h.poll(at1.counter, at1.hash) is one
    h.add(["c4"])
    again = h.poll(at1.counter, at1.hash)
    assert again is not one and again is not None and again.requests == ["c2", "c3", "c4"]
    assert again.counter == h.last_counter


async def test_shared_answer_is_not_given_to_a_wrong_hash() -> None:
    h = history_with(3)
    at1 = entry(h, 1)
    assert h.poll(at1.counter, at1.hash) is not None  # cached for counter 1
    wrong = h.poll(at1.counter, at1.hash + 1)
    assert wrong is not None and wrong.reset_counter
    assert wrong.reset_cause is not None and "failed to match" in wrong.reset_cause
