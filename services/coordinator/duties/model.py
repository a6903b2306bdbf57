"""The data the duties decide over, and the decisions they return.

A ``ServerState`` is one historical as the coordinator sees it at the start of a cycle: what it
announces (``served``), what its load queue will add (``loading``) or remove (``dropping``). The
planner works on projections of these, so one cycle never over-fills a server or assigns the same
replica twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from common.segments.segment import DataSegment, SegmentId

LoadAction = Literal["LOAD", "REPLICATE", "MOVE_TO"]


@dataclass(frozen=True)
class ServerState:
    name: str
    tier: str
    max_size: int
    served: Mapping[SegmentId, DataSegment]
    loading: Mapping[SegmentId, DataSegment] = field(default_factory=dict)
    dropping: Mapping[SegmentId, DataSegment] = field(default_factory=dict)
    is_historical: bool = True


@dataclass(frozen=True)
class Load:
    server: str
    segment: DataSegment
    action: LoadAction = "LOAD"


@dataclass(frozen=True)
class Drop:
    server: str
    segment: DataSegment


@dataclass(frozen=True)
class Cancel:
    """Take a queued load off a server's queue (it may already be in flight: then nothing)."""

    server: str
    segment_id: SegmentId


@dataclass(frozen=True)
class Move:
    """Load on ``target``; drop from ``source`` only once that load succeeded."""

    source: str
    target: str
    segment: DataSegment


@dataclass
class CyclePlan:
    loads: list[Load] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    cancels: list[Cancel] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    #: Used segments a drop rule applies to: mark unused.
    dropped_by_rule: list[DataSegment] = field(default_factory=list)
    #: Used segments overshadowed by what historicals serve: mark unused.
    overshadowed: list[DataSegment] = field(default_factory=list)
    #: (segment, tier) replicas wanted but with no server that has room.
    unassigned: list[tuple[SegmentId, str]] = field(default_factory=list)
    #: Used segments no rule applies to (Druid raises an alert for these).
    no_rule: list[SegmentId] = field(default_factory=list)

    @property
    def to_mark_unused(self) -> list[DataSegment]:
        return self.dropped_by_rule + self.overshadowed


@dataclass
class Projection:
    """A server's state as this cycle's decisions change it."""

    name: str
    tier: str
    max_size: int
    loaded: set[SegmentId]
    loading: set[SegmentId]
    size: int

    @classmethod
    def of(cls, s: ServerState) -> Projection:
        loaded = {sid for sid in s.served if sid not in s.dropping}
        loading = {sid for sid in s.loading if sid not in loaded and sid not in s.dropping}
        size = sum(seg.size for sid, seg in s.served.items() if sid not in s.dropping)
        size += sum(s.loading[sid].size for sid in loading)
        return cls(s.name, s.tier, s.max_size, loaded, loading, size)

    @property
    def free(self) -> int:
        return self.max_size - self.size

    @property
    def utilization(self) -> float:
        return self.size / self.max_size if self.max_size > 0 else 1.0

    def has(self, sid: SegmentId) -> bool:
        return sid in self.loaded or sid in self.loading

    def fits(self, segment: DataSegment) -> bool:
        return segment.size <= self.free
