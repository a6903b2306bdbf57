"""Row implementations of Druid's time expression functions (instants are epoch millis).

Periods, origins and time zones follow ``common.segments`` (Joda's ISO chronology rules, the same
code that buckets query granularities). Patterns for ``timestamp_format``/``timestamp_parse`` are
Joda ``DateTimeFormat`` patterns; the common letters are supported and anything else is refused.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from common.expr.parse import ExpressionError
from common.expr.registry import register
from common.expr.values import to_long
from common.segments.errors import InvalidTime
from common.segments.granularity import PeriodGranularity
from common.segments.isotime import (
    MILLIS_PER_HOUR,
    MILLIS_PER_MINUTE,
    format_iso,
    parse_local_fields,
)
from common.segments.period import Period, Zone, add_period, parse_zone

EXTRACT_UNITS = (
    "EPOCH",
    "MICROSECOND",
    "MILLISECOND",
    "SECOND",
    "MINUTE",
    "HOUR",
    "DAY",
    "DOW",
    "ISODOW",
    "DOY",
    "WEEK",
    "MONTH",
    "QUARTER",
    "YEAR",
    "ISOYEAR",
    "DECADE",
    "CENTURY",
    "MILLENNIUM",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=256)
def zone_of(text: Any) -> Zone:
    if text is None:
        return parse_zone(None)
    try:
        return parse_zone(str(text))
    except InvalidTime as exc:
        raise ExpressionError(f"unknown time zone [{text}]") from exc


@lru_cache(maxsize=256)
def period_of(text: Any) -> Period:
    try:
        p = Period.parse(str(text))
    except (InvalidTime, ValueError) as exc:
        raise ExpressionError(f"invalid period [{text}]") from exc
    if p.is_zero:
        raise ExpressionError(f"invalid period [{text}]: zero")
    return p


def origin_of(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        local, off = parse_local_fields(str(value))
    except InvalidTime as exc:
        raise ExpressionError(f"invalid origin [{value}]") from exc
    return local - (off or 0)


@lru_cache(maxsize=256)
def granularity(period: str, origin: Any, zone: str | None) -> PeriodGranularity:
    return PeriodGranularity(period_of(period), zone_of(zone), origin_of(origin))


def _floor_args(a: list[Any]) -> PeriodGranularity:
    return granularity(a[1], a[2] if len(a) > 2 else None, a[3] if len(a) > 3 else None)


def _check_floor(a: list[Any]) -> None:
    _floor_args(a)


def _floor(a: list[Any]) -> Any:
    t = to_long(a[0])
    return None if t is None else _floor_args(a).bucket_start(t)


def _ceil(a: list[Any]) -> Any:
    t = to_long(a[0])
    if t is None:
        return None
    g = _floor_args(a)
    f = g.bucket_start(t)
    return t if f == t else g.increment(f)


def _check_shift(a: list[Any]) -> None:
    period_of(a[1])
    zone_of(a[3] if len(a) > 3 else None)


def _shift(a: list[Any]) -> Any:
    t, step = to_long(a[0]), to_long(a[2])
    if t is None or step is None:
        return None
    return add_period(zone_of(a[3] if len(a) > 3 else None), t, period_of(a[1]), step)


def local_fields(t: int, zone: Zone) -> datetime:
    return _EPOCH + timedelta(milliseconds=t + zone.offset(t))


def _check_extract(a: list[Any]) -> None:
    if not isinstance(a[1], str) or a[1].upper() not in EXTRACT_UNITS:
        raise ExpressionError(
            f"timestamp_extract() unit must be one of {', '.join(EXTRACT_UNITS)}, got [{a[1]}]"
        )
    zone_of(a[2] if len(a) > 2 else None)


def extract(t: int, unit: str, zone: Zone) -> int | float:
    """Druid's ``TimestampExtractExprMacro``: Java long division (toward zero) for the epoch;
    MICROSECOND is, as in Druid, the epoch seconds / 1000; CENTURY and MILLENNIUM are DOUBLE."""
    epoch = int(t / 1000) if t < 0 else t // 1000
    if unit == "EPOCH":
        return epoch
    if unit == "MICROSECOND":
        return int(epoch / 1000) if epoch < 0 else epoch // 1000
    d = local_fields(t, zone)
    iso = d.isocalendar()
    values: dict[str, int | float] = {
        "MILLISECOND": d.microsecond // 1000,
        "SECOND": d.second,
        "MINUTE": d.minute,
        "HOUR": d.hour,
        "DAY": d.day,
        "DOW": iso.weekday,
        "ISODOW": iso.weekday,
        "DOY": d.timetuple().tm_yday,
        "WEEK": iso.week,
        "MONTH": d.month,
        "QUARTER": (d.month - 1) // 3 + 1,
        "YEAR": d.year,
        "ISOYEAR": iso.year,
        "DECADE": int(d.year / 10),
        "CENTURY": float(math.ceil(d.year / 100)),
        "MILLENNIUM": float(math.ceil(d.year / 1000)),
    }
    return values[unit]


def _extract(a: list[Any]) -> Any:
    t = to_long(a[0])
    if t is None:
        return None
    return extract(t, a[1].upper(), zone_of(a[2] if len(a) > 2 else None))


# ------------------------------------------------------------------------------------------
# Joda patterns

_JODA_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.S)
_FORMAT_LETTERS = set("yYxMdHhmsSaEZzDk")


@lru_cache(maxsize=128)
def joda_tokens(pattern: str) -> tuple[tuple[str, str], ...]:
    """(kind, text) pieces: ("lit", text) or (letter run, e.g. "yyyy")."""
    out: list[tuple[str, str]] = []
    for m in _JODA_TOKEN.finditer(pattern):
        tok = m.group()
        if tok.startswith("'"):
            out.append(("lit", tok[1:-1].replace("''", "'") if tok != "''" else "'"))
        elif tok[0].isalpha():
            if tok[0] not in _FORMAT_LETTERS:
                raise ExpressionError(f"unsupported letter [{tok[0]}] in time pattern [{pattern}]")
            out.append((tok, tok))
        else:
            out.append(("lit", tok))
    return tuple(out)


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]
_MONTHS += ["September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _offset_text(off: int, colon: bool) -> str:
    sign = "+" if off >= 0 else "-"
    h, m = divmod(abs(off) // MILLIS_PER_MINUTE, 60)
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"


def format_time(t: int, pattern: str | None, zone: Zone) -> str:
    if pattern is None:
        if zone.is_utc:
            return format_iso(t)
        return format_iso(t + zone.offset(t))[:-1] + _offset_text(zone.offset(t), True)
    d = local_fields(t, zone)
    out: list[str] = []
    for kind, text in joda_tokens(pattern):
        if kind == "lit":
            out.append(text)
            continue
        c, n = text[0], len(text)
        if c in "yYx":
            out.append(f"{d.year % 100:02d}" if n == 2 else f"{d.year:0{n}d}")
        elif c == "M":
            out.append(
                _MONTHS[d.month - 1]
                if n >= 4
                else _MONTHS[d.month - 1][:3]
                if n == 3
                else f"{d.month:0{n}d}"
            )
        elif c == "d":
            out.append(f"{d.day:0{n}d}")
        elif c == "D":
            out.append(f"{d.timetuple().tm_yday:0{n}d}")
        elif c == "H":
            out.append(f"{d.hour:0{n}d}")
        elif c == "k":
            out.append(f"{d.hour or 24:0{n}d}")
        elif c == "h":
            out.append(f"{(d.hour % 12) or 12:0{n}d}")
        elif c == "m":
            out.append(f"{d.minute:0{n}d}")
        elif c == "s":
            out.append(f"{d.second:0{n}d}")
        elif c == "S":
            out.append(f"{d.microsecond // 1000:03d}"[:n].ljust(n, "0"))
        elif c == "a":
            out.append("AM" if d.hour < 12 else "PM")
        elif c == "E":
            out.append(_DAYS[d.weekday()] if n >= 4 else _DAYS[d.weekday()][:3])
        elif c == "Z":
            off = zone.offset(t)
            out.append("Z" if off == 0 and n == 2 else _offset_text(off, n >= 2))
        else:  # z
            out.append(zone.id if not zone.is_utc else "UTC")
    return "".join(out)


@lru_cache(maxsize=128)
def _parse_regex(pattern: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts: list[str] = []
    fields: list[str] = []
    for kind, text in joda_tokens(pattern):
        if kind == "lit":
            parts.append(re.escape(text))
            continue
        c, n = text[0], len(text)
        fields.append(c if not (c == "M" and n >= 3) else "MMM")
        if c == "M" and n >= 3:
            parts.append(r"([A-Za-z]+)")
        elif c in "yYx":
            parts.append(r"([+-]?\d{1,9})" if n != 2 else r"(\d{2})")
        elif c == "S":
            parts.append(r"(\d{1,9})")
        elif c == "a":
            parts.append(r"([AaPp][Mm])")
        elif c == "E":
            parts.append(r"([A-Za-z]+)")
        elif c == "Z":
            parts.append(r"(Z|[+-]\d{2}:?\d{2})")
        elif c == "z":
            parts.append(r"(\S+)")
        else:
            parts.append(rf"(\d{{1,{max(n, 2)}}})")
    return re.compile("".join(parts) + r"\Z"), tuple(fields)


def parse_time(s: str, pattern: str | None, zone: Zone) -> int | None:
    if pattern is None:
        try:
            local, off = parse_local_fields(s)
        except InvalidTime:
            return None
        return local - off if off is not None else zone.local_to_utc(local)
    rx, fields = _parse_regex(pattern)
    m = rx.match(s.strip())
    if not m:
        return None
    v = {"y": 1970, "M": 1, "d": 1, "H": 0, "m": 0, "s": 0, "S": 0}
    pm: bool | None = None
    zone_off: int | None = None
    for f, g in zip(fields, m.groups(), strict=True):
        if f in "yYx":
            v["y"] = int(g) + (2000 if len(g) == 2 else 0)
        elif f == "MMM":
            names = [x[:3].lower() for x in _MONTHS]
            if g[:3].lower() not in names:
                return None
            v["M"] = names.index(g[:3].lower()) + 1
        elif f in ("h", "k", "H"):
            v["H"] = int(g) % 24 if f != "h" else int(g) % 12
        elif f == "a":
            pm = g.lower() == "pm"
        elif f == "S":
            v["S"] = int((g + "00")[:3])
        elif f == "Z":
            off = (
                0
                if g == "Z"
                else (1 if g[0] == "+" else -1)
                * (int(g[1:3]) * MILLIS_PER_HOUR + int(g[-2:]) * MILLIS_PER_MINUTE)
            )
        elif f in ("E", "z", "D"):
            continue
        else:
            v[f] = int(g)
    if pm:
        v["H"] += 12
    try:
        d = datetime(v["y"], v["M"], v["d"], v["H"], v["m"], v["s"], v["S"] * 1000, tzinfo=UTC)
    except ValueError:
        return None
    local = int((d - _EPOCH) / timedelta(milliseconds=1))
    return local - zone_off if zone_off is not None else zone.local_to_utc(local)


def _check_pattern_zone(a: list[Any]) -> None:
    if len(a) > 1 and a[1] is not None:
        if not isinstance(a[1], str):
            raise ExpressionError("the time pattern must be a string literal")
        joda_tokens(a[1])
    zone_of(a[2] if len(a) > 2 else None)


def _format(a: list[Any]) -> Any:
    t = to_long(a[0])
    if t is None:
        return None
    return format_time(t, a[1] if len(a) > 1 else None, zone_of(a[2] if len(a) > 2 else None))


def _parse(a: list[Any]) -> Any:
    v = a[0]
    if v is None:
        return None
    if isinstance(v, int | float):
        return int(v)
    return parse_time(str(v), a[1] if len(a) > 1 else None, zone_of(a[2] if len(a) > 2 else None))


def _unix(a: list[Any]) -> Any:
    t = _parse(a)
    return None if t is None else t // 1000


register("timestamp_floor", 2, 4, _floor, out="LONG", literals=(1, 2, 3), check=_check_floor)
register("timestamp_ceil", 2, 4, _ceil, out="LONG", literals=(1, 2, 3), check=_check_floor)
register("timestamp_shift", 3, 4, _shift, out="LONG", literals=(1, 3), check=_check_shift)
register("timestamp_extract", 2, 3, _extract, literals=(1, 2), check=_check_extract)
register(
    "timestamp_format", 1, 3, _format, out="STRING", literals=(1, 2), check=_check_pattern_zone
)
register("timestamp_parse", 1, 3, _parse, out="LONG", literals=(1, 2), check=_check_pattern_zone)
register("timestamp", 1, 2, _parse, out="LONG", literals=(1,), check=_check_pattern_zone)
register("unix_timestamp", 1, 2, _unix, out="LONG", literals=(1,), check=_check_pattern_zone)


def _subtract_months(a: list[Any]) -> Any:
    """Druid's ``subtract_months(left, right, zone)``: whole months from ``right`` to ``left``
    in the zone (Joda's ``Months.monthsBetween(right, left)``), what SQL's TIMESTAMPDIFF of a
    MONTH, QUARTER or YEAR unit counts."""
    left, right = to_long(a[0]), to_long(a[1])
    if left is None or right is None:
        return None
    zone = zone_of(a[2] if len(a) > 2 else None)
    lo, hi = local_fields(left, zone), local_fields(right, zone)
    months = (lo.year - hi.year) * 12 + (lo.month - hi.month)
    rest_l = (lo.day, lo.hour, lo.minute, lo.second, lo.microsecond)
    rest_r = (hi.day, hi.hour, hi.minute, hi.second, hi.microsecond)
    if months > 0 and rest_l < rest_r:
        months -= 1
    elif months < 0 and rest_l > rest_r:
        months += 1
    return months


register("subtract_months", 2, 3, _subtract_months, out="LONG", literals=(2,))
