"""ISO-8601 instants as int milliseconds since the epoch (UTC), parsed and printed as Druid does.

Druid (Joda) prints instants as ``2024-01-01T00:00:00.000Z``; years outside 0..9999 are printed
with as many digits as they need and a sign when negative (``-146136543-09-08T08:23:32.096Z``),
which ``datetime`` cannot represent, so the calendar arithmetic here is done on plain integers
(proleptic Gregorian, as Joda's ISO chronology).

Parsing accepts what Druid's interval parser accepts in practice: a date (``2024``, ``2024-01``,
``2024-01-02``), optionally ``T`` and a time (``HH``, ``HH:mm``, ``HH:mm:ss``, ``HH:mm:ss.fff``,
basic forms without ``:`` too), and an offset (``Z``, ``+HH``, ``+HH:mm``, ``+HHmm``). A missing
offset means UTC, as Druid's default time zone.
"""

from __future__ import annotations

import re

from common.segments.errors import InvalidTime

MILLIS_PER_SECOND = 1000
MILLIS_PER_MINUTE = 60 * MILLIS_PER_SECOND
MILLIS_PER_HOUR = 60 * MILLIS_PER_MINUTE
MILLIS_PER_DAY = 24 * MILLIS_PER_HOUR

# Joda's JodaUtils.MIN_INSTANT / MAX_INSTANT (Long.MIN_VALUE / 2, Long.MAX_VALUE / 2).
MIN_INSTANT = -(2**63) // 2
MAX_INSTANT = (2**63 - 1) // 2

_DATETIME = re.compile(
    r"""
    (?P<year>[+-]?\d{4,10})
    (?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?
    (?:[T ]
        (?P<hour>\d{2})
        (?::?(?P<minute>\d{2})
            (?::?(?P<second>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?
        )?
    )?
    (?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?
    """,
    re.VERBOSE,
)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number since 1970-01-01."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_offset_millis(text: str) -> int:
    """``Z``, ``+05:30``, ``-08``, ``+0530`` -> offset in milliseconds."""
    if text in ("Z", "z"):
        return 0
    m = re.fullmatch(r"([+-])(\d{2})(?::?(\d{2}))?", text)
    if not m:
        raise InvalidTime(f"Invalid time zone offset [{text}]")
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 23 or minutes > 59:
        raise InvalidTime(f"Invalid time zone offset [{text}]")
    sign = -1 if m.group(1) == "-" else 1
    return sign * (hours * MILLIS_PER_HOUR + minutes * MILLIS_PER_MINUTE)


def parse_local_fields(text: str) -> tuple[int, int | None]:
    """Parse an ISO datetime into (wall-clock millis as if UTC, explicit offset or None)."""
    m = _DATETIME.fullmatch(text.strip())
    if not m:
        raise InvalidTime(f"Invalid ISO-8601 datetime [{text}]")
    year = int(m.group("year"))
    month = int(m.group("month") or 1)
    day = int(m.group("day") or 1)
    hour = int(m.group("hour") or 0)
    minute = int(m.group("minute") or 0)
    second = int(m.group("second") or 0)
    frac = m.group("frac") or ""
    millis = int((frac + "00")[:3]) if frac else 0
    if not (1 <= month <= 12 and 1 <= day <= days_in_month(year, month)):
        raise InvalidTime(f"Invalid ISO-8601 datetime [{text}]: no such date")
    # Joda accepts 24:00 only as a period end; reject it like Joda's default parser does.
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidTime(f"Invalid ISO-8601 datetime [{text}]: no such time")
    local = (
        days_from_civil(year, month, day) * MILLIS_PER_DAY
        + hour * MILLIS_PER_HOUR
        + minute * MILLIS_PER_MINUTE
        + second * MILLIS_PER_SECOND
        + millis
    )
    offset = m.group("offset")
    return local, (parse_offset_millis(offset) if offset else None)


def parse_iso(text: str) -> int:
    """An ISO-8601 datetime -> milliseconds since the epoch (no offset means UTC)."""
    if not isinstance(text, str):
        raise InvalidTime(f"Invalid ISO-8601 datetime [{text!r}]: not a string")
    local, offset = parse_local_fields(text)
    return local - (offset or 0)


def format_iso(millis: int) -> str:
    """Milliseconds since the epoch -> ``YYYY-MM-DDTHH:mm:ss.SSSZ`` as Druid prints it."""
    days, rem = divmod(int(millis), MILLIS_PER_DAY)
    year, month, day = civil_from_days(days)
    hour, rem = divmod(rem, MILLIS_PER_HOUR)
    minute, rem = divmod(rem, MILLIS_PER_MINUTE)
    second, ms = divmod(rem, MILLIS_PER_SECOND)
    ytext = f"-{-year:04d}" if year < 0 else f"{year:04d}"
    return f"{ytext}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}Z"


def to_millis(value: int | str) -> int:
    """Accept Druid's two spellings of an instant: epoch millis or an ISO string."""
    if isinstance(value, bool):
        raise InvalidTime(f"Invalid instant [{value!r}]")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text) and len(text.lstrip("-")) > 8:
            return int(text)
        return parse_iso(text)
    raise InvalidTime(f"Invalid instant [{value!r}]")
