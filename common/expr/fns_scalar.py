"""Row implementations of Druid's general, conditional, cast and math expression functions."""

from __future__ import annotations

import math
import struct
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
# nvl/coalesce pass arrays through (Druid's NvlFunc); a multi-value column is still a scalar
# input there (implicitly mapped), only an array value is taken whole.
register("nvl", 2, 2, lambda a: a[1] if a[0] is None else a[0], arrays=True, array_args=())
register("coalesce", 1, None, _coalesce, arrays=True, array_args=())
register("isnull", 1, 1, lambda a: 1 if a[0] is None else 0, out="LONG", arrays=True, array_args=())
register(
    "notnull", 1, 1, lambda a: 0 if a[0] is None else 1, out="LONG", arrays=True, array_args=()
)
register("cast", 2, 2, _cast, literals=(1,), arrays=True, check=_check_cast, array_args=())
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


def _get_exponent(a: list[Any]) -> Any:
    """Java's ``Math.getExponent(double)``: the unbiased binary exponent."""
    x = to_double(a[0])
    if x is None:
        return None
    if math.isnan(x) or math.isinf(x):
        return 1024
    if x == 0 or abs(x) < 2.2250738585072014e-308:  # zero and subnormals
        return -1023
    return math.frexp(x)[1] - 1


def _double_to_long_bits(a: list[Any]) -> Any:
    x = to_double(a[0])
    if x is None:
        return None
    if math.isnan(x):
        x = math.nan  # Java's canonical NaN
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _long_bits_to_double(a: list[Any]) -> Any:
    x = to_long(a[0])
    return None if x is None else struct.unpack("<d", struct.pack("<q", x))[0]


register("getexponent", 1, 1, _get_exponent, out="LONG")
register("bitwiseconvertdoubletolongbits", 1, 1, _double_to_long_bits, out="LONG")
register("bitwiseconvertlongbitstodouble", 1, 1, _long_bits_to_double, out="DOUBLE")
