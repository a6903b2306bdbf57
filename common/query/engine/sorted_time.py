"""Timeseries over a segment whose ``__time`` is sorted: buckets are contiguous row ranges.

The segment writer sorts rows by ``__time``, so each interval is a row range found by binary
search and each time bucket a run of rows; the aggregators' inputs are then reduced per run with
numpy instead of hashing every row in Acero. The answer is the partial ``aggregate`` would give:
counts of valid values, integer sums (wrapping, as Acero's), NaN-skipping min and max, bit for
bit. Double sums are the one difference, in rounding only: the selected values of a bucket of
at most ``VECTOR_SIZE`` (512) rows of the segment are added in row order, as Acero's grouped sum
and Druid's vectorized ``doubleSum`` (one vector, a window of the segment's rows: ``sum +=
v[i]``) add them, so small buckets agree with both bit for bit; a larger bucket is added
pairwise per read batch (numpy's ``np.add.reduce`` over the bucket's selected values in each
batch, those sums added in order). Druid itself adds a large bucket in 512-row vectors, not in
row order; pairwise rounding error grows as ``log n`` where a running sum's grows as ``n``, and it
runs at memory speed where a running sum is one chain of dependent additions. Only buckets
holding a selected row are produced, as from a group-by.

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
from common.query.engine.batches import GroupReducer, row_batches, valid_view, values_view
from common.query.engine.lazy import BatchExpression, batch_expression
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


def _int_extreme(op: str) -> int:
    info = np.iinfo(np.int64)
    return int(info.max if op == "min" else info.min)


def _int_ufunc(op: str) -> Any:
    return np.minimum if op == "min" else np.maximum


class _Runs(GroupReducer):
    """A ``GroupReducer`` whose groups are buckets fed as runs: each batch's selected values
    and where each bucket's run of them starts (``add_runs``). ``small``: the buckets of at
    most ``VECTOR_SIZE`` rows, whose double sums run in row order."""

    def __init__(self, op: str, is_float: bool, small: Any) -> None:
        super().__init__(op, "f" if is_float else "i", len(small))
        self.small = small
        self.ufunc = (np.fmin if op == "min" else np.fmax) if is_float else _int_ufunc(op)

    def add_runs(self, values: Any, valid: Any, runs: Any, starts: Any, lengths: Any) -> bool:
        """Fold one batch in: ``runs`` the buckets present in it, their values
        ``values[starts[i]:starts[i] + lengths[i]]`` (validity ``valid``, None: all valid).
        False for -0.0 among double min/max inputs (which zero Acero keeps depends on its
        order: the caller declines)."""
        if valid is None:
            self.counts[runs] += lengths
        else:
            self.counts[runs] += np.add.reduceat(valid, starts, dtype=np.int64)
        if self.op == "count":
            return True
        if self.op == "sum":
            if valid is not None:
                values = np.where(valid, values, 0)
            if self.kind == "f":
                self._add_doubles(values, runs, starts, lengths)
            else:
                self.out[runs] += np.add.reduceat(values, starts)  # wraps, as Acero's
            return True
        if valid is not None:
            values = np.where(valid, values, np.nan if self.kind == "f" else _int_extreme(self.op))
        if self.kind == "f" and bool(np.any((values == 0) & np.signbit(values))):
            return False
        self.out[runs] = self.ufunc(self.out[runs], self.ufunc.reduceat(values, starts))
        return True

    def _add_doubles(self, values: Any, runs: Any, starts: Any, lengths: Any) -> None:
        """A small bucket continues its running sum in row order; a larger one adds the
        pairwise sum of its run in this batch."""
        small = self.small[runs]
        out = self.out
        with np.errstate(all="ignore"):  # inf - inf is NaN, as in Acero's sum
            if len(runs) <= FEW_GROUPS or not small.any():
                for r, a, m, few in zip(
                    runs.tolist(), starts.tolist(), lengths.tolist(), small.tolist(), strict=True
                ):
                    part = values[a : a + m]
                    if few:
                        out[r] = sequential_sum(part, float(out[r]))
                    else:
                        out[r] += np.add.reduce(part)
                return
            gid = np.repeat(runs, lengths)
            rows = self.small[gid]
            np.add.at(out, gid[rows], values[rows])  # in row order, carrying on from out
            for i in np.flatnonzero(~small).tolist():
                out[runs[i]] += np.add.reduce(values[starts[i] : starts[i] + lengths[i]])


class _Column:
    """An int64/float64 column input, read in place batch by batch."""

    def __init__(self, arr: Any, count_only: bool) -> None:
        self.arr, self.count_only = arr, count_only
        self.is_float = pa.types.is_float64(arr.type)

    def read(self, a: int, b: int, pos: Any) -> tuple[Any, Any] | None:
        valid = valid_view(self.arr, a, b)
        values = None if self.count_only else values_view(self.arr, a, b)
        if pos is not None:
            valid = None if valid is None else valid.take(pos, mode="clip")
            values = None if values is None else values.take(pos, mode="clip")
        return values, valid


class _Rows:
    """A count of valid values of a null-free input: the selected rows."""

    is_float = False

    def read(self, a: int, b: int, pos: Any) -> tuple[Any, Any] | None:
        return None, None


Source = _Column | _Rows | BatchExpression


def _sources(agg: Any, sub: pa.Table) -> list[tuple[Source, str]] | None:
    """Where each of ``agg``'s inputs is read from, with its op; None when one is not an input
    the numpy reductions handle."""
    lazy = batch_expression(agg, sub)
    if lazy is not None:
        return [(lazy, agg.merge_op)]
    out: list[tuple[Source, str]] = []
    for arr, op, opts in agg.inputs(sub):
        if op == "count" and opts == COUNT_VALID and not arr.null_count:
            out.append((_Rows(), op))
        elif _numpy_ok(arr, op, opts):
            out.append((_Column(arr, op == "count"), op))
        else:
            return None
    return out


def run_sorted(
    table: pa.Table, gran: Granularity, intervals: Sequence[Interval], flt: Any, aggs: Sequence[Any]
) -> pa.Table | None:
    """The ``aggregate(..., [__time], aggs)`` partial of the selected rows, or None.

    The rows are read batch by batch (``row_batches``): the filter's mask is cut per batch, its
    kept rows' positions found in it, and every input read (or its expression evaluated) at
    those rows of the batch only, so no step gathers or copies a whole column."""
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
    if keep is not None and not keep.any():
        return None
    if isinstance(gran, AllGranularity):
        starts = np.asarray([intervals[0].start], dtype=np.int64)
        row_starts = np.zeros(1, dtype=np.int64)
    else:
        starts = bucket_bounds(gran, index.at(lo), index.at(hi - 1))
        if starts is None:
            return None
        # each bucket's first row in sub (a bucket without rows starts where the next does)
        row_starts = np.clip(index.search(starts) - lo, 0, sub.num_rows)
    small = np.diff(np.append(row_starts, sub.num_rows)) <= VECTOR_SIZE
    plans: list[list[tuple[Source, _Runs]] | None] = []
    for agg in aggs:
        if isinstance(agg, CountAgg):  # every selected row: no input to read
            plans.append(None)
            continue
        sources = _sources(agg, sub)
        if sources is None:
            return None
        plans.append([(src, _Runs(op, src.is_float, small)) for src, op in sources])
    selected = np.zeros(len(starts), dtype=np.int64)
    for a, b in row_batches(sub):
        r0 = int(np.searchsorted(row_starts, a, side="right")) - 1
        r1 = int(np.searchsorted(row_starts, b, side="left"))
        local = np.maximum(row_starts[r0:r1] - a, 0)  # the buckets' first rows in the batch
        pos, m = None, b - a
        if keep is not None:
            pos = np.flatnonzero(keep[a:b])
        if pos is not None:
            if not len(pos):
                continue
            if len(pos) == m:
                pos = None
            else:
                local, m = np.searchsorted(pos, local), len(pos)
        lengths = np.diff(np.append(local, m))
        present = np.flatnonzero(lengths)  # empty buckets have no run
        runs, run_starts, lengths = r0 + present, local[present], lengths[present]
        selected[runs] += lengths
        for plan in plans:
            for src, reducer in plan or ():
                read = src.read(a, b, pos)
                if read is None or not reducer.add_runs(*read, runs, run_starts, lengths):
                    return None
    found = selected > 0
    if not found.any():
        return None
    columns: dict[str, Any] = {TIME_COLUMN: pa.array(starts[found], pa.int64())}
    for agg, plan in zip(aggs, plans, strict=True):
        if plan is None:
            columns[agg.name] = agg.segment_finish([pa.array(selected[found], pa.int64())])
        else:
            columns[agg.name] = agg.segment_finish([r.result(found) for _, r in plan])
    return pa.table(columns)
