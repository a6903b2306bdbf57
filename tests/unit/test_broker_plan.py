"""The broker's pure parts: timeline lookup into descriptors, server choice, the byte budget, and
the server view's bookkeeping of segments whose servers vanished."""

from __future__ import annotations

import random
from typing import Any

import pytest

from common.errors import ResourceLimitExceeded
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from common.segments.timeline import SegmentTimeline
from services.broker.plan import (
    ByteBudget,
    assign,
    pick_server,
    scatter_gather_limit,
    segments_to_query,
)
from services.broker.view import BrokerServerView, ServerRef


def seg(interval: str, version: str, part: int = 0, parts: int = 1) -> DataSegment:
    return DataSegment(
        dataSource="wiki",
        interval=Interval.parse(interval),
        version=version,
        shardSpec={"type": "numbered", "partitionNum": part, "partitions": parts},
    )


def ref(name: str, priority: int = 0) -> ServerRef:
    return ServerRef(name, f"http://{name}", "_default_tier", priority, "historical")


def test_lookup_excludes_overshadowed_and_clips_to_the_query() -> None:
    old = seg("2024-01-01/2024-01-03", "v1")
    new = seg("2024-01-02/2024-01-03", "v2")
    p0, p1 = seg("2024-01-03/2024-01-04", "v1", 0, 2), seg("2024-01-03/2024-01-04", "v1", 1, 2)
    t = SegmentTimeline.of([old, new, p0, p1])
    units = segments_to_query(
        t, [Interval.parse("2024-01-01T12/2024-01-03T06"), Interval.parse("2024-01-01/2024-01-02")]
    )
    got = [(str(u.descriptor.itvl), u.descriptor.ver, u.descriptor.part) for u in units]
    assert got == [
        ("2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z", "v1", 0),
        ("2024-01-02T00:00:00.000Z/2024-01-03T00:00:00.000Z", "v2", 0),
        ("2024-01-03T00:00:00.000Z/2024-01-03T06:00:00.000Z", "v1", 0),
        ("2024-01-03T00:00:00.000Z/2024-01-03T06:00:00.000Z", "v1", 1),
    ]
    assert units[0].segment_id == old.id and units[1].segment_id == new.id
    assert segments_to_query(None, [Interval.parse("2024/2025")]) == []


def test_pick_server_highest_priority_random_within() -> None:
    rng = random.Random(7)
    servers = [ref("a"), ref("b"), ref("c", priority=-1)]
    picks = {pick_server(servers, rng).name for _ in range(50)}  # type: ignore[union-attr]
    assert picks == {"a", "b"}
    only_low = pick_server(servers, rng, exclude={"a", "b"})
    assert only_low is not None and only_low.name == "c"
    assert pick_server(servers, rng, exclude={"a", "b", "c"}) is None


def test_assign_groups_by_server_and_reports_unavailable() -> None:
    s1, s2 = seg("2024-01-01/2024-01-02", "v1"), seg("2024-01-02/2024-01-03", "v1")
    units = segments_to_query(SegmentTimeline.of([s1, s2]), [Interval.parse("2024/2025")])
    servers: dict[Any, list[ServerRef]] = {s1.id: [ref("a"), ref("b")], s2.id: []}
    by_server, unavailable = assign(units, lambda sid: servers[sid], random.Random(1))
    assert [u.segment_id for u in unavailable] == [s2.id]
    assert sum(len(v) for v in by_server.values()) == 1
    by_server, _ = assign(
        units, lambda sid: servers[sid], random.Random(1), {units[0].descriptor: {"a"}}
    )
    assert [s.name for s in by_server] == ["b"]


def test_scatter_gather_limit_and_budget() -> None:
    assert scatter_gather_limit(None, None) is None
    assert scatter_gather_limit(1000, None) == 1000
    assert scatter_gather_limit(1000, 10) == 10
    for bad in ("x", -1, 0, True):
        with pytest.raises(ResourceLimitExceeded):
            scatter_gather_limit(None, bad)
    with pytest.raises(ResourceLimitExceeded, match="enforced limit"):
        scatter_gather_limit(100, 1000)
    budget = ByteBudget(10, "q")
    budget.take(6, "u")
    with pytest.raises(ResourceLimitExceeded, match=r"Query\[q\] url\[u\]"):
        budget.take(5, "u")
    ByteBudget(None, "q").take(10**12, "u")


class _Server:
    def __init__(self, name: str) -> None:
        self.name, self.url, self.tier, self.priority, self.server_type = (
            name,
            f"http://{name}",
            "_default_tier",
            0,
            "historical",
        )


def test_view_keeps_segments_of_vanished_servers_and_forgets_dropped_ones() -> None:
    live: set[str] = {"a", "b"}
    view = BrokerServerView(lambda s: s.name in live)
    a, b = _Server("a"), _Server("b")
    s1, s2 = seg("2024-01-01/2024-01-02", "v1"), seg("2024-01-02/2024-01-03", "v1")
    view.segment_added(a, s1)  # type: ignore[arg-type]
    view.segment_added(b, s1)  # type: ignore[arg-type]
    view.segment_added(b, s2)  # type: ignore[arg-type]
    assert sorted(s.name for s in view.servers_of(s1.id)) == ["a", "b"]
    # a drops s1 on purpose: b still serves it.
    view.segment_removed(a, s1)  # type: ignore[arg-type]
    assert [s.name for s in view.servers_of(s1.id)] == ["b"]
    # b dies: s1 and s2 stay in the timeline with no server (to be reported missing).
    live.discard("b")
    view.segment_removed(b, s1)  # type: ignore[arg-type]
    view.segment_removed(b, s2)  # type: ignore[arg-type]
    assert view.servers_of(s1.id) == []
    assert len(segments_to_query(view.timeline("wiki"), [Interval.parse("2024/2025")])) == 2
    # a loads s1 again, then drops it while alive: gone from the timeline.
    view.segment_added(a, s1)  # type: ignore[arg-type]
    view.segment_removed(a, s1)  # type: ignore[arg-type]
    assert [
        u.segment_id
        for u in segments_to_query(view.timeline("wiki"), [Interval.parse("2024/2025")])
    ] == [s2.id]
    assert view.data_sources() == ["wiki"]
