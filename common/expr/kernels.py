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

from common.expr import fns_scalar, fns_time
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


def _to_arrow_scalar(value: Any, out: str | None) -> V:
    typ = _OUT_TYPES.get(out or "")
    if value is None:
        return pa.scalar(None, typ or pa.null())
    return _to_arrow([value], out)[0]


# ------------------------------------------------------------------------------------------
# function kernels: (args, n) -> value, or raise NoKernel to use the row implementation


def _all_null(v: V) -> bool:
    if isinstance(v, pa.Scalar):
        return not v.is_valid
    return bool(v.null_count == len(v))


def unify(vals: list[V]) -> list[V]:
    """One Arrow type for values that go into one column (if/case/coalesce branches); an
    all-null value takes the type of the others."""
    kinds = {kind(v) for v in vals if not _all_null(v)} - {"NULL"}
    if not kinds:
        return vals
    if kinds == {"LONG"}:
        target = pa.int64()
    elif kinds <= {"LONG", "DOUBLE"}:
        target = pa.float64()
    elif kinds == {"STRING"}:
        target = pa.string()
    elif "ARRAY" in kinds:
        raise NoKernel
    else:
        return [v.cast(pa.string()) if _all_null(v) else strs(v) for v in vals]
    return [v.cast(target) if v.type != target else v for v in vals]


def _if(args: list[V], n: int) -> V:
    cond = pc.fill_null(truth(args[0]), False)
    then, other = unify([args[1], args[2]])
    return pc.if_else(cond, then, other)


def _case_searched(args: list[V], n: int) -> V:
    results = unify([*args[1::2], *([args[-1]] if len(args) % 2 else [])])
    default = results[-1] if len(args) % 2 else _null_of(_first_type(results))
    out = default
    pairs = list(zip(args[0::2], results, strict=False))[: len(args) // 2]
    for cond, res in reversed(pairs):
        out = pc.if_else(pc.fill_null(truth(cond), False), res, out)
    return out


def _case_simple(args: list[V], n: int) -> V:
    subject = args[0]
    rest = args[1:]
    conds = [compare("==", subject, v) for v in rest[0::2]][: len(rest) // 2]
    results = unify([*rest[1::2], *([rest[-1]] if len(rest) % 2 else [])])
    default = results[-1] if len(rest) % 2 else _null_of(_first_type(results))
    out = default
    for cond, res in reversed(list(zip(conds, results, strict=False))):
        out = pc.if_else(pc.fill_null(truth(cond), False), res, out)
    return out


def _first_type(vals: list[V]) -> Any:
    for v in vals:
        if not pa.types.is_null(v.type):
            return v.type
    return pa.string()


def _coalesce(args: list[V], n: int) -> V:
    vals = [v for v in unify(args) if not _is_null(v)]
    if not vals:
        return args[0]
    return vals[0] if len(vals) == 1 else pc.coalesce(*vals)


def _isnull(args: list[V], n: int) -> V:
    return _long(pc.is_null(args[0])) if not _is_null(args[0]) else pa.scalar(1, pa.int64())


def _notnull(args: list[V], n: int) -> V:
    return _long(pc.is_valid(args[0])) if not _is_null(args[0]) else pa.scalar(0, pa.int64())


def _cast(args: list[V], n: int) -> V:
    target = str(args[1].as_py()).upper()
    v = args[0]
    if target.startswith("ARRAY") or kind(v) == "ARRAY":
        raise NoKernel
    if target == "STRING":
        return strs(v)
    x = nums(v)
    if target in ("DOUBLE", "FLOAT"):
        return x.cast(pa.float64())
    if kind(x) == "LONG":
        return x
    vals, mask = to_numpy_mask(full(x, n))
    with np.errstate(all="ignore"):
        clipped = np.nan_to_num(np.trunc(vals), nan=0.0, posinf=2.0**63 - 1024, neginf=-(2.0**63))
    out = pa.array(clipped.astype(np.int64), pa.int64(), mask=mask)
    return out[0] if isinstance(x, pa.Scalar) else out


def _concat(args: list[V], n: int) -> V:
    if not args:
        return pa.scalar("", pa.string())
    if len(args) == 1:
        return strs(args[0])
    return pc.binary_join_element_wise(*[strs(a) for a in args], "")


def _str_unary(f: Callable[[V], V]) -> Callable[[list[V], int], V]:
    return lambda args, n: f(strs(args[0]))


def _strlen(args: list[V], n: int) -> V:
    s = strs(args[0])
    astral = pc.count_substring_regex(s, r"[\x{10000}-\x{10FFFF}]")
    return _long(pc.add(pc.utf8_length(s), astral))


def _scalar_int(v: V) -> int | None:
    if not isinstance(v, pa.Scalar) or kind(v) != "LONG":
        raise NoKernel
    val = v.as_py()
    return None if val is None else int(val)


def _substring(args: list[V], n: int) -> V:
    s = strs(args[0])
    start, length = _scalar_int(args[1]), _scalar_int(args[2])
    if start is None:
        return _null_of(pa.string())
    start = max(start, 0)
    stop = None if length is None or length < 0 else start + length
    sliced = (
        pc.utf8_slice_codeunits(s, start, stop)
        if stop is not None
        else pc.utf8_slice_codeunits(s, start)
    )
    return pc.if_else(pc.less_equal(pc.utf8_length(s), start), _null_of(pa.string()), sliced)


def _scalar_str(v: V) -> str:
    if not isinstance(v, pa.Scalar) or kind(v) != "STRING" or v.as_py() is None:
        raise NoKernel
    return str(v.as_py())


def _trim(f: Callable[..., V]) -> Callable[[list[V], int], V]:
    def kernel(args: list[V], n: int) -> V:
        chars = " " if len(args) < 2 else _scalar_str(args[1])
        return f(strs(args[0]), characters=chars)

    return kernel


def _replace(args: list[V], n: int) -> V:
    pattern, rep = _scalar_str(args[1]), _scalar_str(args[2])
    if not pattern:
        raise NoKernel
    return pc.replace_substring(strs(args[0]), pattern=pattern, replacement=rep)


def _like(args: list[V], n: int) -> V:
    pattern = _scalar_str(args[1])
    if len(args) > 2 and _scalar_str(args[2]) != "\\":
        raise NoKernel
    return _long(pc.match_like(strs(args[0]), pattern))


def _regexp_like(args: list[V], n: int) -> V:
    pattern = _scalar_str(args[1])
    fns_scalar.compile_regex(pattern)
    try:
        return _long(pc.match_substring_regex(strs(args[0]), pattern))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise NoKernel from exc


def _contains(ignore_case: bool) -> Callable[[list[V], int], V]:
    def kernel(args: list[V], n: int) -> V:
        needle = _scalar_str(args[1])
        return _long(pc.match_substring(strs(args[0]), needle, ignore_case=ignore_case))

    return kernel


def _abs(args: list[V], n: int) -> V:
    return pc.abs(nums(args[0]))


def _math1(name: str) -> Callable[[list[V], int], V]:
    f = fns_scalar.unary_double_ufunc(name)
    return lambda args, n: _float_op(f, nums(args[0]))


def _math2(name: str) -> Callable[[list[V], int], V]:
    f = fns_scalar.binary_double_ufunc(name)
    return lambda args, n: _float_op(f, nums(args[0]), nums(args[1]))


def _minmax(pick: Callable[..., V]) -> Callable[[list[V], int], V]:
    def kernel(args: list[V], n: int) -> V:
        x, y = nums(args[0]), nums(args[1])
        if _is_null(x) or _is_null(y):
            return _null_of(pa.float64())
        x, y = unify([x, y])
        return pick(x, y, skip_nulls=False)

    return kernel


def _div(args: list[V], n: int) -> V:
    x, y = nums(args[0]), nums(args[1])
    if kind(x) != "LONG" or kind(y) != "LONG":
        raise NoKernel
    return pc.divide(x, _zero_to_null(y))


def _time_input(v: V) -> V:
    x = nums(v)
    if kind(x) != "LONG":
        raise NoKernel
    return x


def _floor(args: list[V], n: int) -> V:
    t = _time_input(args[0])
    g = fns_time._floor_args([None, *(a.as_py() for a in args[1:])])
    if isinstance(t, pa.Scalar):
        raise NoKernel
    return g.bucket_starts(t)


def _extract(args: list[V], n: int) -> V:
    t = _time_input(args[0])
    if isinstance(t, pa.Scalar):
        raise NoKernel
    unit = str(args[1].as_py()).upper()
    zone = fns_time.zone_of(args[2].as_py() if len(args) > 2 else None)
    if unit == "EPOCH":
        return pc.floor(pc.divide(t.cast(pa.float64()), 1000.0)).cast(pa.int64())
    from common.segments.timefloor import offsets_vec

    vals, mask = to_numpy_mask(t)
    raw = vals.astype(np.int64)
    local = raw + offsets_vec(zone, raw)
    ts = pa.array(local, pa.timestamp("ms"), mask=mask)
    simple: dict[str, Callable[[V], V]] = {
        "SECOND": pc.second,
        "MINUTE": pc.minute,
        "HOUR": pc.hour,
        "DAY": pc.day,
        "DOY": pc.day_of_year,
        "WEEK": pc.iso_week,
        "MONTH": pc.month,
        "QUARTER": pc.quarter,
        "YEAR": pc.year,
        "ISOYEAR": pc.iso_year,
    }
    if unit in simple:
        return simple[unit](ts).cast(pa.int64())
    if unit in ("DOW", "ISODOW"):
        return pc.day_of_week(ts, count_from_zero=False, week_start=1).cast(pa.int64())
    raise NoKernel


def _array_length(args: list[V], n: int) -> V:
    if kind(args[0]) != "ARRAY" or isinstance(args[0], pa.Scalar):
        raise NoKernel
    return pc.list_value_length(args[0]).cast(pa.int64())


KERNELS: dict[str, Callable[[list[V], int], V]] = {
    "if": _if,
    "case_searched": _case_searched,
    "case_simple": _case_simple,
    "nvl": _coalesce,
    "coalesce": _coalesce,
    "isnull": _isnull,
    "notnull": _notnull,
    "cast": _cast,
    "concat": _concat,
    "lower": _str_unary(pc.utf8_lower),
    "upper": _str_unary(pc.utf8_upper),
    "reverse": _str_unary(pc.utf8_reverse),
    "strlen": _strlen,
    "substring": _substring,
    "trim": _trim(pc.utf8_trim),
    "ltrim": _trim(pc.utf8_ltrim),
    "rtrim": _trim(pc.utf8_rtrim),
    "replace": _replace,
    "like": _like,
    "regexp_like": _regexp_like,
    "contains_string": _contains(False),
    "icontains_string": _contains(True),
    "abs": _abs,
    "div": _div,
    "max": _minmax(pc.max_element_wise),
    "min": _minmax(pc.min_element_wise),
    "timestamp_floor": _floor,
    "timestamp_extract": _extract,
    "array_length": _array_length,
    "mv_length": _array_length,
}
for _name in (
    "acos asin atan cbrt ceil cos cosh cot exp expm1 floor log log10 log1p rint signum sin sinh "
    "sqrt tan tanh todegrees toradians nextup ulp"
).split():
    KERNELS[_name] = _math1(_name)
for _name in "atan2 copysign hypot nextafter pow remainder scalb".split():
    KERNELS[_name] = _math2(_name)
