"""Kafka DataSourceMetadata: JSON round trip and Druid's plus/minus/matches/ahead algebra."""

from __future__ import annotations

import pytest

from common.errors import InvalidInput
from common.ingest.metadata import DataSourceMetadata, SequenceNumbers


def end(offsets: dict[int, int], stream: str = "t") -> DataSourceMetadata:
    return DataSourceMetadata.end(stream, offsets)


def start(
    offsets: dict[int, int], stream: str = "t", exclusive: frozenset[int] = frozenset()
) -> DataSourceMetadata:
    return DataSourceMetadata.start(stream, offsets, exclusive)


def test_json_round_trip_end_and_start() -> None:
    e = end({0: 123, 1: 456})
    assert e.to_json() == {
        "type": "kafka",
        "partitions": {
            "type": "end",
            "stream": "t",
            "topic": "t",
            "partitionSequenceNumberMap": {"0": 123, "1": 456},
        },
    }
    assert DataSourceMetadata.from_json(e.to_json()) == e
    s = start({0: 10}, exclusive=frozenset({0}))
    assert s.to_json()["partitions"]["exclusivePartitions"] == [0]
    assert DataSourceMetadata.from_json(s.to_json()) == s


def test_legacy_spellings_accepted() -> None:
    md = DataSourceMetadata.from_json(
        {"type": "kafka", "partitions": {"topic": "x", "partitionOffsetMap": {"2": "7"}}}
    )
    assert md == end({2: 7}, stream="x")


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {"type": "kinesis", "partitions": {}},
        {"type": "kafka"},
        {"type": "kafka", "partitions": {"type": "middle", "stream": "t"}},
        {"type": "kafka", "partitions": {"type": "end"}},
        {"type": "kafka", "partitions": {"stream": "t", "partitionSequenceNumberMap": {"a": 1}}},
        {"type": "kafka", "partitions": {"stream": "t", "partitionSequenceNumberMap": {"0": 1.5}}},
        {"type": "kafka", "partitions": {"stream": "t", "partitionSequenceNumberMap": []}},
    ],
)
def test_bad_json_is_invalid_input(bad: object) -> None:
    with pytest.raises(InvalidInput):
        DataSourceMetadata.from_json(bad)


def test_plus_merges_per_partition_other_wins() -> None:
    assert end({0: 1, 1: 2}).plus(end({1: 5, 2: 9})) == end({0: 1, 1: 5, 2: 9})


def test_plus_with_other_stream_takes_other() -> None:
    assert end({0: 1}, "a").plus(end({3: 3}, "b")) == end({3: 3}, "b")


def test_plus_start_exclusive_partitions() -> None:
    a = start({0: 1, 1: 1}, exclusive=frozenset({0, 1}))
    b = start({1: 4, 2: 2}, exclusive=frozenset({2}))
    merged = a.plus(b)
    # 0 stays exclusive (b does not have it), 1 is overridden by b (not exclusive there), 2 from b.
    assert merged == start({0: 1, 1: 4, 2: 2}, exclusive=frozenset({0, 2}))


def test_plus_of_different_kinds_is_refused() -> None:
    with pytest.raises(InvalidInput):
        end({0: 1}).plus(start({0: 1}))


def test_minus() -> None:
    assert end({0: 1, 1: 2, 2: 3}).minus(end({1: 0})) == end({0: 1, 2: 3})
    assert end({0: 1}, "a").minus(end({0: 1}, "b")) == end({0: 1}, "a")
    s = start({0: 1, 1: 1}, exclusive=frozenset({0, 1})).minus(start({0: 5}))
    assert s == start({1: 1}, exclusive=frozenset({1}))


def test_matches_equal_on_common_partitions() -> None:
    assert end({0: 5, 1: 6}).matches(end({1: 6, 2: 1}))
    assert not end({0: 5, 1: 6}).matches(end({1: 7}))
    assert end({0: 5}).matches(end({1: 7}))  # nothing in common: nothing disagrees
    assert not end({0: 5}, "a").matches(end({0: 5}, "b"))
    assert not end({0: 5}).matches(start({0: 5}))
    assert start({0: 5}).matches(end({0: 5}).as_start())


def test_is_ahead_of() -> None:
    assert start({0: 10, 1: 3}).is_ahead_of(end({0: 10, 1: 2}).as_start())
    assert not start({0: 10}).is_ahead_of(end({0: 11}).as_start())
    assert not start({5: 99}).is_ahead_of(end({0: 1}).as_start())  # no common partition
    assert not start({0: 99}, "a").is_ahead_of(end({0: 1}, "b").as_start())


def test_as_start_and_as_end() -> None:
    assert end({0: 1}).as_start() == start({0: 1})
    assert start({0: 1}, exclusive=frozenset({0})).as_end() == end({0: 1})


def test_sequence_numbers_keep_their_own_copy() -> None:
    raw = {0: 1}
    seq = SequenceNumbers("end", "t", raw)
    raw[0] = 99
    assert seq.offsets == {0: 1}
