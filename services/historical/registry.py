"""The segments this historical has open: memory-mapped Arrow tables by segment id.

Druid's ``SegmentManager``: what the query engine reads. A segment is here from the moment its
load succeeds until its (delayed) drop runs, so queries already routed to a dropped segment still
find it during ``dropSegmentDelayMillis``. Closing a mapping leaves buffers that queries still
hold valid (Arrow keeps the mapped region alive while a buffer points into it).
"""

from __future__ import annotations

import pyarrow as pa

from common.errors import NotFound
from common.segments.format import MappedSegment
from common.segments.segment import DataSegment, SegmentId


class SegmentRegistry:
    def __init__(self) -> None:
        self._open: dict[SegmentId, tuple[DataSegment, MappedSegment]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, segment_id: SegmentId) -> bool:
        return segment_id in self._open

    @property
    def segments(self) -> list[DataSegment]:
        return [segment for segment, _ in self._open.values()]

    def get_segment(self, segment_id: SegmentId) -> tuple[DataSegment, pa.Table]:
        """The segment and its memory-mapped table; ``NotFound`` if it is not loaded here."""
        entry = self._open.get(segment_id)
        if entry is None:
            raise NotFound(f"segment [{segment_id}] is not loaded on this historical")
        segment, mapped = entry
        return segment, mapped.table

    def add(self, segment: DataSegment, mapped: MappedSegment) -> None:
        old = self._open.get(segment.id)
        self._open[segment.id] = (segment, mapped)
        if old is not None and old[1] is not mapped:
            old[1].close()

    def remove(self, segment_id: SegmentId) -> DataSegment | None:
        entry = self._open.pop(segment_id, None)
        if entry is None:
            return None
        entry[1].close()
        return entry[0]

    def close(self) -> None:
        for segment_id in list(self._open):
            self.remove(segment_id)
