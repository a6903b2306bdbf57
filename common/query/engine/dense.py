"""TopN and groupBy over a segment with numpy, on dense group numbers instead of hashing.

When every grouping key has few possible values (the time bucket of a sorted ``__time``; a
single-value dictionary dimension, numbered by its dictionary codes; a LONG dimension with a
small range of values, numbered from its minimum) each row's group is a number
``bucket * stride + code * stride' + ...`` below a small bound, and every aggregator is a
``np.bincount`` / ``np.<op>.at`` over those numbers: no hash table, no copy of the selected rows
(the filter gives positions, the inputs are gathered at them).

The answer is the partial ``base.aggregate`` gives, value for value: the same groups (those
holding a selected row), counts of valid values, integer sums wrapping as Acero's, double sums
accumulated in row order (``np.bincount`` with weights adds sequentially, as Acero's grouped
sum does), NaN-skipping min and max, nulls where a group has no valid value. Only the order of
the partial's rows differs (by group number here, by Acero's hash table there); no result depends
on it (finalize sorts with a total order; see ``groupby._order``).

``run_dense`` returns None whenever a key, an aggregator or an input is outside that (multi-value
or plain string dimensions, sketches, first/last, unsorted time, too many possible groups) and
the caller takes the general path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from common.query.aggregators import CountAgg, FilteredAgg, _SimpleAgg
from common.query.columns import BUCKET_COLUMN, TIME_COLUMN, one_dictionary
from common.query.engine.sorted_time import bucket_bounds, gathered_inputs, selected_rows
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
    """One grouping key over the selected rows: codes ``0 <= code < size`` and their values."""

    name: str
    codes: Any  # np.ndarray of intp
    size: int
    decode: Callable[[Any], Any]  # codes of the output groups -> Arrow array of key values


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
    selected = selected_rows(table, intervals, flt)
    if selected is None:
        return None
    sub, times, keep = selected
    n = len(times)
    if not n:
        return None
    keys: list[_Key] = []
    bucket = _bucket_key(gran, intervals, times)
    if bucket is None:
        return None
    keys.append(bucket)
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
    gid = np.zeros(n, dtype=np.intp)
    stride = 1
    for key in reversed(keys):
        if key.size > 1:
            gid += key.codes * stride if stride > 1 else key.codes
        stride *= key.size
    rows = np.bincount(gid, minlength=total)
    present = np.flatnonzero(rows)
    reduce = _Reducer(gid, total, present, rows, keep)
    out: dict[str, Any] = {}
    rest = present
    decoded: list[tuple[str, Any]] = []
    for key in reversed(keys):
        decoded.append((key.name, key.decode(rest % key.size)))
        rest = rest // key.size
    for name, values in reversed(decoded):
        out[name] = values
    for agg in aggs:
        reduced = _aggregate(agg, sub, reduce, None)
        if reduced is None:
            return None
        out[agg.name] = agg.segment_finish(reduced)
    return pa.table(out)


def _key_possible(table: pa.Table, d: DimensionSpec) -> bool:
    if d.type != "default" or d.extractionFn is not None:
        return False  # a lookup or extraction maps values: not the stored codes
    if d.dimension not in table.column_names:
        return False
    typ = table.schema.field(d.dimension).type
    if d.outputType == "STRING":
        return bool(pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type))
    return d.outputType == "LONG" and pa.types.is_int64(typ)


def _bucket_key(gran: Granularity, intervals: Sequence[Interval], times: Any) -> _Key | None:
    if isinstance(gran, AllGranularity):
        start = intervals[0].start
        return _Key(
            TIME_COLUMN,
            np.zeros(0, dtype=np.intp),
            1,
            lambda codes: pa.array(np.full(len(codes), start, dtype=np.int64)),
        )
    starts = bucket_bounds(gran, int(times[0]), int(times[-1]))
    if starts is None:
        return None
    row_starts = np.searchsorted(times, starts)
    sizes = np.diff(np.append(row_starts, len(times)))
    codes = np.repeat(np.arange(len(starts), dtype=np.intp), sizes)
    return _Key(TIME_COLUMN, codes, len(starts), lambda c: pa.array(starts[c], pa.int64()))


def _dim_key(sub: pa.Table, d: DimensionSpec, keep: Any) -> _Key | None:
    col = sub.column(d.dimension)
    if d.outputType == "STRING":
        dictionary = one_dictionary(col)
        if dictionary is None:
            return None
        size = len(dictionary) + 1  # the last code: null
        indices = pa.chunked_array([c.indices for c in col.chunks], type=col.type.index_type)
        if indices.null_count:
            indices = indices.fill_null(size - 1)
        codes = np.asarray(indices.to_numpy(), dtype=np.intp)
        if keep is not None:
            codes = codes[keep]

        def decode_dict(c: Any) -> Any:
            return dictionary.take(pa.array(c, pa.int64(), mask=c == size - 1))

        return _Key(d.output, codes, size, decode_dict)
    valid: Any = None
    if col.null_count:
        valid = np.asarray(col.is_valid().to_numpy(), dtype=bool)
        col = col.fill_null(0)
    values = np.asarray(col.to_numpy(), dtype=np.int64)
    if keep is not None:
        values = values[keep]
        valid = None if valid is None else valid[keep]
    live = values if valid is None else values[valid]
    low, high = (int(live.min()), int(live.max())) if len(live) else (0, 0)
    if high - low >= MAX_LONG_RANGE or low < -_EXACT or high > _EXACT:
        return None
    size = high - low + 2  # the last code: null
    codes = np.subtract(values, low, dtype=np.intp)
    if valid is not None:
        codes[~valid] = size - 1

    def decode_long(c: Any) -> Any:
        return pa.array(c + low, pa.int64(), mask=c == size - 1)

    return _Key(d.output, codes, size, decode_long)


class _Reducer:
    """Per-group reductions of the selected rows' values (gathered at ``keep``)."""

    def __init__(self, gid: Any, total: int, present: Any, rows: Any, keep: Any) -> None:
        self.gid, self.total, self.present, self.rows, self.keep = gid, total, present, rows, keep

    def gather(self, values: Any) -> Any:
        return values if self.keep is None else values[self.keep]

    def count(self, valid: Any) -> pa.Array:
        if valid is None:
            return pa.array(self.rows[self.present], pa.int64())
        counts = np.bincount(self.gid[np.flatnonzero(valid)], minlength=self.total)
        return pa.array(counts[self.present], pa.int64())

    def reduce(self, op: str, values: Any, valid: Any) -> pa.Array | None:
        gid = self.gid
        if valid is not None:
            idx = np.flatnonzero(valid)
            gid, values = gid[idx], values[idx]
            counts = np.bincount(gid, minlength=self.total)[self.present]
        else:
            counts = self.rows[self.present]
        is_float = values.dtype.kind == "f"
        if op == "sum":
            if is_float:
                out = np.bincount(gid, weights=values, minlength=self.total)
            else:
                out = np.zeros(self.total, dtype=np.int64)
                np.add.at(out, gid, values)
        else:
            if is_float:
                out = np.full(self.total, np.inf if op == "min" else -np.inf)
                (np.fmin if op == "min" else np.fmax).at(out, gid, values)
            else:
                info = np.iinfo(np.int64)
                out = np.full(self.total, info.max if op == "min" else info.min, dtype=np.int64)
                (np.minimum if op == "min" else np.maximum).at(out, gid, values)
        empty = counts == 0
        typ = pa.float64() if is_float else pa.int64()
        return pa.array(out[self.present], typ, mask=empty if empty.any() else None)


def _aggregate(agg: Any, sub: pa.Table, r: _Reducer, mask: Any) -> list[Any] | None:
    """The reduced inputs ``agg.segment_finish`` takes; ``mask``: the rows (selected ones, as a
    boolean numpy array) a ``filtered`` aggregator around it keeps, None for all."""
    if isinstance(agg, FilteredAgg):
        mine = r.gather(mask_numpy(agg.filter, sub))
        return _aggregate(agg.inner, sub, r, mine if mask is None else mask & mine)
    if isinstance(agg, CountAgg):
        return [r.count(mask)]
    reduced = []
    inputs = gathered_inputs(agg, sub, r.keep)
    if inputs is None:
        return None
    for values, valid, op in inputs:
        if values is None:  # a valid count of a null-free input
            reduced.append(r.count(mask))
            continue
        if mask is not None:
            valid = mask if valid is None else valid & mask
        if op == "count":
            reduced.append(r.count(valid))
        else:
            out = r.reduce(op, values, valid)
            if out is None:
                return None
            reduced.append(out)
    return reduced
