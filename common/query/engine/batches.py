"""Batch-wise reading and per-group reduction for the numpy paths (``dense``, ``sorted_time``).

A segment's table is read in batches of rows (its record batches, at most ``BATCH_ROWS`` rows),
each column as a zero-copy numpy view of the batch, so no step makes a copy of a whole column and
a batch's temporaries stay in the CPU cache. ``GroupReducer`` folds every batch into per-group
accumulators: ``np.add.at`` / ``np.fmin.at``... into the accumulator itself, which, for double
sums, adds in row order across batches, exactly as the one pass of Acero's grouped sum does. Group
numbers of a batch come from its keys: ``SortedTimes`` gives the time bucket of each row of a
sorted ``__time`` by binary search of the bucket starts.

Answers equal ``base.aggregate``'s (Acero's): counts of valid values, integer sums wrapping,
double sums in row order, NaN-skipping min and max that give NaN when a group holds only NaN,
null where a group has no valid value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

#: Rows per batch at most (a cached segment's record batches are 512 Ki rows): each numpy call
#: on a batch is a GIL hand-over between the processing threads, so batches are large enough
#: for those to be rare (at 64 Ki rows, two threads ran a filtered timeseries no faster than one).
BATCH_ROWS = 1 << 19

_NUMPY = {pa.int64(): np.int64, pa.float64(): np.float64}


def row_batches(table: pa.Table) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges covering ``table``: its first column's chunks, cut to at most
    ``BATCH_ROWS`` rows (so columns sharing that layout are read without copies)."""
    n = table.num_rows
    if not n:
        return
    lengths = [len(c) for c in table.column(0).chunks] if table.num_columns else [n]
    start = 0
    for length in lengths:
        stop = start + length
        for a in range(start, stop, BATCH_ROWS):
            yield a, min(a + BATCH_ROWS, stop)
        start = stop


def _piece(col: Any, a: int, b: int) -> pa.Array:
    """Rows ``[a, b)`` of an Arrow array or chunked array as one array (no copy when they lie in
    one chunk)."""
    part = col.slice(a, b - a)
    if isinstance(part, pa.ChunkedArray):
        if part.num_chunks == 1:
            return part.chunk(0)
        if not part.num_chunks:
            return pa.array([], col.type)
        return pa.concat_arrays(part.chunks)
    return part


def values_view(col: Any, a: int, b: int) -> Any:
    """The values of rows ``[a, b)`` of an int64, float64 or timestamp (as int64) column as
    numpy, whatever their validity (a null row's value is arbitrary: the caller masks it)."""
    arr = _piece(col, a, b)
    buf = arr.buffers()[1]
    dtype = np.int64 if pa.types.is_timestamp(arr.type) else _NUMPY[arr.type]
    if buf is None:
        return np.zeros(len(arr), dtype=dtype)
    return np.frombuffer(buf, dtype=dtype, count=arr.offset + len(arr))[arr.offset :]


def valid_view(col: Any, a: int, b: int) -> Any:
    """Validity of rows ``[a, b)`` as a numpy boolean array, None when none is null."""
    arr = _piece(col, a, b)
    if not arr.null_count:
        return None
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def codes_view(col: Any, a: int, b: int, null_code: int) -> Any:
    """Dictionary codes of rows ``[a, b)`` of a dictionary column, nulls as ``null_code``."""
    arr = _piece(col, a, b)
    indices = arr.indices
    codes = np.frombuffer(
        indices.buffers()[1],
        dtype=indices.type.to_pandas_dtype(),
        count=indices.offset + len(indices),
    )[indices.offset :]
    if indices.null_count:
        valid = np.asarray(indices.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        codes = np.where(valid, codes, null_code)
    return codes


class SortedTimes:
    """Time-bucket numbers of rows of a sorted ``__time``: bucket ``i`` holds
    ``starts[i] <= t < starts[i + 1]`` (rows before ``starts[0]`` are not asked for)."""

    def __init__(self, starts: Any) -> None:
        self.starts = starts

    def codes(self, times: Any) -> Any:
        """Bucket numbers of ``times`` (sorted), by binary search of the starts (not of rows)."""
        n = len(times)
        if not n:
            return np.zeros(0, dtype=np.intp)
        first = int(np.searchsorted(self.starts, times[0], side="right")) - 1
        last = int(np.searchsorted(self.starts, times[-1], side="right"))
        if last - first == 1:
            return np.full(n, first, dtype=np.intp)
        bounds = np.searchsorted(times, self.starts[first + 1 : last])
        sizes = np.diff(bounds, prepend=0, append=n)
        return np.repeat(np.arange(first, last, dtype=np.intp), sizes)


class GroupReducer:
    """One reduction (``count``, ``sum``, ``min`` or ``max``) per group, fed batch by batch."""

    def __init__(self, op: str, kind: str | None, total: int) -> None:
        """``kind``: the values' numpy kind (``i`` or ``f``), None for a count of rows."""
        self.op, self.kind = op, kind
        self.counts = np.zeros(total, dtype=np.int64)
        self.out: Any = None
        if op == "sum":
            self.out = np.zeros(total, dtype=np.float64 if kind == "f" else np.int64)
        elif op in ("min", "max") and kind == "f":
            self.out = np.full(total, np.nan)  # fmin/fmax skip NaN: all-NaN stays NaN
        elif op in ("min", "max"):
            info = np.iinfo(np.int64)
            self.out = np.full(total, info.max if op == "min" else info.min, dtype=np.int64)

    def add(self, gid: Any, values: Any, counts: Any = None) -> None:
        """Fold rows (their group numbers, their valid values; None for a count) in;
        ``counts``: their number per group, when known."""
        self.counts += np.bincount(gid, minlength=len(self.counts)) if counts is None else counts
        if self.op == "sum":
            np.add.at(self.out, gid, values)  # in row order, as Acero adds
        elif self.op == "min":
            (np.fmin if self.kind == "f" else np.minimum).at(self.out, gid, values)
        elif self.op == "max":
            (np.fmax if self.kind == "f" else np.maximum).at(self.out, gid, values)

    def result(self, present: Any) -> pa.Array:
        """The reduction of the groups ``present`` (null where a group had no valid value)."""
        counts = self.counts[present]
        if self.op == "count":
            return pa.array(counts, pa.int64())
        empty = counts == 0
        typ = pa.float64() if self.kind == "f" else pa.int64()
        return pa.array(self.out[present], typ, mask=empty if empty.any() else None)
