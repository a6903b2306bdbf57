"""Druid native filters: models and vectorised evaluation to a boolean mask over an Arrow table.

Evaluation follows Druid's SQL-compatible null handling (the default since Druid 28) with
three-valued logic: a leaf filter on a null value is *unknown* (except ``null`` and ``selector``
with a null value), ``not`` of unknown stays unknown, ``and``/``or`` are Kleene, and only rows whose
result is true are kept. Dictionary dimensions are evaluated on their dictionary once; multi-value
dimensions match when any of their values matches (see ``columns.eval_predicate``).
"""

from __future__ import annotations

import decimal
import math
import re
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from common.expr import parse_expression
from common.expr.fastnum import truth_mask
from common.expr.kernels import normalise, strs
from common.expr.kernels import truth as expr_truth
from common.expr.values import LONG_MAX, LONG_MIN, java_double, java_long
from common.query.columns import (
    TIME_COLUMN,
    eval_predicate,
    get_column,
    numpy_predicate,
    to_numbers,
    to_strings,
)
from common.query.extraction import ExtractionFn, SearchSpec, extract_column
from common.segments.intervals import Interval

NUMERIC_TYPES = ("LONG", "DOUBLE", "FLOAT")
SUPPORTED_ORDERINGS = ("lexicographic", "numeric")


class _Filter(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_extraction_fn(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("extractionFn") is not None
            and "extractionFn" not in cls.model_fields
        ):
            raise ValueError(f"extractionFn is not supported in [{data.get('type')}] filters")
        return data

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        """Three-valued result per row: true, false or null (unknown)."""
        leaf = self.leaf()
        if leaf is None:
            raise NotImplementedError
        name, pred = leaf
        return eval_predicate(self._column(table, name), pred)

    def leaf(self) -> tuple[str, Any] | None:
        """(column, predicate) of a filter on one column (evaluated by ``eval_predicate``, the
        column read through the filter's ``extractionFn`` when it has one)."""
        return None

    def fast_leaf(self) -> tuple[str, Any] | None:
        """``leaf`` when the column is matched as stored (no ``extractionFn``): the fast paths'."""
        if getattr(self, "extractionFn", None) is not None:
            return None
        return self.leaf()

    def _column(self, table: pa.Table, name: str) -> pa.ChunkedArray:
        """The filtered column, through the filter's ``extractionFn`` when it has one (Druid
        matches the extracted value)."""
        col = get_column(table, name)
        fn = getattr(self, "extractionFn", None)
        return col if fn is None else extract_column(col, fn)


class _Extractable(_Filter):
    """The filters Druid gives an ``extractionFn`` (kdruid: the lookup ones)."""

    extractionFn: ExtractionFn | None = None


def _scalar_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equals_pred(value: Any, numeric: bool | None = None, longs: bool = True) -> Any:
    """Predicate for "column value equals ``value``" comparing in the column's domain; with
    ``longs``, an integer column and a value given as an integer compare exactly, as Druid
    compares longs (beyond 2**53 two longs can be the same double)."""
    exact = _exact_int(value) if longs else None

    def pred(arr: Any) -> Any:
        as_number = numeric if numeric is not None else _is_numeric(arr.type)
        if as_number and exact is not None and pa.types.is_integer(arr.type):
            return pc.equal(arr, pa.scalar(exact, pa.int64()))
        if as_number:
            target = _to_float(value)
            nums = to_numbers(arr)
            if target is None:
                return _false_unless_null(nums)
            return pc.equal(nums, pa.scalar(target, pa.float64()))
        return pc.equal(to_strings(arr), pa.scalar(_scalar_str(value), pa.string()))

    return pred


def _equality_pred(value: Any, match_type: str) -> Any:
    """Druid's ``EqualityFilter`` on one column: the value cast to the column's type
    (``ExprEval.castForEqualityComparison``). A LONG column compares longs, exactly, and only
    with a value that is the same number as a long (``1.0`` matches 1, ``1.1`` and NaN
    nothing); a DOUBLE or FLOAT column compares in its own type; a STRING column compares the
    value's text (``_text_for_equality``). A numeric text counts as its number
    (``computeNumber``: a long, else a double). Other columns, and a value that is no number on
    a numeric column, compare as ``_equals_pred`` does."""
    number = _match_number(value, match_type)
    exact = None if number is None else _long_for_equality(number)
    text = _text_for_equality(value, number, match_type)
    fallback = _equals_pred(value, match_type in NUMERIC_TYPES, match_type == "LONG")

    def pred(arr: Any) -> Any:
        if _is_text(arr.type):  # Druid compares the value's text: 5 matches "5", not "05"
            if text is None:
                return _false_unless_null(arr)
            return pc.equal(to_strings(arr), pa.scalar(text, pa.string()))
        if number is None:
            return fallback(arr)
        if pa.types.is_integer(arr.type):
            return _equal_long(arr, exact)
        if pa.types.is_floating(arr.type):
            typ = pa.float32() if pa.types.is_float32(arr.type) else pa.float64()
            return pc.equal(arr, pa.scalar(float(number), typ))
        return fallback(arr)

    return pred


def _equal_long(arr: Any, exact: int | None) -> Any:
    """An integer column equal to the long ``exact``, compared as longs; None: the value is no
    long, and nothing matches (null rows stay unknown)."""
    if exact is None:
        return _false_unless_null(arr)
    return pc.equal(arr, pa.scalar(exact, pa.int64()))


def _is_text(typ: pa.DataType) -> bool:
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ))


def _text_for_equality(value: Any, number: int | float | None, match_type: str) -> str | None:
    """The text a STRING column is compared with: ``ExprEval.ofType(match_type, value)`` cast
    to STRING (a LONG's digits, a DOUBLE as Java's ``Double.toString``)."""
    if match_type == "STRING" or isinstance(value, bool):
        return java_double(value) if isinstance(value, float) else _scalar_str(value)
    if number is None:
        return None
    return str(number) if isinstance(number, int) else java_double(number)


def _match_number(value: Any, match_type: str) -> int | float | None:
    """``value`` as Druid's expression value of ``match_type`` (``ExprEval.ofType``) turns
    into a number: a JSON number as it is, a text through ``computeNumber`` ("true"/"false"
    are 1.0/0.0), a LONG's through Java's ``longValue()`` (1.5 is 1); None for a boolean or a
    text that is no number."""
    if isinstance(value, bool):
        return None
    number: int | float | None
    if isinstance(value, int | float):
        number = value
    elif not isinstance(value, str):
        return None
    elif value.strip().lower() in ("true", "false"):
        number = 1.0 if value.strip().lower() == "true" else 0.0
    else:
        text = value.strip()
        whole = _exact_int(text)
        number = whole if whole is not None else _decimal_number(text)
    if number is None or (match_type in ("STRING", "LONG") and isinstance(number, int)):
        return number
    if match_type == "LONG":
        return java_long(number)
    return float(number)


def _decimal_number(text: str) -> float | None:
    return _to_float(text) if _DECIMAL_TEXT.fullmatch(text) else None


def _long_for_equality(number: int | float) -> int | None:
    """The long a LONG column is compared with, or None when the number does not survive the
    cast to a long (Druid compares the double before and after the cast)."""
    if isinstance(number, int) and LONG_MIN <= number <= LONG_MAX:
        return number
    as_long = java_long(float(number))
    return as_long if float(as_long) == float(number) else None


def _is_numeric(typ: pa.DataType) -> bool:
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ))


_INT_TEXT = re.compile(r"[+-]?[0-9]+")


def _exact_int(value: Any) -> int | None:
    """A bound given as an integer (JSON number or text) within int64: a LONG column compares
    with it exactly, as Druid compares longs, not through doubles (matters beyond 2**53)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    return None


def _exact_long_text(text: str) -> int | None:
    """Druid's ``DimensionHandlerUtils.getExactLongFromDecimalString``: the long a decimal text
    is exactly (``"7"``, ``"7.0"``, ``"7e0"``), else None (not integral, beyond the longs, not a
    number)."""
    if "_" in text or text != text.strip():  # Python's Decimal takes these, Java's does not
        return None
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    n = int(number)
    return n if LONG_MIN <= n <= LONG_MAX else None


def _as_double(value: Any) -> Any:
    """``value`` as a double where it is a number, else as it is (refused later)."""
    number = _to_float(value)
    return value if number is None else number


def _to_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class SelectorFilter(_Extractable):
    type: Literal["selector"]
    dimension: str
    value: str | int | float | None = None

    def leaf(self) -> tuple[str, Any]:
        if self.value is None:
            return self.dimension, pc.is_null
        equals = _equals_pred(self.value)
        # on an integer column, Druid's SelectorPredicateFactory long predicate: the value's
        # DimensionHandlerUtils.convertObjectToLong, compared as a long; no long (beyond the
        # longs, not integral, not a number) matches nothing
        exact = _exact_long_text(str(self.value)) if not isinstance(self.value, bool) else None

        def pred(arr: Any) -> Any:
            return _equal_long(arr, exact) if pa.types.is_integer(arr.type) else equals(arr)

        return self.dimension, pred


ARRAY_MATCH_TYPES = ("ARRAY<STRING>", "ARRAY<LONG>", "ARRAY<DOUBLE>")


class EqualsFilter(_Filter):
    """Druid's ``EqualityFilter``; with an ``ARRAY<...>`` ``matchValueType`` the whole array of a
    row must equal ``matchValue`` (element by element, in that element type)."""

    type: Literal["equals"]
    column: str
    matchValueType: str
    matchValue: str | int | float | bool | list[str | int | float | None]

    @field_validator("matchValueType")
    @classmethod
    def _known_type(cls, v: str) -> str:
        key = v.upper().replace(" ", "")
        if key not in ("STRING", *NUMERIC_TYPES, *ARRAY_MATCH_TYPES):
            raise ValueError(f"unsupported matchValueType [{v}]")
        return key

    @model_validator(mode="before")
    @classmethod
    def _value_present(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("matchValue") is None:
            raise ValueError("equals filter requires a non-null matchValue (use a null filter)")
        return data

    @model_validator(mode="after")
    def _value_shape(self) -> EqualsFilter:
        if isinstance(self.matchValue, list) != self.matchValueType.startswith("ARRAY"):
            raise ValueError(
                f"matchValue {self.matchValue!r} does not fit matchValueType "
                f"[{self.matchValueType}]"
            )
        return self

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        if isinstance(self.matchValue, list):
            return self._array_equals(get_column(table, self.column))
        return super().evaluate(table)

    def leaf(self) -> tuple[str, Any] | None:
        if isinstance(self.matchValue, list):
            return None  # whole-array equality: ``evaluate``
        return self.column, _equality_pred(self.matchValue, self.matchValueType)

    def _array_equals(self, col: pa.ChunkedArray) -> pa.ChunkedArray:
        element = self.matchValueType[len("ARRAY<") : -1]
        want = [_as_element(v, element) for v in self.matchValue]  # type: ignore[union-attr]
        out: list[bool | None] = []
        for value in col.to_pylist():
            if value is None:
                out.append(None)
                continue
            row = value if isinstance(value, list) else [value]
            out.append([_as_element(v, element) for v in row] == want)
        return pa.chunked_array([pa.array(out, pa.bool_())])


def _as_element(v: Any, element: str) -> Any:
    if v is None:
        return None
    if element == "STRING":
        return _scalar_str(v)
    return _to_float(v)


class InFilter(_Extractable):
    type: Literal["in"]
    dimension: str
    values: list[str | int | float | None]

    def leaf(self) -> tuple[str, Any]:
        strs = [_scalar_str(v) for v in self.values]
        has_null = any(v is None for v in strs)
        wanted = pa.array(sorted({v for v in strs if v is not None}), pa.string())
        nums = [f for f in (_to_float(v) for v in self.values) if f is not None]
        wanted_nums = pa.array(sorted(set(nums)), pa.float64())
        # an integer column matches only the values that are exactly a long, compared as longs:
        # Druid's InDimFilter long predicate keeps DimensionHandlerUtils.convertObjectToLong of
        # each value (getExactLongFromDecimalString: "1.0" is 1, "1.5" and anything beyond the
        # longs match nothing), never a double that two longs beyond 2**53 could share
        exact = {_exact_long_text(v) for v in strs if v is not None}
        wanted_ints = pa.array(sorted(i for i in exact if i is not None), pa.int64())

        def pred(arr: Any) -> Any:
            if pa.types.is_integer(arr.type):
                vals = arr
                hit = pc.is_in(arr, value_set=wanted_ints)
            elif _is_numeric(arr.type):
                vals = to_numbers(arr)
                hit = pc.is_in(vals, value_set=wanted_nums)
            else:
                vals = to_strings(arr)
                hit = pc.is_in(vals, value_set=wanted)
            if has_null:
                return pc.or_(hit, pc.is_null(vals))
            # unknown for null values: SQL's ``x IN (...)`` on null is null.
            return pc.if_else(pc.is_null(vals), pa.scalar(None, pa.bool_()), hit)

        return self.dimension, pred


def _compare_pred(
    lower: Any, upper: Any, lower_strict: bool, upper_strict: bool, numeric: bool
) -> Any:
    exact = (_exact_int(lower), _exact_int(upper))
    lo_num = None if lower is None else _to_float(lower)
    hi_num = None if upper is None else _to_float(upper)
    bad = (lower is not None and lo_num is None) or (upper is not None and hi_num is None)

    def numpy_true(arr: Any) -> Any:
        """The rows in range as one numpy boolean array, for a null-free number column (no
        unknowns) compared in numbers; None otherwise."""
        if not numeric or bad or not _is_numeric(arr.type) or arr.null_count:
            return None
        out = np.empty(len(arr), dtype=bool)
        at = 0
        for values in _numpy_chunks(arr):
            part = out[at : at + len(values)]
            _range_into(values, lo_num, hi_num, lower_strict, upper_strict, part, exact)
            at += len(values)
        return out

    def pred(arr: Any) -> Any:
        lo: float | str | None
        hi: float | str | None
        if numeric:
            lo, hi = lo_num, hi_num
            if not bad and _is_numeric(arr.type) and not arr.null_count:
                return _numpy_range(arr, lo, hi, lower_strict, upper_strict, exact)
            if not bad and pa.types.is_integer(arr.type) and _exact_bounds(exact, lower, upper):
                vals, lo, hi, typ = arr, exact[0], exact[1], pa.int64()
            else:
                vals = to_numbers(arr)
                typ = pa.float64()
            if bad:
                return _false_unless_null(vals)
        else:
            vals = to_strings(arr)
            lo, hi, typ = _scalar_str(lower), _scalar_str(upper), pa.string()
        return _arrow_range(vals, lo, hi, lower_strict, upper_strict, typ)

    pred.numpy_true = numpy_true  # type: ignore[attr-defined]
    return pred


def _arrow_range(
    vals: Any, lo: Any, hi: Any, lower_strict: bool, upper_strict: bool, typ: pa.DataType
) -> Any:
    """``lo <(=) vals <(=) hi`` in Arrow, bounds as scalars of ``typ`` (None: no bound); null
    values are unknown."""
    if not vals.null_count and (lo is not None or hi is not None):
        out: Any = None  # no nulls: no unknowns to carry
        if lo is not None:
            out = (pc.greater if lower_strict else pc.greater_equal)(vals, pa.scalar(lo, typ))
        if hi is not None:
            below = (pc.less if upper_strict else pc.less_equal)(vals, pa.scalar(hi, typ))
            out = below if out is None else pc.and_(out, below)
        return out
    result = pc.is_valid(vals)
    result = pc.if_else(result, True, pa.scalar(None, pa.bool_()))
    if lo is not None:
        op = pc.greater if lower_strict else pc.greater_equal
        result = pc.and_kleene(result, op(vals, pa.scalar(lo, typ)))
    if hi is not None:
        op = pc.less if upper_strict else pc.less_equal
        result = pc.and_kleene(result, op(vals, pa.scalar(hi, typ)))
    return result


def _false_unless_null(vals: Any) -> Any:
    """False for every value, unknown (null) for a null one: a comparison nothing satisfies."""
    return pc.if_else(pc.is_null(vals), pa.scalar(None, pa.bool_()), False)


def _numpy_chunks(arr: Any) -> Any:
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    return (chunk.to_numpy() for chunk in chunks)


def _exact_bounds(exact: tuple[int | None, int | None], lower: Any, upper: Any) -> bool:
    """Every bound given is an exact integer."""
    return (lower is None or exact[0] is not None) and (upper is None or exact[1] is not None)


def _range_into(
    values: Any,
    lo: float | None,
    hi: float | None,
    lower_strict: bool,
    upper_strict: bool,
    out: Any,
    exact: tuple[int | None, int | None] = (None, None),
) -> Any:
    """``lo <(=) values <(=) hi`` into ``out``, compared in doubles, as ``to_numbers`` then
    Arrow's would be (numpy compares an integer array with a double bound in doubles); an
    integer array and a bound given as an integer (``exact``) compare exactly, as longs."""
    if lo is None and hi is None:
        out[:] = True
        return out
    low: Any = None if lo is None else np.float64(lo)
    high: Any = None if hi is None else np.float64(hi)
    if values.dtype.kind == "i":
        low = np.int64(exact[0]) if exact[0] is not None else _int_bound(lo, lower_strict, True)
        high = np.int64(exact[1]) if exact[1] is not None else _int_bound(hi, upper_strict, False)
    if low is not None:
        (np.greater if lower_strict else np.greater_equal)(values, low, out=out)
    if high is not None:
        if low is None:
            (np.less if upper_strict else np.less_equal)(values, high, out=out)
        else:
            out &= (np.less if upper_strict else np.less_equal)(values, high)
    return out


def _int_bound(bound: float | None, strict: bool, lower: bool) -> Any:
    """An integer bound comparing integers as the double ``bound`` compares them in doubles
    (``v > 2.5`` iff ``v > 2``, ``v >= 2.5`` iff ``v >= 3``...): exact while ``|bound| < 2**53``,
    where a double is an exact integer or between two; beyond, or not finite, the double."""
    if bound is None:
        return None
    if not math.isfinite(bound) or abs(bound) >= 2.0**53:
        return np.float64(bound)
    if lower:  # v > b iff v > floor(b); v >= b iff v >= ceil(b)
        return np.int64(math.floor(bound) if strict else math.ceil(bound))
    return np.int64(math.ceil(bound) if strict else math.floor(bound))  # v < ceil, v <= floor


def _numpy_range(
    arr: Any,
    lo: float | None,
    hi: float | None,
    lower_strict: bool,
    upper_strict: bool,
    exact: tuple[int | None, int | None],
) -> Any:
    """A numeric range over a null-free number column, chunk by chunk in numpy."""
    out = [
        pa.array(
            _range_into(v, lo, hi, lower_strict, upper_strict, np.empty(len(v), dtype=bool), exact),
            pa.bool_(),
        )
        for v in _numpy_chunks(arr)
    ]
    return pa.chunked_array(out, pa.bool_())


def _ordering_name(v: Any) -> str:
    name = v.get("type") if isinstance(v, dict) else v
    if name not in SUPPORTED_ORDERINGS:
        raise ValueError(f"unsupported ordering [{name}]; supported: {list(SUPPORTED_ORDERINGS)}")
    return str(name)


class BoundFilter(_Extractable):
    type: Literal["bound"]
    dimension: str
    lower: str | int | float | None = None
    upper: str | int | float | None = None
    lowerStrict: bool = False
    upperStrict: bool = False
    ordering: str = "lexicographic"
    alphaNumeric: bool = False

    @field_validator("ordering", mode="before")
    @classmethod
    def _ordering(cls, v: Any) -> str:
        return _ordering_name(v)

    def leaf(self) -> tuple[str, Any]:
        if self.ordering == "numeric":
            return self.dimension, _numeric_bound_pred(
                self.lower, self.upper, self.lowerStrict, self.upperStrict
            )
        pred = _compare_pred(self.lower, self.upper, self.lowerStrict, self.upperStrict, False)
        return self.dimension, pred


_LONG_TEXT = re.compile(r"-?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _bound_text(value: Any) -> str:
    """A bound as the text Druid reads (its bounds are strings; a JSON number is its text)."""
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def _long_bound(value: Any, strict: bool, lower: bool) -> tuple[int | None, bool]:
    """``(bound, matches nothing)`` of one bound for a LONG column, as Druid's ``BoundDimFilter``
    makes its long predicate: an integer text is the bound (``GuavaUtils.tryParseLong``); else a
    decimal (``BigDecimal``) rounded toward the range's inside (a lower bound: floor when
    strict, ceiling when not; an upper one: ceiling when strict, floor when not), compared with
    the same strictness; beyond the longs, a positive lower or a negative upper bound matches
    nothing and the other way round there is no bound; an unparseable bound sorts before every
    number (a lower one: no bound; an upper one: nothing matches)."""
    text = _bound_text(value)
    digits = text[1:] if text.startswith("+") else text
    if _LONG_TEXT.fullmatch(digits) and LONG_MIN <= int(digits) <= LONG_MAX:
        return int(digits), False
    if not _DECIMAL_TEXT.fullmatch(text):
        return None, not lower
    number = decimal.Decimal(text)
    if number.adjusted() >= 19:  # at least 10**19: beyond the longs, whatever the rounding
        return None, (number > 0) if lower else (number < 0)
    up = strict != lower  # lower: ceiling unless strict; upper: ceiling when strict
    n = int(number.to_integral_value(decimal.ROUND_CEILING if up else decimal.ROUND_FLOOR))
    if LONG_MIN <= n <= LONG_MAX:
        return n, False
    return None, (n > 0) if lower else (n < 0)


def _numeric_bound_pred(lower: Any, upper: Any, lower_strict: bool, upper_strict: bool) -> Any:
    """A ``bound`` filter with ``numeric`` ordering. On an integer (LONG) column it is Druid's
    long predicate (``_long_bound``): longs compared exactly. On other columns values compare
    as doubles, an unparseable lower bound sorting before every number (no bound) and an
    unparseable upper bound matching nothing, as in Druid's double predicate."""
    lo, lo_nothing = (None, False) if lower is None else _long_bound(lower, lower_strict, True)
    hi, hi_nothing = (None, False) if upper is None else _long_bound(upper, upper_strict, False)
    double_lower = None if lower is None or _to_float(lower) is None else lower
    doubles = _compare_pred(double_lower, upper, lower_strict, upper_strict, True)
    return _longs_pred(lo, hi, lo_nothing or hi_nothing, lower_strict, upper_strict, doubles)


def _range_long_bound(value: Any, is_open: bool, lower: bool) -> int:
    """A ``range`` bound for a LONG column, as Druid's ``RangeFilter`` makes its long predicate:
    the bound as a double (a long beyond 2**53 becomes its nearest double), floored for an open
    lower or a closed upper bound and ceiled otherwise, then cast to a long (saturating)."""
    number = float(value)
    if math.isfinite(number):
        number = float(math.floor(number) if is_open == lower else math.ceil(number))
    return java_long(number)


def _longs_pred(
    lo: int | None,
    hi: int | None,
    nothing: bool,
    lower_strict: bool,
    upper_strict: bool,
    doubles: Any,
) -> Any:
    """Integer (LONG) columns compared with the long bounds ``lo``/``hi`` (None: no bound;
    ``nothing``: no row matches), exactly; other columns through ``doubles``."""

    def numpy_true(arr: Any) -> Any:
        if not pa.types.is_integer(arr.type):
            return doubles.numpy_true(arr)
        if arr.null_count:
            return None
        out = np.empty(len(arr), dtype=bool)
        at = 0
        for values in _numpy_chunks(arr):
            part = out[at : at + len(values)]
            if nothing:
                part[:] = False
            else:
                _range_into(values, lo, hi, lower_strict, upper_strict, part, (lo, hi))
            at += len(values)
        return out

    def pred(arr: Any) -> Any:
        if not pa.types.is_integer(arr.type):
            return doubles(arr)
        if nothing:
            return _false_unless_null(arr)
        return _arrow_range(arr, lo, hi, lower_strict, upper_strict, pa.int64())

    pred.numpy_true = numpy_true  # type: ignore[attr-defined]
    return pred


class RangeFilter(_Filter):
    type: Literal["range"]
    column: str
    matchValueType: str
    lower: str | int | float | None = None
    upper: str | int | float | None = None
    lowerOpen: bool = False
    upperOpen: bool = False

    @field_validator("matchValueType")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v.upper() not in ("STRING", *NUMERIC_TYPES):
            raise ValueError(f"unsupported matchValueType [{v}]")
        return v.upper()

    @model_validator(mode="after")
    def _parseable(self) -> RangeFilter:
        if self.matchValueType in NUMERIC_TYPES:
            for side, value in (("lower", self.lower), ("upper", self.upper)):
                if value is not None and (isinstance(value, bool) or _to_float(value) is None):
                    raise ValueError(
                        f"Invalid range filter on column [{self.column}], {side} bound [{value}]"
                        f" cannot be parsed as specified match value type [{self.matchValueType}]"
                    )
        return self

    def leaf(self) -> tuple[str, Any]:
        numeric = self.matchValueType in NUMERIC_TYPES
        lower, upper = self.lower, self.upper
        if not numeric:
            return self.column, _compare_pred(lower, upper, self.lowerOpen, self.upperOpen, False)
        if self.matchValueType != "LONG":  # matched as doubles
            lower, upper = _as_double(lower), _as_double(upper)
        doubles = _compare_pred(lower, upper, self.lowerOpen, self.upperOpen, True)
        lo = None if lower is None else _range_long_bound(lower, self.lowerOpen, True)
        hi = None if upper is None else _range_long_bound(upper, self.upperOpen, False)
        return self.column, _longs_pred(lo, hi, False, self.lowerOpen, self.upperOpen, doubles)


def like_to_regex(pattern: str, escape: str | None) -> str:
    """SQL LIKE (``%``, ``_``, optional escape character) as an anchored RE2 regex."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if escape is not None and ch == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "(?s)^" + "".join(out) + "$"


class LikeFilter(_Extractable):
    type: Literal["like"]
    dimension: str
    pattern: str
    escape: str | None = None

    @field_validator("escape")
    @classmethod
    def _one_char(cls, v: str | None) -> str | None:
        if v is not None and len(v) != 1:
            raise ValueError("escape must be a single character")
        return v

    def leaf(self) -> tuple[str, Any]:
        regex = like_to_regex(self.pattern, self.escape)
        return self.dimension, lambda arr: pc.match_substring_regex(to_strings(arr), regex)


class RegexFilter(_Extractable):
    type: Literal["regex"]
    dimension: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            pc.match_substring_regex(pa.array([""]), v)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"invalid regex [{v}]: {exc}") from None
        return v

    def leaf(self) -> tuple[str, Any]:
        return self.dimension, lambda arr: pc.match_substring_regex(to_strings(arr), self.pattern)


class NullFilter(_Filter):
    type: Literal["null"]
    column: str

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        col = get_column(table, self.column)
        if pa.types.is_large_list(col.type):
            # An ARRAY (a large_list; a multi-value string is a list) is null as a whole: an
            # empty array or one holding null is not null.
            return pc.is_null(col)
        return super().evaluate(table)

    def leaf(self) -> tuple[str, Any]:
        return self.column, pc.is_null


class IntervalFilter(_Filter):
    type: Literal["interval"]
    dimension: str = TIME_COLUMN
    intervals: list[Interval] = Field(min_length=1)

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        def pred(arr: Any) -> Any:
            millis = to_numbers(arr)
            hit = pa.scalar(False)
            for itv in self.intervals:
                inside = pc.and_(
                    pc.greater_equal(millis, float(itv.start)), pc.less(millis, float(itv.end))
                )
                hit = pc.or_(hit, inside)
            return hit

        return eval_predicate(self._column(table, self.dimension), pred)


class SearchFilter(_Extractable):
    """Druid's ``search`` filter: rows whose value the search ``query`` (``contains``,
    ``insensitive_contains``, ``fragment``, ``regex``) accepts; a null value is unknown."""

    type: Literal["search"]
    dimension: str
    query: SearchSpec

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        return eval_predicate(
            self._column(table, self.dimension),
            lambda arr: self.query.mask(to_strings(arr)),
        )


class ComparedDimension(BaseModel):
    """A ``columnComparison`` dimension: a name, or a ``default``/``extraction`` spec."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["default", "extraction"] = "default"
    dimension: str = Field(min_length=1)
    outputName: str | None = None
    extractionFn: ExtractionFn | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"dimension": data}
        if isinstance(data, dict) and data.get("type") not in (None, "default", "extraction"):
            raise ValueError(
                f"columnComparison dimension spec type [{data.get('type')}] is not supported"
            )
        return data

    def rows(self, table: pa.Table) -> list[list[str | None]]:
        """Each row's values as strings (Druid's ``String[]``: a null, empty or absent value is
        ``[null]``; numbers as Java prints them)."""
        col = get_column(table, self.dimension)
        if self.extractionFn is not None:
            col = extract_column(col, self.extractionFn)
        out: list[list[str | None]] = []
        for chunk in col.chunks:
            if pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type):
                flat = chunk.flatten()
                texts = strs(normalise(flat)).to_pylist() if len(flat) else []
                offsets = chunk.offsets.to_pylist()
                for i, valid in enumerate(chunk.is_valid().to_pylist()):
                    vals = texts[offsets[i] : offsets[i + 1]] if valid else []
                    out.append(vals or [None])
            else:
                out.extend([v] for v in strs(normalise(chunk)).to_pylist())
        return out


def _overlap(a: list[str | None], b: list[str | None]) -> bool:
    return any(x == y for x in a for y in b)


class ColumnComparisonFilter(_Filter):
    """Druid's ``columnComparison``: rows where every two ``dimensions`` share a value (as
    strings; null equals null, so this filter is never unknown)."""

    type: Literal["columnComparison"]
    dimensions: list[ComparedDimension] = Field(min_length=1)

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        cols = [d.rows(table) for d in self.dimensions]
        out = [all(_overlap(c[i], cols[0][i]) for c in cols[1:]) for i in range(table.num_rows)]
        return pa.chunked_array([pa.array(out, pa.bool_())])


class ArrayContainsElementFilter(_Filter):
    """Druid's ``arrayContainsElement``: rows whose ARRAY ``column`` holds
    ``elementMatchValue`` (of ``elementMatchValueType``; null finds a null element); on a
    multi-value string or scalar column, a row holding that value. A null row is unknown."""

    type: Literal["arrayContainsElement"]
    column: str
    elementMatchValueType: str
    elementMatchValue: str | int | float | bool | None = None

    @field_validator("elementMatchValueType")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v.upper() not in ("STRING", *NUMERIC_TYPES):
            raise ValueError(f"unsupported elementMatchValueType [{v}]")
        return v.upper()

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        col = get_column(table, self.column)
        numeric = self.elementMatchValueType in NUMERIC_TYPES
        if pa.types.is_large_list(col.type):
            kind = "STRING" if not numeric else "DOUBLE"
            want = _as_element(self.elementMatchValue, kind)
            out: list[bool | None] = []
            for row in col.to_pylist():
                out.append(None if row is None else want in [_as_element(v, kind) for v in row])
            return pa.chunked_array([pa.array(out, pa.bool_())])
        if self.elementMatchValue is None:
            return eval_predicate(col, pc.is_null)
        longs = self.elementMatchValueType == "LONG"
        return eval_predicate(col, _equals_pred(self.elementMatchValue, numeric, longs))


_REFUSED_FILTERS = {
    "spatial": "spatial filters are not supported (kdruid has no spatial dimensions)",
    "javascript": "filter type [javascript] is not supported: JavaScript is disabled "
    "(as in Druid by default)",
}


def _known_filter(data: Any) -> Any:
    if isinstance(data, dict) and data.get("type") in _REFUSED_FILTERS:
        raise ValueError(_REFUSED_FILTERS[str(data["type"])])
    return data


class AndFilter(_Filter):
    type: Literal["and"]
    fields: list[Filter] = Field(min_length=1)

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        out = self.fields[0].evaluate(table)
        for f in self.fields[1:]:
            out = pc.and_kleene(out, f.evaluate(table))
        return out


class OrFilter(_Filter):
    type: Literal["or"]
    fields: list[Filter] = Field(min_length=1)

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        out = self.fields[0].evaluate(table)
        for f in self.fields[1:]:
            out = pc.or_kleene(out, f.evaluate(table))
        return out


class NotFilter(_Filter):
    type: Literal["not"]
    field: Filter

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        return pc.invert(self.field.evaluate(table))


class TrueFilter(_Filter):
    type: Literal["true"]

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        return pa.chunked_array([_all_true(table.num_rows)])


class FalseFilter(_Filter):
    type: Literal["false"]

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        return pc.invert(TrueFilter(type="true").evaluate(table))


class ExpressionFilter(_Filter):
    """Rows where a Druid expression is true (> 0, or the string 'true'); null is unknown."""

    type: Literal["expression"]
    expression: str

    @field_validator("expression")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse_expression(v)
        return v

    def evaluate(self, table: pa.Table) -> pa.ChunkedArray:
        expr = parse_expression(self.expression)
        fast = truth_mask(expr.node, table)  # numeric and null-free: no unknowns
        if fast is not None:
            return pa.chunked_array([pa.array(fast, pa.bool_())])
        value = expr.evaluate_table(table, chunked=True)
        if not isinstance(value, pa.ChunkedArray):
            value = pa.chunked_array([value])
        # A multi-value result matches when any of its values is true, as Druid's filters.
        return eval_predicate(value, expr_truth)


Filter = Annotated[
    SelectorFilter
    | EqualsFilter
    | InFilter
    | BoundFilter
    | RangeFilter
    | LikeFilter
    | RegexFilter
    | NullFilter
    | IntervalFilter
    | AndFilter
    | OrFilter
    | NotFilter
    | TrueFilter
    | FalseFilter
    | ExpressionFilter
    | SearchFilter
    | ColumnComparisonFilter
    | ArrayContainsElementFilter,
    Field(discriminator="type"),
    BeforeValidator(_known_filter),
]

for _model in (AndFilter, OrFilter, NotFilter):
    _model.model_rebuild()


def mask_numpy(flt: _Filter | None, table: pa.Table) -> Any:
    """``filter_mask`` as a numpy boolean array, computed in numpy where it can be (filters on
    dictionary columns by code, numeric expressions, and/or/not of them, in three-valued logic)."""
    if flt is None:
        return np.ones(table.num_rows, dtype=bool)
    true, _ = _tri(flt, table)
    return true


def _tri(flt: _Filter, table: pa.Table) -> tuple[Any, Any]:
    """(true, unknown or None) per row, as numpy boolean arrays."""
    if isinstance(flt, AndFilter | OrFilter):
        true, unknown = _tri(flt.fields[0], table)
        for f in flt.fields[1:]:
            t2, u2 = _tri(f, table)
            if isinstance(flt, AndFilter):  # Kleene: false wins, then unknown
                if unknown is not None or u2 is not None:
                    u = _or(unknown, u2)
                    false = (~true & ~_or_none(unknown, len(true))) | (~t2 & ~_or_none(u2, len(t2)))
                    unknown = u & ~false
                true = true & t2
            else:  # true wins, then unknown
                true = true | t2
                if unknown is not None or u2 is not None:
                    unknown = _or(unknown, u2) & ~true
        return true, unknown if unknown is not None and unknown.any() else None
    if isinstance(flt, NotFilter):
        true, unknown = _tri(flt.field, table)
        if unknown is None:
            return ~true, None
        return ~true & ~unknown, unknown
    if isinstance(flt, ExpressionFilter):
        fast = truth_mask(parse_expression(flt.expression).node, table)
        if fast is not None:
            return fast, None
    leaf = flt.fast_leaf()
    if leaf is not None:
        col = get_column(table, leaf[0])
        numpy_true = getattr(leaf[1], "numpy_true", None)
        if numpy_true is not None:
            hit = numpy_true(col)
            if hit is not None:
                return hit, None
        got = None if pa.types.is_large_list(col.type) else numpy_predicate(col, leaf[1])
        if got is not None:
            return got
    value = flt.evaluate(table)
    unknown = np.asarray(pc.is_null(value).to_numpy(), dtype=bool) if value.null_count else None
    return np.asarray(pc.fill_null(value, False).to_numpy(), dtype=bool), unknown


def _or(a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else a | b


def _or_none(a: Any, n: int) -> Any:
    return a if a is not None else np.zeros(n, dtype=bool)


def filter_mask(flt: _Filter | None, table: pa.Table) -> Any:
    """The rows a filter keeps (unknown counts as not kept); all rows when there is no filter."""
    if flt is None:
        return _all_true(table.num_rows)
    return pc.fill_null(flt.evaluate(table), False)


def _all_true(n: int) -> Any:
    return pa.array(np.ones(n, dtype=bool), pa.bool_())
