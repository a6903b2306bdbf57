"""The ``index_kafka`` task JSON, validated into what the runner needs (Druid's ``KafkaIndexTask``
with its ``ioConfig`` and ``tuningConfig``; defaults from druid-internals 4.7)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from common.config import JAVA_INT_MAX, parse_bytes, parse_duration
from common.errors import InvalidInput
from common.ingest.partitions import PartitionId, is_multi_topic
from common.ingest.sequences import int_keys
from common.ingest.spec import (
    DataSchema,
    DelimitedInputFormat,
    JsonInputFormat,
    parse_data_schema,
    parse_input_format,
)
from common.segments.isotime import parse_iso

TASK_TYPE = "index_kafka"
DEFAULT_MAX_TOTAL_ROWS = 20_000_000
DEFAULT_HANDOFF_CONDITION_TIMEOUT = 900.0


def default_max_bytes_in_memory() -> int:
    """Druid uses 1/6 of the JVM heap; a Python process has no heap limit, so 1/6 of RAM."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 6
    except (ValueError, OSError):
        return 512 * 1024 * 1024


@dataclass(frozen=True)
class Tuning:
    max_rows_in_memory: int = 150_000
    max_bytes_in_memory: int = 0  # <= 0: unlimited (0 in JSON becomes the default)
    max_rows_per_segment: int = 5_000_000
    max_total_rows: int = DEFAULT_MAX_TOTAL_ROWS
    intermediate_persist_period: float = 600.0
    intermediate_handoff_period: float = float("inf")
    handoff_condition_timeout: float = DEFAULT_HANDOFF_CONDITION_TIMEOUT  # 0: forever
    max_parse_exceptions: int = JAVA_INT_MAX
    max_saved_parse_exceptions: int = 0
    log_parse_exceptions: bool = False


@dataclass(frozen=True)
class KafkaTaskSpec:
    id: str
    group_id: str
    data_source: str
    schema: DataSchema
    input_format: JsonInputFormat | DelimitedInputFormat
    #: The topic, or in multi-topic mode the supervisor's ``topicPattern`` (Druid's ``stream``).
    stream: str
    multi_topic: bool
    consumer_properties: dict[str, Any]
    base_sequence_name: str
    start_offsets: dict[PartitionId, int]
    end_offsets: dict[PartitionId, int]
    checkpoints: dict[int, dict[PartitionId, int]] | None
    supervisor_id: str
    task_group_id: int | None
    use_transaction: bool
    poll_timeout: float
    minimum_message_time: int | None
    maximum_message_time: int | None
    lock_type: str
    tuning: Tuning

    @property
    def message_window(self) -> tuple[int | None, int | None]:
        """``[minimumMessageTime, maximumMessageTime]`` as the half-open ``[min, max + 1)`` the
        parsers take: Druid keeps a row whose time equals either bound (``isAfter``/``isBefore``)
        and throws away (``thrownAway``) the rows outside."""
        high = self.maximum_message_time
        return self.minimum_message_time, None if high is None else high + 1


def _partitions(obj: Any, what: str) -> dict[PartitionId, int]:
    if not isinstance(obj, dict):
        raise InvalidInput(f"ioConfig.{what} must be an object")
    m = obj.get("partitionSequenceNumberMap", obj.get("partitionOffsetMap"))
    if not isinstance(m, dict):
        raise InvalidInput(f"ioConfig.{what}.partitionSequenceNumberMap is required")
    return int_keys(m)


def _tuning(t: dict[str, Any]) -> Tuning:
    def num(key: str, default: int) -> int:
        v = t.get(key)
        return default if v is None else int(v)

    max_bytes = parse_bytes(t["maxBytesInMemory"]) if t.get("maxBytesInMemory") is not None else 0
    if max_bytes == 0:
        max_bytes = default_max_bytes_in_memory()
    handoff = t.get("handoffConditionTimeout")
    handoff_s = DEFAULT_HANDOFF_CONDITION_TIMEOUT if handoff is None else int(handoff) / 1000
    partitions = t.get("partitionsSpec") or {}
    return Tuning(
        max_rows_in_memory=num("maxRowsInMemory", 150_000),
        max_bytes_in_memory=max_bytes,
        max_rows_per_segment=int(
            partitions.get("maxRowsPerSegment") or num("maxRowsPerSegment", 5_000_000)
        ),
        max_total_rows=int(
            partitions.get("maxTotalRows") or num("maxTotalRows", DEFAULT_MAX_TOTAL_ROWS)
        ),
        intermediate_persist_period=parse_duration(t.get("intermediatePersistPeriod", "PT10M")),
        intermediate_handoff_period=(
            parse_duration(t["intermediateHandoffPeriod"])
            if t.get("intermediateHandoffPeriod") not in (None, "P2147483647D")
            else float("inf")
        ),
        handoff_condition_timeout=handoff_s,
        max_parse_exceptions=num("maxParseExceptions", JAVA_INT_MAX),
        max_saved_parse_exceptions=num("maxSavedParseExceptions", 0),
        log_parse_exceptions=bool(t.get("logParseExceptions", False)),
    )


def parse_task(task: dict[str, Any]) -> KafkaTaskSpec:
    """Validate an ``index_kafka`` task; ``InvalidInput`` naming what is wrong otherwise."""
    if task.get("type") != TASK_TYPE:
        raise InvalidInput(f"task type [{task.get('type')}] cannot run on a peon")
    task_id = task.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidInput("task id is required")
    schema = parse_data_schema(task.get("dataSchema"))
    io = task.get("ioConfig") or {}
    if not isinstance(io, dict):
        raise InvalidInput("ioConfig must be an object")
    starts = io.get("startSequenceNumbers")
    stream = (starts.get("stream") or starts.get("topic")) if isinstance(starts, dict) else None
    stream = stream or io.get("topic")
    if not isinstance(stream, str) or not stream:
        raise InvalidInput("ioConfig.startSequenceNumbers.stream (or ioConfig.topic) is required")
    multi_topic = io.get("multiTopic", False)
    if not isinstance(multi_topic, bool):
        raise InvalidInput("ioConfig.multiTopic must be true or false")
    context = task.get("context") or {}
    raw_cps = context.get("checkpoints")
    if isinstance(raw_cps, str):
        try:
            raw_cps = orjson.loads(raw_cps)
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"context.checkpoints is not JSON: {e}") from None
    checkpoints = (
        {int(k): int_keys(v) for k, v in raw_cps.items()} if isinstance(raw_cps, dict) else None
    )
    tuning_json = task.get("tuningConfig") or {}
    try:
        tuning = _tuning(tuning_json)
        min_time = io.get("minimumMessageTime")
        max_time = io.get("maximumMessageTime")
        spec = KafkaTaskSpec(
            id=task_id,
            group_id=str(task.get("groupId") or task_id),
            data_source=schema.dataSource,
            schema=schema,
            input_format=parse_input_format(io.get("inputFormat")),
            stream=stream,
            multi_topic=multi_topic,
            consumer_properties=dict(io.get("consumerProperties") or {}),
            base_sequence_name=str(io.get("baseSequenceName") or task_id),
            start_offsets=_partitions(io.get("startSequenceNumbers"), "startSequenceNumbers"),
            end_offsets=_partitions(io.get("endSequenceNumbers"), "endSequenceNumbers"),
            checkpoints=checkpoints,
            supervisor_id=str(
                context.get("supervisorId") or io.get("supervisorId") or schema.dataSource
            ),
            task_group_id=None if io.get("taskGroupId") is None else int(io["taskGroupId"]),
            use_transaction=bool(io.get("useTransaction", True)),
            poll_timeout=int(io.get("pollTimeout", 100)) / 1000,
            minimum_message_time=None if min_time is None else parse_iso(str(min_time)),
            maximum_message_time=None if max_time is None else parse_iso(str(max_time)),
            lock_type="APPEND"
            if context.get("useConcurrentLocks")
            else str(context.get("taskLockType", "EXCLUSIVE")),
            tuning=tuning,
        )
    except (TypeError, ValueError, KeyError) as e:
        raise InvalidInput(f"invalid index_kafka task: {e}") from None
    if set(spec.start_offsets) != set(spec.end_offsets):
        raise InvalidInput("start and end sequence numbers must cover the same partitions")
    if any(is_multi_topic(p) != multi_topic for p in spec.start_offsets):
        raise InvalidInput(
            "partition ids must be topic:partition when ioConfig.multiTopic is true, and plain "
            "partition numbers otherwise"
        )
    return spec
