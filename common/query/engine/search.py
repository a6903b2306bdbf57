"""Druid's ``search`` query: per time bucket, the values of the search dimensions the search
spec accepts, each with the number of rows holding it (a multi-value row counts once per value).

A segment's partial has one row per (bucket, dimension output name, value) with its count;
partials merge by summing counts; finalize sorts each bucket's hits (``lexicographic``: by value,
then dimension; ``strlen``: by value length, then value, then dimension), keeps ``limit`` and
prints ``[{"timestamp", "result": [{"dimension", "value", "count"}]}]``. Buckets and the
``all`` stamp follow topN's (``data_intervals``); a bucket without hits is left out.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import BUCKET_COLUMN, TIME_COLUMN, to_strings
from common.query.engine.base import (
    bucket_column,
    collapse_all,
    concat,
    data_intervals,
    effective_intervals,
    format_time,
    select_rows,
)
from common.query.engine.dims import keyed_table
from common.query.models import SearchQuery
from common.segments.intervals import Interval

SCHEMA = pa.schema(
    [
        (TIME_COLUMN, pa.int64()),
        ("dimension", pa.string()),
        ("value", pa.string()),
        ("count", pa.int64()),
    ]
)


def run(query: SearchQuery, table: pa.Table, interval: Interval) -> pa.Table:
    gran = query.granularity
    intervals = data_intervals(
        table, gran, effective_intervals(query.intervals.intervals, interval)
    )
    rows = select_rows(table, intervals, query.filter)
    buckets = bucket_column(rows, gran, intervals)
    parts = [SCHEMA.empty_table()]
    for dim in query.searchDimensions:
        keyed, _ = keyed_table(rows, buckets, [dim])
        values = to_strings(keyed.column(dim.output).combine_chunks())
        if query.query is None:
            keep = pc.is_valid(values)
        else:
            keep = pc.fill_null(query.query.mask(values), False)
        hits = pa.table(
            {TIME_COLUMN: keyed.column(BUCKET_COLUMN).combine_chunks(), "value": values}
        ).filter(keep)
        counted = hits.group_by([TIME_COLUMN, "value"], use_threads=False).aggregate(
            [([], "count_all")]
        )
        parts.append(
            pa.table(
                {
                    TIME_COLUMN: counted.column(TIME_COLUMN).cast(pa.int64()),
                    "dimension": pa.array([dim.output] * counted.num_rows, pa.string()),
                    "value": counted.column("value"),
                    "count": counted.column("count_all").cast(pa.int64()),
                }
            )
        )
    return pa.concat_tables(parts)


def merge(query: SearchQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None or not table.num_rows:
        return SCHEMA.empty_table()
    table = collapse_all(table.select(SCHEMA.names).cast(SCHEMA), query.granularity)
    summed = table.group_by([TIME_COLUMN, "dimension", "value"], use_threads=False).aggregate(
        [("count", "sum")]
    )
    return pa.table(
        {
            TIME_COLUMN: summed.column(TIME_COLUMN),
            "dimension": summed.column("dimension"),
            "value": summed.column("value"),
            "count": summed.column("count_sum").cast(pa.int64()),
        }
    )


def _sort_key(sort: str) -> Any:
    if sort == "strlen":
        return lambda h: (len(h["value"].encode("utf-16-le")), h["value"], h["dimension"])
    return lambda h: (h["value"], h["dimension"])


def finalize(query: SearchQuery, partial: pa.Table) -> list[dict[str, Any]]:
    by_bucket: dict[int, list[dict[str, Any]]] = {}
    for row in partial.to_pylist():
        hit = {"dimension": row["dimension"], "value": row["value"], "count": row["count"]}
        by_bucket.setdefault(row[TIME_COLUMN], []).append(hit)
    out = []
    for start in sorted(by_bucket):
        hits = sorted(by_bucket[start], key=_sort_key(query.sort))[: query.limit]
        out.append({"timestamp": format_time(start, query.granularity), "result": hits})
    return out
