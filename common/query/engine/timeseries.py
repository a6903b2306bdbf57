"""Timeseries: one row of aggregates per time bucket.

Per segment, every bucket of the segment's interval (clipped to the query intervals) is present,
empty ones with ``count`` 0 and null sums, unless ``context.skipEmptyBuckets``; like Druid, buckets
outside every segment's interval are not zero-filled. With granularity ``all`` the one bucket is
stamped with the earliest data-interval start.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import TIME_COLUMN
from common.query.engine.base import (
    aggregate,
    bucket_column,
    bucket_starts_in,
    collapse_all,
    concat,
    effective_intervals,
    finalize_values,
    format_time,
    json_value,
    merge_aggregated,
    select_rows,
)
from common.query.engine.sorted_time import run_sorted
from common.query.models import TimeseriesQuery
from common.segments.granularity import NoneGranularity
from common.segments.intervals import Interval


def run(query: TimeseriesQuery, table: pa.Table, interval: Interval) -> pa.Table:
    intervals = effective_intervals(query.intervals.intervals, interval)
    partial = run_sorted(table, query.granularity, intervals, query.filter, query.aggregations)
    if partial is None:
        partial = _run_general(query, table, intervals)
    if query.context.skipEmptyBuckets or isinstance(query.granularity, NoneGranularity):
        return partial
    return _zero_fill(query, partial, bucket_starts_in(query.granularity, intervals))


def _run_general(query: TimeseriesQuery, table: pa.Table, intervals: list[Interval]) -> pa.Table:
    rows = select_rows(table, intervals, query.filter)
    keyed = pa.table({TIME_COLUMN: bucket_column(rows, query.granularity, intervals)})
    for name in rows.column_names:
        if name != TIME_COLUMN:
            keyed = keyed.append_column(name, rows.column(name))
    return aggregate(keyed, [TIME_COLUMN], query.aggregations)


def _zero_fill(query: TimeseriesQuery, partial: pa.Table, starts: list[int]) -> pa.Table:
    all_starts = pa.array(starts, pa.int64())
    missing = all_starts.filter(pc.invert(pc.is_in(all_starts, value_set=partial[TIME_COLUMN])))
    if len(missing) == 0:
        return partial
    n = len(missing)
    empty: dict[str, Any] = {TIME_COLUMN: missing}
    for agg in query.aggregations:
        empty[agg.name] = pa.array([agg.empty_value()] * n, agg.partial_type)
    filled = pa.concat_tables([partial, pa.table(empty, schema=partial.schema)])
    return filled.sort_by(TIME_COLUMN)


def merge(query: TimeseriesQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None:
        return pa.table({})
    table = collapse_all(table, query.granularity)
    return merge_aggregated(table, [TIME_COLUMN], query.aggregations).sort_by(TIME_COLUMN)


def finalize(query: TimeseriesQuery, partial: pa.Table) -> list[dict[str, Any]]:
    if not partial.num_columns or not partial.num_rows:
        return []
    order = "descending" if query.descending else "ascending"
    partial = partial.sort_by([(TIME_COLUMN, order)])
    if query.limit is not None:
        partial = partial.slice(0, query.limit)
    values = finalize_values(partial, query.aggregations, query.postAggregations)
    rows = pa.table(values).to_pylist() if values else [{} for _ in range(partial.num_rows)]
    times = partial[TIME_COLUMN].to_pylist()
    return [
        {
            "timestamp": format_time(t, query.granularity),
            "result": {k: json_value(v) for k, v in row.items()},
        }
        for t, row in zip(times, rows, strict=True)
    ]
