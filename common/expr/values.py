"""Druid's value semantics for one row (SQL-compatible null handling, Druid's default).

Python values stand for Druid's expression types: ``int`` LONG, ``float`` DOUBLE, ``str`` STRING,
``list`` ARRAY, ``None`` null. The vectorised evaluator (``common.expr.vector``) implements the
same rules on Arrow arrays; the tests check both agree.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

#: Java's ``Long.MIN_VALUE`` and ``Long.MAX_VALUE``: the range of a LONG.
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

_NUMBER_RE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_LONG_RE = re.compile(r"^\s*[-+]?\d+\s*$")


def truth(v: Any) -> bool | None:
    """Druid's ``asBoolean`` with null kept unknown: numbers are true when > 0, strings when they
    are ``true`` in any case, arrays when their first element is true."""
    if v is None:
        return None
    if isinstance(v, str):
        return v.lower() == "true"
    if isinstance(v, list):
        return bool(v) and truth(v[0]) is True
    if isinstance(v, float) and math.isnan(v):
        return False
    return bool(v > 0)


def as_bool(v: Any) -> bool:
    """``truth`` with unknown as false (what a filter keeps)."""
    return truth(v) is True


def bool_long(b: bool | None) -> int | None:
    return None if b is None else (1 if b else 0)


def to_number(v: Any) -> int | float | None:
    """A number from a value: numbers as they are, numeric strings parsed (longs stay longs)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        if _LONG_RE.match(v):
            return int(v)
        if _NUMBER_RE.match(v):
            return float(v)
        return None
    return None


def to_double(v: Any) -> float | None:
    n = to_number(v)
    return None if n is None else float(n)


def to_long(v: Any) -> int | None:
    n = to_number(v)
    if n is None:
        return None
    if isinstance(n, float):
        return java_long(n)
    # a longer integer text: Druid reads it as a double, whose (long) cast saturates
    return n if LONG_MIN <= n <= LONG_MAX else LONG_MAX if n > 0 else LONG_MIN


def java_long(d: float) -> int:
    """Java's ``(long)`` cast of a double: toward zero, saturating beyond the longs, NaN as 0."""
    if math.isnan(d):
        return 0
    if d >= 2.0**63:
        return LONG_MAX
    if d <= -(2.0**63):
        return LONG_MIN
    return int(d)


def java_longs(f: np.ndarray) -> np.ndarray:
    """``java_long`` of each double of ``f``, as int64."""
    out = np.zeros(len(f), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        inside = (f > -(2.0**63)) & (f < 2.0**63)  # NaN is neither: it stays 0
        out[inside] = np.trunc(f[inside]).astype(np.int64)
        out[f >= 2.0**63] = LONG_MAX
        out[f <= -(2.0**63)] = LONG_MIN
    return out


def java_double(d: float) -> str:
    """``Double.toString``: ``12.0``, ``0.001``, ``1.0E7``, ``NaN``, ``Infinity``. From
    Python's shortest round-trip text (``repr``), rewritten in Java's layout."""
    if d != d:
        return "NaN"
    if d in (math.inf, -math.inf):
        return "Infinity" if d > 0 else "-Infinity"
    if d == 0:
        return "-0.0" if math.copysign(1.0, d) < 0 else "0.0"
    text = repr(d)
    neg = text[0] == "-"
    mantissa, _, exp = text[neg:].partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    significant = digits.lstrip("0")
    point = len(whole) - (len(digits) - len(significant)) + (int(exp) if exp else 0)
    significant = significant.rstrip("0") or "0"
    sign = "-" if neg else ""
    if 1e-3 <= abs(d) < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{significant}"
        head, tail = significant[:point].ljust(point, "0"), significant[point:]
        return f"{sign}{head}.{tail or '0'}"
    return f"{sign}{significant[0]}.{significant[1:] or '0'}E{point - 1}"


def to_str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return java_double(v)
    if isinstance(v, list):
        return "[" + ", ".join("null" if x is None else (to_str(x) or "") for x in v) + "]"
    return str(v)


def arith(op: str, a: Any, b: Any) -> Any:
    """``+ - * / % ^`` on two values; ``+`` with a string operand concatenates."""
    if a is None or b is None:
        return None
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        return f"{to_str(a)}{to_str(b)}"
    x = a if isinstance(a, int | float) else to_double(a)
    y = b if isinstance(b, int | float) else to_double(b)
    if x is None or y is None:
        return None
    both_long = isinstance(x, int) and isinstance(y, int)
    if op == "+":
        return _wrap(x + y) if isinstance(x + y, int) else x + y
    if op == "-":
        return _wrap(x - y) if isinstance(x - y, int) else x - y
    if op == "*":
        return _wrap(x * y) if isinstance(x * y, int) else x * y
    if op == "/":
        if both_long:
            if y == 0:
                return None
            q = abs(int(x)) // abs(int(y))
            return q if (x >= 0) == (y >= 0) else -q
        if y == 0:
            return (
                math.nan
                if x == 0 or math.isnan(x)
                else math.copysign(math.inf, x) * (math.copysign(1.0, y))
            )
        return x / y
    if op == "%":
        if both_long:
            return None if y == 0 else int(math.fmod(x, y))
        return math.nan if y == 0 else math.fmod(x, y)
    if op == "^":
        if both_long and y >= 0:
            return _wrap(int(x) ** int(y))
        try:
            return float(x) ** float(y)
        except (OverflowError, ZeroDivisionError):
            return math.inf
    raise ValueError(f"unknown operator {op}")


def _wrap(v: Any) -> Any:
    """Java long overflow wraps around."""
    return ((v + 2**63) % 2**64) - 2**63


def compare(op: str, a: Any, b: Any) -> int | None:
    """Comparison answering 1/0, null when either side is null: strings compare as strings,
    anything else numerically (a string that is not a number makes the result null)."""
    if a is None or b is None:
        return None
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a
        y: Any = b
    else:
        x = a if isinstance(a, int | float) else to_double(a)
        y = b if isinstance(b, int | float) else to_double(b)
        if x is None or y is None:
            return None
    if op == "==":
        r = x == y
    elif op == "!=":
        r = x != y
    elif op == "<":
        r = x < y
    elif op == "<=":
        r = x <= y
    elif op == ">":
        r = x > y
    else:
        r = x >= y
    return 1 if r else 0


def logical(op: str, a: Any, b: Any) -> int | None:
    """SQL three-valued ``&&``/``||`` answering 1/0/null."""
    x, y = truth(a), truth(b)
    if op == "&&":
        if x is False or y is False:
            return 0
        return None if x is None or y is None else 1
    if x is True or y is True:
        return 1
    return None if x is None or y is None else 0


def negate(v: Any) -> Any:
    n = v if isinstance(v, int | float) else to_number(v)
    return None if n is None else -n


def not_(v: Any) -> int | None:
    t = truth(v)
    return None if t is None else (0 if t else 1)
