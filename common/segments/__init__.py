"""Segments: intervals, granularities, DataSegment and ids, the file format, deep storage, timeline.

Service-independent; the historical, coordinator, broker and peon build on it. Modules:
``isotime`` (ISO instants), ``period`` (ISO periods, zones), ``intervals``, ``granularity`` (with
``timefloor``, the vectorised flooring), ``segment``, ``format``, ``deep_storage``, ``timeline``.
See docs/segments.md.
"""

from common.segments.errors import DeepStorageError, InvalidTime, SegmentFormatError
from common.segments.granularity import Granularity, parse_granularity
from common.segments.intervals import ETERNITY, Interval
from common.segments.segment import DataSegment, SegmentDescriptor, SegmentId

__all__ = [
    "ETERNITY",
    "DataSegment",
    "DeepStorageError",
    "Granularity",
    "Interval",
    "InvalidTime",
    "SegmentDescriptor",
    "SegmentFormatError",
    "SegmentId",
    "parse_granularity",
]
