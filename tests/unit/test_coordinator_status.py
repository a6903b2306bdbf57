"""Load status math and Druid's handoffComplete rules."""

from __future__ import annotations

from common.segments.intervals import Interval
from common.segments.isotime import parse_iso
from services.coordinator.duties.rule_match import rules_with_default
from services.coordinator.duties.status import (
    handoff_complete,
    load_status,
    unavailable_counts,
    under_replicated,
)
from services.coordinator.rules import parse_rules
from tests.unit.test_coordinator_planning import seg, server

NOW = parse_iso("2024-06-15T00:00:00Z")
RULES = {
    "wiki": parse_rules([{"type": "dropBeforeByPeriod", "period": "P1Y"}]),
    "_default": parse_rules([{"type": "loadForever", "tieredReplicants": {"hot": 2, "cold": 1}}]),
}


def test_load_status_counts_wanted_segments_loaded_on_historicals() -> None:
    a, b, c, d = seg(1), seg(2), seg(3), seg(4)
    old_v, new_v = seg(5, "v1"), seg(5, "v2")
    used = [a, b, c, d, old_v, new_v]
    servers = [
        server("h1", [a, b, new_v], tier="hot"),
        server("h2", [a], tier="hot"),
        server("c1", [a], tier="cold"),
        server("peon", [c], historical=False),  # realtime copies do not count
    ]
    # overshadowed old_v is not counted: 3 of 5 wanted segments are loaded
    assert load_status(used, RULES, servers, NOW) == {"wiki": 60.0}
    assert unavailable_counts(used, RULES, servers, NOW) == {"wiki": 2}
    assert under_replicated(used, RULES, servers, NOW) == {
        "hot": {"wiki": 0 + 1 + 2 + 2 + 1},
        "cold": {"wiki": 0 + 1 + 1 + 1 + 1},
    }


def test_load_status_of_datasource_with_nothing_to_load() -> None:
    s = seg(1, ds="gone")
    rules = {"_default": parse_rules([{"type": "dropForever"}])}
    assert load_status([s], rules, [], NOW) == {"gone": 100.0}
    assert unavailable_counts([s], rules, [], NOW) == {"gone": 0}
    assert load_status([], rules, [], NOW) == {}


def handoff(rules, servers, interval="2024-01-01/2024-01-02", version="v1", part=0) -> bool:
    return handoff_complete(
        "wiki",
        rules_with_default(rules, "wiki"),
        Interval.parse(interval),
        version,
        part,
        servers,
        NOW,
    )


def test_handoff_true_when_no_load_rule_applies() -> None:
    rules = {**RULES, "wiki": parse_rules([{"type": "dropForever"}])}
    assert handoff(rules, [])
    rules = {"wiki": parse_rules([{"type": "loadByInterval", "interval": "2030-01-01/2031-01-01"}])}
    assert handoff(rules, [])  # no rule at all applies: it will never be loaded


def test_handoff_needs_a_historical_with_same_partition_and_version() -> None:
    s = seg(1, "v1", part=1, parts=0)
    assert not handoff(RULES, [], part=1)
    assert not handoff(RULES, [server("peon", [s], historical=False)], part=1)
    assert handoff(RULES, [server("h1", [s])], part=1)
    assert not handoff(RULES, [server("h1", [s])], part=2)
    assert not handoff(RULES, [server("h1", [s])], version="v2", part=1)
    assert handoff(RULES, [server("h1", [seg(1, "v3", part=1, parts=0)])], version="v2", part=1)


def test_handoff_segment_interval_must_contain_requested_interval() -> None:
    day = seg(1)
    assert handoff(RULES, [server("h1", [day])], interval="2024-01-01T05:00/2024-01-01T06:00")
    assert not handoff(RULES, [server("h1", [day])], interval="2024-01-01/2024-01-03")


def test_handoff_true_when_newer_version_covers_it() -> None:
    newer = seg(1, "v9", part=0, parts=1)
    assert handoff(RULES, [server("h1", [newer])], version="v1", part=3)
    other_ds = seg(1, "v9", ds="other")
    assert not handoff(RULES, [server("h1", [other_ds])], version="v1", part=3)
