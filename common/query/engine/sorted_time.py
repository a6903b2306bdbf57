"""Timeseries over a segment whose ``__time`` is sorted: buckets are contiguous row ranges.

The segment writer sorts rows by ``__time``, so each interval is a row range found by binary
search and each time bucket a run of rows; the aggregators' inputs are then reduced per run with
numpy instead of hashing every row in Acero. The answer is the partial ``aggregate`` would give:
counts of valid values, integer sums (wrapping, as Acero's), NaN-skipping min and max, bit for
bit. Double sums are the one difference, in rounding only: a bucket of at most ``VECTOR_SIZE``
(512) selected rows of the segment is added in row order, as Acero's grouped sum and Druid's
vectorized ``doubleSum`` (one vector: ``sum += v[i]``) add it, so small buckets agree with both bit
for bit; a larger bucket is added blockwise-pairwise (numpy's ``np.add.reduce`` over its rows, or
over each batch's part of them, the parts added in order). Druid itself adds a large bucket in
512-row vectors, not in row order; pairwise rounding error grows as ``log n`` where a running
sum's grows as ``n``, and it runs at memory speed where a running sum is one chain of dependent
additions. Only buckets holding a selected row are produced, as from a group-by.

``run_sorted`` returns None whenever that equivalence is not certain (unsorted or nullable time,
granularity ``none``, bucket starts that do not tile the data
span, sketch or unknown aggregations, -0.0 among min/max inputs) and the caller takes the
general path.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.query.aggregators import CountAgg
from common.query.columns import TIME_COLUMN
from common.query.engine.batches import row_batches, valid_view, values_view
from common.query.engine.lazy import selected_inputs
from common.query.engine.timeindex import time_index
from common.query.filters import mask_numpy
from common.segments.granularity import AllGranularity, Granularity, NoneGranularity
from common.segments.intervals import Interval

MAX_BUCKETS = 100_000  # more buckets than this over the data span: the general path
COUNT_VALID = pc.CountOptions(mode="only_valid")
_OPS = ("count", "sum", "min", "max")
FEW_GROUPS = 64  # double sums of at most this many buckets: a running sum per bucket
VECTOR_SIZE = 512  # Druid's vector size: a double sum of at most this many rows is in row order
STEP = 64 * 1024
_ONE_BIN = np.zeros(STEP + 1, dtype=np.intp)  # every value of a step into bin 0
_ONE_BIN.flags.writeable = False


_SORTED: dict[int, weakref.ref[pa.Table]] = {}
"""Tables (by id, while they live) whose ``__time`` is known null-free and sorted: a segment's
table is the same object query after query, so the check runs once per segment."""


def known_sorted(table: pa.Table) -> bool:
    ref = _SORTED.get(id(table))
    return ref is not None and ref() is table


def remember_sorted(table: pa.Table) -> None:
    key = id(table)
    _SORTED[key] = weakref.ref(table, lambda _ref, key=key: _SORTED.pop(key, None))  # type: ignore[misc]


def sorted_millis(table: pa.Table) -> Any:
    """``__time`` as a numpy int64 array when it is present, null-free and sorted, else None."""
    if known_sorted(table):
        col = table.column(TIME_COLUMN)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        return np.asarray(col.to_numpy(), dtype=np.int64)
    if TIME_COLUMN not in table.column_names:
        return None
    col = table.column(TIME_COLUMN)
    if col.null_count:
        return None
    typ = col.type
    if pa.types.is_timestamp(typ):
        if typ.unit != "ms":
            return None
        col = col.cast(pa.int64())
    elif not pa.types.is_int64(typ):
        return None
    millis = np.asarray(col.to_numpy(), dtype=np.int64)
    if len(millis) > 1 and not bool(np.all(millis[1:] >= millis[:-1])):
        return None
    remember_sorted(table)
    return millis


def bucket_bounds(gran: Granularity, first: int, last: int) -> Any:
    """Starts of the buckets covering ``[first, last]`` when they provably tile it: every start
    floors to itself and the last instant before the next start floors to it (so, with a
    monotonic floor, every instant between floors to the start before it). None otherwise."""
    starts: list[int] = []
    end = first
    for b in gran.iter_buckets(Interval(first, last + 1)):
        starts.append(b.start)
        end = b.end
        if len(starts) > MAX_BUCKETS:
            return None
    if not starts:
        return None
    arr = np.asarray(starts, dtype=np.int64)
    ends = np.append(arr[1:], end)
    if np.any(ends <= arr):
        return None
    probe = pa.array(np.concatenate([arr, ends - 1]), pa.int64())
    floored = np.asarray(gran.bucket_starts(probe).to_numpy(), dtype=np.int64)
    if not (np.array_equal(floored[: len(arr)], arr) and np.array_equal(floored[len(arr) :], arr)):
        return None
    return arr


def kept_rows(sub: pa.Table, bounds: Any, lo: int, flt: Any) -> Any:
    """A mask of the rows of ``sub`` (rows ``lo...`` of the table) inside the intervals' row
    ranges ``bounds`` that ``flt`` keeps; None: all of them."""
    keep: Any = None
    if len(bounds) > 1:
        keep = np.zeros(sub.num_rows, dtype=bool)
        for a, b in bounds:
            keep[int(a) - lo : int(b) - lo] = True
    if flt is not None:
        mask = mask_numpy(flt, sub)
        keep = mask if keep is None else keep & mask
    if keep is not None and bool(keep.all()):
        keep = None
    return keep


def _numpy_ok(arr: Any, op: str, opts: Any) -> bool:
    """Whether the numpy reductions handle this aggregator input."""
    if op not in _OPS or (op == "count") != (opts is not None):
        return False
    if op == "count" and opts != COUNT_VALID:
        return False
    return bool(pa.types.is_int64(arr.type) or pa.types.is_float64(arr.type))


def numpy_input(arr: Any, op: str, opts: Any) -> tuple[Any, Any] | None:
    """(values, validity or None) of one aggregator input the numpy reductions can handle."""
    if not _numpy_ok(arr, op, opts):
        return None
    typ = arr.type
    valid = None
    if arr.null_count:
        valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
        arr = pc.fill_null(arr, 0)
    values = np.asarray(arr.to_numpy(), dtype=typ.to_pandas_dtype())
    if op in ("min", "max") and values.dtype.kind == "f":
        zeros = values == 0
        if bool(np.any(zeros & np.signbit(values))):
            return None  # which zero Acero keeps depends on its order: do not second-guess it
    return values, valid


def _reduce(op: str, values: Any, valid: Any, starts: Any, groups: int) -> pa.Array:
    """One op per group of rows ``starts[i]:starts[i+1]`` (every group non-empty)."""
    counts = (
        np.diff(np.append(starts, len(values)))
        if valid is None
        else np.add.reduceat(valid.astype(np.int64), starts)
    )
    if op == "count":
        return pa.array(counts, pa.int64())
    is_float = values.dtype.kind == "f"
    if op == "sum":
        if valid is not None:
            values = np.where(valid, values, 0)
        if not is_float:
            out = np.add.reduceat(values, starts)
        else:
            out = _double_sums(values, starts, groups)
    else:
        if valid is not None:
            fill = np.nan if is_float else _int_extreme(op)  # fmin/fmax skip NaN
            values = np.where(valid, values, fill)
        ufunc = (np.fmin if op == "min" else np.fmax) if is_float else _int_ufunc(op)
        out = ufunc.reduceat(values, starts)
    empty = counts == 0
    typ = pa.float64() if is_float else pa.int64()
    return pa.array(out, typ, mask=empty if empty.any() else None)


def _double_sums(values: Any, starts: Any, groups: int) -> Any:
    """The double sum of each run ``starts[i]:starts[i+1]`` of ``values`` (every run non-empty):
    in row order for a run of at most ``VECTOR_SIZE`` values, pairwise for a longer one."""
    sizes = np.diff(np.append(starts, len(values)))
    small = sizes <= VECTOR_SIZE
    out = np.zeros(groups)
    with np.errstate(all="ignore"):  # inf - inf is NaN, as in Acero's sum
        if groups <= FEW_GROUPS:
            for i in np.flatnonzero(small).tolist():
                out[i] = sequential_sum(values[starts[i] : starts[i] + sizes[i]])
        elif small.any():
            gid = np.repeat(np.arange(groups), sizes)
            rows = small[gid]
            out[small] = np.bincount(gid[rows], weights=values[rows], minlength=groups)[small]
        for i in np.flatnonzero(~small).tolist():
            out[i] = np.add.reduce(values[starts[i] : starts[i] + sizes[i]])
    return out


def sequential_sum(values: Any, carry: float = 0.0) -> float:
    """``carry + v0 + v1 + ...`` (``carry`` 0.0: a sum from the start) added in row order, as
    Acero's grouped sum and ``np.bincount`` add (``np.sum`` adds pairwise and may round
    differently), ``STEP`` values at a time so the buffer stays in the CPU cache. Each step is
    one ``np.bincount`` of ``[carry, part...]`` into one bin: the same additions in the same
    order as a running sum, but bincount releases the GIL where ``np.cumsum`` holds it, so the
    segments' worker threads sum in parallel."""
    buf = np.empty(min(len(values), STEP) + 1)
    for at in range(0, len(values), STEP):
        part = values[at : at + STEP]
        m = len(part)
        buf[0] = carry
        buf[1 : m + 1] = part
        with np.errstate(all="ignore"):  # inf - inf is NaN, as in Acero's sum
            carry = float(np.bincount(_ONE_BIN[: m + 1], weights=buf[: m + 1], minlength=1)[0])
    return carry


def _add_double_pieces(
    out: Any, values: Any, local: Any, r0: int, r1: int, run_sizes: Any, groups: int
) -> None:
    """Add one batch's ``values`` into the double sums ``out[r0:r1]`` of the runs starting at
    ``local`` in the batch: a run of at most ``VECTOR_SIZE`` rows in all continues its running
    sum in row order; a longer one adds its piece's pairwise sum."""
    ends = np.append(local[1:], len(values))
    small = run_sizes[r0:r1] <= VECTOR_SIZE
    with np.errstate(all="ignore"):  # inf - inf is NaN, as in Acero's sum
        if groups <= FEW_GROUPS or not small.any():
            for r, a, b, few in zip(
                range(r0, r1), local.tolist(), ends.tolist(), small.tolist(), strict=True
            ):
                part = values[a:b]
                if few:
                    out[r] = sequential_sum(part, float(out[r]))
                else:
                    out[r] += np.add.reduce(part)
            return
        gid = np.repeat(np.arange(r0, r1), ends - local)
        rows = small[gid - r0]
        np.add.at(out, gid[rows], values[rows])  # in row order, carrying on from out
        big = np.flatnonzero(~small)
        for i in big.tolist():
            out[r0 + i] += np.add.reduce(values[local[i] : ends[i]])


def _int_extreme(op: str) -> int:
    info = np.iinfo(np.int64)
    return int(info.max if op == "min" else info.min)


def _int_ufunc(op: str) -> Any:
    return np.minimum if op == "min" else np.maximum


def _reduce_batches(op: str, arr: Any, row_starts: Any, groups: int) -> pa.Array | None:
    """``_reduce`` of a column every row of which is selected, read batch by batch (views of its
    chunks: no copy of the column); runs ``row_starts[i]:row_starts[i+1]``, the first at row 0.
    Each run's reduction carries over from batch to batch (double sums continue in row order).
    None for -0.0 among double min/max inputs (see ``numpy_input``)."""
    is_float = pa.types.is_float64(arr.type)
    counts = np.zeros(groups, dtype=np.int64)
    out: Any = None
    if op == "sum":
        out = np.zeros(groups, dtype=np.float64 if is_float else np.int64)
    elif op in ("min", "max"):
        out = np.full(groups, np.nan) if is_float else np.full(groups, _int_extreme(op))
    ufunc = (np.fmin if op == "min" else np.fmax) if is_float else _int_ufunc(op)
    run_sizes = np.diff(np.append(row_starts, len(arr)))
    for a, b in row_batches(pa.table({"v": arr})):
        r0 = int(np.searchsorted(row_starts, a, side="right")) - 1
        r1 = int(np.searchsorted(row_starts, b, side="left"))
        local = np.maximum(row_starts[r0:r1] - a, 0)  # the runs' starts in the batch
        values, valid = values_view(arr, a, b), valid_view(arr, a, b)
        if valid is None:
            counts[r0:r1] += np.diff(np.append(local, b - a))
        else:
            counts[r0:r1] += np.add.reduceat(valid.astype(np.int64), local)
        if op == "count":
            continue
        if op == "sum":
            if valid is not None:
                values = np.where(valid, values, 0)
            if not is_float:
                out[r0:r1] += np.add.reduceat(values, local)  # wraps, as Acero's
            else:
                _add_double_pieces(out, values, local, r0, r1, run_sizes, groups)
            continue
        if is_float and bool(np.any((values == 0) & np.signbit(values))):
            return None  # which zero Acero keeps depends on its order
        if valid is not None:
            values = np.where(valid, values, np.nan if is_float else _int_extreme(op))
        out[r0:r1] = ufunc(out[r0:r1], ufunc.reduceat(values, local))
    if op == "count":
        return pa.array(counts, pa.int64())
    empty = counts == 0
    typ = pa.float64() if is_float else pa.int64()
    return pa.array(out, typ, mask=empty if empty.any() else None)


def gathered_inputs(agg: Any, sub: pa.Table, keep: Any) -> list[tuple[Any, Any, str]] | None:
    """(values, validity or None, op) of each of ``agg``'s inputs at the selected rows ``keep``
    (None: all of ``sub``), as numpy arrays; values None for a valid count of a null-free input
    (the selected rows); with every row selected, a column input as it is (an Arrow array, read
    batch by batch by ``_reduce_batches``). None when an input is not one the numpy reductions
    handle."""
    lazy = selected_inputs(agg, sub, keep)
    if lazy is not None:
        return [(values, valid, op) for values, valid, op, _opts in lazy]
    out: list[tuple[Any, Any, str]] = []
    for arr, op, opts in agg.inputs(sub):
        if op == "count" and opts == COUNT_VALID and not arr.null_count:
            out.append((None, None, op))
            continue
        if keep is None and _numpy_ok(arr, op, opts):
            out.append((arr, None, op))
            continue
        prepared = numpy_input(arr, op, opts)
        if prepared is None:
            return None
        values, valid = prepared
        if keep is not None:
            values = values[keep]
            valid = None if valid is None else valid[keep]
        out.append((values, valid, op))
    return out


def run_sorted(
    table: pa.Table, gran: Granularity, intervals: Sequence[Interval], flt: Any, aggs: Sequence[Any]
) -> pa.Table | None:
    """The ``aggregate(..., [__time], aggs)`` partial of the selected rows, or None."""
    if isinstance(gran, NoneGranularity) or not intervals:
        return None
    if not known_sorted(table) and sorted_millis(table) is None:
        return None
    index = time_index(table)  # __time searched in place, never copied whole
    bounds = index.search([[i.start, i.end] for i in intervals])
    lo, hi = int(bounds[0][0]), int(bounds[-1][1])
    if hi <= lo:
        return None
    sub = table.slice(lo, hi - lo)
    keep = kept_rows(sub, bounds, lo, flt)
    if keep is not None:
        # positions, not a boolean mask: numpy gathers by index several times faster, and the
        # same positions serve the buckets and every aggregator input
        keep = np.flatnonzero(keep)
    n = sub.num_rows if keep is None else len(keep)
    if not n:
        return None
    if isinstance(gran, AllGranularity):
        starts = np.asarray([intervals[0].start], dtype=np.int64)
        row_starts = np.zeros(1, dtype=np.int64)
    else:
        first, last = (lo, hi - 1) if keep is None else (lo + keep[0], lo + keep[-1])
        starts = bucket_bounds(gran, index.at(int(first)), index.at(int(last)))
        if starts is None:
            return None
        # the selected rows before each bucket start: rows of the table, then of the selection
        row_starts = np.clip(index.search(starts) - lo, 0, sub.num_rows)
        if keep is not None:
            row_starts = np.searchsorted(keep, row_starts)
        present = np.diff(np.append(row_starts, n)) > 0
        starts, row_starts = starts[present], row_starts[present]
    groups = len(starts)
    sizes = np.diff(np.append(row_starts, n))
    columns: dict[str, Any] = {TIME_COLUMN: pa.array(starts, pa.int64())}
    for agg in aggs:
        reduced = []
        if isinstance(agg, CountAgg):  # every selected row: no input column to build
            columns[agg.name] = agg.segment_finish([pa.array(sizes, pa.int64())])
            continue
        inputs = gathered_inputs(agg, sub, keep)
        if inputs is None:
            return None
        for values, valid, op in inputs:
            if values is None:
                reduced.append(pa.array(sizes, pa.int64()))
                continue
            if isinstance(values, pa.Array | pa.ChunkedArray):
                batched = _reduce_batches(op, values, row_starts, groups)
                if batched is None:
                    return None
                reduced.append(batched)
                continue
            reduced.append(_reduce(op, values, valid, row_starts, groups))
        columns[agg.name] = agg.segment_finish(reduced)
    return pa.table(columns)
