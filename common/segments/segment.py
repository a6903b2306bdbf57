"""``DataSegment``, shard specs, segment ids and query descriptors, with Druid's JSON.

Wire shape (``DataSegment.java``)::

    {"dataSource": "wiki", "interval": "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z",
     "version": "2024-01-03T10:00:00.000Z", "loadSpec": {"type": "local", "path": "..."},
     "dimensions": "page,user", "metrics": "count,added",
     "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
     "binaryVersion": 9, "size": 1234, "identifier": "wiki_2024-01-01T00:00:00.000Z_..."}

``dimensions``/``metrics`` are comma-joined strings on the wire; lists are accepted on input.
``identifier`` is written on output and ignored on input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    computed_field,
)

from common.errors import InvalidInput
from common.segments.errors import InvalidTime
from common.segments.intervals import Interval
from common.segments.isotime import format_iso, parse_iso

_MODEL = ConfigDict(populate_by_name=True, serialize_by_alias=True, frozen=True, extra="ignore")


class NumberedShardSpec(BaseModel):
    """``partitions`` is the number of core partitions (0 for appended, streaming segments)."""

    model_config = _MODEL
    type: Literal["numbered"] = "numbered"
    partition_num: int = Field(default=0, ge=0, alias="partitionNum")
    partitions: int = Field(default=0, ge=0)

    @property
    def core_partitions(self) -> int:
        return self.partitions


class HashBasedNumberedShardSpec(BaseModel):
    """Druid's ``hashed`` shard spec (native batch with hashed partitioning): ``partitions`` core
    partitions, rows assigned to ``bucketId`` by hashing ``partitionDimensions``."""

    model_config = _MODEL
    type: Literal["hashed"] = "hashed"
    partition_num: int = Field(default=0, ge=0, alias="partitionNum")
    partitions: int = Field(default=1, ge=0)
    bucket_id: int = Field(default=0, ge=0, alias="bucketId")
    num_buckets: int = Field(default=1, ge=0, alias="numBuckets")
    partition_dimensions: tuple[str, ...] = Field(default=(), alias="partitionDimensions")
    partition_function: str | None = Field(default="murmur3_32_abs", alias="partitionFunction")

    @property
    def core_partitions(self) -> int:
        return self.partitions


class NoneShardSpec(BaseModel):
    """An unpartitioned segment: the one and only partition 0."""

    model_config = _MODEL
    type: Literal["none"] = "none"

    @property
    def partition_num(self) -> int:
        return 0

    @property
    def core_partitions(self) -> int:
        return 1


class TombstoneShardSpec(BaseModel):
    """A segment with no data that still overshadows older versions of its interval."""

    model_config = _MODEL
    type: Literal["tombstone"] = "tombstone"
    partition_num: int = Field(default=0, ge=0, alias="partitionNum")
    partitions: int = Field(default=1, ge=0)

    @property
    def core_partitions(self) -> int:
        return self.partitions


ShardSpec = Annotated[
    NumberedShardSpec | HashBasedNumberedShardSpec | NoneShardSpec | TombstoneShardSpec,
    Field(discriminator="type"),
]


def _split_names(value: Any) -> Any:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p for p in value.split(",") if p)
    if isinstance(value, list | tuple):
        return tuple(value)
    return value


NameList = Annotated[
    tuple[str, ...],
    BeforeValidator(_split_names),
    PlainSerializer(lambda v: ",".join(v), return_type=str),
]


@dataclass(frozen=True, order=True)
class SegmentId:
    """``dataSource_start_end_version[_partitionNum]``; ordered as Druid's SegmentId."""

    data_source: str
    interval: Interval
    version: str
    partition_num: int = 0

    def __str__(self) -> str:
        text = (
            f"{self.data_source}_{format_iso(self.interval.start)}_"
            f"{format_iso(self.interval.end)}_{self.version}"
        )
        return f"{text}_{self.partition_num}" if self.partition_num else text

    @classmethod
    def try_parse(cls, data_source: str, text: str) -> SegmentId | None:
        """Parse an id of a known datasource (ids are ambiguous otherwise); None if it is not."""
        if not text.startswith(data_source + "_"):
            return None
        parts = text[len(data_source) + 1 :].split("_")
        if len(parts) < 3:
            return None
        try:
            interval = Interval(parse_iso(parts[0]), parse_iso(parts[1]))
        except InvalidTime:
            return None
        partition = 0
        rest = parts[2:]
        if len(rest) > 1 and rest[-1].isdigit():
            partition = int(rest[-1])
            rest = rest[:-1]
        version = "_".join(rest)
        if not version:
            return None
        return cls(data_source, interval, version, partition)

    @classmethod
    def parse(cls, data_source: str, text: str) -> SegmentId:
        sid = cls.try_parse(data_source, text)
        if sid is None:
            raise InvalidInput(f"Invalid segment id [{text}] for dataSource [{data_source}]")
        return sid

    def descriptor(self) -> SegmentDescriptor:
        return SegmentDescriptor(itvl=self.interval, ver=self.version, part=self.partition_num)


class SegmentDescriptor(BaseModel):
    """What a query names a segment by: ``{"itvl", "ver", "part"}``."""

    model_config = ConfigDict(frozen=True)
    itvl: Interval
    ver: str
    part: int = Field(default=0, ge=0)


class DataSegment(BaseModel):
    """A segment's metadata as stored in ``druid_segments.payload`` and announced by servers."""

    model_config = _MODEL

    data_source: str = Field(alias="dataSource", min_length=1)
    interval: Interval
    version: str = Field(min_length=1)
    load_spec: dict[str, Any] = Field(default_factory=dict, alias="loadSpec")
    dimensions: NameList = ()
    metrics: NameList = ()
    shard_spec: ShardSpec = Field(default_factory=NoneShardSpec, alias="shardSpec")
    binary_version: int | None = Field(default=9, alias="binaryVersion")
    size: int = Field(default=0, ge=0)
    #: Druid's ``CompactionState`` of the compaction task that wrote the segment, if any.
    #: Written only when set, as Druid (``exclude_if``: a wrap serializer doubled dump time).
    last_compaction_state: dict[str, Any] | None = Field(
        default=None, alias="lastCompactionState", exclude_if=lambda v: v is None
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def identifier(self) -> str:
        return str(self.id)

    @property
    def id(self) -> SegmentId:
        return SegmentId(self.data_source, self.interval, self.version, self.partition_num)

    @property
    def partition_num(self) -> int:
        return self.shard_spec.partition_num

    @property
    def is_tombstone(self) -> bool:
        return isinstance(self.shard_spec, TombstoneShardSpec)

    def descriptor(self) -> SegmentDescriptor:
        return self.id.descriptor()

    def to_json(self) -> dict[str, Any]:
        """Druid's JSON (camelCase keys, comma-joined names, ``identifier``)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, value: dict[str, Any] | str | bytes) -> DataSegment:
        if isinstance(value, str | bytes):
            return cls.model_validate_json(value)
        return cls.model_validate(value)

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True)
class SegmentIdWithShardSpec:
    """Druid's ``SegmentIdWithShardSpec``: what ``segmentAllocate`` hands out and
    ``druid_pendingSegments`` stores, a segment's identity with its numbered shard spec."""

    data_source: str
    interval: Interval
    version: str
    partition_num: int
    partitions: int = 0

    @property
    def segment_id(self) -> SegmentId:
        return SegmentId(self.data_source, self.interval, self.version, self.partition_num)

    @property
    def id(self) -> str:
        return str(self.segment_id)

    def __str__(self) -> str:
        return self.id

    def to_json(self) -> dict[str, Any]:
        return {
            "dataSource": self.data_source,
            "interval": str(self.interval),
            "version": self.version,
            "shardSpec": {
                "type": "numbered",
                "partitionNum": self.partition_num,
                "partitions": self.partitions,
            },
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SegmentIdWithShardSpec:
        shard = obj.get("shardSpec") or {}
        return cls(
            data_source=str(obj["dataSource"]),
            interval=Interval.parse(str(obj["interval"])),
            version=str(obj["version"]),
            partition_num=int(shard.get("partitionNum", 0)),
            partitions=int(shard.get("partitions", 0)),
        )

    def data_segment(self, dimensions: Sequence[str], metrics: Sequence[str]) -> DataSegment:
        """The DataSegment to push for it (streaming segments: ``partitions`` 0)."""
        return DataSegment(
            dataSource=self.data_source,
            interval=self.interval,
            version=self.version,
            dimensions=tuple(dimensions),
            metrics=tuple(metrics),
            shardSpec=NumberedShardSpec(partitionNum=self.partition_num, partitions=0),
            size=0,
        )
