"""Marking segments used or unused, as Druid's coordinator (deprecated) and overlord
(``OverlordDataSourcesResource``) APIs do; both roles call these so they answer alike.

* The body of ``markUsed`` / ``markUnused`` is Druid's ``SegmentsToUpdateFilter``:
  ``{"interval": "..."}`` (optionally with ``"versions": [...]``) or ``{"segmentIds": [...]}``,
  never both; anything else is a 400 with Druid's message. An interval selects the segments it
  *contains*.
* Marking used only ever marks segments that the used and the candidate segments together do not
  overshadow (Druid's ``markNonOvershadowedSegmentsAsUsed``): re-enabling a datasource never
  brings back data a newer version replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import InvalidInput
from common.metadata.store import MetadataStore
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, SegmentId
from common.segments.timeline import SegmentTimeline

INVALID = (
    "Invalid request payload. Specify either 'interval' or 'segmentIds', but not both. "
    "Optionally, include 'versions' only when 'interval' is provided."
)


@dataclass(frozen=True)
class SegmentsToUpdate:
    interval: Interval | None = None
    segment_ids: list[str] | None = None
    versions: list[str] | None = None


def _str_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"'{name}' must be a JSON list of strings")
    return list(value)


def parse_segment_filter(data_source: str, body: Any) -> SegmentsToUpdate:
    if not isinstance(body, dict):
        raise InvalidInput(INVALID)
    unknown = set(body) - {"interval", "segmentIds", "versions"}
    if unknown:
        raise InvalidInput(f"unknown field(s) {sorted(unknown)}. {INVALID}")
    ids = _str_list(body.get("segmentIds"), "segmentIds")
    versions = _str_list(body.get("versions"), "versions")
    raw_interval = body.get("interval")
    if raw_interval is None:
        if not ids or versions:
            raise InvalidInput(INVALID)
        bad = [i for i in ids if SegmentId.try_parse(data_source, i) is None]
        if bad:
            raise InvalidInput(f"Could not parse segment IDs{bad} for datasource[{data_source}]")
        return SegmentsToUpdate(segment_ids=ids)
    if ids:
        raise InvalidInput(INVALID)
    if not isinstance(raw_interval, str):
        raise InvalidInput("'interval' must be an ISO 8601 interval string")
    # InvalidTime is an InvalidInput: a bad interval is a 400 naming it.
    return SegmentsToUpdate(interval=Interval.parse(raw_interval), versions=versions)


def parse_segment_id(data_source: str, text: str) -> SegmentId:
    sid = SegmentId.try_parse(data_source, text)
    if sid is None:
        raise InvalidInput(f"Could not parse Segment ID[{text}] for DataSource[{data_source}]")
    return sid


def not_overshadowed(
    candidates: Sequence[DataSegment], used: Sequence[DataSegment]
) -> list[DataSegment]:
    """The candidates that the used segments and the candidates together do not overshadow."""
    timeline = SegmentTimeline.of([*used, *candidates])
    return [s for s in candidates if not timeline.is_segment_overshadowed(s)]


def _selected(segment: DataSegment, f: SegmentsToUpdate) -> bool:
    if f.segment_ids is not None:
        return segment.identifier in f.segment_ids
    if f.interval is not None and not f.interval.contains(segment.interval):
        return False
    return not f.versions or segment.version in f.versions


async def mark_used(store: MetadataStore, data_source: str, f: SegmentsToUpdate | None) -> int:
    """Mark the unused segments ``f`` selects (all when None) used, unless overshadowed."""
    unused = [r.segment for r in await store.list_segments(data_source, used=False)]
    candidates = [s for s in unused if f is None or _selected(s, f)]
    if not candidates:
        return 0
    keep = not_overshadowed(candidates, await store.used_segments(data_source))
    if not keep:
        return 0
    return await store.set_segments_used(
        data_source, True, segment_ids=[s.identifier for s in keep]
    )


async def mark_unused(store: MetadataStore, data_source: str, f: SegmentsToUpdate | None) -> int:
    """Mark the used segments ``f`` selects (all when None) unused."""
    if f is None:
        return await store.set_segments_used(data_source, False)
    return await store.set_segments_used(
        data_source, False, segment_ids=f.segment_ids, interval=f.interval, versions=f.versions
    )
