"""Routing a polled batch of records to (sequence, time chunk) groups of parsed rows.

For each record in offset order (Druid's ``SeekableStreamIndexTaskRunner`` read loop): skip it
unless its offset is at or past the partition's current offset and before its end offset; find
the sequence that handles it (none: logged and skipped, its offset still counts as read); parse
it; route each row to ``(sequenceName, segment-granularity bucket start)``. ``next_offsets`` is
one past the last record read per partition.

``route`` takes the columnar path (``common.ingest.batch``) when the batch allows it and the row
path otherwise; both give the same rows, counts and offsets.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from common.ingest.batch import BatchParser, ColumnBatch
from common.ingest.kafka import PartitionRecords
from common.ingest.parser import InputRow, RowParser
from common.ingest.partitions import PartitionId
from common.ingest.sequences import SequenceMetadata, sequence_for
from common.segments.granularity import Granularity

log = logging.getLogger(__name__)

Key = tuple[str, int]


@dataclass
class Routed:
    """Rows per (sequenceName, bucket start): ``rows`` from the row path, ``columns`` from the
    batch path (a batch is routed by one of them), and the offsets read up to."""

    rows: dict[Key, list[InputRow]] = field(default_factory=dict)
    columns: dict[Key, ColumnBatch] = field(default_factory=dict)
    next_offsets: dict[PartitionId, int] = field(default_factory=dict)
    #: Whether the batch path parsed this poll.
    columnar: bool = False

    @property
    def keys(self) -> list[Key]:
        return [*self.rows, *self.columns]


@dataclass
class Router:
    """Routes polls for one task; ``batch`` is None when the schema needs the row path."""

    parser: RowParser
    batch: BatchParser | None
    granularity: Granularity
    min_time: int | None = None
    max_time: int | None = None
    task_log: logging.Logger = log

    def route(
        self,
        parts: Sequence[PartitionRecords],
        current: dict[PartitionId, int],
        ends: dict[PartitionId, int],
        sequences: Sequence[SequenceMetadata],
        now_ms: int,
    ) -> Routed:
        if self.batch is not None:
            routed = self._route_columns(parts, current, ends, sequences)
            if routed is not None:
                return routed
        return self._route_rows(parts, current, ends, sequences, now_ms)

    def _route_rows(
        self,
        parts: Sequence[PartitionRecords],
        current: dict[PartitionId, int],
        ends: dict[PartitionId, int],
        sequences: Sequence[SequenceMetadata],
        now_ms: int,
    ) -> Routed:
        gran = self.granularity
        routed: dict[Key, list[InputRow]] = defaultdict(list)
        next_offsets: dict[PartitionId, int] = {}
        seqs = list(sequences)
        for part in parts:
            p = part.partition
            for off, value in zip(part.offsets, part.values, strict=True):
                expected = next_offsets.get(p, current.get(p))
                if expected is None or off < expected or off >= ends.get(p, off):
                    continue
                seq = sequence_for(seqs, p, off)
                if seq is None:
                    self.task_log.warning("no sequence can handle record %s@%s; skipped", p, off)
                    next_offsets[p] = off + 1
                    continue
                rows = self.parser.parse(value, now_ms, self.min_time, self.max_time)
                for row in rows:
                    routed[(seq.sequence_name, gran.bucket_start(row.timestamp))].append(row)
                next_offsets[p] = off + 1
        return Routed(rows=dict(routed), next_offsets=next_offsets)

    def _route_columns(
        self,
        parts: Sequence[PartitionRecords],
        current: dict[PartitionId, int],
        ends: dict[PartitionId, int],
        sequences: Sequence[SequenceMetadata],
    ) -> Routed | None:
        assert self.batch is not None
        values: list[bytes] = []
        value_seq: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        next_offsets: dict[PartitionId, int] = {}
        skipped: list[tuple[PartitionId, int]] = []
        for part in parts:
            p = part.partition
            cur = current.get(p)
            if cur is None or not part.offsets:
                continue
            offs = np.asarray(part.offsets, dtype=np.int64)
            if len(offs) > 1 and not bool((np.diff(offs) > 0).all()):
                return None  # the row path's offset rules handle anything but increasing
            keep = offs >= cur
            end = ends.get(p)
            if end is not None:
                keep &= offs < end
            kept = np.flatnonzero(keep)
            if not len(kept):
                continue
            next_offsets[p] = int(offs[kept[-1]]) + 1
            assigned = _assign(sequences, p, offs, keep)
            handled = kept[assigned[kept] >= 0]
            if len(handled) < len(kept):
                unhandled = kept[assigned[kept] < 0]
                skipped.extend((p, int(o)) for o in offs[unhandled].tolist())
            if len(handled) == len(part.values):
                vals = part.values
            else:
                vals = [part.values[i] for i in handled.tolist()]
            seqs = assigned[handled]
            if not all(vals):  # tombstones and empty records give no rows
                full = np.fromiter((bool(v) for v in vals), dtype=np.bool_, count=len(vals))
                vals = [v for v in vals if v]
                seqs = seqs[full]
            values.extend(vals)  # type: ignore[arg-type]  # no None left
            value_seq.append(seqs)
        routed = Routed(next_offsets=next_offsets, columnar=True)
        if values:
            parsed = self.batch.parse(values, self.min_time, self.max_time)
            if parsed is None:
                return None
            rows = parsed.rows
            if len(rows):
                seq_of_row = np.concatenate(value_seq)[parsed.record_index]
                buckets = np.asarray(
                    self.granularity.bucket_starts(pa.array(rows.times)).to_numpy(),
                    dtype=np.int64,
                )
                routed.columns = _group(rows, seq_of_row, buckets, sequences)
        for p, off in skipped:
            self.task_log.warning("no sequence can handle record %s@%s; skipped", p, off)
        return routed


def _assign(
    sequences: Sequence[SequenceMetadata],
    partition: PartitionId,
    offs: np.ndarray[Any, np.dtype[np.int64]],
    keep: np.ndarray[Any, np.dtype[np.bool_]],
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Index of the first sequence that can handle each record (``sequence_for``), or -1."""
    assigned = np.full(len(offs), -1, dtype=np.int64)
    for i, seq in enumerate(sequences):
        if partition not in seq.assignments:
            continue
        start = seq.start_offsets.get(partition)
        end = seq.end_offsets.get(partition)
        if start is None or end is None:
            continue
        m = keep & (assigned < 0) & (offs >= start) & (offs < end)
        assigned[m] = i
    return assigned


def _group(
    rows: ColumnBatch,
    seq_of_row: np.ndarray[Any, np.dtype[np.int64]],
    buckets: np.ndarray[Any, np.dtype[np.int64]],
    sequences: Sequence[SequenceMetadata],
) -> dict[Key, ColumnBatch]:
    s0, b0 = int(seq_of_row[0]), int(buckets[0])
    if bool((seq_of_row == s0).all()) and bool((buckets == b0).all()):
        return {(sequences[s0].sequence_name, b0): rows}
    out: dict[Key, ColumnBatch] = {}
    for s in np.unique(seq_of_row).tolist():
        in_seq = seq_of_row == s
        for b in np.unique(buckets[in_seq]).tolist():
            idx = np.flatnonzero(in_seq & (buckets == b))
            out[(sequences[s].sequence_name, b)] = rows.take(idx)
    return out
