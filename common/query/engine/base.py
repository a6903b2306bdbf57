"""Building blocks every query engine shares: row selection by intervals and filter, time
bucketing, Acero aggregation into partials, keyed merging, finalizing and result timestamps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.errors import ResourceLimitExceeded
from common.query.columns import BUCKET_COLUMN, TIME_COLUMN, get_column, plain
from common.query.engine import arraykeys
from common.query.engine.sorted_time import known_sorted
from common.query.engine.timeindex import time_index
from common.query.engine.unify import unify_tables
from common.query.filters import filter_mask
from common.query.postaggs import Env, apply_post_aggs
from common.segments.granularity import AllGranularity, Granularity, PeriodGranularity
from common.segments.intervals import Interval, condense
from common.segments.isotime import format_iso

MAX_EMPTY_BUCKETS = 1_000_000  # zero-filling more buckets than this per segment is refused


def effective_intervals(query_intervals: Sequence[Interval], segment: Interval) -> list[Interval]:
    """The parts of the query intervals inside the segment's (clipped) interval."""
    out = [i for i in (q.intersection(segment) for q in query_intervals) if i is not None]
    return condense(i for i in out if not i.is_empty)


def data_intervals(
    table: pa.Table, gran: Granularity, intervals: Sequence[Interval]
) -> list[Interval]:
    """``intervals`` clipped to the segment's data interval, ``[earliest __time, end of the bucket
    of the latest __time)``, as Druid's ``CursorGranularizer`` clips the query interval with the
    segment's time boundary: a timeseries fills empty buckets, and granularity ``all`` stamps its
    bucket, only from the segment's first row on and up to the bucket of its last (filters do not
    narrow it). Empty when the segment has no rows."""
    if not intervals or not table.num_rows:
        return []
    lo: int | None
    hi: int | None
    if TIME_COLUMN in table.column_names and known_sorted(table):
        index = time_index(table)  # sorted, no nulls: the first and the last row
        lo, hi = index.at(0), index.at(index.rows - 1)
    elif TIME_COLUMN in table.column_names:
        mm = pc.min_max(table.column(TIME_COLUMN))  # on the column as stored: no cast of it
        lo, hi = _scalar_millis(mm["min"]), _scalar_millis(mm["max"])
    else:
        lo = hi = 0
    if lo is None or hi is None:
        return []
    span = Interval(lo, max(gran.next(hi), hi + 1))
    out = [i for i in (q.intersection(span) for q in intervals) if i is not None]
    return [i for i in out if not i.is_empty]


def _scalar_millis(value: pa.Scalar) -> int | None:
    if pa.types.is_timestamp(value.type):
        value = value.cast(pa.timestamp("ms", tz=value.type.tz)).cast(pa.int64())
    out = value.as_py()
    return None if out is None else int(out)


def time_millis(table: pa.Table) -> Any:
    """``__time`` as int64 epoch milliseconds."""
    if TIME_COLUMN not in table.column_names:
        return pa.chunked_array([pa.array(np.zeros(table.num_rows, dtype=np.int64))])
    return plain(table.column(TIME_COLUMN))


def select_rows(table: pa.Table, intervals: Sequence[Interval], flt: Any) -> pa.Table:
    """Rows whose ``__time`` is inside one of ``intervals`` and that the filter keeps."""
    if not intervals:
        return table.slice(0, 0)
    millis = time_millis(table)
    in_time: Any = None
    for itv in intervals:
        hit = pc.and_(pc.greater_equal(millis, itv.start), pc.less(millis, itv.end))
        in_time = hit if in_time is None else pc.or_(in_time, hit)
    mask = pc.and_(pc.fill_null(in_time, False), filter_mask(flt, table))
    if table.num_rows and pc.all(mask).as_py():
        return table  # every row kept: spare the copy
    return table.filter(mask)


def bucket_column(table: pa.Table, gran: Granularity, intervals: Sequence[Interval]) -> Any:
    """The bucket start (int64 ms) of each row; with ``all``, the start of the first of
    ``intervals`` (the query intervals clipped by ``data_intervals``), as Druid stamps it."""
    if isinstance(gran, AllGranularity):
        start = intervals[0].start if intervals else 0
        return pa.array(np.full(table.num_rows, start, dtype=np.int64))
    return gran.bucket_starts(time_millis(table))


def bucket_starts_in(gran: Granularity, intervals: Sequence[Interval]) -> list[int]:
    """Every bucket start of ``intervals`` (for zero-filling empty timeseries buckets)."""
    if isinstance(gran, AllGranularity):
        return [intervals[0].start] if intervals else []
    out: list[int] = []
    for itv in intervals:
        for b in gran.iter_buckets(itv):
            if not out or b.start > out[-1]:
                out.append(b.start)
            if len(out) > MAX_EMPTY_BUCKETS:
                raise ResourceLimitExceeded(
                    f"granularity gives more than {MAX_EMPTY_BUCKETS} buckets; use a coarser "
                    "granularity or context.skipEmptyBuckets"
                )
    return out


def _spec(name: str, op: str, opts: Any) -> tuple[Any, ...]:
    return (name, op, opts) if opts is not None else (name, op)


def aggregate(
    table: pa.Table,
    keys: list[str],
    aggs: Sequence[Any],
    coded: Mapping[str, tuple[Any, Any]] | None = None,
    outputs: Mapping[str, str] | None = None,
) -> pa.Table:
    """Group ``table`` by ``keys`` and reduce every aggregator into its partial column.

    ``coded`` maps key names to (integer codes, dictionary): those keys are grouped on the codes
    and decoded through the dictionary afterwards (aggregators still read ``table``). A
    ``BUCKET_COLUMN`` key comes out named ``__time``: grouping on the bucket while aggregators
    read the rows' own ``__time``; ``outputs`` renames keys in the result (``dims.key_name``)."""
    coded = dict(coded or {})
    for k in keys:
        if k not in coded and arraykeys.is_array(table.schema.field(k).type):
            coded[k] = arraykeys.encode(table.column(k))  # ARRAY keys: whole arrays
    cols: dict[str, Any] = {k: coded[k][0] if k in coded else table.column(k) for k in keys}
    specs: list[tuple[Any, ...]] = []
    layout: list[list[str]] = []
    for i, agg in enumerate(aggs):
        names = []
        for j, (arr, op, opts) in enumerate(agg.inputs(table)):
            col = f"__a{i}_{j}"
            cols[col] = arr
            specs.append(_spec(col, op, opts))
            names.append(f"{col}_{op}")
        layout.append(names)
    if not cols:
        cols["__rows"] = pa.array(np.zeros(table.num_rows, dtype=np.int8))
    grouped = pa.table(cols).group_by(keys, use_threads=False).aggregate(specs)
    out: dict[str, Any] = {
        TIME_COLUMN if k == BUCKET_COLUMN else (outputs or {}).get(k, k): (
            arraykeys.decode(grouped.column(k), coded[k][1]) if k in coded else grouped.column(k)
        )
        for k in keys
    }
    for agg, names in zip(aggs, layout, strict=True):
        out[agg.name] = agg.segment_finish_rows(
            [grouped.column(n).combine_chunks() for n in names], table
        )
    return pa.table(out) if out else pa.table({})


def concat(partials: Sequence[pa.Table]) -> pa.Table | None:
    """One table of the partials (of segments whose column types may differ: see ``unify``)."""
    tables = [p for p in partials if p.num_columns]
    if not tables:
        return None
    return pa.concat_tables(unify_tables(tables), promote_options="permissive")


def collapse_all(table: pa.Table, gran: Granularity) -> pa.Table:
    """With granularity ``all``, every partial row joins one bucket stamped with the earliest
    stamp (each segment stamps the start of its clipped data interval; Druid keeps whichever
    segment's its merge sees first, kdruid the earliest, so the answer does not depend on order)."""
    if not isinstance(gran, AllGranularity) or not table.num_rows:
        return table
    start = pc.min(table[TIME_COLUMN]).as_py()
    idx = table.column_names.index(TIME_COLUMN)
    return table.set_column(
        idx, TIME_COLUMN, pa.repeat(pa.scalar(start, pa.int64()), table.num_rows)
    )


def empty_partial(aggs: Sequence[Any], starts: Any) -> pa.Table:
    """Partial rows of buckets with no rows in them (each aggregator's value over nothing)."""
    n = len(starts)
    empty: dict[str, Any] = {TIME_COLUMN: pa.array(starts, pa.int64())}
    for agg in aggs:
        empty[agg.name] = pa.array([agg.empty_value()] * n, agg.partial_type)
    return pa.table(empty)


#: Merge ops whose value over one row is that row's value (Acero's ``sum``, ``min``, ``max``).
_ONE_ROW_OPS = frozenset({"sum", "min", "max"})


def merge_aggregated(table: pa.Table, keys: list[str], aggs: Sequence[Any]) -> pa.Table:
    """Re-group concatenated partials by ``keys`` and merge every aggregator's partials."""
    if table.num_rows == 1 and all(not a.gathers_rows and a.merge_op in _ONE_ROW_OPS for a in aggs):
        return _merge_one_row(table, keys, aggs)
    coded = {
        k: arraykeys.encode(table.column(k))
        for k in keys
        if arraykeys.is_array(table.schema.field(k).type)
    }
    cols: dict[str, Any] = {k: coded[k][0] if k in coded else table.column(k) for k in keys}
    specs = []
    partials: dict[str, Any] = {}
    for i, agg in enumerate(aggs):
        partial = get_column(table, agg.name).cast(agg.partial_type)
        if agg.gathers_rows:  # Acero gathers row numbers; the aggregator takes the rows
            partials[agg.name] = partial
            rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
            partial = pc.if_else(pc.is_valid(partial), rows, pa.scalar(None, pa.int64()))
        cols[f"__m{i}"] = partial
        specs.append((f"__m{i}", "list" if agg.gathers_rows else agg.merge_op))
    grouped = pa.table(cols).group_by(keys, use_threads=False).aggregate(specs)
    out: dict[str, Any] = {
        k: arraykeys.decode(grouped.column(k), coded[k][1]) if k in coded else grouped.column(k)
        for k in keys
    }
    for i, agg in enumerate(aggs):
        op = "list" if agg.gathers_rows else agg.merge_op
        merged = grouped.column(f"__m{i}_{op}").combine_chunks()
        out[agg.name] = (
            agg.merge_finish_rows(merged, partials[agg.name])
            if agg.gathers_rows
            else agg.merge_finish(merged)
        )
    return pa.table(out)


def _merge_one_row(table: pa.Table, keys: list[str], aggs: Sequence[Any]) -> pa.Table:
    """``merge_aggregated`` of a single row (a tiny query's one partial row), without Acero:
    the row is its own group and the sum, min or max of one value is that value (null stays
    null), so only the partial type casts remain."""
    out: dict[str, Any] = {k: table.column(k).combine_chunks() for k in keys}
    for agg in aggs:
        partial = get_column(table, agg.name).cast(agg.partial_type)
        out[agg.name] = agg.merge_finish(partial.combine_chunks())
    return pa.table(out)


def finalize_values(
    table: pa.Table, aggs: Sequence[Any], post_aggs: Sequence[Any]
) -> dict[str, Any]:
    """Finalized aggregator columns and post-aggregator columns, by output name, in order."""
    raw = {a.name: (table.column(a.name).combine_chunks(), a.sketch_kind) for a in aggs}
    final = {a.name: a.finalize(raw[a.name][0]) for a in aggs}
    env = Env(raw=dict(raw), final=dict(final), table=table)
    post = apply_post_aggs(list(post_aggs), env, table.num_rows)
    return {**final, **post}


def sort_indices(keys: Sequence[tuple[Any, bool]]) -> Any:
    """Stable sort order over (column, ascending) keys; nulls first ascending, last descending."""
    cols: dict[str, Any] = {}
    sort_keys = []
    for i, (arr, asc) in enumerate(keys):
        if arraykeys.is_array(arr.type):
            arr = arraykeys.rank(arr)
        order = "ascending" if asc else "descending"
        cols[f"v{i}"] = pc.is_valid(arr)
        cols[f"k{i}"] = arr
        sort_keys += [(f"v{i}", order), (f"k{i}", order)]
    return pc.sort_indices(pa.table(cols), sort_keys=sort_keys)


def rank_within_runs(run_keys: Any) -> Any:
    """0, 1, 2... restarting whenever the (sorted) key changes: the row's rank in its group."""
    values = np.asarray(run_keys.to_numpy(zero_copy_only=False))
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    counts = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, counts)


def format_time(millis: int, gran: Granularity) -> str:
    """ISO timestamp as Druid prints it: UTC ``...Z``, or local time with the offset of the
    granularity's time zone."""
    zone = gran.zone if isinstance(gran, PeriodGranularity) else None
    if zone is None or zone.is_utc:
        return format_iso(millis)
    off = zone.offset(millis)
    sign = "+" if off >= 0 else "-"
    mins = abs(off) // 60_000
    return f"{format_iso(millis + off)[:-1]}{sign}{mins // 60:02d}:{mins % 60:02d}"


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()`` with binary values (sketches) as base64, converting only the binary
    columns so wide results do not pay a Python call per value."""
    rows: list[dict[str, Any]] = table.to_pylist()
    binary = [
        f.name
        for f in table.schema
        if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
    ]
    if binary:
        for row in rows:
            for name in binary:
                row[name] = json_value(row[name])
    return rows


def json_value(v: Any) -> Any:
    if isinstance(v, bytes):
        import base64

        return base64.b64encode(v).decode()
    return v
