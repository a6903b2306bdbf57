"""The Kafka supervisor's decisions as plain functions over data (no I/O, no clocks).

Druid's ``SeekableStreamSupervisor`` / ``KafkaSupervisor`` logic: which task group reads a
partition, where a new group starts reading, how a checkpoint picks end offsets, when a group is
rolled over, how a task is named and what its JSON is, and the lag figures of the status report.
Times are epoch seconds passed in by the caller.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import orjson

from common.errors import InvalidInput
from common.ingest.metadata import END_OF_PARTITION
from common.ingest.partitions import (
    PartitionId,
    offsets_json,
    parse_partition_id,
    sorted_ids,
)
from common.ingest.partitions import task_group_id as _task_group_id
from common.segments.isotime import format_iso
from services.overlord.supervisor.spec import IOConfig, KafkaSupervisorSpec

TASK_TYPE = "index_kafka"


def task_group_id(partition: PartitionId, task_count: int) -> int:
    """``KafkaSupervisor.getTaskGroupIdForPartition`` (single- or multi-topic)."""
    return _task_group_id(partition, task_count)


def partition_groups(
    partitions: Iterable[PartitionId], task_count: int
) -> dict[int, list[PartitionId]]:
    """Task group id -> its partitions (sorted); only groups that have partitions."""
    groups: dict[int, list[PartitionId]] = {}
    for p in sorted_ids(set(partitions)):
        groups.setdefault(task_group_id(p, task_count), []).append(p)
    return groups


def start_offsets(
    partitions: Iterable[PartitionId],
    next_offsets: Mapping[PartitionId, int],
    committed: Mapping[PartitionId, int] | None,
    earliest: Mapping[PartitionId, int],
    latest: Mapping[PartitionId, int],
    use_earliest: bool,
    discovered_later: Collection[PartitionId] = (),
) -> dict[PartitionId, int]:
    """Where a new task group starts, per partition (Druid's
    ``generateStartingSequencesForPartitionGroup``): the end offsets of the group's previous
    generation if the supervisor still knows them, else the offsets committed in
    ``druid_dataSource``, else the earliest or latest offset in Kafka per ``useEarliestOffset``;
    a partition that appeared after the supervisor's first look at the stream (a new partition,
    or a new topic matching ``topicPattern``) starts at the earliest offset whatever
    ``useEarliestOffset`` says (Druid's ``subsequentlyDiscoveredPartitions``)."""
    out: dict[PartitionId, int] = {}
    for p in partitions:
        if p in next_offsets:
            out[p] = next_offsets[p]
        elif committed is not None and p in committed:
            out[p] = committed[p]
        elif use_earliest or p in discovered_later:
            out[p] = earliest[p]
        else:
            out[p] = latest[p]
    return out


def needs_earliest(
    p: PartitionId, use_earliest: bool, discovered_later: Collection[PartitionId]
) -> bool:
    """Whether a partition without a known offset starts at the earliest offset in Kafka."""
    return use_earliest or p in discovered_later


def max_offsets(per_task: Iterable[Mapping[PartitionId, int]]) -> dict[PartitionId, int]:
    """Per partition, the highest offset any replica reached (the checkpoint's end offsets)."""
    out: dict[PartitionId, int] = {}
    for offsets in per_task:
        for p, o in offsets.items():
            if p not in out or o > out[p]:
                out[p] = o
    return out


def is_expired(group_start: float, now: float, task_duration: float) -> bool:
    """A group that has read for ``taskDuration`` is due to roll over."""
    return group_start + task_duration <= now


def remaining_seconds(group_start: float, now: float, task_duration: float) -> float:
    return max(0.0, group_start + task_duration - now)


def message_time_bounds(io: IOConfig, now: float) -> tuple[str | None, str | None]:
    """A new task group's ``minimumMessageTime`` / ``maximumMessageTime`` (Druid's
    ``createNewTasks``): ``lateMessageRejectionStartDateTime``, else now minus
    ``lateMessageRejectionPeriod``; now plus ``taskDuration`` plus ``earlyMessageRejectionPeriod``.
    Rows outside are thrown away by the task. ``now`` is epoch seconds."""
    now_ms = int(now * 1000)
    low: str | None = None
    if io.late_rejection_start_ms is not None:
        low = format_iso(io.late_rejection_start_ms)
    elif io.late_rejection_period is not None:
        low = format_iso(now_ms - int(io.late_rejection_period * 1000))
    high: str | None = None
    if io.early_rejection_period is not None:
        high = format_iso(now_ms + int((io.task_duration + io.early_rejection_period) * 1000))
    return low, high


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def base_sequence_name(
    spec: KafkaSupervisorSpec,
    offsets: Mapping[PartitionId, int],
    minimum_message_time: str | None = None,
    maximum_message_time: str | None = None,
) -> str:
    """``index_kafka_<supervisorId>_<sha1[0:15]>`` over the sorted start offsets, the message-time
    bounds, the dataSchema and the tuningConfig (Druid's ``generateSequenceName``). A task whose
    name no longer matches was started from an older spec."""
    parts = [
        _canonical(offsets_json(offsets)),
        _canonical(minimum_message_time),
        _canonical(maximum_message_time),
        _canonical(spec.data_schema_json),
        _canonical(spec.tuning_json),
    ]
    digest = hashlib.sha1(b"".join(parts), usedforsecurity=False).hexdigest()
    return f"{TASK_TYPE}_{spec.id}_{digest[:15]}"


def random_suffix(rng: random.Random, length: int = 8) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


def task_json(
    spec: KafkaSupervisorSpec,
    group_id: int,
    base_name: str,
    starts: Mapping[PartitionId, int],
    checkpoints: Mapping[int, Mapping[PartitionId, int]],
    suffix: str,
    message_times: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    """The ``index_kafka`` task a group's replica runs (the contract's task JSON). The stream is
    the topic, or the pattern of a multi-topic supervisor (``multiTopic``: partition keys are
    ``topic:partition``)."""
    topic = spec.io.stream
    task_id = f"{base_name}_{suffix}"
    return {
        "type": TASK_TYPE,
        "id": task_id,
        # Druid gives every Kafka task of a datasource one group, so their time-chunk locks are
        # shared (one version per chunk) instead of conflicting between task groups.
        "groupId": f"{TASK_TYPE}_{spec.data_source}",
        "dataSource": spec.data_source,
        "resource": {"availabilityGroup": base_name, "requiredCapacity": 1},
        "dataSchema": spec.data_schema_json,
        "tuningConfig": spec.tuning_json,
        "ioConfig": {
            "type": "kafka",
            "taskGroupId": group_id,
            "baseSequenceName": base_name,
            "topic": topic,
            "consumerProperties": spec.io.consumer_properties,
            "inputFormat": spec.io.input_format,
            "startSequenceNumbers": {
                "type": "start",
                "stream": topic,
                "topic": topic,
                "partitionSequenceNumberMap": offsets_json(starts),
                "exclusivePartitions": [],
            },
            "endSequenceNumbers": {
                "type": "end",
                "stream": topic,
                "topic": topic,
                "partitionSequenceNumberMap": {
                    str(p): END_OF_PARTITION for p in sorted_ids(starts)
                },
            },
            "useTransaction": True,
            "pollTimeout": spec.io.poll_timeout_ms,
            "minimumMessageTime": message_times[0],
            "maximumMessageTime": message_times[1],
            "multiTopic": spec.io.multi_topic,
        },
        "context": {
            **spec.context,
            "checkpoints": {
                str(seq): offsets_json(offs) for seq, offs in sorted(checkpoints.items())
            },
            "supervisorId": spec.id,
        },
    }


def offsets_from_json(raw: Any) -> dict[PartitionId, int]:
    """``{"0": 12}`` / ``{"t:0": 12}`` (chat answers, ``partitionSequenceNumberMap``) ->
    ``{0: 12}`` / ``{"t:0": 12}``; bad -> {}."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[PartitionId, int] = {}
    for k, v in raw.items():
        try:
            out[parse_partition_id(k)] = int(v)
        except (TypeError, ValueError, InvalidInput):
            return {}
    return out


def offsets_to_json(offsets: Mapping[PartitionId, int]) -> dict[str, int]:
    return offsets_json(offsets)


def lag(
    latest: Mapping[PartitionId, int], current: Mapping[PartitionId, int]
) -> tuple[dict[PartitionId, int], int]:
    """Per-partition lag (latest Kafka offset minus the furthest offset read, never negative)
    and their sum: the report's ``minimumLag`` and ``aggregateLag``. Partitions without a
    current offset are not counted."""
    per = {p: max(0, latest[p] - current[p]) for p in latest if p in current}
    return per, sum(per.values())


def reading_positions(
    task_offsets: Iterable[Mapping[PartitionId, int]], committed: Mapping[PartitionId, int] | None
) -> dict[PartitionId, int]:
    """How far the supervisor has got per partition: the highest current offset among active
    tasks, else the committed offset."""
    out = dict(committed or {})
    out.update(max_offsets(task_offsets))
    return out
