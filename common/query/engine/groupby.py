"""GroupBy: aggregates per (time bucket, dimension values), then having, ordering and limit.

Multi-value dimensions are exploded before grouping (one group per value, the cartesian product
over several), as Druid does. Rows are ordered by bucket then dimensions (nulls first) unless the
``limitSpec`` names columns; the bucket stays the first sort key unless granularity is ``all`` or
``context.sortByDimsFirst``. With granularity ``all`` every row is stamped with the start of the
first query interval (intervals sorted, as Druid condenses them), as Druid's
``getUniversalTimestamp``; with no dimensions either, nothing matched still answers Druid's one
summary row.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from common.jsonrows import ARROW_ROWS, objects_json, objects_json_arrays
from common.query.columns import TIME_COLUMN, to_numbers, to_strings
from common.query.engine.base import (
    aggregate,
    bucket_column,
    collapse_all,
    concat,
    data_intervals,
    effective_intervals,
    empty_partial,
    finalize_values,
    format_time,
    json_rows,
    merge_aggregated,
    select_rows,
    sort_indices,
)
from common.query.engine.dense import run_dense
from common.query.engine.dims import coded_keyed_table, key_outputs, keyed_table, output_type
from common.query.filters import filter_mask
from common.query.javatext import druid_json, result_text_array, result_texts
from common.query.models import GroupByQuery
from common.query.specs import (
    AndHaving,
    CompareHaving,
    DimSelectorHaving,
    FilterHaving,
    NotHaving,
    OrHaving,
)
from common.segments.granularity import AllGranularity
from common.segments.intervals import Interval


def run(query: GroupByQuery, table: pa.Table, interval: Interval) -> pa.Table:
    gran = query.granularity
    intervals = data_intervals(
        table, gran, effective_intervals(query.intervals.intervals, interval)
    )
    dense = run_dense(table, gran, intervals, query.filter, query.dimensions, query.aggregations)
    if dense is not None:
        return dense
    rows = select_rows(table, intervals, query.filter)
    buckets = bucket_column(rows, query.granularity, intervals)
    fast = coded_keyed_table(rows, buckets, query.dimensions)
    if fast is not None:
        keyed, keys, coded = fast
        return aggregate(keyed, keys, query.aggregations, coded)
    keyed, keys = keyed_table(rows, buckets, query.dimensions)
    return aggregate(keyed, keys, query.aggregations, outputs=key_outputs(query.dimensions))


def _keys(query: GroupByQuery) -> list[str]:
    return [TIME_COLUMN, *(d.output for d in query.dimensions)]


def merge(query: GroupByQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None:
        return pa.table({})
    for d in query.dimensions:
        table = table.set_column(
            table.column_names.index(d.output), d.output, table[d.output].cast(output_type(d))
        )
    table = collapse_all(table, query.granularity)
    return merge_aggregated(table, _keys(query), query.aggregations)


def having_mask(spec: Any, table: pa.Table) -> Any:
    """Rows of the finalized result that a having spec keeps (null compares as not kept)."""
    if isinstance(spec, CompareHaving):
        col = (
            to_numbers(table[spec.aggregation])
            if spec.aggregation in table.column_names
            else (pa.nulls(table.num_rows, pa.float64()))
        )
        op = {"greaterThan": pc.greater, "lessThan": pc.less, "equalTo": pc.equal}[spec.type]
        return pc.fill_null(op(col, float(spec.value)), False)
    if isinstance(spec, DimSelectorHaving):
        col = (
            to_strings(table[spec.dimension])
            if spec.dimension in table.column_names
            else (pa.nulls(table.num_rows, pa.string()))
        )
        if spec.value is None:
            return pc.is_null(col)
        return pc.fill_null(pc.equal(col, spec.value), False)
    if isinstance(spec, FilterHaving):
        return filter_mask(spec.filter, table)
    if isinstance(spec, AndHaving | OrHaving):
        masks = [having_mask(h, table) for h in spec.havingSpecs]
        out = masks[0]
        for m in masks[1:]:
            out = pc.and_(out, m) if isinstance(spec, AndHaving) else pc.or_(out, m)
        return out
    if isinstance(spec, NotHaving):
        return pc.invert(having_mask(spec.havingSpec, table))
    raise TypeError(f"unknown having spec {spec!r}")


def _summary_row(query: GroupByQuery) -> pa.Table | None:
    """Druid's summary row (``wrapSummaryRowIfNeeded``): with no dimensions, granularity ``all``
    and no ``offset``, nothing matched still answers one row of the aggregators over nothing."""
    if query.dimensions or not isinstance(query.granularity, AllGranularity):
        return None
    if query.limitSpec is not None and query.limitSpec.offset > 0:
        return None
    return empty_partial(query.aggregations, [_universal_start(query)])


def _universal_start(query: GroupByQuery) -> int:
    """Druid's getUniversalTimestamp: the start of the first of the condensed intervals."""
    return min(i.start for i in query.intervals.intervals)


def _subtotals(query: GroupByQuery, partial: pa.Table) -> list[dict[str, Any]]:
    """Druid's ``subtotalsSpec``: the merged rows re-grouped on each subtotal's dimensions (the
    others null), each subtotal finalized with the query's having and limitSpec (its ordering
    columns kept when they are a subtotal dimension or not a dimension at all), the subtotals
    answered one after another in the spec's order."""
    from common.query.aggregators import GroupingAgg

    outputs = [d.output for d in query.dimensions]
    out: list[dict[str, Any]] = []
    for sub in query.subtotalsSpec or []:
        table = partial
        if table.num_columns and table.num_rows:
            for name in outputs:
                if name not in sub:
                    i = table.column_names.index(name)
                    table = table.set_column(
                        i, name, pa.nulls(table.num_rows, table.schema.field(i).type)
                    )
            table = merge_aggregated(table, _keys(query), query.aggregations)
        aggs = [
            a.model_copy(update={"keyDimensions": list(sub)}) if isinstance(a, GroupingAgg) else a
            for a in query.aggregations
        ]
        limit = query.limitSpec
        if limit is not None:
            cols = [c for c in limit.columns if c.dimension in sub or c.dimension not in outputs]
            limit = limit.model_copy(update={"columns": cols})
        subq = query.model_copy(
            update={"subtotalsSpec": None, "aggregations": aggs, "limitSpec": limit}
        )
        out.extend(finalize(subq, table))
    return out


def finalize(query: GroupByQuery, partial: pa.Table) -> list[dict[str, Any]]:
    if query.subtotalsSpec is not None:
        return _subtotals(query, partial)
    result = finalized_table(query, partial)
    if result is None:
        return []
    events = json_rows(result.drop_columns([TIME_COLUMN]))
    return [
        {"version": "v1", "timestamp": ts, "event": ev}
        for ts, ev in zip(_stamps(query, result), events, strict=True)
    ]


def _stamps(query: GroupByQuery, result: pa.Table) -> list[str]:
    """Each finalized row's timestamp text: Druid's universal timestamp with granularity
    ``all`` (one text), else its bucket's start (one text per bucket)."""
    gran = query.granularity
    if isinstance(gran, AllGranularity):
        return [format_time(_universal_start(query), gran)] * result.num_rows
    texts: dict[int, str] = {}
    return [
        texts[t] if t in texts else texts.setdefault(t, format_time(t, gran))
        for t in result[TIME_COLUMN].to_pylist()
    ]


def finalize_json(query: GroupByQuery, partial: pa.Table) -> bytes:
    """``finalize``'s rows as JSON, written from the columns (``common.jsonrows``) without a
    dict per row: the same bytes as ``druid_json(finalize(...))``."""
    result = None if query.subtotalsSpec is not None else finalized_table(query, partial)
    events = None if result is None else result.drop_columns([TIME_COLUMN])
    if result is None or events is None or len(set(events.column_names)) != events.num_columns:
        return druid_json(finalize(query, partial))
    stamps = _stamps(query, result)
    heads = {stamp: _row_head(stamp) for stamp in set(stamps)}
    before: bytes | list[bytes]
    if len(heads) == 1:  # granularity all, or one bucket: one head for every row
        (before,) = heads.values()
    else:
        before = [heads[stamp] for stamp in stamps]
    if events.num_rows < ARROW_ROWS:
        texts = [result_texts(c) for c in events.columns]
        return objects_json(events.column_names, texts, events.num_rows, before, b"}")
    arrays = [result_text_array(c) for c in events.columns]
    heads_ = pa.array(before, pa.binary()) if isinstance(before, list) else before
    return objects_json_arrays(events.column_names, arrays, heads_, b"}")


def _row_head(stamp: str) -> bytes:
    return b'{"version":"v1","timestamp":' + orjson.dumps(stamp) + b',"event":'


def finalized_table(query: GroupByQuery, partial: pa.Table) -> pa.Table | None:
    """The rows ``finalize`` answers, as columns: ``__time`` (the row's timestamp in millis: the
    bucket start, or with granularity ``all`` Druid's universal timestamp), the dimensions, the
    finalized aggregators and the post-aggregators, after ``having``, ordering and
    ``limitSpec``. None when there is no row, and for a ``subtotalsSpec`` (whose rows
    ``finalize`` builds per subtotal)."""
    if query.subtotalsSpec is not None:
        return None
    if not partial.num_columns or not partial.num_rows:
        summary = _summary_row(query)
        if summary is None:
            return None
        partial = summary
    values = finalize_values(partial, query.aggregations, query.postAggregations)
    cols: dict[str, Any] = {TIME_COLUMN: partial[TIME_COLUMN]}
    for d in query.dimensions:
        cols[d.output] = partial[d.output]
    cols.update(values)
    result = pa.table(cols)
    if query.having is not None:
        result = result.filter(having_mask(query.having, result))
    result = result.take(_order(query, result))
    limit_spec = query.limitSpec
    if limit_spec is not None:
        result = result.slice(limit_spec.offset, limit_spec.limit)
    if isinstance(query.granularity, AllGranularity):
        start = pa.scalar(_universal_start(query), pa.int64())
        at = result.schema.get_field_index(TIME_COLUMN)
        result = result.set_column(at, TIME_COLUMN, pa.repeat(start, result.num_rows))
    return result


def _order(query: GroupByQuery, result: pa.Table) -> Any:
    keys: list[tuple[Any, bool]] = []
    time_first = not isinstance(query.granularity, AllGranularity)
    columns = query.limitSpec.columns if query.limitSpec is not None else []
    if time_first and not (columns and query.context.sortByDimsFirst):
        keys.append((result[TIME_COLUMN], True))
    if columns:
        for c in columns:
            col = result[c.dimension]
            if c.dimensionOrder == "numeric" and not pa.types.is_floating(col.type):
                col = to_numbers(col)
            keys.append((col, c.direction == "ascending"))
        # Druid's DefaultLimitSpec breaks ties on the dimensions not ordered by, ascending;
        # so no answer depends on the order of the partial's rows.
        named = {c.dimension for c in columns}
        keys.extend((result[d.output], True) for d in query.dimensions if d.output not in named)
        if query.context.sortByDimsFirst and time_first:
            keys.append((result[TIME_COLUMN], True))
    else:
        keys.extend((result[d.output], True) for d in query.dimensions)
    if not keys:
        return pa.array(range(result.num_rows), pa.int64())
    return sort_indices(keys)
