"""TopN: per time bucket, the ``threshold`` dimension values best by the metric ordering.

Exact, not Druid's approximate per-segment top-k: each segment's partial holds every dimension
value of each bucket (a group-by on bucket and dimension), partials merge like groupBy, and the
threshold is applied once, at finalize. Answers are therefore exact, at the price of partials as
large as the dimension's cardinality.

With granularity ``all`` a segment stamps its bucket with the start of the query interval clipped
to its data (the later of the interval's start and the segment's first row, as Druid's
``CursorGranularizer``); merged, the earliest stamp wins.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import TIME_COLUMN, to_numbers
from common.query.engine.base import (
    aggregate,
    bucket_column,
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
from common.query.engine.dims import coded_keyed_table, keyed_table
from common.query.models import TopNQuery
from common.query.specs import TopNMetric
from common.segments.intervals import Interval


def run(query: TopNQuery, table: pa.Table, interval: Interval) -> pa.Table:
    gran = query.granularity
    intervals = data_intervals(
        table, gran, effective_intervals(query.intervals.intervals, interval)
    )
    rows = select_rows(table, intervals, query.filter)
    buckets = bucket_column(rows, query.granularity, intervals)
    fast = coded_keyed_table(rows, buckets, [query.dimension])
    if fast is not None:
        keyed, keys, coded = fast
        return aggregate(keyed, keys, query.aggregations, coded)
    keyed, keys = keyed_table(rows, buckets, [query.dimension])
    return aggregate(keyed, keys, query.aggregations)


def merge(query: TopNQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None:
        return pa.table({})
    table = collapse_all(table, query.granularity)
    return merge_aggregated(table, [TIME_COLUMN, query.dimension.output], query.aggregations)


def _order_key(metric: TopNMetric, values: dict[str, Any], dim: Any, asc: bool) -> tuple[Any, bool]:
    if metric.type == "inverted" and metric.inner is not None:
        return _order_key(metric.inner, values, dim, not asc)
    if metric.type == "numeric":
        return values[metric.metric or ""], not asc  # numeric: biggest first
    key = to_numbers(dim) if metric.ordering == "numeric" else dim
    return key, asc


def finalize(query: TopNQuery, partial: pa.Table) -> list[dict[str, Any]]:
    if not partial.num_columns or not partial.num_rows:
        return []
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
    out: list[dict[str, Any]] = []
    for t, row in zip(times_list, rows, strict=True):
        if not out or out[-1]["_t"] != t:
            out.append({"_t": t, "timestamp": format_time(t, query.granularity), "result": []})
        out[-1]["result"].append({k: json_value(v) for k, v in row.items()})
    for o in out:
        del o["_t"]
    return out
