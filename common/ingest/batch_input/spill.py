"""The rows of a batch task by time chunk, persisted to disk past the memory limits (Druid's
``BatchAppenderator``).

Rows go to one ``IncrementalIndex`` per ``segmentGranularity`` bucket. When the indexes together
hold ``maxRowsInMemory`` rows or ``maxBytesInMemory`` bytes of Arrow buffers and more rows
come, every non-empty index is *persisted*: written as a spill file (the segment format as
uncompressed Arrow IPC, ``<persist_dir>/<bucket start>/<n>.arrow``) and replaced by an empty
one. With ``rollup`` the
row count is an upper bound between the index's own compactions, so a tripped limit first
compacts the indexes and persists only if they still hold at least three quarters of the limit
(the next check is then at least a quarter of the limit away, so compaction stays linear).

``merged(start)`` is a time chunk's final table: its spill files (memory-mapped) and what is
still in memory, columns aligned to their widest kind, rolled up again when ``rollup`` (rows
with the same time and dimensions in different persists are combined), else sorted by time
(stable, so rows keep their input order). That is the table ``IncrementalIndex.to_arrow`` gives
when nothing was persisted: the same rows, dimensions and metric values. One time chunk is held
in memory at a time while segments are pushed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from common.ingest import sketch_metrics
from common.ingest.appenderator import align_tables, write_ipc
from common.ingest.batch import ColumnBatch
from common.ingest.columns import rollup
from common.ingest.index import IncrementalIndex
from common.ingest.parser import InputRow
from common.ingest.spec import TIME_COLUMN, DataSchema
from common.segments.format import SegmentFileInfo, sort_by_time
from common.segments.intervals import Interval

#: With rollup, persist after a compaction only when at least this share of a limit is held.
KEEP_AFTER_COMPACTION = 0.75


@dataclass(frozen=True)
class MergedChunk:
    """A time chunk's rows in the segment format, with its column names."""

    table: pa.Table
    dimensions: list[str]
    metrics: list[str]


class BatchIndexes:
    """A batch task's rows per time chunk, in memory and in spill files (blocking calls: run
    them in a worker thread)."""

    def __init__(
        self,
        schema: DataSchema,
        persist_dir: Path,
        max_rows_in_memory: int,
        max_bytes_in_memory: int = 0,
    ) -> None:
        self.schema = schema
        self.persist_dir = persist_dir
        self.max_rows = max_rows_in_memory
        #: <= 0: no limit on bytes.
        self.max_bytes = max_bytes_in_memory
        self._gran = schema.granularitySpec.segmentGranularity
        self._indexes: dict[int, IncrementalIndex] = {}
        self._spills: dict[int, list[Path]] = {}
        #: Intermediate persists done (Druid's ``ingest/persists/count``).
        self.persists = 0
        #: Rows written to spill files (after rollup within each persist).
        self.rows_persisted = 0

    # ------------------------------------------------------------------ state

    @property
    def buckets(self) -> list[int]:
        """Starts of the time chunks that got rows, in memory or persisted."""
        have = {s for s, i in self._indexes.items() if not i.is_empty} | set(self._spills)
        return sorted(have)

    def bucket(self, start: int) -> Interval:
        return self._gran.bucket(start)

    @property
    def rows_in_memory(self) -> int:
        return sum(i.rows_in_memory for i in self._indexes.values())

    @property
    def bytes_in_memory(self) -> int:
        return sum(i.bytes_in_memory for i in self._indexes.values())

    # ------------------------------------------------------------------ adding

    def add(self, rows: list[InputRow] | ColumnBatch) -> None:
        """Add parsed rows to their time chunks. Rows go in up to the limit; when more rows
        come and a limit is reached, the indexes are persisted first (a batch larger than the
        room left is added in pieces, so persists come every ``maxRowsInMemory`` rows, as
        Druid checks row by row, but the end of the input never costs a persist)."""
        n, done = len(rows), 0
        while done < n:
            if self._over_limit() and self._still_over_after_compaction():
                self.persist()
            room = max(1, self.max_rows - self.rows_in_memory)
            end = n if n - done <= room else done + room
            if isinstance(rows, ColumnBatch):
                self._add_columns(rows if (done, end) == (0, n) else rows.slice(done, end))
            else:
                self._add_rows(rows if (done, end) == (0, n) else rows[done:end])
            done = end

    def _add_columns(self, rows: ColumnBatch) -> None:
        starts = self._gran.floor_millis(rows.times)
        first = int(starts[0])
        if bool((starts == first).all()):
            self._index(first).add_batch(rows)
            return
        for start in np.unique(starts):
            idx = np.flatnonzero(starts == start)
            lo, hi = int(idx[0]), int(idx[-1]) + 1
            # Input sorted by time (the usual case) makes each chunk's rows one slice.
            part = rows.slice(lo, hi) if hi - lo == len(idx) else rows.take(idx)
            self._index(int(start)).add_batch(part)

    def _add_rows(self, rows: list[InputRow]) -> None:
        by_bucket: dict[int, list[InputRow]] = {}
        for row in rows:
            by_bucket.setdefault(self._gran.bucket_start(row.timestamp), []).append(row)
        for start, bucket_rows in by_bucket.items():
            self._index(start).add_rows(bucket_rows)

    def _index(self, start: int) -> IncrementalIndex:
        index = self._indexes.get(start)
        if index is None:
            index = self._indexes[start] = IncrementalIndex(self.schema)
        return index

    def _over_limit(self, share: float = 1.0) -> bool:
        if self.rows_in_memory >= self.max_rows * share:
            return True
        return self.max_bytes > 0 and self.bytes_in_memory >= self.max_bytes * share

    def _still_over_after_compaction(self) -> bool:
        if not self.schema.granularitySpec.rollup:
            return True
        for index in self._indexes.values():
            index.compact()
        return self._over_limit(KEEP_AFTER_COMPACTION)

    # ------------------------------------------------------------------ persisting

    def persist(self) -> None:
        """Write every non-empty index to a spill file and start empty ones."""
        wrote = False
        for start, index in sorted(self._indexes.items()):
            if index.is_empty:
                continue
            table = index.to_arrow()
            files = self._spills.setdefault(start, [])
            path = self.persist_dir / str(start) / f"{len(files)}.arrow"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_ipc(table, path, self.bucket(start), index.dimensions, index.metrics)
            files.append(path)
            self.rows_persisted += table.num_rows
            self._indexes[start] = IncrementalIndex(self.schema)
            wrote = True
        if wrote:
            self.persists += 1

    # ------------------------------------------------------------------ merging

    def merged(self, start: int) -> MergedChunk:
        """The time chunk's final table (see the module docstring)."""
        index = self._indexes.get(start)
        spills = self._spills.get(start, [])
        metrics = [m.name for m in self.schema.metricsSpec]
        if not spills:
            assert index is not None
            return MergedChunk(index.to_arrow(), index.dimensions, index.metrics)
        tables = [_read_spill(p) for p in spills]
        dims: list[str] = []
        for path, t in zip(spills, tables, strict=True):
            have = SegmentFileInfo.from_schema(t.schema, str(path)).dimensions
            dims.extend(d for d in have if d not in dims)
        if index is not None and not index.is_empty:
            tables.append(index.to_arrow())
            dims.extend(d for d in index.dimensions if d not in dims)
        table = align_tables(tables, dims, metrics)
        if self.schema.granularitySpec.rollup:
            combine = [
                (m.name, sketch_metrics.combiner(m) if m.is_sketch else m.combine)
                for m in self.schema.metricsSpec
            ]
            table = rollup(table.unify_dictionaries(), [TIME_COLUMN, *dims], combine)
        else:
            table = sort_by_time(table)
        return MergedChunk(sketch_metrics.tag(table, self.schema.metricsSpec), dims, metrics)

    def release(self, start: int) -> None:
        """Forget a time chunk once its segments are pushed (its spill files are deleted)."""
        self._indexes.pop(start, None)
        for path in self._spills.pop(start, []):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Forget everything and delete the spill files."""
        self._indexes.clear()
        self._spills.clear()
        shutil.rmtree(self.persist_dir, ignore_errors=True)


def _read_spill(path: Path) -> pa.Table:
    """A spill file, memory-mapped (its buffers keep the mapping alive, no explicit close)."""
    table: pa.Table = ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    return table
