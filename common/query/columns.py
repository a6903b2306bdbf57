"""Vectorised column access over segment tables, shared by filters, aggregators and engines.

Segment tables hold ``__time`` as ``timestamp[ms, UTC]``, dimensions as ``dictionary<int32,
string>`` (multi-value: ``list<string>``), metrics as ``int64``/``float64`` and sketches as
``binary``. A column missing from a segment reads as all-null, as in Druid. Every helper here works
on whole arrays: dictionary columns are evaluated on their dictionary once and mapped through the
codes, list columns through their flattened values and parent indices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIME_COLUMN = "__time"
#: The time bucket key while grouping: aggregators still read the row's real ``__time`` (a
#: ``longMin`` of ``__time`` is the earliest row, not its bucket); the partial names it ``__time``.
BUCKET_COLUMN = "\x00bucket"

# Druid parses numbers out of strings leniently; anything else is "not a number" (null).
_NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"

Predicate = Callable[[Any], Any]
"""A vectorised predicate: a plain (non-dictionary, non-list) array to a nullable boolean array."""


def get_column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """The column ``name``, or an all-null string column when the segment does not have it."""
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows, pa.string())], type=pa.string())


def one_dictionary(col: pa.ChunkedArray) -> Any:
    """The dictionary every chunk shares, when it is of distinct non-null strings; else None."""
    if not pa.types.is_dictionary(col.type) or not pa.types.is_string(col.type.value_type):
        return None
    if not col.num_chunks:
        return None
    dictionary = col.chunk(0).dictionary
    for chunk in col.chunks[1:]:
        other = chunk.dictionary
        if other is not dictionary and not other.equals(dictionary):
            return None
    if dictionary.null_count or pc.count_distinct(dictionary).as_py() != len(dictionary):
        return None
    return dictionary


def is_multi_value(typ: pa.DataType) -> bool:
    return bool(pa.types.is_list(typ) or pa.types.is_large_list(typ))


def plain(arr: Any) -> Any:
    """Decode a dictionary array and expose timestamps as epoch milliseconds (int64)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.timestamp("ms", tz=arr.type.tz)).cast(pa.int64())
    return arr


def to_strings(arr: Any) -> Any:
    """String form of a plain array (numbers as Druid prints them)."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return arr.cast(pa.string())
    return pc.cast(arr, pa.string())


def to_numbers(arr: Any) -> Any:
    """float64 form of a plain array; strings that do not parse as numbers become null. A long
    beyond 2**53 becomes the nearest double, as Java's ``(double)`` cast (Arrow's safe cast
    would refuse it)."""
    if pa.types.is_integer(arr.type):
        return pc.cast(arr, pa.float64(), safe=False)
    if pa.types.is_floating(arr.type) or pa.types.is_null(arr.type):
        return arr.cast(pa.float64())
    if pa.types.is_boolean(arr.type):
        return arr.cast(pa.int8()).cast(pa.float64())
    strs = to_strings(arr)
    ok = pc.fill_null(pc.match_substring_regex(strs, _NUMBER_RE), False)
    return pc.if_else(ok, strs, pa.scalar(None, strs.type)).cast(pa.float64())


def eval_predicate(col: pa.ChunkedArray, pred: Predicate) -> pa.ChunkedArray:
    """Evaluate ``pred`` over a column of any segment type, with Druid's multi-value semantics.

    Dictionary columns: the predicate runs on the dictionary once and codes are mapped through it.
    List columns: a row is true if any value is true, unknown (null) if none is true but one is
    unknown, false otherwise; an empty or null list behaves as a single null value.
    """
    null_result = _null_result(pred)
    typ = col.type
    if pa.types.is_dictionary(typ) and col.num_chunks:
        shared = _shared_dictionary(col)
        if shared is not None:
            return pa.chunked_array([_eval_codes(col, shared, pred, null_result)], pa.bool_())
    elif not pa.types.is_null(typ) and not is_multi_value(typ) and col.num_chunks > 1:
        # A plain column in one call: Arrow walks the chunks, not Python.
        return _as_chunked(pred(plain(col)))
    chunks = [_eval_chunk(chunk, pred, null_result) for chunk in col.chunks]
    return pa.chunked_array(chunks, type=pa.bool_())


def _as_chunked(value: Any) -> pa.ChunkedArray:
    if isinstance(value, pa.ChunkedArray):
        return value
    return pa.chunked_array([value], pa.bool_())


def _shared_dictionary(col: pa.ChunkedArray) -> Any:
    """The one dictionary every chunk of a dictionary column uses (as a segment's), or None."""
    dictionary = col.chunk(0).dictionary
    for chunk in col.chunks[1:]:
        other = chunk.dictionary
        if other is not dictionary and not other.equals(dictionary):
            return None
    return dictionary


def numpy_predicate(col: pa.ChunkedArray, pred: Predicate) -> tuple[Any, Any] | None:
    """``eval_predicate`` as numpy arrays (true, unknown or None when there is none) for a
    single-value dictionary column with one dictionary; None for any other column."""
    if not pa.types.is_dictionary(col.type) or not col.num_chunks:
        return None
    dictionary = _shared_dictionary(col)
    if dictionary is None:
        return None
    true, unknown = _luts(dictionary, pred, _null_result(pred))
    return _lookup(col, true), (_lookup(col, unknown) if _any_unknown(col, unknown) else None)


def _any_unknown(col: pa.ChunkedArray, unknown: Any) -> bool:
    """Whether a row can be unknown: a dictionary value is, or a null row is and there is one."""
    return bool(unknown[:-1].any() or (unknown[-1] and col.null_count))


def _lookup(col: pa.ChunkedArray, lut: Any) -> Any:
    """``lut[code]`` of every row of a dictionary column (the last entry: a null row's), chunk by
    chunk into one array: no concatenated copy of the codes."""
    out = np.empty(len(col), dtype=lut.dtype)
    size = len(lut) - 1
    at = 0
    for chunk in col.chunks:
        indices = chunk.indices
        n = len(indices)
        if indices.null_count:
            codes = indices.fill_null(size).to_numpy()
        else:
            codes = indices.to_numpy()
        np.take(lut, codes, out=out[at : at + n], mode="clip")  # codes < len(lut)
        at += n
    return out


def _luts(dictionary: Any, pred: Predicate, null_result: Any) -> Any:
    """(true per code, unknown per code); the last code is a null row's."""
    on_dict = pred(plain(dictionary))
    size = len(dictionary)
    true = np.zeros(size + 1, dtype=bool)
    unknown = np.zeros(size + 1, dtype=bool)
    true[:size] = np.asarray(pc.fill_null(on_dict, False).to_numpy(zero_copy_only=False))
    unknown[:size] = np.asarray(pc.is_null(on_dict).to_numpy(zero_copy_only=False))
    true[size] = null_result is True
    unknown[size] = null_result is None
    return true, unknown


def _eval_codes(col: pa.ChunkedArray, dictionary: Any, pred: Predicate, null_result: Any) -> Any:
    """The predicate on the dictionary once, looked up by every row's code (null codes: the
    predicate's answer for a null) in one numpy gather."""
    true, unknown = _luts(dictionary, pred, null_result)
    hit = _lookup(col, true)
    mask = _lookup(col, unknown) if _any_unknown(col, unknown) else None
    return pa.array(hit, pa.bool_(), mask=mask if mask is not None and mask.any() else None)


def _null_result(pred: Predicate) -> bool | None:
    value = pred(pa.nulls(1, pa.string()))[0].as_py()
    return None if value is None else bool(value)


def _eval_chunk(chunk: Any, pred: Predicate, null_result: bool | None) -> Any:
    typ = chunk.type
    if pa.types.is_null(typ):
        return _const(null_result, len(chunk))
    if pa.types.is_dictionary(typ):
        on_dict = pred(plain(chunk.dictionary))
        out = on_dict.take(chunk.indices)
        if chunk.indices.null_count and null_result is not None:
            out = pc.if_else(pc.is_null(chunk.indices), null_result, out)
        return out
    if is_multi_value(typ):
        return _eval_list(chunk, pred, null_result)
    return pred(plain(chunk))


def _const(value: bool | None, n: int) -> Any:
    if value is None:
        return pa.nulls(n, pa.bool_())
    return pa.array(np.full(n, value), pa.bool_())


def _eval_list(chunk: Any, pred: Predicate, null_result: bool | None) -> Any:
    n = len(chunk)
    values = chunk.flatten()
    parents = pc.list_parent_indices(chunk).to_numpy(zero_copy_only=False)
    res = pred(plain(values)) if len(values) else pa.array([], pa.bool_())
    is_true = pc.fill_null(res, False).to_numpy(zero_copy_only=False)
    is_unknown = pc.is_null(res).to_numpy(zero_copy_only=False)
    any_true = np.bincount(parents[is_true], minlength=n) > 0
    any_unknown = np.bincount(parents[is_unknown], minlength=n) > 0
    lengths = pc.fill_null(pc.list_value_length(chunk), 0).to_numpy(zero_copy_only=False)
    empty = lengths == 0
    result = any_true.copy()
    unknown = ~any_true & any_unknown
    if null_result is None:
        unknown |= empty
    else:
        result |= empty & null_result
    return pa.array(result, pa.bool_(), mask=unknown)


def explode_multi_value(table: pa.Table, columns: list[str]) -> pa.Table:
    """One row per value of each multi-value column (cartesian over several), as Druid groups.

    A null or empty list becomes a single null value, so the row still counts.
    """
    for name in columns:
        if name not in table.column_names:
            continue
        col = table.column(name)
        if not is_multi_value(col.type):
            continue
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        lengths = pc.fill_null(pc.list_value_length(col), 0)
        empty = pc.equal(lengths, 0)
        null_list = pa.scalar([None], type=pa.list_(col.type.value_type))
        col = pc.if_else(empty, null_list, col.cast(pa.list_(col.type.value_type)))
        parents = pc.list_parent_indices(col)
        rest = table.drop_columns([name]).take(parents)
        idx = table.column_names.index(name)
        table = rest.add_column(idx, name, col.flatten())
    return table
