"""Domain errors of the segments package: bad intervals, granularities, ids and segment files."""

from __future__ import annotations

from common.errors import InvalidInput, KdruidError


class InvalidTime(InvalidInput, ValueError):
    """An ISO datetime, period, interval, time zone or granularity could not be parsed.

    Also a ValueError so that pydantic reports it as a validation error of the field.
    """


class SegmentFormatError(KdruidError):
    """A segment file is corrupt, truncated or does not follow the segment file format."""

    error_code = "Segment format error"
    error_class = "org.apache.druid.segment.loading.SegmentLoadingException"


class DeepStorageError(KdruidError):
    """Pushing, pulling or deleting a segment in deep storage failed."""

    error_code = "Deep storage failure"
    error_class = "org.apache.druid.segment.loading.SegmentLoadingException"
