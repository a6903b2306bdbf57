"""Druid translations of the SQL time functions and the quoting helpers (pure); the rest of
the translator is ``druidexpr``. Time functions default to the ``sqlTimeZone`` context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from common.expr.fns_time import EXTRACT_UNITS
from common.query.sql.functions import (
    FLOOR_UNITS,
    Unsupported,
    evaluate,
    fold_timestamp,
    interval_months,
)

if TYPE_CHECKING:
    from common.query.sql.druidexpr import Translator

_NUMERIC = ("LONG", "DOUBLE")
#: The native ``timestamp_extract`` units, less MICROSECOND (not translated from SQL here).
_EXTRACT_UNITS = frozenset(EXTRACT_UNITS) - {"MICROSECOND"}


def quote_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def floor_ceil(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    name = "floor" if isinstance(node, exp.Floor) else "ceil"
    to = node.args.get("to")
    text, t = tr.translate(node.this)
    if to is not None:
        unit = to.name.upper()
        if unit not in FLOOR_UNITS or t != "TIMESTAMP":
            raise Unsupported(f"Unsupported [{node.sql()}]")
        fn = "timestamp_floor" if name == "floor" else "timestamp_ceil"
        return f"{fn}({text},'{FLOOR_UNITS[unit]}',null,{quote_string(tr.tz)})", "TIMESTAMP"
    tr._need(t in _NUMERIC, node, "a number")
    if node.args.get("decimals") is not None:
        raise Unsupported(f"[{node.sql()}] with decimals is not supported")
    return f"{name}({text})", t


def extract(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    unit = node.this.name.upper()
    return _time_extract_of(tr, node.expression, unit, None)


def _time_extract_of(
    tr: Translator, ts: exp.Expression, unit: str, tz: str | None
) -> tuple[str, str]:
    if unit not in _EXTRACT_UNITS:
        raise Unsupported(f"Unsupported TIME_EXTRACT unit [{unit}]")
    text, t = tr.translate(ts)
    if t != "TIMESTAMP":
        raise Unsupported(f"TIME_EXTRACT needs a timestamp: [{ts.sql()}]")
    zone = quote_string(tz or tr.tz)
    return f"timestamp_extract({text},'{unit}',{zone})", "LONG"


def _tz_arg(tr: Translator, args: list[exp.Expression], i: int, what: str) -> str:
    if len(args) > i and not isinstance(args[i], exp.Null):
        return quote_string(tr._lit_str(args[i], f"{what} time zone"))
    return quote_string(tr.tz)


def time_floor(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if not 2 <= len(args) <= 4:
        raise Unsupported("TIME_FLOOR takes (timestamp, period[, origin[, timezone]])")
    text, t = tr.translate(args[0])
    if t != "TIMESTAMP":
        raise Unsupported(f"TIME_FLOOR needs a timestamp: [{args[0].sql()}]")
    period = quote_string(tr._lit_str(args[1], "TIME_FLOOR period"))
    origin = "null"
    if len(args) > 2 and not isinstance(args[2], exp.Null):
        origin = str(fold_timestamp(args[2], tr.now_ms))
    return f"timestamp_floor({text},{period},{origin},{_tz_arg(tr, args, 3, 'TIME_FLOOR')})", t


def time_shift(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if not 3 <= len(args) <= 4:
        raise Unsupported("TIME_SHIFT takes (timestamp, period, step[, timezone])")
    text, t = tr.translate(args[0])
    if t != "TIMESTAMP":
        raise Unsupported(f"TIME_SHIFT needs a timestamp: [{args[0].sql()}]")
    period = quote_string(tr._lit_str(args[1], "TIME_SHIFT period"))
    step, st = tr.translate(args[2])
    if st != "LONG":
        raise Unsupported(f"TIME_SHIFT step must be an integer: [{args[2].sql()}]")
    tz = _tz_arg(tr, args, 3, "TIME_SHIFT")
    return f"timestamp_shift({text},{period},{step},{tz})", t


def time_extract(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if not 1 <= len(args) <= 3:
        raise Unsupported("TIME_EXTRACT takes (timestamp[, unit[, timezone]])")
    unit = tr._lit_str(args[1], "TIME_EXTRACT unit").upper() if len(args) > 1 else "MILLISECOND"
    tz = tr._lit_str(args[2], "TIME_EXTRACT time zone") if len(args) > 2 else None
    return _time_extract_of(tr, args[0], unit, tz)


def time_format(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if not 1 <= len(args) <= 3:
        raise Unsupported("TIME_FORMAT takes (timestamp[, pattern[, timezone]])")
    text, t = tr.translate(args[0])
    if t != "TIMESTAMP":
        raise Unsupported(f"TIME_FORMAT needs a timestamp: [{args[0].sql()}]")
    pattern = "null"
    if len(args) > 1 and not isinstance(args[1], exp.Null):
        pattern = quote_string(tr._lit_str(args[1], "TIME_FORMAT pattern"))
    return f"timestamp_format({text},{pattern},{_tz_arg(tr, args, 2, 'TIME_FORMAT')})", "STRING"


def time_parse(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if not 1 <= len(args) <= 3:
        raise Unsupported("TIME_PARSE takes (string[, pattern[, timezone]])")
    text, _ = tr.translate(args[0])
    pattern = "null"
    if len(args) > 1 and not isinstance(args[1], exp.Null):
        pattern = quote_string(tr._lit_str(args[1], "TIME_PARSE pattern"))
    tz = _tz_arg(tr, args, 2, "TIME_PARSE")
    return f"timestamp_parse({text},{pattern},{tz})", "TIMESTAMP"


def millis_to_ts(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if len(args) != 1:
        raise Unsupported("MILLIS_TO_TIMESTAMP takes one argument")
    text, t = tr.translate(args[0])
    if t != "LONG":
        raise Unsupported(f"MILLIS_TO_TIMESTAMP needs a BIGINT: [{args[0].sql()}]")
    return text, "TIMESTAMP"


def ts_to_millis(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if len(args) != 1:
        raise Unsupported("TIMESTAMP_TO_MILLIS takes one argument")
    text, t = tr.translate(args[0])
    if t != "TIMESTAMP":
        raise Unsupported(f"TIMESTAMP_TO_MILLIS needs a timestamp: [{args[0].sql()}]")
    return text, "LONG"


def interval_arithmetic(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    """``timestamp +/- INTERVAL``, as Druid's ``TimeArithmeticOperatorConversion``: a day-time
    interval adds its millis (days are 86400 s, whatever the zone); a year-month interval shifts
    the timestamp by calendar months in the session time zone."""
    text, t = tr.translate(node.this)
    if t != "TIMESTAMP":
        raise Unsupported(f"Interval arithmetic needs a timestamp: [{node.sql()}]")
    sign = 1 if isinstance(node, exp.Add) else -1
    months = interval_months(node.expression)
    if months is not None:
        return f"timestamp_shift({text},'P{months}M',{sign},{quote_string(tr.tz)})", t
    millis = evaluate(node.expression, {}, 1, tr.now_ms).as_py()
    return f"({text} {'+' if sign > 0 else '-'} {millis})", t
