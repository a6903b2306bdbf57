"""Dimension columns for topN and groupBy: multi-value rows exploded, values cast to the
dimension spec's ``outputType`` and named by its ``outputName``; plus Druid's result orderings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import (
    TIME_COLUMN,
    explode_multi_value,
    get_column,
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
    """``rows`` exploded on multi-value dimensions, with the bucket as ``__time`` and one column
    per dimension output name; returns the table and its key column names."""
    exploded = explode_multi_value(
        rows.append_column("__bucket", buckets), [d.dimension for d in dims]
    )
    cols: dict[str, Any] = {TIME_COLUMN: exploded.column("__bucket")}
    for d in dims:
        cols[d.output] = dimension_values(exploded, d)
    keys = list(cols)
    for name in exploded.column_names:
        if name not in cols and name not in ("__bucket", TIME_COLUMN):
            cols[name] = exploded.column(name)
    return pa.table(cols), keys


def output_type(spec: DimensionSpec) -> Any:
    return OUTPUT_ARROW_TYPES[spec.outputType]
