"""Arrow kernels for Druid expression functions: ``KERNELS`` maps a function name to
``(args, n) -> value``; a kernel raises ``NoKernel`` for argument types it does not handle and the
row implementation is used instead (``common.expr.vector.call``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.expr import fns_scalar, fns_string, fns_time
from common.expr.kernels import (
    NoKernel,
    V,
    _float_op,
    _is_null,
    _long,
    _null_of,
    _zero_to_null,
    compare,
    full,
    kind,
    nums,
    strs,
    to_numpy_mask,
    truth,
)
from common.expr.values import java_longs

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
    out = pa.array(java_longs(np.asarray(vals, dtype=np.float64)), pa.int64(), mask=mask)
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
    return _long(pc.fill_null(pc.match_like(strs(args[0]), pattern), False))


def _regexp_like(args: list[V], n: int) -> V:
    pattern = _scalar_str(args[1])
    fns_string.compile_regex(pattern)
    try:
        return _long(pc.fill_null(pc.match_substring_regex(strs(args[0]), pattern), False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise NoKernel from exc


def _contains(ignore_case: bool) -> Callable[[list[V], int], V]:
    def kernel(args: list[V], n: int) -> V:
        needle = _scalar_str(args[1])
        hit = pc.match_substring(strs(args[0]), needle, ignore_case=ignore_case)
        return _long(pc.fill_null(hit, False))

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
        return pc.divide(t, 1000)  # long division truncates toward zero, as Java
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
