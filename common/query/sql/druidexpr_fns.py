"""Druid translations of the SQL scalar functions of ``querying/sql-scalar.md`` that map onto
one Druid expression function each (pure): Druid's ``DruidOperatorTable`` conversions
(``DirectOperatorConversion`` and friends: trigonometry, bitwise, TRUNCATE, SAFE_DIVIDE, the
human-readable formats, TEXTCAT, CONTAINS_STRING, STRING_FORMAT, the IP address functions,
TIME_CEIL, TIME_IN_INTERVAL, TIMESTAMPADD/TIMESTAMPDIFF, DATE_TRUNC, CURRENT_DATE, IS [NOT]
TRUE/FALSE, IS [NOT] DISTINCT FROM). The rest of the translator is ``druidexpr``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlglot import exp

from common.query.sql.druidexpr_time import quote_string
from common.query.sql.functions import FLOOR_UNITS, Unsupported, fold_timestamp
from common.segments.intervals import Interval

if TYPE_CHECKING:
    from common.query.sql.druidexpr import Translator

Handler = Callable[["Translator", exp.Expression], tuple[str, str]]
AnonHandler = Callable[["Translator", list[exp.Expression]], tuple[str, str]]
_NUMERIC = ("LONG", "DOUBLE")
_DAY_MS = 86_400_000
#: SQL time units of fixed length (TIMESTAMPADD/TIMESTAMPDIFF), in millis.
_FIXED_MS = {
    "MILLISECOND": 1,
    "SECOND": 1000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": _DAY_MS,
    "WEEK": 7 * _DAY_MS,
}
_MONTHS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}
#: DATE_TRUNC units (Druid's ``DateTruncOperatorConversion``) as periods.
_TRUNC_PERIODS = {
    "MILLISECOND": "PT0.001S",
    "MILLISECONDS": "PT0.001S",
    **FLOOR_UNITS,
    "DECADE": "P10Y",
    "CENTURY": "P100Y",
    "MILLENNIUM": "P1000Y",
}


def _args(name: str, args: list[exp.Expression], lo: int, hi: int) -> None:
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise Unsupported(f"{name} takes {want} arguments, got {len(args)}")


def _fn(name: str, out: str, n: tuple[int, int], numeric: bool = False) -> AnonHandler:
    """A Druid function taking the same arguments as the SQL one."""

    def fn(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
        _args(name.upper(), args, *n)
        done = [tr.translate(a) for a in args]
        if numeric:
            for (_, t), a in zip(done, args, strict=True):
                tr._need(t in (*_NUMERIC, "NULL"), a, "a number")
        return f"{name}({','.join(text for text, _ in done)})", out

    return fn


def _unary(name: str, out: str = "DOUBLE") -> Handler:
    def fn(tr: Translator, node: exp.Expression) -> tuple[str, str]:
        return _fn(name, out, (1, 1), numeric=True)(tr, [node.this])

    return fn


def _binary(name: str, out: str = "DOUBLE") -> Handler:
    def fn(tr: Translator, node: exp.Expression) -> tuple[str, str]:
        return _fn(name, out, (2, 2), numeric=True)(tr, [node.this, node.expression])

    return fn


# ---- numeric


def _truncate(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    text, t = tr.translate(node.this)
    tr._need(t in _NUMERIC, node, "a number")
    digits = node.args.get("decimals")
    factor = "1" if digits is None else repr(10.0 ** tr._lit_int(digits, "TRUNCATE digits"))
    return f"(cast(cast({text} * {factor},'long'),'double') / {factor})", t


def _safe_divide(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    (a, ta), (b, tb) = tr.translate(node.this), tr.translate(node.expression)
    for t, arg in ((ta, node.this), (tb, node.expression)):
        tr._need(t in (*_NUMERIC, "NULL"), arg, "a number")
    return f"safe_divide({a},{b})", "DOUBLE" if "DOUBLE" in (ta, tb) else "LONG"


def _human(name: str) -> AnonHandler:
    def fn(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
        _args(name.upper(), args, 1, 2)
        value, t = tr.translate(args[0])
        tr._need(t in (*_NUMERIC, "NULL"), args[0], "a number")
        tail = f",{tr._lit_int(args[1], name.upper() + ' precision')}" if len(args) > 1 else ""
        return f"{name}({value}{tail})", "STRING"

    return fn


# ---- strings


def _pad(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    name = "lpad" if node.args.get("is_left") else "rpad"
    fill = node.args.get("fill_pattern")
    args = [node.this, node.expression]
    text = [tr.translate(a)[0] for a in args]
    chars = tr.translate(fill)[0] if fill is not None else "' '"
    return f"{name}({text[0]},{text[1]},{chars})", "STRING"


def _repeat(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    return _fn("repeat", "STRING", (2, 2))(tr, [node.this, node.args["times"]])


def _reverse(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    return _fn("reverse", "STRING", (1, 1))(tr, [node.this])


def _regexp_like(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    s = tr.translate(node.this)[0]
    pattern = quote_string(tr._lit_str(node.expression, "REGEXP_LIKE pattern"))
    return f"regexp_like({s},{pattern})", "BOOLEAN"


def _regexp_replace(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    s = tr.translate(node.this)[0]
    pattern = quote_string(tr._lit_str(node.expression, "REGEXP_REPLACE pattern"))
    repl = tr.translate(node.args["replacement"])[0]
    return f"regexp_replace({s},{pattern},{repl})", "STRING"


def _contains(name: str) -> AnonHandler:
    def fn(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
        _args(name.upper(), args, 2, 2)
        needle = quote_string(tr._lit_str(args[1], f"{name.upper()} search string"))
        return f"{name}({tr.translate(args[0])[0]},{needle})", "BOOLEAN"

    return fn


def _btrim(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    _args("BTRIM", args, 1, 2)
    chars = quote_string(tr._lit_str(args[1], "BTRIM characters")) if len(args) > 1 else "' '"
    return f"trim({tr.translate(args[0])[0]},{chars})", "STRING"


def _string_format(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if not args:
        raise Unsupported("STRING_FORMAT takes (pattern[, args...])")
    return tr._call("format", args, "STRING")


# ---- date and time


def _unit(node: exp.Expression, what: str) -> str:
    if isinstance(node, exp.Var):
        return node.name.upper()
    raise Unsupported(f"{what} needs a time unit, got [{node.sql()}]")


def _timestamp(tr: Translator, node: exp.Expression, what: str) -> str:
    text, t = tr.translate(node)
    if t != "TIMESTAMP":
        raise Unsupported(f"{what} needs a timestamp: [{node.sql()}]")
    return text


def _time_ceil(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    _args("TIME_CEIL", args, 2, 4)
    text = _timestamp(tr, args[0], "TIME_CEIL")
    period = quote_string(tr._lit_str(args[1], "TIME_CEIL period"))
    origin = "null"
    if len(args) > 2 and not isinstance(args[2], exp.Null):
        origin = str(fold_timestamp(args[2], tr.now_ms))
    zone = tr.tz
    if len(args) > 3 and not isinstance(args[3], exp.Null):
        zone = tr._lit_str(args[3], "TIME_CEIL time zone")
    return f"timestamp_ceil({text},{period},{origin},{quote_string(zone)})", "TIMESTAMP"


def _time_in_interval(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    _args("TIME_IN_INTERVAL", args, 2, 2)
    text = _timestamp(tr, args[0], "TIME_IN_INTERVAL")
    raw = tr._lit_str(args[1], "TIME_IN_INTERVAL interval")
    try:
        interval = Interval.parse(raw)
    except ValueError as exc:
        raise Unsupported(f"TIME_IN_INTERVAL: invalid interval [{raw}]") from exc
    return f"(({text} >= {interval.start}) && ({text} < {interval.end}))", "BOOLEAN"


def _timestampadd(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    _args("TIMESTAMPADD", args, 3, 3)
    unit = _unit(args[0], "TIMESTAMPADD")
    count, ct = tr.translate(args[1])
    tr._need(ct == "LONG", args[1], "an integer count")
    text = _timestamp(tr, args[2], "TIMESTAMPADD")
    if unit in _FIXED_MS:
        return f"({text} + ({count} * {_FIXED_MS[unit]}))", "TIMESTAMP"
    if unit in _MONTHS:
        months = tr._lit_int(args[1], "TIMESTAMPADD count") * _MONTHS[unit]
        return f"timestamp_shift({text},'P{months}M',1,{quote_string(tr.tz)})", "TIMESTAMP"
    raise Unsupported(f"TIMESTAMPADD unit [{unit}] is not supported")


def _timestampdiff(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    _args("TIMESTAMPDIFF", args, 3, 3)
    unit = _unit(args[0], "TIMESTAMPDIFF")
    t1 = _timestamp(tr, args[1], "TIMESTAMPDIFF")
    t2 = _timestamp(tr, args[2], "TIMESTAMPDIFF")
    if unit in _FIXED_MS:
        return f"div(({t2} - {t1}),{_FIXED_MS[unit]})", "LONG"
    if unit in _MONTHS:
        return f"div(subtract_months({t2},{t1},{quote_string(tr.tz)}),{_MONTHS[unit]})", "LONG"
    raise Unsupported(f"TIMESTAMPDIFF unit [{unit}] is not supported")


def _date_trunc(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    unit = str(node.args["unit"].name).upper()
    period = _TRUNC_PERIODS.get(unit)
    if period is None:
        raise Unsupported(f"DATE_TRUNC unit [{unit}] is not supported")
    text = _timestamp(tr, node.this, "DATE_TRUNC")
    return f"timestamp_floor({text},'{period}',null,{quote_string(tr.tz)})", "TIMESTAMP"


def _current_date(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    if tr.now_ms is None:
        raise Unsupported("CURRENT_DATE is not available here")
    return f"timestamp_floor({tr.now_ms},'P1D',null,{quote_string(tr.tz)})", "TIMESTAMP"


# ---- operators


def _is(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    test = node.expression
    if not isinstance(test, exp.Boolean):
        raise Unsupported(f"Unsupported IS test [{node.sql()}]")
    name = "istrue" if test.this else "isfalse"
    return f"{name}({tr.translate(node.this)[0]})", "BOOLEAN"


def _distinct(name: str) -> Handler:
    def fn(tr: Translator, node: exp.Expression) -> tuple[str, str]:
        a, b = tr.translate(node.this)[0], tr.translate(node.expression)[0]
        return f"{name}({a},{b})", "BOOLEAN"

    return fn


def _pi(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    return "pi()", "DOUBLE"


NODE_FNS: dict[type[exp.Expression], Handler] = {
    exp.Pi: _pi,
    exp.Acos: _unary("acos"),
    exp.Asin: _unary("asin"),
    exp.Atan: _unary("atan"),
    exp.Cos: _unary("cos"),
    exp.Cot: _unary("cot"),
    exp.Sin: _unary("sin"),
    exp.Tan: _unary("tan"),
    exp.Degrees: _unary("todegrees"),
    exp.Radians: _unary("toradians"),
    exp.Atan2: _binary("atan2"),
    exp.Trunc: _truncate,
    exp.SafeDivide: _safe_divide,
    exp.Pad: _pad,
    exp.Repeat: _repeat,
    exp.Reverse: _reverse,
    exp.RegexpLike: _regexp_like,
    exp.RegexpReplace: _regexp_replace,
    exp.DateTrunc: _date_trunc,
    exp.CurrentDate: _current_date,
    exp.Is: _is,
    exp.NullSafeEQ: _distinct("notdistinctfrom"),
    exp.NullSafeNEQ: _distinct("isdistinctfrom"),
}
ANON_FNS: dict[str, AnonHandler] = {
    "DIV": _fn("div", "LONG", (2, 2), numeric=True),
    "BITWISE_AND": _fn("bitwiseand", "LONG", (2, 2), numeric=True),
    "BITWISE_OR": _fn("bitwiseor", "LONG", (2, 2), numeric=True),
    "BITWISE_XOR": _fn("bitwisexor", "LONG", (2, 2), numeric=True),
    "BITWISE_COMPLEMENT": _fn("bitwisecomplement", "LONG", (1, 1), numeric=True),
    "BITWISE_SHIFT_LEFT": _fn("bitwiseshiftleft", "LONG", (2, 2), numeric=True),
    "BITWISE_SHIFT_RIGHT": _fn("bitwiseshiftright", "LONG", (2, 2), numeric=True),
    "BITWISE_CONVERT_DOUBLE_TO_LONG_BITS": _fn(
        "bitwiseconvertdoubletolongbits", "LONG", (1, 1), numeric=True
    ),
    "BITWISE_CONVERT_LONG_BITS_TO_DOUBLE": _fn(
        "bitwiseconvertlongbitstodouble", "DOUBLE", (1, 1), numeric=True
    ),
    "HUMAN_READABLE_BINARY_BYTE_FORMAT": _human("human_readable_binary_byte_format"),
    "HUMAN_READABLE_DECIMAL_BYTE_FORMAT": _human("human_readable_decimal_byte_format"),
    "HUMAN_READABLE_DECIMAL_FORMAT": _human("human_readable_decimal_format"),
    "TEXTCAT": _fn("concat", "STRING", (2, 2)),
    "STRLEN": _fn("strlen", "LONG", (1, 1)),
    "CONTAINS_STRING": _contains("contains_string"),
    "ICONTAINS_STRING": _contains("icontains_string"),
    "DECODE_BASE64_UTF8": _fn("decode_base64_utf8", "STRING", (1, 1)),
    "PARSE_LONG": _fn("parse_long", "LONG", (1, 2)),
    "STRING_FORMAT": _string_format,
    "BTRIM": _btrim,
    "TIME_CEIL": _time_ceil,
    "TIME_IN_INTERVAL": _time_in_interval,
    "TIMESTAMPADD": _timestampadd,
    "TIMESTAMPDIFF": _timestampdiff,
    "IPV4_MATCH": _fn("ipv4_match", "BOOLEAN", (2, 2)),
    "IPV4_PARSE": _fn("ipv4_parse", "LONG", (1, 1)),
    "IPV4_STRINGIFY": _fn("ipv4_stringify", "STRING", (1, 1)),
    "IPV6_MATCH": _fn("ipv6_match", "BOOLEAN", (2, 2)),
}
