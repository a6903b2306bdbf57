"""One coordinator cycle as a pure function: Druid's RunRules, UnloadUnusedSegments,
MarkOvershadowedSegmentsAsUnused and BalanceSegments over a snapshot of the historicals.

* Used segments are visited newest interval first (end, then start); segments overshadowed among
  the used ones are skipped (they stay where they are until marked unused).
* A load rule asks for replicas per tier: missing ones go to the historical of that tier with the
  most free space that does not hold or load the segment yet; extra ones are cancelled if still
  queued, else dropped from the fullest server. Replicas in tiers the rule does not name are
  dropped, but never the last loaded ones while the rule's own tiers have none loaded yet.
* A broadcast rule wants the segment on every historical. A drop rule marks the segment unused and
  drops it everywhere. A segment no rule applies to is left alone (and reported).
* Whatever a historical serves that is not a used segment is dropped; queued loads of it cancelled.
* A used segment is marked unused when it is overshadowed in the timeline of what historicals
  serve (plus used segments that need zero replicas), so the old version goes only once the new
  one is really served.
* Balancing moves at most ``max_moves`` segments per cycle inside each tier, from the most to the
  least utilised server, and only when the move leaves the target no more utilised than the source,
  so it converges and never oscillates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from common.segments.segment import DataSegment, SegmentId
from common.segments.timeline import SegmentTimeline
from services.coordinator.duties.model import (
    Cancel,
    CyclePlan,
    Drop,
    Load,
    LoadAction,
    Move,
    Projection,
    ServerState,
)
from services.coordinator.duties.rule_match import (
    find_rule,
    is_broadcast,
    is_drop,
    required_replicas,
)
from services.coordinator.rules import Rule


def newest_first(segments: Iterable[DataSegment]) -> list[DataSegment]:
    return sorted(
        segments,
        key=lambda s: (s.interval.end, s.interval.start, s.version, s.partition_num),
        reverse=True,
    )


def overshadowed_ids(segments: Iterable[DataSegment]) -> set[SegmentId]:
    """Segments fully covered by complete higher versions among ``segments`` (per datasource)."""
    by_ds: dict[str, list[DataSegment]] = defaultdict(list)
    for s in segments:
        by_ds[s.data_source].append(s)
    result: set[SegmentId] = set()
    for segs in by_ds.values():
        timeline = SegmentTimeline.of(segs)
        result.update(s.id for s in segs if timeline.is_segment_overshadowed(s))
    return result


class _Planner:
    def __init__(
        self, servers: Sequence[ServerState], rules: Mapping[str, Sequence[Rule]], now: int
    ) -> None:
        self.states = [s for s in servers if s.is_historical]
        self.proj = {s.name: Projection.of(s) for s in self.states}
        self.by_tier: dict[str, list[Projection]] = defaultdict(list)
        for p in self.proj.values():
            self.by_tier[p.tier].append(p)
        self.rules = rules
        self.now = now
        self.plan = CyclePlan()
        self.zero_replicas: list[DataSegment] = []
        #: Segments the balancer may move, per tier.
        self.movable: dict[str, list[DataSegment]] = defaultdict(list)

    # ---- RunRules
    def run_rules(self, segment: DataSegment) -> None:
        rule = find_rule(self.rules, segment.data_source, segment.interval, self.now)
        if rule is None:
            self.plan.no_rule.append(segment.id)
        elif is_drop(rule):
            self.plan.dropped_by_rule.append(segment)
            for tier in list(self.by_tier):
                self._set_replicas(segment, tier, 0, may_drop_last=True)
        elif is_broadcast(rule):
            for tier, servers in self.by_tier.items():
                self._set_replicas(segment, tier, len(servers), may_drop_last=True)
        else:
            wanted = required_replicas(rule) or {}
            if sum(wanted.values()) == 0:
                self.zero_replicas.append(segment)
            loaded_in_wanted = any(
                segment.id in p.loaded
                for tier, n in wanted.items()
                if n > 0
                for p in self.by_tier.get(tier, [])
            )
            for tier in sorted(set(wanted) | set(self.by_tier)):
                n = wanted.get(tier, 0)
                may_drop_last = n > 0 or loaded_in_wanted or sum(wanted.values()) == 0
                self._set_replicas(segment, tier, n, may_drop_last=may_drop_last)
                if n > 0:
                    self.movable[tier].append(segment)

    def _set_replicas(
        self, segment: DataSegment, tier: str, wanted: int, *, may_drop_last: bool
    ) -> None:
        sid = segment.id
        servers = self.by_tier.get(tier, [])
        holders = [p for p in servers if p.has(sid)]
        if len(holders) < wanted:
            candidates = sorted(
                (p for p in servers if not p.has(sid) and p.fits(segment)),
                key=lambda p: (-p.free, p.name),
            )
            missing = wanted - len(holders)
            anywhere = any(sid in p.loaded or sid in p.loading for p in self.proj.values())
            for p in candidates[:missing]:
                action: LoadAction = "REPLICATE" if anywhere else "LOAD"
                self.plan.loads.append(Load(p.name, segment, action))
                p.loading.add(sid)
                p.size += segment.size
                anywhere = True
            for _ in range(missing - len(candidates[:missing])):
                self.plan.unassigned.append((sid, tier))
        elif len(holders) > wanted:
            excess = len(holders) - wanted
            for p in sorted((p for p in holders if sid in p.loading), key=lambda p: p.name):
                if excess == 0:
                    break
                self._cancel(p, segment)
                excess -= 1
            if excess and (wanted > 0 or may_drop_last):
                loaded = sorted(
                    (p for p in holders if sid in p.loaded), key=lambda p: (p.free, p.name)
                )
                for p in loaded[:excess]:
                    self._drop(p, segment)

    def _cancel(self, p: Projection, segment: DataSegment) -> None:
        self.plan.cancels.append(Cancel(p.name, segment.id))
        p.loading.discard(segment.id)
        p.size -= segment.size

    def _drop(self, p: Projection, segment: DataSegment) -> None:
        self.plan.drops.append(Drop(p.name, segment))
        p.loaded.discard(segment.id)
        p.size -= segment.size

    # ---- UnloadUnusedSegments
    def unload_unused(self, used: set[SegmentId]) -> None:
        for state in self.states:
            p = self.proj[state.name]
            for sid in sorted(p.loaded - used):
                self._drop(p, state.served[sid])
            for sid in sorted(p.loading - used):
                self._cancel(p, state.loading[sid])

    # ---- MarkOvershadowedSegmentsAsUnused
    def mark_overshadowed(self, used: Sequence[DataSegment], candidates: set[SegmentId]) -> None:
        if not candidates:
            return
        used_ids = {s.id for s in used}
        served: dict[SegmentId, DataSegment] = {}
        for state in self.states:
            served.update((sid, seg) for sid, seg in state.served.items() if sid in used_ids)
        served.update((s.id, s) for s in self.zero_replicas)
        by_ds: dict[str, list[DataSegment]] = defaultdict(list)
        for seg in served.values():
            by_ds[seg.data_source].append(seg)
        timelines = {ds: SegmentTimeline.of(segs) for ds, segs in by_ds.items()}
        for s in used:
            t = timelines.get(s.data_source)
            if s.id in candidates and t is not None and t.is_segment_overshadowed(s):
                self.plan.overshadowed.append(s)

    # ---- BalanceSegments
    def balance(self, max_moves: int) -> None:
        busy = {sid for p in self.proj.values() for sid in p.loading}
        busy |= {sid for s in self.states for sid in s.dropping}
        busy |= {sid for s in self.states for sid in s.loading}
        moved: set[SegmentId] = set()
        for tier in sorted(self.movable):
            servers = [p for p in self.by_tier.get(tier, []) if p.max_size > 0]
            segments = {s.id: s for s in self.movable[tier]}
            while len(self.plan.moves) < max_moves and len(servers) > 1:
                src = max(servers, key=lambda p: (p.utilization, p.name))
                dst = min(servers, key=lambda p: (p.utilization, p.name))
                seg = self._pick_move(src, dst, segments, busy | moved)
                if seg is None:
                    break
                self.plan.moves.append(Move(src.name, dst.name, seg))
                moved.add(seg.id)
                src.loaded.discard(seg.id)
                src.size -= seg.size
                dst.loading.add(seg.id)
                dst.size += seg.size

    @staticmethod
    def _pick_move(
        src: Projection,
        dst: Projection,
        segments: Mapping[SegmentId, DataSegment],
        skip: set[SegmentId],
    ) -> DataSegment | None:
        best: DataSegment | None = None
        for sid in src.loaded:
            seg = segments.get(sid)
            if seg is None or sid in skip or dst.has(sid) or not dst.fits(seg):
                continue
            after_src = (src.size - seg.size) / src.max_size
            after_dst = (dst.size + seg.size) / dst.max_size
            if after_dst > after_src:
                continue
            if best is None or (seg.size, str(sid)) > (best.size, str(best.id)):
                best = seg
        return best


def plan_cycle(
    used: Sequence[DataSegment],
    rules: Mapping[str, Sequence[Rule]],
    servers: Sequence[ServerState],
    now: int,
    *,
    max_moves: int,
) -> CyclePlan:
    """Everything one coordinator cycle decides; ``now`` in epoch milliseconds."""
    planner = _Planner(servers, rules, now)
    overshadowed = overshadowed_ids(used)
    for segment in newest_first(s for s in used if s.id not in overshadowed):
        planner.run_rules(segment)
    planner.unload_unused({s.id for s in used})
    planner.mark_overshadowed(used, overshadowed)
    planner.balance(max_moves)
    return planner.plan
