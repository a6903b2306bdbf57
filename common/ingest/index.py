"""The in-memory incremental index: the current hydrant of a sink (Druid's ``IncrementalIndex``).

Rows come in batches (``add_rows``). Each batch is transposed into column lists and built into
one Arrow chunk straight away, with ``__time`` already truncated to ``queryGranularity`` and every
metric in its aggregated form (``count`` is a column of ones, a sketch metric one serialised
sketch per row, see ``common.ingest.sketch_metrics``), so the index holds Arrow buffers,
not Python objects, and ``bytes_in_memory`` is the real size of those buffers.

With ``rollup`` the chunks are compacted from time to time (and always before a snapshot): rows
with equal (``__time``, every dimension value) are combined by the metrics' combining
aggregators with an Arrow hash group-by (sketches: a union per group). ``rows_in_memory`` is
exact right after a compaction and an upper bound in between (rows added since count one
each); compaction runs once the rows added since the last one reach
``max(rows after it, compact_rows)``, so its cost stays proportional to the rows added.
Without rollup every row is kept.

``to_arrow()`` is a snapshot in the segment format of ``common.segments.format``: ``__time``
``timestamp[ms, UTC]`` sorted, string dimensions ``dictionary<int32, string>`` (multi-value
``list<string>``), long dimensions and metrics ``int64``, float/double ``float64``. The index is
safe to snapshot from one thread while another adds rows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.ma  # ``pa.array(ndarray)`` imports it: ~50 ms paid at start-up, not by a task
import pyarrow as pa
import pyarrow.compute as pc

from common.ingest import sketch_metrics
from common.ingest.batch import ColumnBatch
from common.ingest.columns import (
    DIM_TYPE,
    Combine,
    build_dimension,
    build_metric,
    cast_to,
    kind_of,
    null_column,
    rollup,
    wider,
)
from common.ingest.parser import InputRow
from common.ingest.spec import TIME_COLUMN, DataSchema
from common.segments.format import SegmentFileInfo, sort_by_time, write_parquet
from common.segments.intervals import Interval

TIME_TYPE = pa.timestamp("ms", tz="UTC")
DEFAULT_COMPACT_ROWS = 20_000
_MAX_CHUNKS = 64
#: A string dimension's dictionary seeds the sink's next index (``seed_dictionaries``) when it
#: holds at most this many values: a bigger one would be carried into every later hydrant.
MAX_SEEDED_DICTIONARY = 1 << 16


class IncrementalIndex:
    """One hydrant's in-memory rows for a ``DataSchema``."""

    def __init__(self, schema: DataSchema, compact_rows: int = DEFAULT_COMPACT_ROWS) -> None:
        self.schema = schema
        gspec = schema.granularitySpec
        self.rollup = gspec.rollup
        self._query_granularity = gspec.queryGranularity
        self._compact_rows = compact_rows
        dspec = schema.dimensionsSpec
        # Declared kinds; a discovered dimension's kind is inferred (None) unless discovery is
        # the legacy all-strings kind.
        self._declared_kind: dict[str, str | None] = {
            d.name: ("double" if d.type in ("float", "double") else d.type)
            for d in dspec.dimensions
        }
        self._discover = dspec.discovers
        self._discovered_kind: str | None = None if dspec.useSchemaDiscovery else "string"
        self._dimensions: list[str] = list(dspec.names)
        self._known = set(self._dimensions)
        self._metrics: list[tuple[str, str, Combine]] = [
            (m.name, m.output_kind, sketch_metrics.combiner(m) if m.is_sketch else m.combine)
            for m in schema.metricsSpec
        ]
        self._chunks: list[pa.Table] = []
        self._compacted_rows = 0  # rows in _chunks[0] when it is the result of a compaction
        self._rows_since_compaction = 0
        self._rows_added = 0
        self._bytes = 0
        self._min_time: int | None = None
        self._max_time: int | None = None
        self._snapshot: pa.Table | None = None
        #: Dictionaries the string dimensions' dictionaries start with (``seed_dictionaries``).
        self._seeds: dict[str, pa.Array] = {}
        self._reseed = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ reading state

    @property
    def dimensions(self) -> list[str]:
        """Dimension names in column order: declared ones, then discovered ones as first seen."""
        return list(self._dimensions)

    @property
    def metrics(self) -> list[str]:
        return [m for m, _, _ in self._metrics]

    @property
    def rows_added(self) -> int:
        """Input rows added (before rollup)."""
        return self._rows_added

    @property
    def rows_in_memory(self) -> int:
        """Rows the index holds: exact after ``compact()``, an upper bound otherwise."""
        return self._compacted_rows + self._rows_since_compaction

    @property
    def bytes_in_memory(self) -> int:
        """Bytes of the Arrow buffers the index holds."""
        return self._bytes

    @property
    def is_empty(self) -> bool:
        return self._rows_added == 0

    @property
    def min_time(self) -> int | None:
        """Smallest row timestamp added (ms, before truncation)."""
        return self._min_time

    @property
    def max_time(self) -> int | None:
        return self._max_time

    # ------------------------------------------------------------------ writing

    def add_rows(self, rows: Sequence[InputRow]) -> None:
        """Append a batch of parsed rows (CPU-bound: call it off the event loop for big batches)."""
        if not rows:
            return
        self._append(self._build_chunk(rows), len(rows))

    def add_batch(self, batch: ColumnBatch) -> None:
        """Append rows parsed column-wise (``common.ingest.batch``): the same chunk, and so the
        same index, as ``add_rows`` of those rows. Declared dimensions only (no discovery)."""
        n = len(batch)
        if not n:
            return
        if self._discover:
            raise ValueError("add_batch does not discover dimensions; use add_rows")
        self._note_times(int(batch.times.min()), int(batch.times.max()))
        cols: dict[str, pa.Array] = {TIME_COLUMN: self._time_column(batch.times)}
        for name in self._dimensions:
            kind = self._declared_kind[name]
            col = batch.dims.get(name)
            if col is None:
                col = build_dimension([None] * n, kind)
            elif pa.types.is_list(col.type) and _single_valued(col):
                # No row holds several values: a plain string column, as add_rows makes it.
                col = pc.list_element(col, 0).dictionary_encode()
            elif pa.types.is_string(col.type):
                col = col.dictionary_encode()
            cols[name] = col
        for i, (name, kind, _) in enumerate(self._metrics):
            values = batch.metrics[i]
            spec = self.schema.metricsSpec[i]
            if spec.is_sketch:
                raw = [None] * n if values is None else values.to_pylist()
                cols[name] = sketch_metrics.build_column(spec, raw)
            elif spec.type == "count" or values is None:
                cols[name] = build_metric(None, n, kind)
            else:
                cols[name] = values
        self._append(pa.table(cols), n)

    def _note_times(self, lo: int, hi: int) -> None:
        with self._lock:
            self._min_time = lo if self._min_time is None else min(self._min_time, lo)
            self._max_time = hi if self._max_time is None else max(self._max_time, hi)

    def _time_column(self, times: np.ndarray[Any, np.dtype[np.int64]]) -> pa.Array:
        return self._query_granularity.bucket_starts(pa.array(times)).cast(TIME_TYPE)

    def _append(self, chunk: pa.Table, n: int) -> None:
        with self._lock:
            self._chunks.append(chunk)
            self._bytes += chunk.get_total_buffer_size()
            self._rows_since_compaction += n
            self._rows_added += n
            self._snapshot = None
            if self.rollup:
                due = max(self._compacted_rows, self._compact_rows)
                if self._rows_since_compaction >= due or len(self._chunks) > _MAX_CHUNKS:
                    self._compact_locked()
            elif len(self._chunks) > _MAX_CHUNKS:
                self._compact_locked()

    def _build_chunk(self, rows: Sequence[InputRow]) -> pa.Table:
        n = len(rows)
        times = np.fromiter((r.timestamp for r in rows), dtype=np.int64, count=n)
        self._note_times(int(times.min()), int(times.max()))
        with self._lock:
            if self._discover:
                seen: set[str] = set()
                seen.update(*(r.dims.keys() for r in rows))
                new = seen - self._known
                if new:
                    order = _first_seen_order(rows)
                    for name in sorted(new, key=order.__getitem__):
                        self._dimensions.append(name)
                        self._known.add(name)
            dimensions = list(self._dimensions)
        cols: dict[str, pa.Array] = {TIME_COLUMN: self._time_column(times)}
        for name in dimensions:
            values = [r.dims.get(name) for r in rows]
            kind = self._declared_kind.get(name, self._discovered_kind)
            cols[name] = build_dimension(values, kind)
        for i, (name, kind, _) in enumerate(self._metrics):
            inputs = [r.metrics[i] for r in rows]
            spec = self.schema.metricsSpec[i]
            if spec.is_sketch:
                cols[name] = sketch_metrics.build_column(spec, inputs)
            else:
                cols[name] = build_metric(None if spec.type == "count" else inputs, n, kind)
        return pa.table(cols)

    def seed_dictionaries(self, previous: pa.Table) -> None:
        """Make the string dimensions' dictionaries start with ``previous``'s (the snapshot of
        the sink's hydrant before this index): then each hydrant's dictionary extends the one
        before it, and unifying a sink's hydrants for a query (``Sink.query_table``) leaves
        every hydrant's indices as they are instead of rewriting all of them per query. Values
        and row order are unchanged: only dictionary order. Dimensions with more than
        ``MAX_SEEDED_DICTIONARY`` values are left alone."""
        seeds: dict[str, pa.Array] = {}
        for name in previous.column_names:
            col = previous.column(name)
            if not pa.types.is_dictionary(col.type) or not col.num_chunks:
                continue
            dictionary = col.chunk(0).dictionary
            if len(dictionary) > MAX_SEEDED_DICTIONARY or any(
                not c.dictionary.equals(dictionary) for c in col.chunks[1:]
            ):
                continue
            # A copy: ``previous`` may be a memory-mapped hydrant file closed later.
            seeds[name] = pa.concat_arrays([dictionary.cast(pa.string())])
        with self._lock:
            self._seeds = seeds
            self._reseed = bool(seeds) and bool(self._chunks)
            self._snapshot = None

    # ------------------------------------------------------------------ compaction

    def compact(self) -> None:
        """Merge the chunks into one (rolled up when ``rollup``); makes ``rows_in_memory`` exact."""
        with self._lock:
            self._compact_locked()

    def _compact_locked(self) -> None:
        if len(self._chunks) <= 1 and self._rows_since_compaction == 0 and not self._reseed:
            return
        self._reseed = False
        table = self._merge(self._chunks)
        if self._seeds:
            table = _seeded(table, self._seeds)
        table = table.unify_dictionaries()
        if self.rollup:
            keys = [TIME_COLUMN, *self._dimensions]
            table = rollup(table, keys, [(m, how) for m, _, how in self._metrics])
        else:
            table = sort_by_time(table)
        table = table.combine_chunks()
        self._chunks = [table]
        self._compacted_rows = table.num_rows
        self._rows_since_compaction = 0
        self._bytes = table.get_total_buffer_size()

    def _merge(self, chunks: list[pa.Table]) -> pa.Table:
        """One table over all chunks, every column at the widest kind any chunk gave it."""
        kinds: dict[str, str] = {}
        for c in chunks:
            for f in c.schema:
                if f.name != TIME_COLUMN:
                    k = kind_of(f.type)
                    kinds[f.name] = wider(kinds.get(f.name, k), k)
        columns = [TIME_COLUMN, *self._dimensions, *self.metrics]
        aligned = []
        for c in chunks:
            arrays = [c.column(TIME_COLUMN)]
            for name in columns[1:]:
                if name in c.column_names:
                    arrays.append(cast_to(c.column(name), kinds[name]))
                else:
                    arrays.append(pa.chunked_array([null_column(c.num_rows, kinds[name])]))
            aligned.append(pa.table(arrays, names=columns))
        return pa.concat_tables(aligned)

    # ------------------------------------------------------------------ snapshots

    def to_arrow(self) -> pa.Table:
        """A queryable snapshot in the segment format (see the module docstring)."""
        with self._lock:
            if self._snapshot is None:
                if not self._chunks:
                    self._snapshot = self._empty_table()
                else:
                    self._compact_locked()
                    self._snapshot = sketch_metrics.tag(self._chunks[0], self.schema.metricsSpec)
            return self._snapshot

    def _empty_table(self) -> pa.Table:
        cols: dict[str, pa.Array] = {TIME_COLUMN: pa.array([], type=TIME_TYPE)}
        for name in self._dimensions:
            cols[name] = null_column(0, self._declared_kind.get(name) or "string")
        for name, kind, _ in self._metrics:
            cols[name] = null_column(0, kind)
        return sketch_metrics.tag(pa.table(cols), self.schema.metricsSpec)

    def persist(self, path: str | Path, interval: Interval) -> SegmentFileInfo:
        """Write the snapshot as a segment file for ``interval`` with the segments library's
        writer (zstd Parquet, atomically)."""
        return write_parquet(
            self.to_arrow(), path, interval, dimensions=self.dimensions, metrics=self.metrics
        )


def _seeded(table: pa.Table, seeds: dict[str, pa.Array]) -> pa.Table:
    """``table`` with an empty first chunk whose string dimensions have the ``seeds`` as
    dictionaries, so that ``unify_dictionaries`` puts the seed values first."""
    empty = []
    for field in table.schema:
        seed = seeds.get(field.name)
        if seed is not None and field.type == DIM_TYPE:
            empty.append(pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), seed))
        else:
            empty.append(pa.array([], type=field.type))
    return pa.concat_tables([pa.Table.from_arrays(empty, schema=table.schema), table])


def _single_valued(col: pa.Array) -> bool:
    longest = pc.max(pc.list_value_length(col)).as_py()
    return longest is None or longest <= 1


def _first_seen_order(rows: Sequence[InputRow]) -> dict[str, int]:
    order: dict[str, int] = {}
    for r in rows:
        for k in r.dims:
            order.setdefault(k, len(order))
    return order
