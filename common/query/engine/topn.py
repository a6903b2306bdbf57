"""TopN: per time bucket, the ``threshold`` dimension values best by the metric ordering.

Exact, not Druid's approximate per-segment top-k: each segment's partial holds every dimension
value of each bucket (a group-by on bucket and dimension), partials merge like groupBy, and the
threshold is applied once, at finalize. Answers are therefore exact, at the price of partials as
large as the dimension's cardinality.

As Druid's engine walks the buckets of ``CursorGranularizer``, every bucket of a segment's clipped
data interval (see ``data_intervals``) is answered, those without a matching row with an empty
``result`` list; the partial carries those intervals in its schema metadata. With granularity
``all`` a segment stamps its bucket with the start of its clipped interval (the later of the
query interval's start and the segment's first row); merged, the earliest stamp wins.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import TIME_COLUMN, to_numbers
from common.query.engine.base import (
    aggregate,
    bucket_column,
    bucket_starts_in,
    collapse_all,
    concat,
    data_intervals,
    effective_intervals,
    finalize_values,
    format_time,
    json_value,
    merge_aggregated,
    rank_within_runs,
    select_rows,
    sort_indices,
)
from common.query.engine.dense import run_dense
from common.query.engine.dims import coded_keyed_table, key_outputs, keyed_table
from common.query.models import TopNQuery
from common.query.specs import TopNMetric
from common.segments.granularity import AllGranularity, NoneGranularity
from common.segments.intervals import Interval

INTERVALS_KEY = b"intervals"  # schema metadata: JSON [[start, end], ...] of clipped intervals


def run(query: TopNQuery, table: pa.Table, interval: Interval) -> pa.Table:
    gran = query.granularity
    intervals = data_intervals(
        table, gran, effective_intervals(query.intervals.intervals, interval)
    )
    dense = run_dense(table, gran, intervals, query.filter, [query.dimension], query.aggregations)
    if dense is not None:
        return _with_intervals(dense, [(i.start, i.end) for i in intervals])
    rows = select_rows(table, intervals, query.filter)
    buckets = bucket_column(rows, query.granularity, intervals)
    fast = coded_keyed_table(rows, buckets, [query.dimension])
    if fast is not None:
        keyed, keys, coded = fast
        partial = aggregate(keyed, keys, query.aggregations, coded)
    else:
        keyed, keys = keyed_table(rows, buckets, [query.dimension])
        partial = aggregate(keyed, keys, query.aggregations, outputs=key_outputs([query.dimension]))
    return _with_intervals(partial, [(i.start, i.end) for i in intervals])


def _with_intervals(partial: pa.Table, intervals: list[tuple[int, int]]) -> pa.Table:
    return partial.replace_schema_metadata({INTERVALS_KEY: orjson.dumps(sorted(set(intervals)))})


def _intervals_of(partial: pa.Table) -> list[tuple[int, int]]:
    """The clipped data intervals the partial's segments covered (each answers all its buckets)."""
    raw = (partial.schema.metadata or {}).get(INTERVALS_KEY)
    return [(int(a), int(b)) for a, b in orjson.loads(raw)] if raw else []


def merge(query: TopNQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None:
        return pa.table({})
    intervals = [i for p in partials for i in _intervals_of(p)]
    gran = query.granularity
    if isinstance(gran, AllGranularity) and table.num_rows and intervals:
        # Every row joins the one bucket, stamped with the earliest segment's clipped start.
        start = min(min(a for a, _ in intervals), pc.min(table[TIME_COLUMN]).as_py())
        idx = table.column_names.index(TIME_COLUMN)
        table = table.set_column(idx, TIME_COLUMN, pa.repeat(pa.scalar(start), table.num_rows))
    else:
        table = collapse_all(table, gran)
    merged = merge_aggregated(table, [TIME_COLUMN, query.dimension.output], query.aggregations)
    return _with_intervals(merged, intervals)


def _bucket_starts(query: TopNQuery, partial: pa.Table) -> list[int]:
    """Every bucket Druid answers: each bucket of the segments' clipped data intervals (those
    without a row answer an empty list), or the one bucket of granularity ``all``."""
    gran = query.granularity
    have = set(partial[TIME_COLUMN].to_pylist()) if partial.num_columns else set()
    intervals = _intervals_of(partial) if partial.num_columns else []
    if isinstance(gran, NoneGranularity) or not intervals:
        return sorted(have)
    if isinstance(gran, AllGranularity):
        return sorted(have) or [min(a for a, _ in intervals)]
    itvs = [Interval(a, b) for a, b in intervals]
    return sorted(have | set(bucket_starts_in(gran, itvs)))


def _order_key(metric: TopNMetric, values: dict[str, Any], dim: Any, asc: bool) -> tuple[Any, bool]:
    if metric.type == "inverted" and metric.inner is not None:
        return _order_key(metric.inner, values, dim, not asc)
    if metric.type == "numeric":
        return values[metric.metric or ""], not asc  # numeric: biggest first
    key = to_numbers(dim) if metric.ordering == "numeric" else dim
    return key, asc


def finalize(query: TopNQuery, partial: pa.Table) -> list[dict[str, Any]]:
    starts = _bucket_starts(query, partial)
    if not partial.num_columns or not partial.num_rows:
        return [{"timestamp": format_time(t, query.granularity), "result": []} for t in starts]
    dim_name = query.dimension.output
    if query.metric.type == "dimension" and query.metric.previousStop is not None:
        dim_col = partial[dim_name]
        stop = query.metric.previousStop
        after = (
            pc.greater(to_numbers(dim_col), float(stop))
            if query.metric.ordering == "numeric"
            else pc.greater(dim_col.cast(pa.string()), stop)
        )
        partial = partial.filter(pc.fill_null(after, False))
    values = finalize_values(partial, query.aggregations, query.postAggregations)
    key, asc = _order_key(query.metric, values, partial[dim_name], True)
    order = sort_indices([(partial[TIME_COLUMN], True), (key, asc), (partial[dim_name], True)])
    out_cols = {dim_name: partial[dim_name], **values}
    result = pa.table(out_cols).take(order)
    times = partial[TIME_COLUMN].take(order)
    keep = rank_within_runs(times) < query.threshold
    result = result.filter(pa.array(keep))
    times_list = times.filter(pa.array(keep)).to_pylist()
    rows = result.to_pylist()
    by_bucket: dict[int, list[dict[str, Any]]] = {t: [] for t in starts}
    for t, row in zip(times_list, rows, strict=True):
        by_bucket[t].append({k: json_value(v) for k, v in row.items()})
    return [
        {"timestamp": format_time(t, query.granularity), "result": entries}
        for t, entries in by_bucket.items()
    ]
