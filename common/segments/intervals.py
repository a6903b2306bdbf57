"""Half-open time intervals ``[start, end)`` in UTC milliseconds, with Druid's ISO spelling.

``Interval.parse`` accepts ``start/end``, ``start/period`` and ``period/end`` (Joda's forms);
``str(interval)`` prints ``2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z`` as Druid does.
Intervals are pydantic-friendly: they validate from that string and serialise back to it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from common.segments.errors import InvalidTime
from common.segments.isotime import MAX_INSTANT, MIN_INSTANT, format_iso, parse_iso
from common.segments.period import UTC_ZONE, Period, add_period


@dataclass(frozen=True, order=True)
class Interval:
    """``[start, end)`` in epoch milliseconds; ordered by start, then end (Druid's comparator)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidTime(
                f"The end instant must be greater than the start instant: "
                f"{format_iso(self.start)}/{format_iso(self.end)}"
            )

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Parse ``start/end``, ``start/period`` or ``period/end`` (no offset means UTC)."""
        if not isinstance(text, str) or text.count("/") != 1:
            raise InvalidTime(f"Invalid interval [{text!r}]: expected 'start/end'")
        left, right = (p.strip() for p in text.split("/"))
        if left[:1].upper() == "P" and right[:1].upper() == "P":
            raise InvalidTime(f"Invalid interval [{text}]: two periods")
        if left[:1].upper() == "P":
            end = parse_iso(right)
            return cls(add_period(UTC_ZONE, end, Period.parse(left), -1), end)
        start = parse_iso(left)
        if right[:1].upper() == "P":
            return cls(start, add_period(UTC_ZONE, start, Period.parse(right)))
        return cls(start, parse_iso(right))

    @classmethod
    def of(cls, start: int | str, end: int | str) -> Interval:
        """Build from two instants, each epoch millis or ISO text."""
        s = parse_iso(start) if isinstance(start, str) else start
        e = parse_iso(end) if isinstance(end, str) else end
        return cls(s, e)

    def __str__(self) -> str:
        return f"{format_iso(self.start)}/{format_iso(self.end)}"

    def __repr__(self) -> str:
        return f"Interval({self})"

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    def contains(self, other: Interval | int) -> bool:
        """True when the instant or the whole interval lies inside (Joda's ``contains``)."""
        if isinstance(other, int):
            return self.start <= other < self.end
        if other.is_empty:
            return self.start <= other.start < self.end or (self.start == other.start == self.end)
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other: Interval) -> bool:
        """True when the two share at least one millisecond (abutting ones do not)."""
        if self.is_empty or other.is_empty:
            return False
        return self.start < other.end and other.start < self.end

    def abuts(self, other: Interval) -> bool:
        return self.end == other.start or other.end == self.start

    def intersection(self, other: Interval) -> Interval | None:
        """The overlap, or None when they do not overlap (Joda's ``overlap``)."""
        if not self.overlaps(other):
            return None
        return Interval(max(self.start, other.start), min(self.end, other.end))

    def with_start(self, start: int) -> Interval:
        return Interval(start, self.end)

    def with_end(self, end: int) -> Interval:
        return Interval(self.start, end)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_interval,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def _validate_interval(value: Any) -> Interval:
    if isinstance(value, Interval):
        return value
    if isinstance(value, str):
        return _parse_cached(value)
    raise InvalidTime(f"Invalid interval [{value!r}]: expected 'start/end'")


@functools.lru_cache(maxsize=1 << 16)
def _parse_cached(text: str) -> Interval:
    """``Interval.parse`` remembered: a full sync of a data node's segments validates thousands of
    segments that share a few hundred interval strings (intervals are immutable)."""
    return Interval.parse(text)


ETERNITY = Interval(MIN_INSTANT, MAX_INSTANT)


def condense(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort and merge overlapping or abutting intervals (Druid's ``condenseIntervals``)."""
    out: list[Interval] = []
    for iv in sorted(intervals):
        if out and iv.start <= out[-1].end:
            if iv.end > out[-1].end:
                out[-1] = Interval(out[-1].start, iv.end)
        else:
            out.append(iv)
    return out


def umbrella(intervals: Iterable[Interval]) -> Interval:
    """The smallest interval covering all of them."""
    ivs = list(intervals)
    if not ivs:
        raise InvalidTime("Cannot take the umbrella of no intervals")
    return Interval(min(i.start for i in ivs), max(i.end for i in ivs))
