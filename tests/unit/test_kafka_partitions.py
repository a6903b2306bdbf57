"""Kafka partition ids in single- and multi-topic mode (Druid's ``KafkaTopicPartition``)."""

from __future__ import annotations

import pytest

from common.errors import InvalidInput
from common.ingest.metadata import DataSourceMetadata
from common.ingest.partitions import (
    compile_topic_pattern,
    java_string_hash,
    offsets_json,
    parse_offsets,
    parse_partition_id,
    sorted_ids,
    task_group_id,
    topic_and_partition,
    topic_matches,
)
from common.ingest.sequences import SequenceMetadata, initial_sequences


def test_ids_parse_as_druid_serialises_them() -> None:
    assert parse_partition_id("3") == 3 and parse_partition_id(3) == 3
    assert parse_partition_id("clicks:3") == "clicks:3"
    # split at the last colon; the number is normalised
    assert parse_partition_id("a.b-c:07") == "a.b-c:7"
    for bad in ("x", "clicks:", ":3", "clicks:x", True, None, 1.5):
        with pytest.raises(InvalidInput):
            parse_partition_id(bad)
    assert topic_and_partition("clicks:3", "ignored") == ("clicks", 3)
    assert topic_and_partition(3, "wiki") == ("wiki", 3)


def test_offsets_json_orders_by_topic_then_number() -> None:
    ids = ["b:10", "a:2", "b:2", "a:10"]
    assert sorted_ids(ids) == ["a:2", "a:10", "b:2", "b:10"]
    assert list(offsets_json({"b:1": 5, "a:10": 1, "a:9": 2})) == ["a:9", "a:10", "b:1"]
    assert offsets_json({10: 1, 2: 3}) == {"2": 3, "10": 1}
    assert parse_offsets({"t:0": "5", "t:1": 6}) == {"t:0": 5, "t:1": 6}
    with pytest.raises(InvalidInput):
        parse_offsets({"t:0": True})


def test_task_group_is_druids_hash_of_topic_and_partition() -> None:
    # Java's String.hashCode: known values
    assert java_string_hash("") == 0 and java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    assert java_string_hash("polygenelubricants") == -2147483648  # wraps to Integer.MIN_VALUE
    assert task_group_id(5, 3) == 2  # single topic: partition % taskCount
    # multi-topic: abs(31 * topic.hashCode() + partition) % taskCount
    assert task_group_id("hello:1", 4) == abs(31 * 99162322 + 1 - 2**32) % 4
    assert task_group_id("a:0", 7) == (31 * 97) % 7
    # ids of two topics with equal hashes land together
    assert task_group_id("Aa:3", 5) == task_group_id("BB:3", 5)
    # 31 * MIN_VALUE + 0 wraps to MIN_VALUE: Java's abs leaves it negative, % keeps the sign
    assert task_group_id("polygenelubricants:0", 3) == -(2**31 % 3)


def test_topic_pattern_matches_whole_names() -> None:
    pattern = compile_topic_pattern("metrics-.*")
    assert topic_matches(pattern, "metrics-cpu")
    assert not topic_matches(pattern, "my-metrics-12")  # a partial match is not taken
    assert topic_matches(compile_topic_pattern("clicks|impressions"), "impressions")
    with pytest.raises(InvalidInput):
        compile_topic_pattern("metrics-(")


def test_metadata_and_sequences_keep_topic_partition_keys() -> None:
    raw = {
        "type": "kafka",
        "partitions": {
            "type": "end",
            "stream": "metrics-.*",
            "topic": "metrics-.*",
            "partitionSequenceNumberMap": {"metrics-b:0": 4, "metrics-a:1": 7},
        },
    }
    md = DataSourceMetadata.from_json(raw)
    assert md.offsets == {"metrics-b:0": 4, "metrics-a:1": 7}
    assert md.to_json()["partitions"]["partitionSequenceNumberMap"] == {
        "metrics-a:1": 7,
        "metrics-b:0": 4,
    }
    merged = md.plus(DataSourceMetadata.end("metrics-.*", {"metrics-a:1": 9, "metrics-c:0": 1}))
    assert merged.offsets == {"metrics-b:0": 4, "metrics-a:1": 9, "metrics-c:0": 1}
    start = DataSourceMetadata.start("metrics-.*", {"metrics-a:1": 7}, frozenset({"metrics-a:1"}))
    assert start.to_json()["partitions"]["exclusivePartitions"] == ["metrics-a:1"]
    assert DataSourceMetadata.from_json(start.to_json()) == start

    [seq] = initial_sequences("base", {"t:0": 0, "t:1": 5}, {"t:0": 10, "t:1": 10}, None)
    assert seq.assignments == {"t:0", "t:1"}
    again = SequenceMetadata.from_json(seq.to_json())
    assert again == seq
    assert seq.to_json()["startOffsets"] == {"t:0": 0, "t:1": 5}
    assert seq.can_handle("t:1", 7) and not seq.can_handle("t:1", 4)
