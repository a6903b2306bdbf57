"""Dimension columns for topN and groupBy: multi-value rows exploded, values cast to the
dimension spec's ``outputType`` and named by its ``outputName``; an ``ARRAY<...>`` output type
keeps each row's whole array (one group per distinct array, Druid's array grouping)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.expr.values import java_longs
from common.query.columns import (
    BUCKET_COLUMN,
    TIME_COLUMN,
    explode_multi_value,
    get_column,
    is_multi_value,
    one_dictionary,
    plain,
    to_numbers,
    to_strings,
)
from common.query.specs import DimensionSpec

OUTPUT_ARROW_TYPES = {
    "STRING": pa.string(),
    "LONG": pa.int64(),
    "FLOAT": pa.float64(),
    "DOUBLE": pa.float64(),
    "ARRAY<STRING>": pa.large_list(pa.string()),
    "ARRAY<LONG>": pa.large_list(pa.int64()),
    "ARRAY<DOUBLE>": pa.large_list(pa.float64()),
}


def is_array_dim(spec: DimensionSpec) -> bool:
    return spec.outputType.startswith("ARRAY")


def _array_values(table: pa.Table, spec: DimensionSpec) -> Any:
    """The whole array of each row, its elements cast to the output element type; a scalar
    column's value is a one-element array (null stays null)."""
    col = get_column(table, spec.dimension)
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    target = OUTPUT_ARROW_TYPES[spec.outputType]
    element = target.value_type
    if is_multi_value(col.type):
        lists = col.cast(pa.large_list(col.type.value_type))
        flat = plain(lists.flatten())
        cast = to_strings(flat) if pa.types.is_string(element) else to_numbers(flat)
        if pa.types.is_integer(element):
            cast = pc.cast(pc.trunc(cast), pa.int64())
        return pa.LargeListArray.from_arrays(
            lists.offsets, cast.cast(element), mask=pc.is_null(lists)
        )
    values = plain(col)
    cast = to_strings(values) if pa.types.is_string(element) else to_numbers(values)
    if pa.types.is_integer(element):
        cast = pc.cast(pc.trunc(cast), pa.int64())
    offsets = pa.array(np.arange(len(values) + 1, dtype=np.int64))
    return pa.LargeListArray.from_arrays(offsets, cast.cast(element), mask=pc.is_null(values))


def dimension_values(table: pa.Table, spec: DimensionSpec) -> Any:
    """The (already exploded) dimension as a plain column of the spec's output type, through
    the spec's extraction (a lookup) first when it has one."""
    if is_array_dim(spec):
        return _array_values(table, spec)
    fn = spec.extraction
    if fn is not None:
        # on the stored chunks: a dictionary chunk is extracted on its dictionary once
        raw = get_column(table, spec.dimension)
        chunks = raw.chunks if isinstance(raw, pa.ChunkedArray) else [raw]
        col = pa.concat_arrays([fn.apply(c) for c in chunks] or [pa.array([], pa.string())])
    else:
        col = plain(get_column(table, spec.dimension))
    if spec.outputType == "STRING":
        return to_strings(col)
    if spec.outputType == "LONG":
        return to_longs(col)
    return to_numbers(col)


def to_longs(col: Any) -> Any:
    """A plain column as LONG: an integer column as it is (exact, whatever its size); anything
    else through its double, truncated toward zero as Java's ``(long)`` cast, which saturates
    beyond the longs and makes NaN 0."""
    if pa.types.is_integer(col.type):
        return pc.cast(col, pa.int64())
    nums = to_numbers(col)
    valid = np.asarray(pc.is_valid(nums).to_numpy(zero_copy_only=False), dtype=bool)
    f = np.asarray(pc.fill_null(nums, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    return pa.array(java_longs(f), pa.int64(), mask=None if valid.all() else ~valid)


def keyed_table(
    rows: pa.Table, buckets: Any, dims: Sequence[DimensionSpec]
) -> tuple[pa.Table, list[str]]:
    """``rows`` exploded on multi-value dimensions, with the bucket as ``BUCKET_COLUMN`` and one
    column per dimension output name, the rows' columns (``__time`` too) kept for aggregators;
    returns the table and its key column names."""
    exploded = explode_multi_value(
        rows.append_column(BUCKET_COLUMN, buckets),
        [d.dimension for d in dims if not is_array_dim(d)],
    )
    cols: dict[str, Any] = {BUCKET_COLUMN: exploded.column(BUCKET_COLUMN)}
    for i, d in enumerate(dims):
        cols[key_name(i, d, exploded.column_names)] = dimension_values(exploded, d)
    keys = list(cols)
    for name in exploded.column_names:
        if name not in cols:
            cols[name] = exploded.column(name)
    return pa.table(cols), keys


def key_name(i: int, d: DimensionSpec, columns: Sequence[str]) -> str:
    """The name the ``i``-th dimension's key takes in a keyed table: its output name, unless
    that is a column of the rows (``dimension: n`` with a LONG output ``n``, or an output named
    as another column): aggregators read the stored column, as in Druid, not the key, so the key
    takes a name of its own (``key_outputs`` names it back)."""
    if d.output in columns and d.output != BUCKET_COLUMN:
        return f"{KEY_PREFIX}{i}"
    return d.output


KEY_PREFIX = "__kdruid_key"


def key_outputs(dims: Sequence[DimensionSpec]) -> dict[str, str]:
    """Output names of the keys ``key_name`` renamed."""
    return {f"{KEY_PREFIX}{i}": d.output for i, d in enumerate(dims)}


def coded_keyed_table(
    rows: pa.Table, buckets: Any, dims: Sequence[DimensionSpec]
) -> tuple[pa.Table, list[str], dict[str, tuple[Any, Any]]] | None:
    """``keyed_table`` without decoding: when every dimension is a single-value dictionary column
    with one string dictionary of distinct, non-null values, rows are grouped on the codes (the
    same groups, in the same order) and only the groups' keys are decoded afterwards.

    Returns the table aggregators read (each output name holding the dictionary column, which
    they read exactly as its decoded values), its key names, and per dimension output the codes
    to group on and the dictionary decoding them; None when the dimensions do not qualify."""
    outputs = [d.output for d in dims]
    if len(set(outputs)) != len(outputs) or not rows.num_rows:
        return None
    if BUCKET_COLUMN in outputs or TIME_COLUMN in outputs:
        return None
    if any(d.output in rows.column_names and d.output != d.dimension for d in dims):
        return None  # the key would hide a column aggregators read: keyed_table renames it
    coded: dict[str, tuple[Any, Any]] = {}
    for d in dims:
        if d.outputType != "STRING" or d.dimension not in rows.column_names:
            return None
        if d.extraction is not None:
            return None  # a lookup may map several codes to one value
        col = rows.column(d.dimension)
        dictionary = one_dictionary(col)
        if dictionary is None:
            return None
        codes = pa.chunked_array([c.indices for c in col.chunks], type=col.type.index_type)
        coded[d.output] = (codes, dictionary)
    cols: dict[str, Any] = {BUCKET_COLUMN: buckets}
    for d in dims:
        cols[d.output] = rows.column(d.dimension)
    keys = list(cols)
    for name in rows.column_names:
        if name not in cols:
            cols[name] = rows.column(name)
    return pa.table(cols), keys, coded


def output_type(spec: DimensionSpec) -> Any:
    return OUTPUT_ARROW_TYPES[spec.outputType]
