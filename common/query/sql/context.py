"""Druid's SQL query context keys that change what a query means (pure).

- ``sqlCurrentTimestamp``: the instant ``CURRENT_TIMESTAMP`` (and ``CURRENT_DATE``) stand for,
  ISO-8601 text; the request's arrival time otherwise.
- ``sqlTimeZone``: the session time zone (an IANA name or a fixed offset). TIMESTAMP results
  print in it (``2000-01-01T00:00:00.000-08:00``, as Druid's ``ISODateTimeFormat.dateTime()``),
  and time floors in GROUP BY bucket in it. Other time-zone-dependent parts (timestamp literals,
  string-to-timestamp casts, ``TIME_PARSE``, ``TIME_FORMAT`` without a zone, time floors
  outside GROUP BY) are evaluated in UTC here, so with a non-UTC zone they are refused with a
  400 rather than answered wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from common.errors import PlanValidationError
from common.query.sql.functions import Unsupported, parse_timestamp_text, time_floor_of

UTC_NAMES = frozenset({"UTC", "Z", "Etc/UTC", "GMT", "Etc/GMT", "+00:00"})
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def current_timestamp(context: Mapping[str, Any], now_ms: int) -> int:
    value = context.get("sqlCurrentTimestamp")
    if value is None:
        return now_ms
    millis = parse_timestamp_text(str(value)) if isinstance(value, str) else None
    if millis is None:
        raise PlanValidationError(
            f"Invalid value [{value}] for context key [sqlCurrentTimestamp]: "
            "expected an ISO-8601 timestamp"
        )
    return millis


def time_zone(context: Mapping[str, Any]) -> str:
    """The validated ``sqlTimeZone`` ("UTC" when absent), as Arrow and Druid name it."""
    value = context.get("sqlTimeZone")
    if value is None:
        return "UTC"
    text = str(value)
    if text in UTC_NAMES:
        return "UTC"
    m = _OFFSET.match(text)
    if m:
        return f"{m.group(1)}{m.group(2)}:{m.group(3)}"
    try:
        ZoneInfo(text)
    except (ValueError, KeyError, OSError) as exc:
        raise PlanValidationError(
            f"Invalid value [{text}] for context key [sqlTimeZone]: unknown time zone"
        ) from exc
    return text


def refuse_zone_dependent(select: exp.Expression, tz: str, grouped: set[str]) -> None:
    """With a non-UTC ``sqlTimeZone``, refuse what this engine would evaluate in UTC.

    ``grouped`` holds the SQL text of the (resolved) GROUP BY expressions."""
    if tz == "UTC":
        return
    for node in select.walk():
        if not isinstance(node, exp.Expression):
            continue
        what = _zone_dependent(node, grouped)
        if what is not None:
            raise Unsupported(
                f"{what} with sqlTimeZone [{tz}] is not supported: [{node.sql()}] "
                "(only results and time floors in GROUP BY follow sqlTimeZone)"
            )


def _zone_dependent(node: exp.Expression, grouped: set[str]) -> str | None:
    if isinstance(node, exp.Cast | exp.TryCast):
        to = node.args.get("to")
        if to is not None and to.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.DATE):
            return "A timestamp literal or cast"
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        if name == "TIME_PARSE":
            return "TIME_PARSE"
        if name == "TIME_FORMAT" and len(node.expressions) < 3:
            return "TIME_FORMAT without a time zone"
    if isinstance(node, exp.Interval) and str(node.text("unit")).upper().rstrip("S") in (
        "MONTH",
        "QUARTER",
        "YEAR",
    ):
        return "Calendar INTERVAL arithmetic"
    if isinstance(node, exp.Binary | exp.Between | exp.In) and _compares_time_to_text(node):
        return "Comparing __time with text"
    try:
        floor = time_floor_of(node)
    except Unsupported:
        return None
    if floor is not None and node.sql() not in grouped:
        return "A time floor outside GROUP BY"
    return None


def _compares_time_to_text(node: exp.Expression) -> bool:
    parts = [node.this, node.args.get("expression"), node.args.get("low"), node.args.get("high")]
    parts += list(node.args.get("expressions") or [])
    has_time = any(isinstance(p, exp.Column) and p.name == "__time" for p in parts)
    has_text = any(isinstance(p, exp.Literal) and p.is_string for p in parts)
    return has_time and has_text


def floor_in_zone(spec: dict[str, Any], tz: str) -> dict[str, Any]:
    """A GROUP BY time floor's granularity in the session zone, unless it names its own."""
    if tz == "UTC" or "timeZone" in spec:
        return spec
    return {**spec, "timeZone": tz}
