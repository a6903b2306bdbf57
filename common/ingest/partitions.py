"""Kafka partition ids in single- and multi-topic mode (Druid's ``KafkaTopicPartition``).

A supervisor with ``topic`` reads one topic and names a partition by its number; one with
``topicPattern`` reads every topic whose whole name matches the pattern, and a partition number
alone is then ambiguous. Druid keeps both as ``KafkaTopicPartition(multiTopic, topic,
partition)`` and serialises it (as a value and as a JSON map key) as ``"<partition>"`` in
single-topic mode and ``"<topic>:<partition>"`` in multi-topic mode; parsing splits at the last
``:`` (topic names cannot hold one, Kafka allows ``[a-zA-Z0-9._-]``).

Here a ``PartitionId`` is the parsed form: an ``int`` in single-topic mode, the canonical string
``"<topic>:<partition>"`` in multi-topic mode. Both hash, compare and print as Druid's JSON key,
so offset maps keep their shape everywhere (``{0: 12}`` or ``{"clicks:0": 12}``). One task or
supervisor only ever holds ids of one kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from common.errors import InvalidInput

PartitionId = int | str

INT_MIN = -(2**31)


def parse_partition_id(key: Any) -> PartitionId:
    """``0`` / ``"0"`` -> ``0``; ``"clicks:0"`` -> ``"clicks:0"`` (Druid's ``fromString``).
    ``InvalidInput`` for anything else."""
    if isinstance(key, bool):
        raise InvalidInput(f"partition id {key!r} is not valid")
    if isinstance(key, int):
        return key
    if not isinstance(key, str):
        raise InvalidInput(f"partition id {key!r} is not valid")
    topic, sep, number = key.rpartition(":")
    try:
        partition = int(number)
    except ValueError:
        raise InvalidInput(f"partition id {key!r} is not an integer or topic:partition") from None
    if not sep:
        return partition
    if not topic:
        raise InvalidInput(f"partition id {key!r} has an empty topic")
    return f"{topic}:{partition}"


def make_partition_id(topic: str, partition: int, multi_topic: bool) -> PartitionId:
    return f"{topic}:{partition}" if multi_topic else partition


def topic_and_partition(pid: PartitionId, stream: str) -> tuple[str, int]:
    """The Kafka topic and partition number of ``pid`` (``stream`` is the single topic)."""
    if isinstance(pid, int):
        return stream, pid
    topic, _, number = pid.rpartition(":")
    return topic, int(number)


def is_multi_topic(pid: PartitionId) -> bool:
    return isinstance(pid, str)


def sort_key(pid: PartitionId) -> tuple[str, int]:
    """Order ids by topic, then partition number (ids of one kind only ever meet)."""
    if isinstance(pid, int):
        return "", pid
    topic, _, number = pid.rpartition(":")
    return topic, int(number)


def sorted_ids(ids: Iterable[PartitionId]) -> list[PartitionId]:
    return sorted(ids, key=sort_key)


def offsets_json(offsets: Mapping[PartitionId, int]) -> dict[str, int]:
    """``{partition: offset}`` with Druid's JSON keys, in partition order."""
    return {str(p): int(offsets[p]) for p in sorted_ids(offsets)}


def parse_offsets(
    raw: Mapping[Any, Any], what: str = "partition -> offset map"
) -> dict[PartitionId, int]:
    """A JSON ``{partition: offset}`` map; ``InvalidInput`` on a bad key or offset."""
    out: dict[PartitionId, int] = {}
    for key, value in raw.items():
        pid = parse_partition_id(key)
        if isinstance(value, bool):
            raise InvalidInput(f"{what}: offset of partition {key} must be an integer")
        try:
            out[pid] = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{what}: offset of partition {key} must be an integer") from None
    return out


def java_string_hash(s: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units, 32-bit wrap-around)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - 2**32 if h >= 2**31 else h


def _java_int(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 2**32 if v >= 2**31 else v


def task_group_id(pid: PartitionId, task_count: int) -> int:
    """``KafkaSupervisor.getTaskGroupIdForPartition``: ``partition % taskCount`` for one topic,
    ``abs(31 * topic.hashCode() + partition) % taskCount`` in multi-topic mode (Java ints:
    ``abs(Integer.MIN_VALUE)`` stays negative and Java's ``%`` keeps the dividend's sign)."""
    if isinstance(pid, int):
        return pid % task_count
    topic, partition = topic_and_partition(pid, "")
    v = _java_int(31 * java_string_hash(topic) + partition)
    if v != INT_MIN:
        return abs(v) % task_count
    return -(-v % task_count)  # Java: Math.abs(MIN_VALUE) == MIN_VALUE, % truncates


def compile_topic_pattern(pattern: str) -> re.Pattern[str]:
    """``topicPattern`` as a regex; a topic is read when the *whole* name matches (Java's
    ``Matcher.matches``), so ``metrics-.*`` does not take ``my-metrics-12``."""
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InvalidInput(
            f"topicPattern [{pattern}] is not a valid regular expression: {e}"
        ) from None


def topic_matches(pattern: re.Pattern[str], topic: str) -> bool:
    return pattern.fullmatch(topic) is not None
