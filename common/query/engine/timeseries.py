"""Timeseries: one row of aggregates per time bucket.

Buckets follow Druid's ``TimeseriesQueryEngine`` and ``CursorGranularizer``: per segment, the query
intervals are clipped to the segment's data interval (its earliest ``__time`` up to the end of the
bucket of its latest, whatever the filter keeps, see ``data_intervals``) and every bucket of that
is present, empty ones with ``count`` 0 and null sums, unless ``context.skipEmptyBuckets``.
Buckets outside every segment's data are not filled, nor are buckets of granularity ``none``.

With granularity ``all`` a segment's one bucket is stamped with the start of its clipped interval
(the later of the query interval's start and the segment's first row); merged, the earliest
stamp wins. When no segment has rows in the intervals the broker still answers one row, stamped
with the start of the first query interval, as Druid's ``getNullTimeseriesResultValue``.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import BUCKET_COLUMN, TIME_COLUMN
from common.query.engine.base import (
    aggregate,
    bucket_column,
    bucket_starts_in,
    collapse_all,
    concat,
    data_intervals,
    effective_intervals,
    empty_partial,
    finalize_values,
    format_time,
    json_value,
    merge_aggregated,
    select_rows,
)
from common.query.engine.sorted_time import run_sorted
from common.query.models import TimeseriesQuery
from common.segments.granularity import AllGranularity, NoneGranularity
from common.segments.intervals import Interval


def run(query: TimeseriesQuery, table: pa.Table, interval: Interval) -> pa.Table:
    gran = query.granularity
    intervals = data_intervals(
        table, gran, effective_intervals(query.intervals.intervals, interval)
    )
    partial = run_sorted(table, gran, intervals, query.filter, query.aggregations)
    if partial is None:
        partial = _run_general(query, table, intervals)
    if query.context.skipEmptyBuckets or isinstance(gran, NoneGranularity):
        return partial
    return _zero_fill(query, partial, bucket_starts_in(gran, intervals))


def _run_general(query: TimeseriesQuery, table: pa.Table, intervals: list[Interval]) -> pa.Table:
    rows = select_rows(table, intervals, query.filter)
    keyed = rows.append_column(BUCKET_COLUMN, bucket_column(rows, query.granularity, intervals))
    return aggregate(keyed, [BUCKET_COLUMN], query.aggregations)


#: Up to this many buckets, the buckets to zero-fill are found with a Python set (cheaper than
#: Arrow's ``is_in`` kernel on a handful of values: a tiny query has one bucket).
_SMALL_FILL = 64


def _zero_fill(query: TimeseriesQuery, partial: pa.Table, starts: list[int]) -> pa.Table:
    missing: Any
    if len(starts) <= _SMALL_FILL and partial.num_rows <= _SMALL_FILL:
        have = set(partial[TIME_COLUMN].to_pylist())
        missing = [s for s in starts if s not in have]
        if not missing:
            return partial
        missing = pa.array(missing, pa.int64())
    else:
        all_starts = pa.array(starts, pa.int64())
        missing = all_starts.filter(pc.invert(pc.is_in(all_starts, value_set=partial[TIME_COLUMN])))
    if len(missing) == 0:
        return partial
    empty = empty_partial(query.aggregations, missing).cast(partial.schema)
    return pa.concat_tables([partial, empty]).sort_by(TIME_COLUMN)


def merge(query: TimeseriesQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None:
        return pa.table({})
    if table.num_rows <= 1:  # one row is its own bucket, already in order
        return merge_aggregated(table, [TIME_COLUMN], query.aggregations)
    table = collapse_all(table, query.granularity)
    return merge_aggregated(table, [TIME_COLUMN], query.aggregations).sort_by(TIME_COLUMN)


def _null_result(query: TimeseriesQuery) -> pa.Table:
    """Druid's one row for granularity ``all`` when nothing matched."""
    intervals = query.intervals.intervals
    start = min(i.start for i in intervals) if intervals else 0
    return empty_partial(query.aggregations, [start])


def finalize(query: TimeseriesQuery, partial: pa.Table) -> list[dict[str, Any]]:
    if not partial.num_columns or not partial.num_rows:
        if not isinstance(query.granularity, AllGranularity) or query.context.skipEmptyBuckets:
            return []
        partial = _null_result(query)
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
