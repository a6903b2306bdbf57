"""Dimension columns for topN and groupBy: multi-value rows exploded, values cast to the
dimension spec's ``outputType`` and named by its ``outputName``; plus Druid's result orderings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import (
    BUCKET_COLUMN,
    TIME_COLUMN,
    explode_multi_value,
    get_column,
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
}


def dimension_values(table: pa.Table, spec: DimensionSpec) -> Any:
    """The (already exploded) dimension as a plain column of the spec's output type."""
    col = plain(get_column(table, spec.dimension))
    if spec.outputType == "STRING":
        return to_strings(col)
    nums = to_numbers(col)
    return pc.cast(pc.trunc(nums), pa.int64()) if spec.outputType == "LONG" else nums


def keyed_table(
    rows: pa.Table, buckets: Any, dims: Sequence[DimensionSpec]
) -> tuple[pa.Table, list[str]]:
    """``rows`` exploded on multi-value dimensions, with the bucket as ``BUCKET_COLUMN`` and one
    column per dimension output name, the rows' columns (``__time`` too) kept for aggregators;
    returns the table and its key column names."""
    exploded = explode_multi_value(
        rows.append_column(BUCKET_COLUMN, buckets), [d.dimension for d in dims]
    )
    cols: dict[str, Any] = {BUCKET_COLUMN: exploded.column(BUCKET_COLUMN)}
    for d in dims:
        cols[d.output] = dimension_values(exploded, d)
    keys = list(cols)
    for name in exploded.column_names:
        if name not in cols:
            cols[name] = exploded.column(name)
    return pa.table(cols), keys


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
    coded: dict[str, tuple[Any, Any]] = {}
    for d in dims:
        if d.outputType != "STRING" or d.dimension not in rows.column_names:
            return None
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
