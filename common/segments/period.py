"""ISO-8601 periods and time zones, with Joda's rules for adding a period to an instant.

Joda (and so Druid) adds a period field by field, largest first. Years, months, weeks and days
are added to the *local* wall-clock time and converted back to UTC, so ``P1D`` across a DST change
is 23 or 25 hours; hours, minutes, seconds and millis are exact durations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.segments.errors import InvalidTime
from common.segments.isotime import (
    MILLIS_PER_DAY,
    MILLIS_PER_HOUR,
    MILLIS_PER_MINUTE,
    MILLIS_PER_SECOND,
    civil_from_days,
    days_from_civil,
    days_in_month,
    parse_offset_millis,
)

_PERIOD = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)(?:[.,](?P<frac>\d{1,3}))?S)?)?"
)

# datetime's range; offsets outside it are taken at the nearest end (only ETERNITY goes there).
_DT_MIN_MS = -62135596800000
_DT_MAX_MS = 253402300799999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """An ISO-8601 period such as ``P1D``, ``PT15M``, ``P1Y2M`` or ``PT0.750S`` (non-negative)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0
    millis: int = 0

    @classmethod
    def parse(cls, text: str) -> Period:
        m = _PERIOD.fullmatch(text.strip().upper()) if isinstance(text, str) else None
        if not m or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
            raise InvalidTime(f"Invalid ISO-8601 period [{text}]")
        f = {k: int(v) for k, v in m.groupdict().items() if v is not None and k != "frac"}
        frac = m.group("frac")
        millis = int((frac + "00")[:3]) if frac else 0
        return cls(millis=millis, **f)

    def fields(self) -> tuple[int, int, int, int, int, int, int, int]:
        return (
            self.years,
            self.months,
            self.weeks,
            self.days,
            self.hours,
            self.minutes,
            self.seconds,
            self.millis,
        )

    @property
    def is_zero(self) -> bool:
        return not any(self.fields())

    @property
    def has_calendar_months(self) -> bool:
        return bool(self.years or self.months)

    @property
    def is_time_only(self) -> bool:
        """Only hours/minutes/seconds/millis: an exact duration in every zone."""
        return not (self.years or self.months or self.weeks or self.days)

    def standard_millis(self) -> int:
        """Length assuming 24-hour days and 7-day weeks (Joda's toStandardDuration)."""
        if self.has_calendar_months:
            raise InvalidTime(f"Period [{self}] has months or years and no fixed length")
        return (
            (self.weeks * 7 + self.days) * MILLIS_PER_DAY
            + self.hours * MILLIS_PER_HOUR
            + self.minutes * MILLIS_PER_MINUTE
            + self.seconds * MILLIS_PER_SECOND
            + self.millis
        )

    def __str__(self) -> str:
        if self.is_zero:
            return "PT0S"
        out = "P"
        for value, unit in ((self.years, "Y"), (self.months, "M"), (self.weeks, "W")):
            out += f"{value}{unit}" if value else ""
        out += f"{self.days}D" if self.days else ""
        if self.hours or self.minutes or self.seconds or self.millis:
            out += "T"
            out += f"{self.hours}H" if self.hours else ""
            out += f"{self.minutes}M" if self.minutes else ""
            if self.seconds or self.millis:
                out += f"{self.seconds}.{self.millis:03d}S" if self.millis else f"{self.seconds}S"
        return out


@dataclass(frozen=True)
class Zone:
    """A time zone: a tz database name (DST-aware, via zoneinfo) or a fixed UTC offset."""

    id: str
    fixed_offset: int | None

    @property
    def is_fixed(self) -> bool:
        return self.fixed_offset is not None

    @property
    def is_utc(self) -> bool:
        return self.fixed_offset == 0

    def offset(self, millis: int) -> int:
        """Milliseconds to add to UTC to get this zone's wall-clock time at ``millis``."""
        if self.fixed_offset is not None:
            return self.fixed_offset
        return _zone_offset(self.id, min(max(millis, _DT_MIN_MS), _DT_MAX_MS))

    def local_to_utc(self, local: int, hint: int | None = None) -> int:
        """The instant showing wall-clock ``local``, as Joda's ``convertLocalToUTC``.

        With a hint (the instant the local time came from) its offset is kept when still valid,
        so flooring inside a repeated DST hour stays in the right one. A local time in a DST gap
        moves forward by the gap; an ambiguous one takes the earlier instant.
        """
        if self.fixed_offset is not None:
            return local - self.fixed_offset
        if hint is not None:
            o = self.offset(hint)
            if self.offset(local - o) == o:
                return local - o
        # Offsets in force around that wall-clock time (one transition at most within a day).
        cands = {
            self.offset(local - MILLIS_PER_DAY),
            self.offset(local + MILLIS_PER_DAY),
            self.offset(local),
        }
        cands.add(self.offset(local - self.offset(local)))
        valid = [o for o in cands if self.offset(local - o) == o]
        # Ambiguous: the earlier instant (larger offset); in a gap: the offset before it.
        return local - (max(valid) if valid else min(cands))


@lru_cache(maxsize=4096)
def _zone_offset_cached(zone_id: str, hour: int) -> tuple[int, int, int]:
    """(offset at the hour's start, offset at its end, hour) to avoid zoneinfo calls per row."""
    zi = ZoneInfo(zone_id)
    start = hour * MILLIS_PER_HOUR
    a = _offset_exact(zi, start)
    b = _offset_exact(zi, min(start + MILLIS_PER_HOUR - 1, _DT_MAX_MS))
    return a, b, hour


def _offset_exact(zi: ZoneInfo, millis: int) -> int:
    off = (_EPOCH + timedelta(milliseconds=millis)).astimezone(zi).utcoffset()
    return int(off.total_seconds() * 1000) if off is not None else 0


def _zone_offset(zone_id: str, millis: int) -> int:
    a, b, _ = _zone_offset_cached(zone_id, millis // MILLIS_PER_HOUR)
    if a == b:
        return a
    return _offset_exact(ZoneInfo(zone_id), millis)


UTC_ZONE = Zone("UTC", 0)


@lru_cache(maxsize=256)
def parse_zone(text: str | None) -> Zone:
    """``UTC``, ``America/Los_Angeles``, ``+05:30``, ``Etc/GMT+8`` -> Zone (None means UTC)."""
    if text is None or text in ("UTC", "Z", "Etc/UTC", "GMT", "Etc/GMT", "utc"):
        return UTC_ZONE
    if not isinstance(text, str):
        raise InvalidTime(f"Invalid time zone [{text!r}]")
    if text[:1] in "+-":
        return Zone(text, parse_offset_millis(text))
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTime(f"The datetime zone id '{text}' is not recognised") from exc
    return Zone(text, None)


def add_months_local(local: int, months: int) -> int:
    """Add calendar months to a wall-clock time, clamping the day as Joda does (Jan 31 + 1M)."""
    days, tod = divmod(local, MILLIS_PER_DAY)
    y, m, d = civil_from_days(days)
    idx = y * 12 + (m - 1) + months
    ny, nm = divmod(idx, 12)
    nd = min(d, days_in_month(ny, nm + 1))
    return days_from_civil(ny, nm + 1, nd) * MILLIS_PER_DAY + tod


def add_period(zone: Zone, instant: int, period: Period, scalar: int = 1) -> int:
    """``chronology.add(period, instant, scalar)`` of Joda's ISO chronology in ``zone``."""
    t = instant
    if period.years or period.months:
        months = (period.years * 12 + period.months) * scalar
        t = zone.local_to_utc(add_months_local(t + zone.offset(t), months), t)
    if period.weeks or period.days:
        days = (period.weeks * 7 + period.days) * scalar
        t = zone.local_to_utc(t + zone.offset(t) + days * MILLIS_PER_DAY, t)
    exact = (
        period.hours * MILLIS_PER_HOUR
        + period.minutes * MILLIS_PER_MINUTE
        + period.seconds * MILLIS_PER_SECOND
        + period.millis
    )
    return t + exact * scalar
