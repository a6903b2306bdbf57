"""Kafka ``DataSourceMetadata``: the stream offsets committed with segments (Druid 4.4).

Druid's ``KafkaDataSourceMetadata`` wraps a ``SeekableStreamSequenceNumbers``, either *end*
numbers (what a publish commits and what ``druid_dataSource`` stores) or *start* numbers (where a
task begins; they may mark partitions whose start offset is exclusive). JSON::

    {"type": "kafka", "partitions": {"type": "end", "stream": "t", "topic": "t",
                                     "partitionSequenceNumberMap": {"0": 123}}}
    {"type": "kafka", "partitions": {"type": "start", "stream": "t", "topic": "t",
                                     "partitionSequenceNumberMap": {"0": 10},
                                     "exclusivePartitions": []}}

``topic`` duplicates ``stream`` and ``partitionOffsetMap`` is accepted for
``partitionSequenceNumberMap``, as Druid reads both. A multi-topic (``topicPattern``) supervisor's
stream is the pattern and its partition keys are ``"<topic>:<partition>"``
(``common.ingest.partitions``). The algebra is Druid's
(``SeekableStreamStartSequenceNumbers``/``SeekableStreamEndSequenceNumbers``):

* ``plus(other)``: same stream -> per-partition merge, ``other`` wins; another stream -> ``other``.
* ``minus(other)``: same stream -> this minus the partitions ``other`` has; else this unchanged.
* ``matches(other)``: ``self.plus(other) == other.plus(self)``, i.e. same stream and equal offsets
  (and exclusivity) on every common partition.
* ``is_ahead_of(other)``: a common partition of the same stream has a greater offset here (the
  ``compareTo(...) == 1`` of a publish racing a previous one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from common.errors import InvalidInput
from common.ingest.partitions import PartitionId, offsets_json, parse_partition_id, sorted_ids

KAFKA = "kafka"
#: Long.MAX_VALUE: the end offset of a task that reads until told otherwise.
END_OF_PARTITION = 9223372036854775807

Kind = Literal["start", "end"]


def _offsets(raw: Any, where: str) -> dict[PartitionId, int]:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: partitionSequenceNumberMap must be an object")
    result: dict[PartitionId, int] = {}
    for key, value in raw.items():
        try:
            partition = parse_partition_id(key)
        except InvalidInput:
            raise InvalidInput(
                f"{where}: partition id {key!r} is not an integer or topic:partition"
            ) from None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidInput(f"{where}: offset of partition {key} must be an integer")
        try:
            result[partition] = int(value)
        except ValueError:
            raise InvalidInput(f"{where}: offset of partition {key} must be an integer") from None
    return result


@dataclass(frozen=True)
class SequenceNumbers:
    """Druid's start or end sequence numbers of one stream (partition -> offset)."""

    kind: Kind
    stream: str
    offsets: Mapping[PartitionId, int]
    exclusive: frozenset[PartitionId] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        # Own a plain dict so that equality and JSON never depend on the caller's mapping.
        object.__setattr__(self, "offsets", dict(self.offsets))
        if self.kind == "end":
            object.__setattr__(self, "exclusive", frozenset())

    # ---- algebra
    def plus(self, other: SequenceNumbers) -> SequenceNumbers:
        self._same_kind(other, "plus")
        if self.stream != other.stream:
            return other
        merged = {**self.offsets, **other.offsets}
        exclusive = {
            p for p in self.offsets if p in self.exclusive and p not in other.offsets
        } | set(other.exclusive)
        return SequenceNumbers(self.kind, self.stream, merged, frozenset(exclusive))

    def minus(self, other: SequenceNumbers) -> SequenceNumbers:
        self._same_kind(other, "minus")
        if self.stream != other.stream:
            return self
        kept = {p: o for p, o in self.offsets.items() if p not in other.offsets}
        return SequenceNumbers(
            self.kind, self.stream, kept, frozenset(p for p in self.exclusive if p in kept)
        )

    def is_ahead_of(self, other: SequenceNumbers) -> bool:
        if self.stream != other.stream:
            return False
        return any(p in other.offsets and o > other.offsets[p] for p, o in self.offsets.items())

    def as_start(self) -> SequenceNumbers:
        if self.kind == "start":
            return self
        return SequenceNumbers("start", self.stream, self.offsets)

    def as_end(self) -> SequenceNumbers:
        return SequenceNumbers("end", self.stream, self.offsets)

    def _same_kind(self, other: SequenceNumbers, op: str) -> None:
        if self.kind != other.kind:
            raise InvalidInput(
                f"cannot {op} {other.kind} sequence numbers to {self.kind} sequence numbers"
            )

    # ---- JSON
    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.kind,
            "stream": self.stream,
            "topic": self.stream,
            "partitionSequenceNumberMap": offsets_json(self.offsets),
        }
        if self.kind == "start":
            body["exclusivePartitions"] = sorted_ids(self.exclusive)
        return body

    @classmethod
    def from_json(cls, obj: Any, default_kind: Kind = "end") -> SequenceNumbers:
        where = "sequence numbers"
        if not isinstance(obj, Mapping):
            raise InvalidInput(f"{where} must be an object, got {type(obj).__name__}")
        kind = obj.get("type", default_kind)
        if kind not in ("start", "end"):
            raise InvalidInput(f"{where}: unknown type {kind!r} (expected 'start' or 'end')")
        stream = obj.get("stream", obj.get("topic"))
        if not isinstance(stream, str) or not stream:
            raise InvalidInput(f"{where}: 'stream' (or 'topic') is required")
        raw = obj.get("partitionSequenceNumberMap", obj.get("partitionOffsetMap"))
        offsets = _offsets(raw if raw is not None else {}, where)
        excl_raw = obj.get("exclusivePartitions") or []
        if not isinstance(excl_raw, list):
            raise InvalidInput(f"{where}: exclusivePartitions must be a list")
        try:
            exclusive = frozenset(parse_partition_id(p) for p in excl_raw)
        except InvalidInput:
            raise InvalidInput(f"{where}: exclusivePartitions must hold partition ids") from None
        return cls(kind, stream, offsets, exclusive)


@dataclass(frozen=True)
class DataSourceMetadata:
    """``KafkaDataSourceMetadata``: the offsets a supervisor's publishes have reached."""

    partitions: SequenceNumbers

    @classmethod
    def end(cls, stream: str, offsets: Mapping[PartitionId, int]) -> DataSourceMetadata:
        return cls(SequenceNumbers("end", stream, offsets))

    @classmethod
    def start(
        cls,
        stream: str,
        offsets: Mapping[PartitionId, int],
        exclusive: frozenset[PartitionId] = frozenset(),
    ) -> DataSourceMetadata:
        return cls(SequenceNumbers("start", stream, offsets, exclusive))

    @property
    def stream(self) -> str:
        return self.partitions.stream

    @property
    def offsets(self) -> Mapping[PartitionId, int]:
        return self.partitions.offsets

    def is_valid_start(self) -> bool:
        # Druid: any Kafka metadata may start a datasource that has none committed.
        return True

    def plus(self, other: DataSourceMetadata) -> DataSourceMetadata:
        return DataSourceMetadata(self.partitions.plus(other.partitions))

    def minus(self, other: DataSourceMetadata) -> DataSourceMetadata:
        return DataSourceMetadata(self.partitions.minus(other.partitions))

    def matches(self, other: DataSourceMetadata) -> bool:
        if self.partitions.kind != other.partitions.kind:
            return False
        return self.plus(other) == other.plus(self)

    def is_ahead_of(self, other: DataSourceMetadata) -> bool:
        return self.partitions.is_ahead_of(other.partitions)

    def covers(self, other: DataSourceMetadata) -> bool:
        """Same stream, and every partition of ``other`` is at or behind this one's offset."""
        mine = self.offsets
        return self.stream == other.stream and all(
            p in mine and mine[p] >= off for p, off in other.offsets.items()
        )

    def as_start(self) -> DataSourceMetadata:
        return DataSourceMetadata(self.partitions.as_start())

    def as_end(self) -> DataSourceMetadata:
        return DataSourceMetadata(self.partitions.as_end())

    def to_json(self) -> dict[str, Any]:
        return {"type": KAFKA, "partitions": self.partitions.to_json()}

    @classmethod
    def from_json(cls, obj: Any) -> DataSourceMetadata:
        if not isinstance(obj, Mapping):
            raise InvalidInput(f"dataSourceMetadata must be an object, got {type(obj).__name__}")
        kind = obj.get("type", KAFKA)
        if kind != KAFKA:
            raise InvalidInput(f"dataSourceMetadata: unsupported type {kind!r} (expected 'kafka')")
        if "partitions" not in obj:
            raise InvalidInput("dataSourceMetadata: 'partitions' is required")
        return cls(SequenceNumbers.from_json(obj["partitions"]))
