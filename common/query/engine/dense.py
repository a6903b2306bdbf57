"""TopN and groupBy over a segment with numpy, on dense group numbers instead of hashing.

When every grouping key has few possible values (the time bucket of a sorted ``__time``; a
single-value dictionary dimension, numbered by its dictionary codes; a LONG dimension with a
small range of values, numbered from its minimum) each row's group is a number
``bucket * stride + code * stride' + ...`` below a small bound, and every aggregator is a
``np.bincount`` / ``np.<op>.at`` over those numbers: no hash table. The rows are read batch by
batch (``batches``): keys, filter masks and inputs as views of a batch, so no step copies a whole
column. A ``filtered`` aggregator's filter is evaluated once (on a dictionary column, on its
dictionary: see ``filters.mask_numpy``) and selects the batch's rows it reduces.

The answer is the partial ``base.aggregate`` gives, value for value: the same groups (those
holding a selected row), counts of valid values, integer sums wrapping as Acero's, double sums
accumulated in row order (as Acero's grouped sum), NaN-skipping min and max (NaN for a group of
only NaN), nulls where a group has no valid value. Only the order of the partial's rows differs
(by group number here, by Acero's hash table there); no result depends on it (finalize sorts with
a total order; see ``groupby._order``).

``run_dense`` returns None whenever a key, an aggregator or an input is outside that (multi-value
or plain string dimensions, sketches, first/last, unsorted time, too many possible groups, -0.0
among double min/max inputs) and the caller takes the general path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from common.query.aggregators import CountAgg, FilteredAgg, _SimpleAgg
from common.query.columns import BUCKET_COLUMN, TIME_COLUMN, one_dictionary
from common.query.engine.batches import (
    GroupReducer,
    SortedTimes,
    codes_view,
    row_batches,
    valid_view,
    values_view,
)
from common.query.engine.lazy import selected_inputs
from common.query.engine.sorted_time import (
    COUNT_VALID,
    bucket_bounds,
    kept_rows,
    known_sorted,
    sorted_millis,
)
from common.query.engine.timeindex import time_index
from common.query.filters import mask_numpy
from common.query.specs import DimensionSpec
from common.segments.granularity import AllGranularity, Granularity, NoneGranularity
from common.segments.intervals import Interval

#: Possible groups (product of the keys' value counts) beyond which hashing is used instead.
MAX_GROUPS = 1 << 22
#: A LONG dimension is numbered from its minimum when its range is at most this wide.
MAX_LONG_RANGE = 1 << 16
_EXACT = 1 << 53  # LONG dimensions pass through doubles on the general path: stay exact


@dataclass
class _Key:
    """One grouping key: codes ``0 <= code < size`` of rows ``[a, b)`` and their values."""

    name: str
    size: int
    codes: Callable[[int, int], Any]  # (a, b) -> np.ndarray of the rows' codes
    decode: Callable[[Any], Any]  # codes of the output groups -> Arrow array of key values


@dataclass
class _Input:
    """One reduction of an aggregator: its op over a column (None: rows), restricted to the rows
    of ``mask`` (filtered aggregators; None for all) and to the column's valid values."""

    op: str
    column: Any
    mask: Any
    selected: Any = None  # or the values at the selected rows only, as numpy (``lazy``)
    reducer: GroupReducer | None = None


class _Decline(Exception):
    """An input the numpy reductions cannot answer exactly: the general path takes the query."""


def _supported(agg: Any) -> bool:
    if isinstance(agg, FilteredAgg):
        return _supported(agg.inner)
    return isinstance(agg, CountAgg | _SimpleAgg)


def run_dense(
    table: pa.Table,
    gran: Granularity,
    intervals: Sequence[Interval],
    flt: Any,
    dims: Sequence[DimensionSpec],
    aggs: Sequence[Any],
) -> pa.Table | None:
    """The ``aggregate(rows, [bucket, *dims], aggs)`` partial of the selected rows, or None."""
    outputs = [d.output for d in dims]
    if len(set(outputs)) != len(outputs) or BUCKET_COLUMN in outputs or TIME_COLUMN in outputs:
        return None
    if isinstance(gran, NoneGranularity) or not intervals or not table.num_rows:
        return None
    if not all(_supported(a) for a in aggs):
        return None
    if not all(_key_possible(table, d) for d in dims):
        return None
    selected = _selected(table, intervals, flt)
    if selected is None:
        return None
    sub, times, keep = selected
    n = sub.num_rows if keep is None else int(np.count_nonzero(keep))
    if not n:
        return None
    bucket = _bucket_key(gran, intervals, times, keep, sub.num_rows)
    if bucket is None:
        return None
    keys = [bucket]
    for d in dims:
        key = _dim_key(sub, d, keep)
        if key is None:
            return None
        keys.append(key)
    total = 1
    for key in keys:
        total *= key.size
    if total > MAX_GROUPS or total > 16 * n + 65_536:
        return None  # sparse: arrays per group would outweigh the rows
    positions = _Positions(keep)
    plans: list[list[_Input]] = []
    for agg in aggs:
        plan = _plan(agg, sub, None, positions)
        if plan is None:
            return None
        plans.append(plan)
    try:
        rows = _reduce(sub, keep, keys, total, [i for plan in plans for i in plan])
    except _Decline:
        return None
    present = np.flatnonzero(rows.counts)
    out: dict[str, Any] = {}
    rest = present
    decoded: list[tuple[str, Any]] = []
    for key in reversed(keys):
        decoded.append((key.name, key.decode(rest % key.size)))
        rest = rest // key.size
    for name, values in reversed(decoded):
        out[name] = values
    for agg, plan in zip(aggs, plans, strict=True):
        out[agg.name] = agg.segment_finish(
            [i.reducer.result(present) for i in plan if i.reducer is not None]
        )
    return pa.table(out)


class _Positions:
    """The selected rows as positions into ``sub`` (None: all), made once when first asked."""

    def __init__(self, keep: Any) -> None:
        self.keep = keep
        self._positions: Any = None

    def get(self) -> Any:
        if self.keep is not None and self._positions is None:
            self._positions = np.flatnonzero(self.keep)
        return self._positions


def _selected(
    table: pa.Table, intervals: Sequence[Interval], flt: Any
) -> tuple[pa.Table, Callable[[int, int], Any], Any] | None:
    """``(rows, their times (a, b) -> numpy, kept rows or None)``: the row range of a sorted
    table spanning ``intervals`` (found by ``timeindex``, its times read batch by batch: no copy
    of ``__time``) and a mask of the rows in the intervals that ``flt`` keeps."""
    if not known_sorted(table) and sorted_millis(table) is None:
        return None
    bounds = time_index(table).search([[i.start, i.end] for i in intervals])
    lo, hi = int(bounds[0][0]), int(bounds[-1][1])
    if hi <= lo:
        return None
    sub = table.slice(lo, hi - lo)
    col = sub.column(TIME_COLUMN)
    return sub, lambda a, b: values_view(col, a, b), kept_rows(sub, bounds, lo, flt)


def _plan(agg: Any, sub: pa.Table, mask: Any, positions: _Positions) -> list[_Input] | None:
    """The reductions ``agg.segment_finish`` takes, in order; ``mask``: the rows (of ``sub``, a
    numpy boolean array) the ``filtered`` aggregators around it keep, None for all."""
    if isinstance(agg, FilteredAgg):
        mine = mask_numpy(agg.filter, sub)
        return _plan(agg.inner, sub, mine if mask is None else mask & mine, positions)
    if isinstance(agg, CountAgg):
        return [_Input("count", None, mask)]
    if isinstance(agg, _SimpleAgg) and agg.expression is not None:
        lazy = selected_inputs(agg, sub, positions.get())
        if lazy is not None:
            return [_Input(op, None, mask, selected=values) for values, _v, op, _o in lazy]
    out = []
    for arr, op, opts in agg.inputs(sub):
        if op not in ("count", "sum", "min", "max") or (op == "count") != (opts is not None):
            return None
        if op == "count" and opts != COUNT_VALID:
            return None
        if not (pa.types.is_int64(arr.type) or pa.types.is_float64(arr.type)):
            return None
        out.append(_Input(op, arr if op != "count" or arr.null_count else None, mask))
    return out


def _reduce(sub: pa.Table, keep: Any, keys: list[_Key], total: int, inputs: list[_Input]) -> Any:
    """Feed every batch of the selected rows to one reducer per input; the rows per group."""
    rows = GroupReducer("count", None, total)
    for i in inputs:
        kind = None
        if i.selected is not None:
            kind = i.selected.dtype.kind
        elif i.column is not None:
            kind = "f" if pa.types.is_float64(i.column.type) else "i"
        i.reducer = GroupReducer(i.op, kind, total)
    at = 0  # selected rows before the batch
    for a, b in row_batches(sub):
        pos = None if keep is None else np.flatnonzero(keep[a:b])
        if pos is not None and not len(pos):
            continue
        gid = _group_ids(keys, a, b, pos)
        per_group = np.bincount(gid, minlength=total)
        rows.add(gid, None, per_group)
        for i in inputs:
            _feed(i, a, b, pos, gid, at, per_group)
        at += len(gid)
    return rows


def _group_ids(keys: list[_Key], a: int, b: int, pos: Any) -> Any:
    gid: Any = None
    stride = 1
    for key in reversed(keys):
        if key.size > 1:
            codes = key.codes(a, b)
            if pos is not None:
                codes = codes.take(pos)
            codes = codes.astype(np.intp) if stride == 1 else codes * np.intp(stride)
            gid = codes if gid is None else gid + codes
        stride *= key.size
    if gid is None:
        gid = np.zeros(b - a if pos is None else len(pos), dtype=np.intp)
    return gid


def _feed(i: _Input, a: int, b: int, pos: Any, gid: Any, at: int, per_group: Any) -> None:
    """One batch (rows ``[a, b)``, those at ``pos`` of them, the selected rows ``at`` to
    ``at + len(gid)``, ``per_group`` of them in each group) into the input's reducer."""
    m = None if i.mask is None else i.mask[a:b]
    if i.column is not None:
        valid = valid_view(i.column, a, b)
        if valid is not None:
            m = valid if m is None else m & valid
    sel = pos
    g = gid
    idx = None
    counts = per_group
    if m is not None:
        if pos is not None:
            m = m.take(pos)
        idx = np.flatnonzero(m)
        g = gid.take(idx)
        sel = idx if pos is None else pos.take(idx)
        counts = None
    values = None
    if i.selected is not None:
        values = i.selected[at : at + len(gid)]
        if idx is not None:
            values = values.take(idx)
    elif i.op != "count":
        values = values_view(i.column, a, b)
        if sel is not None:
            values = values.take(sel)
        if i.op in ("min", "max") and values.dtype.kind == "f":
            if bool(np.any((values == 0) & np.signbit(values))):
                raise _Decline  # which zero Acero keeps depends on its order
    assert i.reducer is not None
    i.reducer.add(g, values, counts)


def _key_possible(table: pa.Table, d: DimensionSpec) -> bool:
    if d.type != "default" or d.extractionFn is not None:
        return False  # a lookup or extraction maps values: not the stored codes
    if d.dimension not in table.column_names:
        return False
    typ = table.schema.field(d.dimension).type
    if d.outputType == "STRING":
        return bool(pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type))
    return d.outputType == "LONG" and pa.types.is_int64(typ)


def _bucket_key(
    gran: Granularity, intervals: Sequence[Interval], times: Any, keep: Any, n: int
) -> _Key | None:
    if isinstance(gran, AllGranularity):
        start = intervals[0].start
        return _Key(
            TIME_COLUMN,
            1,
            lambda a, b: np.zeros(b - a, dtype=np.intp),
            lambda codes: pa.array(np.full(len(codes), start, dtype=np.int64)),
        )
    if keep is None:
        first, last = 0, n - 1
    else:
        first, last = int(np.argmax(keep)), n - 1 - int(np.argmax(keep[::-1]))
    first, last = int(times(first, first + 1)[0]), int(times(last, last + 1)[0])
    starts = bucket_bounds(gran, first, last)
    if starts is None:
        return None
    buckets = SortedTimes(starts)
    # rows before the first selected one may precede ``starts``: clip them to bucket 0 (they
    # are never kept)
    return _Key(
        TIME_COLUMN,
        len(starts),
        lambda a, b: buckets.codes(np.maximum(times(a, b), starts[0])),
        lambda c: pa.array(starts[c], pa.int64()),
    )


def _dim_key(sub: pa.Table, d: DimensionSpec, keep: Any) -> _Key | None:
    col = sub.column(d.dimension)
    if d.outputType == "STRING":
        dictionary = one_dictionary(col)
        if dictionary is None:
            return None
        size = len(dictionary) + 1  # the last code: null

        def decode_dict(c: Any) -> Any:
            return dictionary.take(pa.array(c, pa.int64(), mask=c == size - 1))

        return _Key(d.output, size, lambda a, b: codes_view(col, a, b, size - 1), decode_dict)
    valid: Any = None
    if col.null_count:
        valid = np.asarray(col.is_valid().to_numpy(), dtype=bool)
        col = col.fill_null(0)
    values = np.asarray(col.to_numpy(), dtype=np.int64)
    live_mask = valid if keep is None else (keep if valid is None else keep & valid)
    live = values if live_mask is None else values[live_mask]
    low, high = (int(live.min()), int(live.max())) if len(live) else (0, 0)
    if high - low >= MAX_LONG_RANGE or low < -_EXACT or high > _EXACT:
        return None
    size = high - low + 2  # the last code: null
    codes = np.subtract(values, low, dtype=np.intp)
    if valid is not None:
        codes[~valid] = size - 1

    def decode_long(c: Any) -> Any:
        return pa.array(c + low, pa.int64(), mask=c == size - 1)

    return _Key(d.output, size, lambda a, b: codes[a:b], decode_long)
