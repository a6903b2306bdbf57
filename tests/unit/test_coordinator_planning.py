"""One coordinator cycle as a pure function: assignment, drops, overshadowed, balancing."""

from __future__ import annotations

from common.segments.isotime import parse_iso
from common.segments.segment import DataSegment
from services.coordinator.duties.model import Load, ServerState
from services.coordinator.duties.planning import newest_first, plan_cycle
from services.coordinator.rules import parse_rules

NOW = parse_iso("2024-06-15T00:00:00Z")
DEFAULT = {"_default": parse_rules([{"type": "loadForever"}])}  # 2 replicas in _default_tier
GB = 10**9
ONE_REPLICA = {
    "_default": parse_rules([{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}])
}


def seg(
    day: int, version: str = "v1", size: int = 100, part: int = 0, parts: int = 1, ds: str = "wiki"
) -> DataSegment:
    return DataSegment.from_json(
        {
            "dataSource": ds,
            "interval": f"2024-01-{day:02d}/2024-01-{day + 1:02d}",
            "version": version,
            "shardSpec": {"type": "numbered", "partitionNum": part, "partitions": parts},
            "size": size,
        }
    )


def server(
    name: str,
    served=(),
    *,
    tier: str = "_default_tier",
    max_size: int = GB,
    loading=(),
    dropping=(),
    historical: bool = True,
) -> ServerState:
    return ServerState(
        name,
        tier,
        max_size,
        {s.id: s for s in served},
        {s.id: s for s in loading},
        {s.id: s for s in dropping},
        historical,
    )


def loads(plan) -> set[tuple[str, str]]:
    return {(load.server, load.segment.identifier) for load in plan.loads}


def drops(plan) -> set[tuple[str, str]]:
    return {(d.server, d.segment.identifier) for d in plan.drops}


def test_default_rule_puts_two_replicas_on_two_servers() -> None:
    a, b = seg(1), seg(2)
    plan = plan_cycle(
        [a, b], DEFAULT, [server("h1"), server("h2"), server("h3", max_size=0)], NOW, max_moves=0
    )
    assert loads(plan) == {(h, s.identifier) for h in ("h1", "h2") for s in (a, b)}
    assert {load.action for load in plan.loads if load.segment == a} == {"LOAD", "REPLICATE"}
    assert not plan.drops and not plan.unassigned


def test_assignment_prefers_most_free_space_and_skips_holders() -> None:
    big, s = seg(1, size=500), seg(2, size=100)
    rules = {
        "_default": parse_rules([{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}])
    }
    h1 = server("h1", [big], max_size=1000)
    h2 = server("h2", max_size=1000)
    plan = plan_cycle([big, s], rules, [h1, h2], NOW, max_moves=0)
    assert loads(plan) == {("h2", s.identifier)}


def test_newest_first_when_room_runs_out() -> None:
    old, new = seg(1, size=600), seg(9, size=600)
    rules = {
        "_default": parse_rules([{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}])
    }
    plan = plan_cycle([old, new], rules, [server("h1", max_size=1000)], NOW, max_moves=0)
    assert loads(plan) == {("h1", new.identifier)}
    assert plan.unassigned == [(old.id, "_default_tier")]
    assert newest_first([old, new]) == [new, old]


def test_loading_counts_as_present_and_non_historicals_are_ignored() -> None:
    s = seg(1)
    servers = [server("h1", loading=[s]), server("h2", [s]), server("peon", historical=False)]
    plan = plan_cycle([s], DEFAULT, servers, NOW, max_moves=0)
    assert not plan.loads and not plan.drops


def test_extra_replicas_cancel_queued_loads_then_drop_fullest() -> None:
    s, filler = seg(1), seg(5, size=900)
    rules = {
        "_default": parse_rules([{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}])
    }
    servers = [
        server("h1", [s], max_size=2000),
        server("h2", [s, filler], max_size=2000),
        server("h3", loading=[s]),
    ]
    plan = plan_cycle([s, filler], rules, servers, NOW, max_moves=0)
    assert {(c.server, c.segment_id) for c in plan.cancels} == {("h3", s.id)}
    assert drops(plan) == {("h2", s.identifier)}


def test_tiers_replicas_and_no_drop_of_last_copy_until_target_tier_loaded() -> None:
    s = seg(1)
    rules = {"_default": parse_rules([{"type": "loadForever", "tieredReplicants": {"hot": 1}}])}
    servers = [server("cold1", [s], tier="cold"), server("hot1", tier="hot")]
    plan = plan_cycle([s], rules, servers, NOW, max_moves=0)
    assert loads(plan) == {("hot1", s.identifier)} and not plan.drops
    servers = [server("cold1", [s], tier="cold"), server("hot1", [s], tier="hot")]
    plan = plan_cycle([s], rules, servers, NOW, max_moves=0)
    assert drops(plan) == {("cold1", s.identifier)} and not plan.loads


def test_drop_rule_marks_unused_and_drops_everywhere() -> None:
    s, keep = seg(1), seg(20)
    rules = {
        "wiki": parse_rules([{"type": "dropByInterval", "interval": "2024-01-01/2024-01-10"}]),
        **DEFAULT,
    }
    servers = [server("h1", [s, keep]), server("h2", [s, keep])]
    plan = plan_cycle([s, keep], rules, servers, NOW, max_moves=0)
    assert plan.dropped_by_rule == [s]
    assert drops(plan) == {("h1", s.identifier), ("h2", s.identifier)}
    assert not plan.loads


def test_unused_segments_are_dropped_and_their_loads_cancelled() -> None:
    gone, queued = seg(1), seg(2)
    plan = plan_cycle([], DEFAULT, [server("h1", [gone], loading=[queued])], NOW, max_moves=0)
    assert drops(plan) == {("h1", gone.identifier)}
    assert [(c.server, c.segment_id) for c in plan.cancels] == [("h1", queued.id)]


def test_zero_replicas_keeps_used_but_unloaded() -> None:
    s = seg(1)
    rules = {"_default": parse_rules([{"type": "loadForever", "tieredReplicants": {}}])}
    plan = plan_cycle([s], rules, [server("h1", [s])], NOW, max_moves=0)
    assert drops(plan) == {("h1", s.identifier)}
    assert not plan.to_mark_unused


def test_no_rule_leaves_segment_alone() -> None:
    s = seg(1)
    plan = plan_cycle([s], {}, [server("h1"), server("h2", [s])], NOW, max_moves=0)
    assert not plan.loads and not plan.drops and plan.no_rule == [s.id]


def test_overshadowed_waits_until_new_version_is_served() -> None:
    old, new = seg(1, "v1"), seg(1, "v2")
    # new version not served yet: old stays, is neither loaded further nor marked unused
    servers = [server("h1", [old]), server("h2", [old])]
    plan = plan_cycle([old, new], DEFAULT, servers, NOW, max_moves=0)
    assert loads(plan) == {("h1", new.identifier), ("h2", new.identifier)}
    assert not plan.overshadowed and not plan.drops
    # new version served on one historical: old is marked unused (dropped next cycle)
    servers = [server("h1", [old, new]), server("h2", [old])]
    plan = plan_cycle([old, new], DEFAULT, servers, NOW, max_moves=0)
    assert plan.overshadowed == [old]
    assert not plan.drops


def test_incomplete_newer_version_does_not_overshadow() -> None:
    old = seg(1, "v1")
    part0 = seg(1, "v2", part=0, parts=2)
    servers = [server("h1", [old, part0]), server("h2", [old, part0])]
    plan = plan_cycle([old, part0], DEFAULT, servers, NOW, max_moves=0)
    assert not plan.overshadowed and not plan.drops


def test_overshadowed_with_zero_replica_rule() -> None:
    old, new = seg(1, "v1"), seg(1, "v2")
    rules = {"_default": parse_rules([{"type": "loadForever", "tieredReplicants": {}}])}
    plan = plan_cycle([old, new], rules, [server("h1")], NOW, max_moves=0)
    assert plan.overshadowed == [old]


def test_broadcast_loads_on_every_historical() -> None:
    s = seg(1)
    rules = {"_default": parse_rules([{"type": "broadcastForever"}])}
    servers = [
        server("h1", [s]),
        server("h2", tier="hot"),
        server("h3"),
        server("p", historical=False),
    ]
    plan = plan_cycle([s], rules, servers, NOW, max_moves=0)
    assert loads(plan) == {("h2", s.identifier), ("h3", s.identifier)}


def test_balancing_moves_from_full_to_empty_bounded_and_converges() -> None:
    rules = {
        "_default": parse_rules([{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}])
    }
    segs = [seg(d, size=100) for d in range(1, 11)]
    servers = [server("full", segs, max_size=2000), server("empty", max_size=2000)]
    plan = plan_cycle(segs, rules, servers, NOW, max_moves=3)
    assert len(plan.moves) == 3
    assert all(m.source == "full" and m.target == "empty" for m in plan.moves)
    plan = plan_cycle(segs, rules, servers, NOW, max_moves=100)
    assert len(plan.moves) == 5  # 5/5 balanced: a sixth move would make it worse
    balanced = [server("a", segs[:5], max_size=2000), server("b", segs[5:], max_size=2000)]
    assert not plan_cycle(segs, rules, balanced, NOW, max_moves=100).moves


def test_balancing_skips_segments_in_flight() -> None:
    rules = {
        "_default": parse_rules([{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}])
    }
    segs = [seg(1), seg(2)]
    servers = [server("full", segs, dropping=segs, max_size=1000), server("empty", max_size=1000)]
    plan = plan_cycle(segs, rules, servers, NOW, max_moves=10)
    assert not plan.moves
    assert isinstance(plan.loads[0], Load)  # the dropping ones count as missing and are reloaded
