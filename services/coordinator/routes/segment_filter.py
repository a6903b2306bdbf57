"""Druid's ``SegmentsToUpdateFilter``: the body of ``markUsed`` / ``markUnused``.

``{"interval": "..."}`` (optionally with ``"versions": [...]``) or ``{"segmentIds": [...]}``,
never both; anything else is a 400 with Druid's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import InvalidInput
from common.segments.intervals import Interval
from common.segments.segment import SegmentId

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
