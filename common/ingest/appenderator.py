"""The appenderator: sinks of hydrants, persisted to local disk and pushed as segments.

Druid's ``StreamAppenderator``. Each segment being built is a *sink*; a sink is a list of
*hydrants*: persisted ones (an uncompressed Arrow IPC file in the task's persist directory,
memory-mapped, so a persisted hydrant costs page cache, not heap) and the current one, an
``IncrementalIndex`` in memory. ``persist`` swaps every sink's current index for an empty one
and writes the old ones to disk; queries see the swapped-out index until its file is mapped.
``push`` merges a sink's hydrants into one Parquet segment file (rolled up again across
hydrants when ``rollup``) and uploads it to deep storage.

Restore: every ``persist`` ends by writing ``commit.json`` atomically, naming the hydrants of
each sink that are complete and the caller's commit metadata (the task's ``nextPartitions``).
``restore`` loads exactly those hydrants; anything written after the last commit file is
deleted, so the on-disk state always matches the offsets in the commit metadata.

Threads: ``add_rows``/``persist_hydrants``/``push`` are CPU- or disk-bound; the caller runs them
in a worker thread. Sink creation, the swap and the bookkeeping run on the caller's thread.
Queries read sinks from worker threads: ``Sink.view`` and ``Sink.swap_current`` read and change
a sink's hydrants and current index together, so a query racing a swap sees every row once.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from common.ingest import sketch_metrics
from common.ingest.batch import ColumnBatch
from common.ingest.columns import cast_to, kind_of, null_column, rollup, wider
from common.ingest.index import IncrementalIndex
from common.ingest.parser import InputRow
from common.ingest.sequences import write_json_atomic
from common.ingest.spec import TIME_COLUMN, DataSchema
from common.segments.deep_storage import DeepStorage
from common.segments.format import MappedSegment, normalise_table, open_segment, write_parquet
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, SegmentId, SegmentIdWithShardSpec

log = logging.getLogger(__name__)

COMMIT_FILE = "commit.json"
MERGED_FILE = "merged.parquet"


class Hydrant:
    """One piece of a sink: an in-memory index until it is persisted, then a mapped file."""

    def __init__(
        self, count: int, index: IncrementalIndex | None = None, mapped: MappedSegment | None = None
    ) -> None:
        self.count = count
        self.index = index
        self.mapped = mapped

    @property
    def persisted(self) -> bool:
        return self.mapped is not None

    @property
    def num_rows(self) -> int:
        if self.mapped is not None:
            return self.mapped.info.num_rows
        return self.index.rows_in_memory if self.index is not None else 0

    def table(self) -> pa.Table:
        # The index first: a persist (in another thread) maps the file before it lets the
        # index go, so either the index read here is still whole or the file is mapped.
        index = self.index
        mapped = self.mapped
        if mapped is not None:
            return mapped.table
        assert index is not None
        return index.to_arrow()

    def close(self) -> None:
        if self.mapped is not None:
            self.mapped.close()


@dataclass
class Sink:
    identifier: SegmentIdWithShardSpec
    sequence_name: str
    current: IncrementalIndex
    hydrants: list[Hydrant] = field(default_factory=list)
    #: Rows (after rollup within each hydrant) in every hydrant but the current one.
    persisted_rows: int = 0
    #: Held while the hydrants and the current index change together (``swap_current``) or are
    #: read together (``view``): queries read a sink from worker threads while the loop swaps.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def num_rows(self) -> int:
        return self.persisted_rows + self.current.rows_in_memory

    def view(self) -> tuple[list[Hydrant], IncrementalIndex]:
        """The hydrants and the current index as of one moment: never the hydrants from before
        a swap with the fresh index from after it (which would lose the swapped-out rows)."""
        with self._lock:
            return list(self.hydrants), self.current

    def swap_current(self, fresh: IncrementalIndex) -> Hydrant:
        """Make the current index a hydrant and ``fresh`` the current one, as one step."""
        with self._lock:
            hydrant = Hydrant(len(self.hydrants), index=self.current)
            self.hydrants.append(hydrant)
            self.current = fresh
        return hydrant

    def tables(self) -> list[pa.Table]:
        """The sink's data for a query: every hydrant, then the in-memory index."""
        return _tables(*self.view())

    def query_table(self, metrics: Sequence[str]) -> pa.Table:
        """Every hydrant as chunks of one table (the realtime segment a query reads)."""
        hydrants, current = self.view()
        tables = _tables(hydrants, current) or [current.to_arrow()]
        table = align_tables(tables, _dimensions(hydrants, current), metrics, combine=False)
        return sketch_metrics.tag(table, current.schema.metricsSpec)


def _tables(hydrants: list[Hydrant], current: IncrementalIndex) -> list[pa.Table]:
    out = [h.table() for h in hydrants]
    if not current.is_empty:
        out.append(current.to_arrow())
    return out


def _dimensions(hydrants: list[Hydrant], current: IncrementalIndex) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for dims in [*(_hydrant_dims(h) for h in hydrants), current.dimensions]:
        for d in dims:
            if d not in seen:
                seen.add(d)
                names.append(d)
    return names


def _hydrant_dims(h: Hydrant) -> list[str]:
    index, mapped = h.index, h.mapped  # in this order: see Hydrant.table
    if mapped is not None:
        return list(mapped.info.dimensions)
    return index.dimensions if index is not None else []


@dataclass(frozen=True)
class PersistLimits:
    max_rows_in_memory: int = 150_000
    max_bytes_in_memory: int = 0  # resolved by the caller; <= 0 here means unlimited
    intermediate_persist_period: float = 600.0


class Appenderator:
    """The sinks of one task. ``persist_dir`` holds hydrant files and ``commit.json``."""

    def __init__(
        self,
        schema: DataSchema,
        persist_dir: str | os.PathLike[str],
        limits: PersistLimits,
        now: float = 0.0,
        on_sink_added: Callable[[Sink], None] | None = None,
    ) -> None:
        self.schema = schema
        self.persist_dir = Path(persist_dir)
        self.limits = limits
        self.sinks: dict[SegmentId, Sink] = {}
        self.next_flush = now + limits.intermediate_persist_period
        #: Persists done (Druid's ``ingest/persists/count``).
        self.persists = 0
        self._on_sink_added = on_sink_added

    # ------------------------------------------------------------------ accounting

    @property
    def rows_in_memory(self) -> int:
        return sum(s.current.rows_in_memory for s in self.sinks.values())

    @property
    def bytes_in_memory(self) -> int:
        return sum(s.current.bytes_in_memory for s in self.sinks.values())

    @property
    def total_rows(self) -> int:
        return sum(s.num_rows for s in self.sinks.values())

    def persist_reason(self, now: float) -> str | None:
        """Why a persist is due now (Druid's ``StreamAppenderator.add`` triggers), or None."""
        lim = self.limits
        if self.rows_in_memory == 0:
            return None
        if now >= self.next_flush:
            return "intermediatePersistPeriod"
        if self.rows_in_memory >= lim.max_rows_in_memory:
            return "maxRowsInMemory"
        if lim.max_bytes_in_memory > 0 and self.bytes_in_memory >= lim.max_bytes_in_memory:
            return "maxBytesInMemory"
        return None

    # ------------------------------------------------------------------ adding

    def get_or_create_sink(self, identifier: SegmentIdWithShardSpec, sequence_name: str) -> Sink:
        sink = self.sinks.get(identifier.segment_id)
        if sink is None:
            sink = Sink(identifier, sequence_name, IncrementalIndex(self.schema))
            self.sinks[identifier.segment_id] = sink
            if self._on_sink_added is not None:
                self._on_sink_added(sink)
        return sink

    @staticmethod
    def add_rows(sink: Sink, rows: Sequence[InputRow]) -> None:
        """Add rows to a sink's current index (CPU-bound; run it in a thread for big batches)."""
        sink.current.add_rows(rows)

    @staticmethod
    def add_batch(sink: Sink, batch: ColumnBatch) -> None:
        """Add column-parsed rows to a sink's current index (CPU-bound, as ``add_rows``)."""
        sink.current.add_batch(batch)

    # ------------------------------------------------------------------ persisting

    def swap(self, now: float) -> list[tuple[Sink, Hydrant]]:
        """Swap each non-empty current index for a fresh one; the old ones stay queryable as
        in-memory hydrants until ``persist_hydrants`` maps their files. Cheap: call it on the
        loop, between adds."""
        swapped = []
        for sink in self.sinks.values():
            if sink.current.is_empty:
                continue
            swapped.append((sink, sink.swap_current(IncrementalIndex(self.schema))))
        self.next_flush = now + self.limits.intermediate_persist_period
        return swapped

    def persist_hydrants(
        self, swapped: list[tuple[Sink, Hydrant]], commit_metadata: dict[str, Any]
    ) -> None:
        """Write the swapped hydrants to disk, map them, then write ``commit.json`` (blocking)."""
        for sink, hydrant in swapped:
            index = hydrant.index
            assert index is not None
            path = self._sink_dir(sink.identifier) / f"{hydrant.count}.arrow"
            table = index.to_arrow()
            write_ipc(table, path, sink.identifier.interval, index.dimensions, index.metrics)
            hydrant.mapped = open_segment(path)
            sink.persisted_rows += hydrant.mapped.info.num_rows
            hydrant.index = None
            if hydrant is sink.hydrants[-1]:
                sink.current.seed_dictionaries(table)
        self.write_commit(commit_metadata)
        self.persists += 1

    def write_commit(self, commit_metadata: dict[str, Any]) -> None:
        sinks = []
        # A copy: the loop may add or drop a sink while this runs in a worker thread.
        for sink in list(self.sinks.values()):
            done = 0
            for h in sink.hydrants:
                if not h.persisted:
                    break
                done += 1
            sinks.append(
                {
                    "identifier": sink.identifier.to_json(),
                    "sequenceName": sink.sequence_name,
                    "hydrants": done,
                }
            )
        write_json_atomic(
            self.persist_dir / COMMIT_FILE, {"metadata": commit_metadata, "sinks": sinks}
        )

    def _sink_dir(self, identifier: SegmentIdWithShardSpec) -> Path:
        d = self.persist_dir / str(identifier)
        d.mkdir(parents=True, exist_ok=True)
        return d

    # ------------------------------------------------------------------ restore

    def restore(self) -> dict[str, Any] | None:
        """Load the sinks named in ``commit.json``; returns its commit metadata (None if fresh).
        Files not covered by the commit are removed (blocking)."""
        path = self.persist_dir / COMMIT_FILE
        if not path.exists():
            if self.persist_dir.exists():
                shutil.rmtree(self.persist_dir)
            return None
        commit = orjson.loads(path.read_bytes())
        keep: set[str] = {COMMIT_FILE}
        for entry in commit.get("sinks", []):
            ident = SegmentIdWithShardSpec.from_json(entry["identifier"])
            sink = Sink(ident, str(entry["sequenceName"]), IncrementalIndex(self.schema))
            keep.add(str(ident))
            sink_dir = self.persist_dir / str(ident)
            for i in range(int(entry["hydrants"])):
                mapped = open_segment(sink_dir / f"{i}.arrow")
                sink.hydrants.append(Hydrant(i, mapped=mapped))
                sink.persisted_rows += mapped.info.num_rows
            _remove_extra_hydrants(sink_dir, int(entry["hydrants"]))
            if sink.hydrants:
                sink.current.seed_dictionaries(sink.hydrants[-1].table())
            self.sinks[ident.segment_id] = sink
            if self._on_sink_added is not None:
                self._on_sink_added(sink)
        for child in self.persist_dir.iterdir():
            if child.name not in keep:
                _remove(child)
        metadata: dict[str, Any] = commit.get("metadata") or {}
        return metadata

    # ------------------------------------------------------------------ push / drop

    def merged_table(self, sink: Sink) -> tuple[pa.Table, list[str], list[str]]:
        """All of a sink's rows in one table (rolled up across hydrants when ``rollup``)."""
        hydrants, current = sink.view()  # one view for both, as a query's
        tables = _tables(hydrants, current)
        dims = _dimensions(hydrants, current)
        metrics = [m.name for m in self.schema.metricsSpec]
        table = align_tables(tables, dims, metrics)
        gspec = self.schema.granularitySpec
        if gspec.rollup and len(tables) > 1:
            table = rollup(
                table.unify_dictionaries(),
                [TIME_COLUMN, *dims],
                [
                    (m.name, sketch_metrics.combiner(m) if m.is_sketch else m.combine)
                    for m in self.schema.metricsSpec
                ],
            )
        return sketch_metrics.tag(table, self.schema.metricsSpec), dims, metrics

    def push(self, sink: Sink, deep_storage: DeepStorage) -> DataSegment:
        """Merge a sink into one Parquet file and upload it (blocking)."""
        table, dims, metrics = self.merged_table(sink)
        path = self._sink_dir(sink.identifier) / MERGED_FILE
        write_parquet(table, path, sink.identifier.interval, dimensions=dims, metrics=metrics)
        segment = sink.identifier.data_segment(dims, metrics)
        return deep_storage.push(segment, path)

    def drop(self, segment_id: SegmentId) -> Sink | None:
        """Forget a sink and delete its files (after handoff, or a failed task's cleanup)."""
        sink = self.sinks.pop(segment_id, None)
        if sink is None:
            return None
        for h in sink.hydrants:
            h.close()
        _remove(self.persist_dir / str(sink.identifier))
        return sink

    def close(self) -> None:
        for sink in self.sinks.values():
            for h in sink.hydrants:
                h.close()


def align_tables(
    tables: Sequence[pa.Table],
    dims: Sequence[str],
    metrics: Sequence[str],
    combine: bool = True,
) -> pa.Table:
    """One table over hydrant tables whose columns may differ (schemaless discovery): every
    column at the widest kind any table gave it, missing ones null. Without ``combine`` the
    hydrants stay separate chunks (no copy: for queries over mapped hydrants)."""
    kinds: dict[str, str] = {}
    for t in tables:
        for f in t.schema:
            if f.name != TIME_COLUMN:
                k = kind_of(f.type)
                kinds[f.name] = wider(kinds.get(f.name, k), k)
    columns = [TIME_COLUMN, *dims, *metrics]
    aligned = []
    for t in tables:
        arrays = [t.column(TIME_COLUMN)]
        for name in columns[1:]:
            kind = kinds.get(name, "long" if name in metrics else "string")
            if name in t.column_names:
                arrays.append(cast_to(t.column(name), kind))
            else:
                arrays.append(pa.chunked_array([null_column(t.num_rows, kind)]))
        aligned.append(pa.table(arrays, names=columns))
    if not aligned:
        raise ValueError("no hydrants to merge")
    out = pa.concat_tables(aligned, promote_options="permissive").unify_dictionaries()
    return out.combine_chunks() if combine else out


def write_ipc(
    table: pa.Table,
    path: Path,
    interval: Interval,
    dimensions: Sequence[str],
    metrics: Sequence[str],
) -> None:
    """A hydrant file: the segment format as uncompressed Arrow IPC, written atomically."""
    out, _ = normalise_table(table, interval, dimensions, metrics)
    out = out.unify_dictionaries()
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as f, ipc.new_file(f, out.schema) as writer:
        writer.write_table(out)
    os.replace(tmp, path)


def _remove_extra_hydrants(sink_dir: Path, keep: int) -> None:
    if not sink_dir.exists():
        return
    for child in sink_dir.iterdir():
        stem = child.name.split(".", 1)[0]
        if not (child.suffix == ".arrow" and stem.isdigit() and int(stem) < keep):
            _remove(child)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
