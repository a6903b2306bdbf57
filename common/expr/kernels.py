"""Arrow/numpy kernels for the expression operators and the common functions.

Values are Arrow arrays or scalars. Types follow Druid: int64 is LONG, float64 DOUBLE, string
STRING, list ARRAY; LONG op LONG stays LONG (``/`` truncates, ``/ 0`` and ``% 0`` are null),
anything with a DOUBLE is DOUBLE, ``+`` with a STRING concatenates, comparisons and logical
operators answer 1/0 (null when unknown). The semantics are those of ``common.expr.values``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.expr.parse import ExpressionError
from common.expr.values import java_double, to_str

V = Any


class NoKernel(Exception):
    """The kernel cannot handle these argument types; use the row implementation."""


_NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def normalise(arr: Any) -> Any:
    t = arr.type
    if pa.types.is_dictionary(t):
        return normalise(arr.cast(t.value_type))
    if pa.types.is_timestamp(t):
        return arr.cast(pa.timestamp("ms", tz=t.tz)).cast(pa.int64())
    if pa.types.is_boolean(t) or (pa.types.is_integer(t) and t != pa.int64()):
        return arr.cast(pa.int64())
    if pa.types.is_floating(t) and t != pa.float64():
        return arr.cast(pa.float64())
    if pa.types.is_large_string(t):
        return arr.cast(pa.string())
    if pa.types.is_large_list(t):
        return arr.cast(pa.list_(t.value_type))
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        raise ExpressionError("complex (sketch) columns cannot be used in expressions")
    return arr


def kind(v: V) -> str:
    t = v.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):  # booleans are LONG 1/0 in Druid
        return "LONG"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_string(t):
        return "STRING"
    if pa.types.is_list(t):
        return "ARRAY"
    return "NULL"


def literal(value: Any, elem_type: str | None = None) -> V:
    if value is None:
        return pa.scalar(None, pa.null())
    if isinstance(value, list):
        inner = {"LONG": pa.int64(), "DOUBLE": pa.float64(), "STRING": pa.string()}.get(
            elem_type or ""
        )
        if inner is None:
            inner = pa.array(value).type if any(v is not None for v in value) else pa.string()
            if pa.types.is_null(inner):
                inner = pa.string()
        return pa.scalar(value, pa.list_(inner))
    return pa.scalar(value)


def full(v: V, n: int) -> pa.Array:
    if isinstance(v, pa.Scalar):
        typ = v.type if not pa.types.is_null(v.type) else pa.string()
        return pa.repeat(v.cast(typ) if v.type != typ else v, n) if n else pa.array([], typ)
    if isinstance(v, pa.ChunkedArray):
        return v.combine_chunks()
    return v


def refuse_array(v: V, where: str) -> None:
    if kind(v) == "ARRAY":
        raise ExpressionError(
            f"{where} cannot take a multi-value or array input; use an array/mv_ function"
        )


def to_numpy_mask(arr: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(float64 values with 0 for nulls, null mask)."""
    mask = np.asarray(pc.is_null(arr).to_numpy(zero_copy_only=False), dtype=bool)
    vals = np.asarray(pc.fill_null(arr.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False))
    return vals, mask


def nums(v: V) -> V:
    """LONG/DOUBLE stay; strings parse as doubles (null if not a number); null is DOUBLE."""
    kd = kind(v)
    if kd in ("LONG", "DOUBLE"):
        return v.cast(pa.int64()) if pa.types.is_boolean(v.type) else v
    if kd == "NULL":
        return pa.scalar(None, pa.float64()) if isinstance(v, pa.Scalar) else v.cast(pa.float64())
    if isinstance(v, pa.Scalar):
        from common.expr.values import to_double

        return pa.scalar(to_double(v.as_py()), pa.float64())
    ok = pc.fill_null(pc.match_substring_regex(v, _NUMBER_RE), False)
    return pc.if_else(ok, v, pa.scalar(None, pa.string())).cast(pa.float64())


def strs(v: V) -> V:
    """Druid's string form: longs as digits, doubles as Java prints them."""
    kd = kind(v)
    if kd == "STRING":
        return v
    if kd == "NULL":
        return pa.scalar(None, pa.string()) if isinstance(v, pa.Scalar) else v.cast(pa.string())
    if isinstance(v, pa.Scalar):
        return pa.scalar(to_str(v.as_py()), pa.string())
    if kd == "LONG":
        return pc.cast(v.cast(pa.int64()) if pa.types.is_boolean(v.type) else v, pa.string())
    uniq = pc.unique(v)
    text = pa.array([None if x is None else java_double(x) for x in uniq.to_pylist()], pa.string())
    return text.take(pc.index_in(v, uniq))


def _is_null(v: V) -> bool:
    return kind(v) == "NULL"


def _null_of(typ: Any) -> V:
    return pa.scalar(None, typ)


# ------------------------------------------------------------------------------------------
# operators


def arith(op: str, a: V, b: V) -> V:
    if op == "+" and "STRING" in (kind(a), kind(b)):
        return pc.binary_join_element_wise(strs(a), strs(b), "")
    x, y = nums(a), nums(b)
    both_long = kind(x) == "LONG" and kind(y) == "LONG"
    if op == "+":
        return pc.add(x, y)
    if op == "-":
        return pc.subtract(x, y)
    if op == "*":
        return pc.multiply(x, y)
    if op == "/":
        if both_long:
            return pc.divide(x, _zero_to_null(y))
        return _float_op(np.divide, x, y)
    if op == "%":
        if both_long:
            y2 = _zero_to_null(y)
            return pc.subtract(x, pc.multiply(pc.divide(x, y2), y2))
        return _float_op(np.fmod, x, y)
    if both_long and _all_non_negative(y):
        return pc.power(x, y)
    return _float_op(np.power, x, y)


def _zero_to_null(y: V) -> V:
    if isinstance(y, pa.Scalar):
        return _null_of(y.type) if y.as_py() == 0 else y
    return pc.if_else(pc.equal(y, 0), _null_of(y.type), y)


def _all_non_negative(y: V) -> bool:
    if isinstance(y, pa.Scalar):
        return y.as_py() is None or y.as_py() >= 0
    m = pc.min(y).as_py()
    return m is None or m >= 0


def _float_op(f: Callable[..., Any], *args: V) -> V:
    n = max((len(a) for a in args if not isinstance(a, pa.Scalar)), default=None)
    if n is None:
        vals = [a.as_py() for a in args]
        if any(v is None for v in vals):
            return _null_of(pa.float64())
        with np.errstate(all="ignore"):
            return pa.scalar(float(f(*(np.float64(v) for v in vals))), pa.float64())
    arrays: list[Any] = []
    mask = np.zeros(n, dtype=bool)
    for a in args:
        values, m = to_numpy_mask(full(a, n))
        arrays.append(values)
        mask |= m
    with np.errstate(all="ignore"):
        out = f(*arrays)
    return pa.array(np.asarray(out, dtype=np.float64), pa.float64(), mask=mask)


def truth(v: V) -> V:
    """Three-valued boolean: numbers > 0, strings equal to 'true' in any case."""
    kd = kind(v)
    if kd == "NULL":
        return _null_of(pa.bool_())
    if kd == "STRING":
        return pc.equal(pc.utf8_lower(v), "true")
    if pa.types.is_boolean(v.type):
        return v
    return pc.greater(v, 0)


def _long(b: V) -> V:
    """A boolean result as Druid's LONG 1/0; kept as an Arrow boolean inside the evaluation
    (``kind`` says LONG, ``nums``/``strs`` convert) and cast once at the end (``finish``)."""
    return b


def finish(v: pa.Array) -> pa.Array:
    return v.cast(pa.int64()) if pa.types.is_boolean(v.type) else v


def logical(op: str, a: V, b: V) -> V:
    f = pc.and_kleene if op == "&&" else pc.or_kleene
    return _long(f(truth(a), truth(b)))


def not_(v: V) -> V:
    return _long(pc.invert(truth(v)))


def negate(v: V) -> V:
    return pc.negate(nums(v))


def compare(op: str, a: V, b: V) -> V:
    if kind(a) == "STRING" and kind(b) == "STRING":
        x, y = a, b
    elif _is_null(a) or _is_null(b):
        return _null_of(pa.int64())
    else:
        x, y = nums(a), nums(b)
    f = {
        "==": pc.equal,
        "!=": pc.not_equal,
        "<": pc.less,
        "<=": pc.less_equal,
        ">": pc.greater,
        ">=": pc.greater_equal,
    }[op]
    return _long(f(x, y))


# ------------------------------------------------------------------------------------------
# row fallback


def row_map(fn: Callable[[list[Any]], Any], args: list[V], n: int, out: str | None) -> V:
    """``fn`` over the rows' Python values; with one varying argument, over its distinct values."""
    args = [a.cast(pa.int64()) if pa.types.is_boolean(a.type) else a for a in args]
    varying = [i for i, a in enumerate(args) if not isinstance(a, pa.Scalar)]
    consts = [a.as_py() if isinstance(a, pa.Scalar) else None for a in args]
    if not varying:
        return _to_arrow_scalar(fn(consts), out)
    if len(varying) == 1 and kind(args[varying[0]]) != "ARRAY":
        i = varying[0]
        uniq = pc.unique(args[i])
        results = []
        for v in uniq.to_pylist():
            consts[i] = v
            results.append(fn(list(consts)))
        return _to_arrow(results, out).take(pc.index_in(args[i], uniq))
    columns = [full(a, n).to_pylist() if not isinstance(a, pa.Scalar) else None for a in args]
    results = []
    for r in range(n):
        row = [c[r] if c is not None else consts[j] for j, c in enumerate(columns)]
        results.append(fn(row))
    return _to_arrow(results, out)


_OUT_TYPES = {
    "LONG": pa.int64(),
    "DOUBLE": pa.float64(),
    "STRING": pa.string(),
    "ARRAY<STRING>": pa.list_(pa.string()),
    "ARRAY<LONG>": pa.list_(pa.int64()),
    "ARRAY<DOUBLE>": pa.list_(pa.float64()),
}


def _to_arrow(values: list[Any], out: str | None) -> pa.Array:
    typ = _OUT_TYPES.get(out or "")
    if typ is not None:
        return pa.array(values, typ)
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([to_str(v) for v in values], pa.string())
    return normalise(arr) if not pa.types.is_null(arr.type) else arr.cast(pa.string())


to_arrow = _to_arrow


def _to_arrow_scalar(value: Any, out: str | None) -> V:
    typ = _OUT_TYPES.get(out or "")
    if value is None:
        return pa.scalar(None, typ or pa.null())
    return _to_arrow([value], out)[0]
