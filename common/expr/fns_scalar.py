"""Row implementations of Druid's general, math and string expression functions."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np

from common.expr.parse import ExpressionError
from common.expr.registry import register
from common.expr.values import (
    compare,
    to_double,
    to_long,
    to_number,
    to_str,
    truth,
)

# ------------------------------------------------------------------------------------------
# general / conditional


def _if(a: list[Any]) -> Any:
    return a[1] if truth(a[0]) is True else a[2]


def _case_searched(a: list[Any]) -> Any:
    for i in range(0, len(a) - 1, 2):
        if truth(a[i]) is True:
            return a[i + 1]
    return a[-1] if len(a) % 2 else None


def _case_simple(a: list[Any]) -> Any:
    for i in range(1, len(a) - 1, 2):
        if compare("==", a[0], a[i]) == 1:
            return a[i + 1]
    return a[-1] if len(a) % 2 == 0 else None


def _coalesce(a: list[Any]) -> Any:
    return next((v for v in a if v is not None), None)


CAST_TYPES = ("LONG", "DOUBLE", "FLOAT", "STRING", "ARRAY<LONG>", "ARRAY<DOUBLE>", "ARRAY<STRING>")


def cast_value(v: Any, target: str) -> Any:
    if v is None:
        return None
    if target.startswith("ARRAY<"):
        inner = target[6:-1]
        items = v if isinstance(v, list) else [v]
        return [cast_value(x, inner) for x in items]
    if isinstance(v, list):
        if len(v) != 1:
            raise ExpressionError(f"cannot cast an array of {len(v)} values to {target}")
        v = v[0]
    if target == "STRING":
        return to_str(v)
    if target == "LONG":
        return to_long(v)
    return to_double(v)


def _check_cast(a: list[Any]) -> None:
    t = a[1]
    if not isinstance(t, str) or t.upper() not in CAST_TYPES:
        raise ExpressionError(f"cast() type must be one of {', '.join(CAST_TYPES)}, got [{t}]")


def _cast(a: list[Any]) -> Any:
    return cast_value(a[0], str(a[1]).upper())


def _reduce(a: list[Any], pick: Any) -> Any:
    vals = [v for v in a if v is not None]
    if not vals:
        return None
    if any(isinstance(v, str) for v in vals):
        return pick(to_str(v) for v in vals)
    if all(isinstance(v, int) for v in vals):
        return pick(vals)
    return pick(float(v) for v in vals)


register("if", 3, 3, _if)
register("case_searched", 2, None, _case_searched)
register("case_simple", 3, None, _case_simple)
register("nvl", 2, 2, lambda a: a[1] if a[0] is None else a[0])
register("coalesce", 1, None, _coalesce)
register("isnull", 1, 1, lambda a: 1 if a[0] is None else 0, out="LONG", arrays=True)
register("notnull", 1, 1, lambda a: 0 if a[0] is None else 1, out="LONG", arrays=True)
register("cast", 2, 2, _cast, literals=(1,), arrays=True, check=_check_cast)
register("greatest", 0, None, lambda a: _reduce(a, max))
register("least", 0, None, lambda a: _reduce(a, min))

# ------------------------------------------------------------------------------------------
# math: numpy ufuncs so the row and the vector path give the same floating-point answers

_UNARY_DOUBLE: dict[str, Any] = {
    "acos": np.arccos,
    "asin": np.arcsin,
    "atan": np.arctan,
    "cbrt": np.cbrt,
    "ceil": np.ceil,
    "cos": np.cos,
    "cosh": np.cosh,
    "cot": lambda x: 1.0 / np.tan(x),
    "exp": np.exp,
    "expm1": np.expm1,
    "floor": np.floor,
    "log": np.log,
    "log10": np.log10,
    "log1p": np.log1p,
    "rint": np.rint,
    "signum": np.sign,
    "sin": np.sin,
    "sinh": np.sinh,
    "sqrt": np.sqrt,
    "tan": np.tan,
    "tanh": np.tanh,
    "todegrees": np.degrees,
    "toradians": np.radians,
    "nextup": lambda x: np.nextafter(x, np.inf),
    "ulp": lambda x: np.spacing(np.abs(x)),
}

_BINARY_DOUBLE: dict[str, Any] = {
    "atan2": np.arctan2,
    "copysign": np.copysign,
    "hypot": np.hypot,
    "nextafter": np.nextafter,
    "pow": np.power,
    "remainder": lambda x, y: x - y * np.rint(x / y),
    "scalb": lambda x, y: x * np.power(2.0, np.trunc(y)),
}


def unary_double_ufunc(name: str) -> Any:
    return _UNARY_DOUBLE[name]


def binary_double_ufunc(name: str) -> Any:
    return _BINARY_DOUBLE[name]


def _np_row(f: Any, *xs: float) -> float:
    with np.errstate(all="ignore"):
        return float(f(*(np.float64(x) for x in xs)))


def _unary_row(f: Any) -> Any:
    def row(a: list[Any]) -> Any:
        x = to_double(a[0])
        return None if x is None else _np_row(f, x)

    return row


def _binary_row(f: Any) -> Any:
    def row(a: list[Any]) -> Any:
        x, y = to_double(a[0]), to_double(a[1])
        return None if x is None or y is None else _np_row(f, x, y)

    return row


for _name, _f in _UNARY_DOUBLE.items():
    register(_name, 1, 1, _unary_row(_f), out="DOUBLE")
for _name, _f in _BINARY_DOUBLE.items():
    register(_name, 2, 2, _binary_row(_f), out="DOUBLE")


def _abs(a: list[Any]) -> Any:
    v = to_number(a[0])
    return None if v is None else abs(v)


def _div(a: list[Any]) -> Any:
    x, y = to_long(a[0]), to_long(a[1])
    if x is None or y is None or y == 0:
        return None
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _minmax(pick: Any) -> Any:
    def row(a: list[Any]) -> Any:
        x, y = to_number(a[0]), to_number(a[1])
        if x is None or y is None:
            return None
        if isinstance(x, int) and isinstance(y, int):
            return pick(x, y)
        return float(pick(float(x), float(y)))

    return row


def _round(a: list[Any]) -> Any:
    x = to_number(a[0])
    places = 0 if len(a) < 2 else to_long(a[1])
    if x is None or places is None:
        return None
    if isinstance(x, int):
        if places >= 0:
            return x
        q = 10**-places
        return int(math.copysign(math.floor(abs(x) / q + 0.5) * q, x))
    if math.isnan(x):
        return 0.0
    if math.isinf(x):
        return math.copysign(1.7976931348623157e308, x)
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _safe_divide(a: list[Any]) -> Any:
    x, y = to_number(a[0]), to_number(a[1])
    if x is None or y is None or y == 0:
        return None
    if isinstance(x, int) and isinstance(y, int):
        return _div([x, y])
    return x / y


def _bitwise(op: Any) -> Any:
    def row(a: list[Any]) -> Any:
        xs = [to_long(v) for v in a]
        if any(x is None for x in xs):
            return None
        r = op(*xs)
        return ((r + 2**63) % 2**64) - 2**63

    return row


register("abs", 1, 1, _abs)
register("div", 2, 2, _div, out="LONG")
register("max", 2, 2, _minmax(max))
register("min", 2, 2, _minmax(min))
register("round", 1, 2, _round)
register("safe_divide", 2, 2, _safe_divide)
register("bitwiseand", 2, 2, _bitwise(lambda x, y: x & y), out="LONG")
register("bitwiseor", 2, 2, _bitwise(lambda x, y: x | y), out="LONG")
register("bitwisexor", 2, 2, _bitwise(lambda x, y: x ^ y), out="LONG")
register("bitwisecomplement", 1, 1, _bitwise(lambda x: ~x), out="LONG")
register("bitwiseshiftleft", 2, 2, _bitwise(lambda x, y: x << (y & 63)), out="LONG")
register("bitwiseshiftright", 2, 2, _bitwise(lambda x, y: x >> (y & 63)), out="LONG")
register("pi", 0, 0, lambda a: math.pi, out="DOUBLE")

# ------------------------------------------------------------------------------------------
# strings


def _strs(a: list[Any]) -> list[str] | None:
    out = [to_str(v) for v in a]
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def _concat(a: list[Any]) -> Any:
    parts = _strs(a)
    return None if parts is None else "".join(parts)


def _str1(f: Any) -> Any:
    def row(a: list[Any]) -> Any:
        s = to_str(a[0])
        return None if s is None else f(s)

    return row


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _substring(a: list[Any]) -> Any:
    s, i, n = to_str(a[0]), to_long(a[1]), to_long(a[2])
    if s is None or i is None:
        return None
    i = max(i, 0)
    if i >= len(s):
        return None
    return s[i:] if n is None or n < 0 else s[i : i + n]


def _left_right(right: bool) -> Any:
    def row(a: list[Any]) -> Any:
        s, n = to_str(a[0]), to_long(a[1])
        if s is None or n is None:
            return None
        if n < 0:
            raise ExpressionError(f"{'right' if right else 'left'}() length must be >= 0")
        return (s[len(s) - n :] if n else "") if right else s[:n]

    return row


def _strpos(a: list[Any]) -> Any:
    s, needle = to_str(a[0]), to_str(a[1])
    start = 0 if len(a) < 3 else to_long(a[2])
    if s is None or needle is None or start is None:
        return None
    return s.find(needle, max(start, 0))


def _trim(kind: str) -> Any:
    def row(a: list[Any]) -> Any:
        s = to_str(a[0])
        chars = " " if len(a) < 2 else to_str(a[1])
        if s is None or chars is None:
            return None
        if kind == "both":
            return s.strip(chars)
        return s.lstrip(chars) if kind == "left" else s.rstrip(chars)

    return row


def pad(s: str, n: int, chars: str, left: bool) -> str:
    if n <= 0:
        return ""
    if n <= len(s):
        return s[:n]
    if not chars:
        return s
    fill = (chars * ((n - len(s)) // len(chars) + 1))[: n - len(s)]
    return fill + s if left else s + fill


def _pad(left: bool) -> Any:
    def row(a: list[Any]) -> Any:
        s, n, chars = to_str(a[0]), to_long(a[1]), to_str(a[2])
        if s is None or n is None or chars is None:
            return None
        return pad(s, n, chars, left)

    return row


def _replace(a: list[Any]) -> Any:
    p = _strs(a)
    return None if p is None else p[0].replace(p[1], p[2])


def _repeat(a: list[Any]) -> Any:
    s, n = to_str(a[0]), to_long(a[1])
    return None if s is None or n is None else s * max(n, 0)


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"invalid regular expression [{pattern}]: {exc}") from exc


def like_regex(pattern: str, escape: str | None) -> str:
    """SQL LIKE pattern -> an anchored regex (``%`` any run, ``_`` any one character)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if escape and c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


def _check_pattern(pos: int) -> Any:
    def check(a: list[Any]) -> None:
        if not isinstance(a[pos], str):
            raise ExpressionError("the pattern must be a string literal")
        compile_regex(a[pos])

    return check


def _check_like(a: list[Any]) -> None:
    if not isinstance(a[1], str):
        raise ExpressionError("like() pattern must be a string literal")
    if len(a) > 2 and (not isinstance(a[2], str) or len(a[2]) != 1):
        raise ExpressionError("like() escape must be a one-character string literal")


def _like(a: list[Any]) -> Any:
    s = to_str(a[0])
    if s is None:
        return None
    rx = compile_regex(like_regex(a[1], a[2] if len(a) > 2 else None))
    return 1 if rx.match(s) else 0


def _regexp_extract(a: list[Any]) -> Any:
    s = to_str(a[0])
    idx = 0 if len(a) < 3 else to_long(a[2])
    if s is None or idx is None:
        return None
    m = compile_regex(a[1]).search(s)
    if m is None:
        return None
    if idx > (m.re.groups or 0):
        raise ExpressionError(f"regexp_extract() index {idx} is past the pattern's groups")
    return m.group(idx)


def _regexp_like(a: list[Any]) -> Any:
    s = to_str(a[0])
    return None if s is None else (1 if compile_regex(a[1]).search(s) else 0)


def java_replacement(rep: str) -> str:
    """Java's ``$1``/``\\$`` replacement syntax in Python's ``re`` syntax."""
    out, i = [], 0
    while i < len(rep):
        c = rep[i]
        if c == "\\" and i + 1 < len(rep):
            out.append(rep[i + 1].replace("\\", "\\\\"))
            i += 2
        elif c == "$" and i + 1 < len(rep) and rep[i + 1].isdigit():
            j = i + 1
            while j < len(rep) and rep[j].isdigit():
                j += 1
            out.append(f"\\g<{rep[i + 1 : j]}>")
            i = j
        else:
            out.append("\\\\" if c == "\\" else c)
            i += 1
    return "".join(out)


def _regexp_replace(a: list[Any]) -> Any:
    s, rep = to_str(a[0]), to_str(a[2])
    if s is None or rep is None:
        return None
    return compile_regex(a[1]).sub(java_replacement(rep), s)


def _contains(ignore_case: bool) -> Any:
    def row(a: list[Any]) -> Any:
        s = to_str(a[0])
        if s is None:
            return None
        needle = str(a[1])
        return 1 if (needle.lower() in s.lower() if ignore_case else needle in s) else 0

    return row


def _check_literal_str(a: list[Any]) -> None:
    if not isinstance(a[1], str):
        raise ExpressionError("the search string must be a string literal")


def _parse_long(a: list[Any]) -> Any:
    s = to_str(a[0])
    radix = 10 if len(a) < 2 else to_long(a[1])
    if s is None or radix is None:
        return None
    text = s[2:] if radix == 16 and s[:2].lower() == "0x" else s
    try:
        return int(text, radix)
    except ValueError:
        return None


register("concat", 0, None, _concat, out="STRING")
register("lower", 1, 1, _str1(str.lower), out="STRING")
register("upper", 1, 1, _str1(str.upper), out="STRING")
register("reverse", 1, 1, _str1(lambda s: s[::-1]), out="STRING")
register("strlen", 1, 1, _str1(utf16_len), out="LONG")
register("substring", 3, 3, _substring, out="STRING")
register("left", 2, 2, _left_right(False), out="STRING")
register("right", 2, 2, _left_right(True), out="STRING")
register("strpos", 2, 3, _strpos, out="LONG")
register("trim", 1, 2, _trim("both"), out="STRING")
register("ltrim", 1, 2, _trim("left"), out="STRING")
register("rtrim", 1, 2, _trim("right"), out="STRING")
register("lpad", 3, 3, _pad(True), out="STRING")
register("rpad", 3, 3, _pad(False), out="STRING")
register("replace", 3, 3, _replace, out="STRING")
register("repeat", 2, 2, _repeat, out="STRING")
register("like", 2, 3, _like, out="LONG", literals=(1, 2), check=_check_like)
register(
    "regexp_extract", 2, 3, _regexp_extract, out="STRING", literals=(1,), check=_check_pattern(1)
)
register("regexp_like", 2, 2, _regexp_like, out="LONG", literals=(1,), check=_check_pattern(1))
register(
    "regexp_replace", 3, 3, _regexp_replace, out="STRING", literals=(1,), check=_check_pattern(1)
)
register(
    "contains_string", 2, 2, _contains(False), out="LONG", literals=(1,), check=_check_literal_str
)
register(
    "icontains_string", 2, 2, _contains(True), out="LONG", literals=(1,), check=_check_literal_str
)
register("parse_long", 1, 2, _parse_long, out="LONG")
