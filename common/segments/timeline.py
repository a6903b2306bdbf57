"""Druid's ``VersionedIntervalTimeline`` as a plain data structure.

Objects (segments) are added under ``(interval, version)`` as partition chunks. For any time range
``lookup`` answers, per sub-interval, the entry with the highest version whose partition set is
*complete*; ``lookup_with_incomplete_partitions`` lets incomplete sets win too. Lookups are
computed from the current entries, so adding a complete higher version hides older data at once
(atomic replacement), an incomplete one does not, and removing it re-exposes what it covered.

Completeness (numbered shard specs, ``partitions`` = number of *core* partitions): a set is
complete when every core partition ``0..partitions-1`` is present; partitions numbered from
``partitions`` up are appended extras and optional. With ``partitions`` = 0 (appended segments,
as streaming ingestion makes) any non-empty set is complete. ``none`` and ``tombstone`` specs are
a single core partition 0.

Versions compare as strings (Druid's natural ordering of ISO timestamps). When two entries of the
same version overlap, the one added first wins where they overlap, as in Druid.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from common.segments.intervals import ETERNITY, Interval
from common.segments.segment import DataSegment

T = TypeVar("T")


@dataclass(frozen=True)
class PartitionChunk(Generic[T]):
    """One partition of an (interval, version); ``has_data`` is False for tombstones."""

    partition_num: int
    core_partitions: int
    obj: T
    has_data: bool = True


@dataclass
class PartitionHolder(Generic[T]):
    chunks: dict[int, PartitionChunk[T]] = field(default_factory=dict)

    def is_complete(self) -> bool:
        if not self.chunks:
            return False
        core = max(c.core_partitions for c in self.chunks.values())
        return all(p in self.chunks for p in range(core))

    def __iter__(self) -> Iterator[PartitionChunk[T]]:
        return iter([self.chunks[k] for k in sorted(self.chunks)])

    def __len__(self) -> int:
        return len(self.chunks)


@dataclass(frozen=True)
class TimelineObjectHolder(Generic[T]):
    """A lookup answer: ``interval`` is the visible part, ``true_interval`` the entry's own."""

    interval: Interval
    true_interval: Interval
    version: str
    chunks: tuple[PartitionChunk[T], ...]

    @property
    def objects(self) -> list[T]:
        return [c.obj for c in self.chunks]


@dataclass
class _Entry(Generic[T]):
    interval: Interval
    version: str
    seq: int
    holder: PartitionHolder[T]


class VersionedIntervalTimeline(Generic[T]):
    def __init__(self) -> None:
        self._entries: dict[tuple[Interval, str], _Entry[T]] = {}
        self._by_start: list[tuple[int, int, str]] = []  # (start, end, version), sorted
        self._max_duration = 0
        self._seq = itertools.count()

    # ---- mutation -------------------------------------------------------------------------

    def add(self, interval: Interval, version: str, chunk: PartitionChunk[T]) -> None:
        """Add (or replace) one partition chunk of ``(interval, version)``."""
        key = (interval, version)
        entry = self._entries.get(key)
        if entry is None:
            entry = _Entry(interval, version, next(self._seq), PartitionHolder())
            self._entries[key] = entry
            bisect.insort(self._by_start, (interval.start, interval.end, version))
            self._max_duration = max(self._max_duration, interval.duration)
        entry.holder.chunks[chunk.partition_num] = chunk

    def remove(self, interval: Interval, version: str, partition_num: int) -> T | None:
        """Remove one chunk; returns its object, or None when it was not there."""
        key = (interval, version)
        entry = self._entries.get(key)
        if entry is None or partition_num not in entry.holder.chunks:
            return None
        chunk = entry.holder.chunks.pop(partition_num)
        if not entry.holder.chunks:
            del self._entries[key]
            i = bisect.bisect_left(self._by_start, (interval.start, interval.end, version))
            del self._by_start[i]
        return chunk.obj

    def find_chunk(
        self, interval: Interval, version: str, partition_num: int
    ) -> PartitionChunk[T] | None:
        entry = self._entries.get((interval, version))
        return entry.holder.chunks.get(partition_num) if entry else None

    def is_empty(self) -> bool:
        return not self._entries

    def iter_all(self) -> Iterator[TimelineObjectHolder[T]]:
        """Every entry, complete or not, visible or not."""
        for e in self._entries.values():
            yield TimelineObjectHolder(e.interval, e.interval, e.version, tuple(e.holder))

    # ---- queries --------------------------------------------------------------------------

    def lookup(
        self, interval: Interval, skip_objects_with_no_data: bool = False
    ) -> list[TimelineObjectHolder[T]]:
        """Per sub-interval of ``interval``, the highest complete version (in time order)."""
        return self._lookup(interval, True, skip_objects_with_no_data)

    def lookup_with_incomplete_partitions(
        self, interval: Interval, skip_objects_with_no_data: bool = False
    ) -> list[TimelineObjectHolder[T]]:
        """As ``lookup``, but incomplete partition sets take part too."""
        return self._lookup(interval, False, skip_objects_with_no_data)

    def is_overshadowed(self, interval: Interval, version: str) -> bool:
        """True when complete entries of strictly higher versions cover all of ``interval``."""
        pos = interval.start
        for h in self.lookup(interval):
            if h.interval.start != pos or h.version <= version:
                return False
            pos = h.interval.end
        return pos == interval.end and not interval.is_empty

    def find_fully_overshadowed(self) -> list[TimelineObjectHolder[T]]:
        """Entries visible nowhere, neither among complete nor incomplete sets."""
        visible = {(h.true_interval, h.version) for h in self.lookup(ETERNITY)}
        visible |= {
            (h.true_interval, h.version) for h in self.lookup_with_incomplete_partitions(ETERNITY)
        }
        return [
            TimelineObjectHolder(e.interval, e.interval, e.version, tuple(e.holder))
            for key, e in self._entries.items()
            if key not in visible
        ]

    def _overlapping(self, interval: Interval) -> list[_Entry[T]]:
        lo = bisect.bisect_left(self._by_start, (interval.start - self._max_duration,))
        hi = bisect.bisect_left(self._by_start, (interval.end,))
        out = []
        for start, end, version in self._by_start[lo:hi]:
            if end > interval.start and start < interval.end and start < end:
                out.append(self._entries[(Interval(start, end), version)])
        return out

    def _lookup(
        self, interval: Interval, complete_only: bool, skip_no_data: bool
    ) -> list[TimelineObjectHolder[T]]:
        entries = [
            e for e in self._overlapping(interval) if not complete_only or e.holder.is_complete()
        ]
        if not entries:
            return []
        ranks = {v: i for i, v in enumerate(sorted({e.version for e in entries}))}
        entries.sort(key=lambda e: e.interval.start)
        points = sorted(
            {interval.start, interval.end}
            | {max(e.interval.start, interval.start) for e in entries}
            | {min(e.interval.end, interval.end) for e in entries}
        )
        # Sweep: the heap holds active entries, best (highest version, earliest added) on top.
        heap: list[tuple[int, int, int]] = []
        nxt = 0
        pieces: list[tuple[int, int, _Entry[T]]] = []
        for a, b in itertools.pairwise(points):
            while nxt < len(entries) and entries[nxt].interval.start <= a:
                e = entries[nxt]
                heapq.heappush(heap, (-ranks[e.version], e.seq, nxt))
                nxt += 1
            while heap and entries[heap[0][2]].interval.end <= a:
                heapq.heappop(heap)
            if not heap:
                continue
            winner = entries[heap[0][2]]
            if pieces and pieces[-1][2] is winner and pieces[-1][1] == a:
                pieces[-1] = (pieces[-1][0], b, winner)
            else:
                pieces.append((a, b, winner))
        out = []
        for a, b, e in pieces:
            chunks = tuple(c for c in e.holder if c.has_data or not skip_no_data)
            if chunks:
                out.append(TimelineObjectHolder(Interval(a, b), e.interval, e.version, chunks))
        return out


def segment_chunk(segment: DataSegment) -> PartitionChunk[DataSegment]:
    """A DataSegment as a timeline chunk (its shard spec gives partition and core count)."""
    return PartitionChunk(
        segment.partition_num,
        segment.shard_spec.core_partitions,
        segment,
        has_data=not segment.is_tombstone,
    )


class SegmentTimeline(VersionedIntervalTimeline[DataSegment]):
    """A timeline of DataSegments (one datasource)."""

    @classmethod
    def of(cls, segments: Iterable[DataSegment]) -> SegmentTimeline:
        t = cls()
        for s in segments:
            t.add_segment(s)
        return t

    def add_segment(self, segment: DataSegment) -> None:
        self.add(segment.interval, segment.version, segment_chunk(segment))

    def remove_segment(self, segment: DataSegment) -> DataSegment | None:
        return self.remove(segment.interval, segment.version, segment.partition_num)

    def is_segment_overshadowed(self, segment: DataSegment) -> bool:
        return self.is_overshadowed(segment.interval, segment.version)

    def overshadowed_segments(self) -> list[DataSegment]:
        return [c.obj for h in self.find_fully_overshadowed() for c in h.chunks]
