"""Druid's granularities: bucketing instants by ``all``, ``none``, a duration or a period.

JSON forms accepted by ``parse_granularity`` (as Druid's ``Granularity`` Jackson creator):

- a simple name, any case: ``all``, ``none``, ``second``, ``minute``, ``five_minute``,
  ``ten_minute``, ``fifteen_minute``, ``thirty_minute``, ``hour``, ``six_hour``, ``eight_hour``,
  ``day``, ``week``, ``month``, ``quarter``, ``year`` (UTC periods with no origin);
- ``{"type": "all"}``, ``{"type": "none"}``;
- ``{"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles", "origin": ...}``;
- ``{"type": "duration", "duration": 7200000, "origin": ...}``.

``to_json`` writes simple ones back as Druid does (the upper-case name) and the others as objects,
so parse -> to_json -> parse round-trips. ``bucket_starts`` floors a whole Arrow array without a
Python loop per row (see ``timefloor``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from common.segments.errors import InvalidTime
from common.segments.intervals import ETERNITY, Interval
from common.segments.isotime import MAX_INSTANT, MIN_INSTANT, format_iso, to_millis
from common.segments.period import UTC_ZONE, Period, Zone, add_period, parse_zone
from common.segments.timefloor import I64, FloorPlan, floor_scalar, floor_vec, make_plan

ArrowArray: TypeAlias = pa.Array | pa.ChunkedArray


class Granularity(ABC):
    """How instants group into buckets; every bucket is a half-open Interval."""

    @abstractmethod
    def bucket_start(self, t: int) -> int:
        """Start of the bucket holding ``t`` (Druid's ``bucketStart``)."""

    @abstractmethod
    def increment(self, t: int) -> int:
        """``t`` moved forward by one granularity step (Druid's ``increment``)."""

    @abstractmethod
    def _floor_array(self, t: I64) -> I64: ...

    @abstractmethod
    def to_json(self) -> str | dict[str, Any]: ...

    def bucket(self, t: int) -> Interval:
        start = self.bucket_start(t)
        return Interval(start, self.increment(start))

    def next(self, t: int) -> int:
        """Start of the bucket after the one holding ``t``."""
        return self.increment(self.bucket_start(t))

    def iter_buckets(self, interval: Interval) -> Iterator[Interval]:
        """Buckets from the one holding ``interval.start`` while they start before its end."""
        start = self.bucket_start(interval.start)
        while start < interval.end:
            end = self.increment(start)
            yield Interval(start, end)
            start = end

    def floor_millis(self, t: I64) -> I64:
        """``bucket_start`` of every value of an int64 numpy array of epoch milliseconds."""
        return self._floor_array(np.asarray(t, dtype=np.int64))

    def bucket_starts(self, values: ArrowArray) -> ArrowArray:
        """Vectorised ``bucket_start`` over an int64 (millis) or timestamp Arrow array.

        The result has the input's type (timestamps are handled in milliseconds; finer units
        are truncated to milliseconds first); nulls stay null.
        """
        if isinstance(values, pa.ChunkedArray):
            chunks = [self.bucket_starts(c) for c in values.chunks]
            return pa.chunked_array(chunks, type=chunks[0].type if chunks else values.type)
        typ = values.type
        if pa.types.is_timestamp(typ):
            out_type: pa.DataType = pa.timestamp("ms", tz=typ.tz)
            ints = values.cast(pa.timestamp("ms", tz=typ.tz), safe=False).cast(pa.int64())
        elif pa.types.is_integer(typ):
            out_type = pa.int64()
            ints = values.cast(pa.int64())
        else:
            raise InvalidTime(f"Cannot bucket a column of type [{typ}]: need timestamp or int64")
        mask = ints.is_null().to_numpy(zero_copy_only=False) if ints.null_count else None
        raw = np.asarray(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        floored = self._floor_array(raw)
        return pa.array(floored, type=pa.int64(), mask=mask).cast(out_type)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda g: g.to_json()),
        )


def _validate(value: Any) -> Granularity:
    return value if isinstance(value, Granularity) else parse_granularity(value)


@dataclass(frozen=True)
class AllGranularity(Granularity):
    """Everything in one bucket, ETERNITY."""

    def bucket_start(self, t: int) -> int:
        return MIN_INSTANT

    def increment(self, t: int) -> int:
        return MAX_INSTANT

    def bucket(self, t: int) -> Interval:
        return ETERNITY

    def _floor_array(self, t: I64) -> I64:
        return np.full(t.shape, MIN_INSTANT, dtype=np.int64)

    def to_json(self) -> str:
        return "ALL"


@dataclass(frozen=True)
class NoneGranularity(Granularity):
    """One bucket per millisecond (the finest the data has)."""

    def bucket_start(self, t: int) -> int:
        return t

    def increment(self, t: int) -> int:
        return t + 1

    def _floor_array(self, t: I64) -> I64:
        return t.copy()

    def to_json(self) -> str:
        return "NONE"


@dataclass(frozen=True)
class DurationGranularity(Granularity):
    """Fixed-length buckets from an origin (UTC), ``{"type":"duration"}``."""

    duration: int
    origin: int = 0

    def __post_init__(self) -> None:
        if self.duration <= 0:
            raise InvalidTime(f"Granularity duration must be positive, got [{self.duration}]")

    def bucket_start(self, t: int) -> int:
        return t - (t - self.origin) % self.duration

    def increment(self, t: int) -> int:
        return t + self.duration

    def _floor_array(self, t: I64) -> I64:
        result: I64 = t - np.mod(t - self.origin, self.duration)
        return result

    def to_json(self) -> dict[str, Any]:
        return {"type": "duration", "duration": self.duration, "origin": format_iso(self.origin)}


@dataclass(frozen=True)
class PeriodGranularity(Granularity):
    """Buckets of an ISO period in a time zone, from an optional origin (Joda/Druid rules)."""

    period: Period
    zone: Zone = UTC_ZONE
    origin: int | None = None
    _plan: FloorPlan = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.period.is_zero:
            raise InvalidTime("zero period is not acceptable in PeriodGranularity!")
        object.__setattr__(self, "_plan", make_plan(self.period, self.zone, self.origin))

    def bucket_start(self, t: int) -> int:
        return floor_scalar(self._plan, t)

    def increment(self, t: int) -> int:
        return add_period(self.zone, t, self.period)

    def _floor_array(self, t: I64) -> I64:
        return floor_vec(self._plan, t)

    def to_json(self) -> str | dict[str, Any]:
        if self.zone.is_utc and self.origin is None:
            name = _STANDARD_NAMES.get(self.period)
            if name is not None:
                return name.upper()
        out: dict[str, Any] = {
            "type": "period",
            "period": str(self.period),
            "timeZone": self.zone.id,
        }
        if self.origin is not None:
            out["origin"] = format_iso(self.origin)
        return out


_SIMPLE_PERIODS = {
    "second": "PT1S",
    "minute": "PT1M",
    "five_minute": "PT5M",
    "ten_minute": "PT10M",
    "fifteen_minute": "PT15M",
    "thirty_minute": "PT30M",
    "hour": "PT1H",
    "six_hour": "PT6H",
    "eight_hour": "PT8H",
    "day": "P1D",
    "week": "P1W",
    "month": "P1M",
    "quarter": "P3M",
    "year": "P1Y",
}
_STANDARD_NAMES = {Period.parse(p): name for name, p in _SIMPLE_PERIODS.items()}

ALL = AllGranularity()
NONE = NoneGranularity()


def simple(name: str) -> Granularity:
    """A simple granularity by Druid's name (any case)."""
    key = name.strip().lower()
    if key == "all":
        return ALL
    if key == "none":
        return NONE
    if key in _SIMPLE_PERIODS:
        return PeriodGranularity(Period.parse(_SIMPLE_PERIODS[key]))
    raise InvalidTime(
        f"Unknown granularity [{name}]; expected one of all, none, "
        + ", ".join(_SIMPLE_PERIODS)
        + ', or a {"type":"period"|"duration"} object'
    )


def parse_granularity(value: Any) -> Granularity:
    """A granularity from its JSON (a name or an object); raises InvalidTime when malformed."""
    if isinstance(value, Granularity):
        return value
    if value is None:
        return NONE
    if isinstance(value, str):
        return simple(value)
    if not isinstance(value, dict):
        raise InvalidTime(f"Invalid granularity [{value!r}]")
    typ = str(value.get("type", "")).lower()
    if typ in ("all", "none"):
        return simple(typ)
    origin_raw = value.get("origin")
    origin = to_millis(origin_raw) if origin_raw is not None else None
    if typ == "period":
        text = value.get("period")
        if not isinstance(text, str):
            raise InvalidTime("Period granularity needs a 'period' such as 'P1D'")
        return PeriodGranularity(Period.parse(text), parse_zone(value.get("timeZone")), origin)
    if typ == "duration":
        duration = value.get("duration")
        try:
            millis = int(duration)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise InvalidTime(f"Invalid granularity duration [{duration!r}]") from exc
        return DurationGranularity(millis, origin or 0)
    raise InvalidTime(f"Unknown granularity type [{value.get('type')!r}]")
