"""Sequences of a seekable-stream task (Druid's ``SequenceMetadata``) and their persistence.

A task reads its partitions as a list of sequences: each has a name (``<baseSequenceName>_<id>``)
and start/end offsets per partition. Kafka offsets are *inclusive* at the start and *exclusive* at
the end: a record at offset ``o`` of partition ``p`` belongs to the sequence with
``start[p] <= o < end[p]``. The latest sequence ends at ``END_OF_STREAM`` (Java's
``Long.MAX_VALUE``) until the supervisor checkpoints it (``set_end_offsets``, druid-internals 4.3).
Segments are allocated per sequence name, so every sequence is published on its own with its own
start/end offsets: that is what makes the transactional publish exactly-once.

Everything here is pure except ``save_sequences``/``load_sequences`` (one JSON file, written
atomically). The JSON is Druid's ``sequences.json`` shape.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from common.errors import InvalidInput
from common.ingest.partitions import (
    PartitionId,
    offsets_json,
    parse_offsets,
    parse_partition_id,
    sorted_ids,
)

END_OF_STREAM = 9223372036854775807
SEQUENCES_FILE = "sequences.json"


@dataclass
class SequenceMetadata:
    sequence_id: int
    sequence_name: str
    start_offsets: dict[PartitionId, int]
    end_offsets: dict[PartitionId, int]
    #: Partitions that still have records to read in this sequence (Druid's ``assignments``).
    assignments: set[PartitionId] = field(default_factory=set)
    checkpointed: bool = False
    exclusive_start_partitions: set[PartitionId] = field(default_factory=set)

    def can_handle(self, partition: PartitionId, offset: int) -> bool:
        """Druid's ``canHandle``: the record lies in ``[start, end)`` of an assigned partition."""
        if partition not in self.assignments:
            return False
        start = self.start_offsets.get(partition)
        end = self.end_offsets.get(partition)
        return start is not None and end is not None and start <= offset < end

    @property
    def is_open(self) -> bool:
        """Some partition still has records to read (a closed sequence can be published)."""
        return bool(self.assignments)

    def update_assignments(self, current: Mapping[PartitionId, int]) -> None:
        """Keep the partitions whose current offset has not reached this sequence's end."""
        self.assignments = {
            p for p, off in current.items() if p in self.end_offsets and off < self.end_offsets[p]
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "sequenceId": self.sequence_id,
            "sequenceName": self.sequence_name,
            "startOffsets": _str_keys(self.start_offsets),
            "endOffsets": _str_keys(self.end_offsets),
            "assignments": sorted_ids(self.assignments),
            "sentinel": False,
            "checkpointed": self.checkpointed,
            "exclusiveStartPartitions": sorted_ids(self.exclusive_start_partitions),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SequenceMetadata:
        return cls(
            sequence_id=int(d["sequenceId"]),
            sequence_name=str(d["sequenceName"]),
            start_offsets=int_keys(d["startOffsets"]),
            end_offsets=int_keys(d["endOffsets"]),
            assignments={parse_partition_id(p) for p in d.get("assignments", [])},
            checkpointed=bool(d.get("checkpointed", False)),
            exclusive_start_partitions={
                parse_partition_id(p) for p in d.get("exclusiveStartPartitions", [])
            },
        )


def _str_keys(m: Mapping[PartitionId, int]) -> dict[str, int]:
    return offsets_json(m)


def int_keys(m: Mapping[Any, Any]) -> dict[PartitionId, int]:
    """``{"0": 10}`` -> ``{0: 10}``, ``{"t:0": 10}`` -> ``{"t:0": 10}`` (see
    ``common.ingest.partitions``); ``InvalidInput`` on anything else."""
    if not isinstance(m, Mapping):
        raise InvalidInput(f"bad partition -> offset map {m!r}: not an object")
    try:
        return parse_offsets(m)
    except InvalidInput as e:
        raise InvalidInput(f"bad partition -> offset map {m!r}: {e.message}") from None


def sequence_name(base: str, sequence_id: int) -> str:
    return f"{base}_{sequence_id}"


def initial_sequences(
    base_name: str,
    start: Mapping[PartitionId, int],
    end: Mapping[PartitionId, int],
    checkpoints: Mapping[int, Mapping[PartitionId, int]] | None,
) -> list[SequenceMetadata]:
    """Druid's fresh-start sequences: one per ``checkpoints`` entry (each ending where the next
    starts, the last at the ioConfig end offsets), or one from ``start`` to ``end``."""
    seqs: list[SequenceMetadata] = []
    if checkpoints:
        ids = sorted(checkpoints)
        for i, sid in enumerate(ids):
            last = i == len(ids) - 1
            s = dict(checkpoints[sid])
            e = dict(end) if last else dict(checkpoints[ids[i + 1]])
            seqs.append(
                SequenceMetadata(
                    sid, sequence_name(base_name, sid), s, e, set(s), checkpointed=not last
                )
            )
    else:
        seqs.append(SequenceMetadata(0, sequence_name(base_name, 0), dict(start), dict(end)))
    for seq in seqs:
        seq.update_assignments(seq.start_offsets)
    return seqs


def sequence_for(
    sequences: list[SequenceMetadata], partition: PartitionId, offset: int
) -> SequenceMetadata | None:
    for seq in sequences:
        if seq.can_handle(partition, offset):
            return seq
    return None


class EndOffsetsError(Exception):
    """``setEndOffsets`` refused (HTTP 400 with this message)."""


@dataclass(frozen=True)
class EndOffsetsDecision:
    """What ``decide_end_offsets`` tells the task to do.

    ``duplicate``: already applied, just resume. Otherwise the sequences have been changed in
    place (persist them, then resume).
    """

    duplicate: bool


def decide_end_offsets(
    sequences: list[SequenceMetadata],
    offsets: Mapping[PartitionId, int] | None,
    finish: bool,
    paused: bool,
    current: Mapping[PartitionId, int],
    base_name: str,
) -> EndOffsetsDecision:
    """Druid's ``setEndOffsets`` rules (druid-internals 4.3), applied to ``sequences``.

    Raises ``EndOffsetsError`` for a refusal (400). With ``finish`` the latest sequence ends at
    ``offsets`` (the task publishes once it reaches them); without, the latest sequence is closed
    there and a new one ``<base>_<id+1>`` starts there and ends at the task's end offsets.
    """
    if offsets is None:
        raise EndOffsetsError("Request body must contain a map of { partition:endOffset }")
    if not sequences:
        raise EndOffsetsError("Task has no sequences")
    latest = sequences[-1]
    unknown = set(offsets) - set(current)
    if unknown:
        raise EndOffsetsError(
            f"Request contains partitions not being handled by this task, "
            f"my partitions: {sorted_ids(current)}"
        )
    target = {p: int(o) for p, o in offsets.items()}
    if (not finish and latest.start_offsets == target) or (finish and latest.end_offsets == target):
        return EndOffsetsDecision(duplicate=True)
    if latest.checkpointed:
        raise EndOffsetsError(
            f"Sequence [{latest.sequence_name}] has already endOffsets set, "
            f"cannot set to [{ {p: target[p] for p in sorted_ids(target)} }]"
        )
    if not paused:
        raise EndOffsetsError("Task must be paused before changing the end offsets")
    for p, o in target.items():
        if o < current[p]:
            raise EndOffsetsError(
                f"End sequence number must be >= current sequence number for partition [{p}] "
                f"(current: {current[p]})"
            )
    # The latest sequence always ends at the task's end offsets; a new one inherits them.
    task_end = dict(latest.end_offsets)
    # Partitions missing from the request keep their current offset as the end.
    ends = {p: target.get(p, current[p]) for p in latest.start_offsets}
    latest.end_offsets = ends
    latest.checkpointed = True
    latest.update_assignments(current)
    if not finish:
        nid = latest.sequence_id + 1
        new = SequenceMetadata(
            nid,
            sequence_name(base_name, nid),
            dict(ends),
            task_end,
        )
        new.update_assignments(current)
        sequences.append(new)
    return EndOffsetsDecision(duplicate=False)


def checkpoints_view(sequences: list[SequenceMetadata]) -> dict[str, dict[str, int]]:
    """``GET /checkpoints``: ``{sequenceId: {partition: startOffset}}``, sorted."""
    return {str(s.sequence_id): _str_keys(s.start_offsets) for s in sorted_by_id(sequences)}


def sorted_by_id(sequences: list[SequenceMetadata]) -> list[SequenceMetadata]:
    return sorted(sequences, key=lambda s: s.sequence_id)


# ---------------------------------------------------------------------------- persistence


def save_sequences(task_dir: str | os.PathLike[str], sequences: list[SequenceMetadata]) -> None:
    """Write ``<task_dir>/sequences.json`` atomically."""
    write_json_atomic(Path(task_dir) / SEQUENCES_FILE, [s.to_json() for s in sequences])


def load_sequences(task_dir: str | os.PathLike[str]) -> list[SequenceMetadata] | None:
    path = Path(task_dir) / SEQUENCES_FILE
    if not path.exists():
        return None
    data = orjson.loads(path.read_bytes())
    return [SequenceMetadata.from_json(d) for d in data]


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON to ``path`` via a temp file, fsync and rename: readers see old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(orjson.dumps(value))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- metadata JSON


def kafka_metadata(
    topic: str,
    offsets: Mapping[PartitionId, int],
    kind: str,
    exclusive: set[PartitionId] | None = None,
) -> dict[str, Any]:
    """Kafka ``DataSourceMetadata`` JSON (druid-internals 4.4) of ``kind`` "start" or "end"."""
    partitions: dict[str, Any] = {
        "type": kind,
        "stream": topic,
        "topic": topic,
        "partitionSequenceNumberMap": _str_keys(offsets),
    }
    if kind == "start":
        partitions["exclusivePartitions"] = sorted_ids(exclusive or ())
    return {"type": "kafka", "partitions": partitions}


def end_sequence_numbers(topic: str, offsets: Mapping[PartitionId, int]) -> dict[str, Any]:
    """``SeekableStreamEndSequenceNumbers`` JSON (the commit metadata's ``nextPartitions``)."""
    return {
        "type": "end",
        "stream": topic,
        "topic": topic,
        "partitionSequenceNumberMap": _str_keys(offsets),
    }
