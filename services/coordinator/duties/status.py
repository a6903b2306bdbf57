"""Load status and handoff answers, as pure functions over used segments, rules and servers.

* ``load_status``: ``{ds: percent of its segments loaded}`` (``GET /loadstatus``);
  ``unavailable_counts``: ``{ds: segments loaded nowhere}`` (``?simple``);
  ``under_replicated``: ``{tier: {ds: missing replicas}}`` (``?full``). The segments counted are
  the used, non-overshadowed ones that a load or broadcast rule wants loaded; a replica counts
  when a historical serves it. A datasource with nothing to load is 100% loaded.
* ``handoff_complete``: Druid's ``DataSourcesResource.isHandOffComplete`` (druid-internals 4.6).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from common.segments.intervals import Interval
from common.segments.segment import DataSegment, SegmentId
from common.segments.timeline import SegmentTimeline
from services.coordinator.duties.model import ServerState
from services.coordinator.duties.planning import overshadowed_ids
from services.coordinator.duties.rule_match import (
    applies_to,
    find_rule,
    is_broadcast,
    is_load,
    required_replicas,
)
from services.coordinator.rules import Rule


def _wanted(
    used: Sequence[DataSegment], rules: Mapping[str, Sequence[Rule]], now: int
) -> list[tuple[DataSegment, Rule]]:
    hidden = overshadowed_ids(used)
    result = []
    for s in used:
        if s.id in hidden:
            continue
        rule = find_rule(rules, s.data_source, s.interval, now)
        wanted = required_replicas(rule) or {}
        if rule is not None and (is_broadcast(rule) or sum(wanted.values()) > 0):
            result.append((s, rule))
    return result


def _replicas_by_tier(servers: Sequence[ServerState]) -> dict[SegmentId, dict[str, int]]:
    counts: dict[SegmentId, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for server in servers:
        if server.is_historical:
            for sid in server.served:
                counts[sid][server.tier] += 1
    return counts


def unavailable_counts(
    used: Sequence[DataSegment],
    rules: Mapping[str, Sequence[Rule]],
    servers: Sequence[ServerState],
    now: int,
) -> dict[str, int]:
    replicas = _replicas_by_tier(servers)
    result = {s.data_source: 0 for s in used}
    for segment, _ in _wanted(used, rules, now):
        if not replicas.get(segment.id):
            result[segment.data_source] += 1
    return result


def load_status(
    used: Sequence[DataSegment],
    rules: Mapping[str, Sequence[Rule]],
    servers: Sequence[ServerState],
    now: int,
) -> dict[str, float]:
    replicas = _replicas_by_tier(servers)
    total: dict[str, int] = {s.data_source: 0 for s in used}
    loaded: dict[str, int] = defaultdict(int)
    for segment, _ in _wanted(used, rules, now):
        total[segment.data_source] += 1
        if replicas.get(segment.id):
            loaded[segment.data_source] += 1
    return {ds: 100.0 * loaded[ds] / n if n else 100.0 for ds, n in total.items()}


def under_replicated(
    used: Sequence[DataSegment],
    rules: Mapping[str, Sequence[Rule]],
    servers: Sequence[ServerState],
    now: int,
    cluster_view: bool = False,
) -> dict[str, dict[str, int]]:
    """Missing replicas per tier and datasource. With ``cluster_view`` (Druid's
    ``computeUsingClusterView``) a tier never needs more replicas than it has historicals."""
    replicas = _replicas_by_tier(servers)
    tier_sizes: dict[str, int] = defaultdict(int)
    for server in servers:
        if server.is_historical:
            tier_sizes[server.tier] += 1
    result: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for segment, rule in _wanted(used, rules, now):
        wanted = required_replicas(rule) if is_load(rule) else dict(tier_sizes)
        have = replicas.get(segment.id, {})
        for tier, n in (wanted or {}).items():
            need = min(n, tier_sizes.get(tier, 0)) if cluster_view else n
            result[tier][segment.data_source] += max(0, need - have.get(tier, 0))
    return {tier: dict(per_ds) for tier, per_ds in result.items()}


def handoff_complete(
    data_source: str,
    rules: Sequence[Rule],
    interval: Interval,
    version: str,
    partition_num: int,
    servers: Sequence[ServerState],
    now: int,
) -> bool:
    """True when the segment (of one datasource, whose rules with default are ``rules``) will
    never be loaded, is covered by a newer version historicals serve, or a historical serves a
    segment containing its interval with the same partition and a version at least as new."""
    first = next((r for r in rules if applies_to(r, interval, now)), None)
    if not is_load(first):
        return True
    on_historical: set[SegmentId] = set()
    every: dict[SegmentId, DataSegment] = {}
    for server in servers:
        mine = {sid: s for sid, s in server.served.items() if s.data_source == data_source}
        every.update(mine)
        if server.is_historical:
            on_historical.update(mine)
    historical_timeline = SegmentTimeline.of(every[sid] for sid in on_historical)
    if historical_timeline.is_overshadowed(interval, version):
        return True
    timeline = SegmentTimeline.of(every.values())
    for holder in timeline.lookup_with_incomplete_partitions(interval):
        for seg in holder.objects:
            if (
                seg.interval.contains(interval)
                and seg.partition_num == partition_num
                and seg.version >= version
                and seg.id in on_historical
            ):
                return True
    return False
