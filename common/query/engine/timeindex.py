"""Binary search of a segment's sorted ``__time`` in place, chunk by chunk.

A memory-mapped segment's ``__time`` is a column of many record batches; making it one numpy
array copies the whole column (tens of MB at 10 M rows) on every query. ``TimeIndex`` keeps each
chunk as a zero-copy int64 view and the last value of each: a search finds the chunk by the
lasts, then the row inside it. It is built once per table (weakly remembered, as
``sorted_time.known_sorted``); the caller has checked the column sorted and null-free.
"""

from __future__ import annotations

import bisect
import weakref
from typing import Any

import numpy as np
import pyarrow as pa

from common.query.columns import TIME_COLUMN


class TimeIndex:
    """The rows of a sorted, null-free int64 (or ms timestamp) ``__time`` column."""

    def __init__(self, col: pa.ChunkedArray) -> None:
        views = []
        for chunk in col.chunks:
            if len(chunk):
                if pa.types.is_timestamp(chunk.type):
                    chunk = chunk.view(pa.int64())
                views.append(np.asarray(chunk.to_numpy(), dtype=np.int64))
        self.chunks = views
        self.offsets = np.cumsum([0, *(len(v) for v in views)], dtype=np.int64)
        self.lasts = np.array([v[-1] for v in views], dtype=np.int64)
        self.rows = int(self.offsets[-1])
        self.starts = [int(o) for o in self.offsets[:-1]]  # for bisect: one row at a time

    def search(self, values: Any) -> Any:
        """``np.searchsorted(times, values)`` (side left) over the whole column."""
        flat = np.asarray(values, dtype=np.int64)
        out = np.empty(flat.shape, dtype=np.int64)
        chunk_of = np.searchsorted(self.lasts, flat)  # the first chunk holding a time >= value
        for idx in np.ndindex(flat.shape):
            c = int(chunk_of[idx])
            if c == len(self.chunks):
                out[idx] = self.rows
            else:
                out[idx] = self.offsets[c] + np.searchsorted(self.chunks[c], flat[idx])
        return out

    def at(self, row: int) -> int:
        """The time of row ``row`` (0 <= row < rows)."""
        c = bisect.bisect_right(self.starts, row) - 1
        return int(self.chunks[c][row - self.starts[c]])


_INDEXES: dict[int, tuple[weakref.ref[pa.Table], TimeIndex]] = {}


def time_index(table: pa.Table) -> TimeIndex:
    """The (remembered) index of ``table``'s ``__time``, which the caller knows sorted."""
    key = id(table)
    got = _INDEXES.get(key)
    if got is not None and got[0]() is table:
        return got[1]
    index = TimeIndex(table.column(TIME_COLUMN))
    ref = weakref.ref(table, lambda _ref, key=key: _INDEXES.pop(key, None))  # type: ignore[misc]
    _INDEXES[key] = (ref, index)
    return index
