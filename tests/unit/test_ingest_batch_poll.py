"""``KafkaRecordSupplier.poll_partitions``: records taken ``step`` at a time, in offset order,
up to ``max_records``, stopping as soon as fewer than a step are ready (fake aiokafka consumer)."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from aiokafka import TopicPartition

from common.ingest.kafka import KafkaRecordSupplier, PartitionRecords


class Msg(NamedTuple):
    offset: int
    value: bytes | None


class FakeConsumer:
    """Holds ready records per partition; ``getmany`` hands out up to ``max_records`` of them,
    partition by partition, as aiokafka does."""

    def __init__(self, ready: dict[int, int]) -> None:
        self.queues = {
            TopicPartition("t", p): [Msg(o, b"v%d" % o if o % 7 else None) for o in range(n)]
            for p, n in ready.items()
        }
        self.calls: list[tuple[int, int | None]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.queues)

    async def getmany(self, timeout_ms: int, max_records: int | None) -> dict[Any, list[Msg]]:
        self.calls.append((timeout_ms, max_records))
        out: dict[Any, list[Msg]] = {}
        left = max_records if max_records is not None else 1 << 60
        for tp, queue in self.queues.items():
            if left <= 0:
                break
            take, self.queues[tp] = queue[:left], queue[left:]
            if take:
                out[tp] = take
                left -= len(take)
        return out


def supplier(consumer: FakeConsumer) -> KafkaRecordSupplier:
    s = KafkaRecordSupplier({"bootstrap.servers": "localhost:9092"}, "t")
    s._consumer = consumer  # type: ignore[assignment]
    return s


def flat(parts: list[PartitionRecords]) -> dict[int, list[int]]:
    return {p.partition: p.offsets for p in parts}


async def test_steps_up_to_max_records_in_offset_order() -> None:
    consumer = FakeConsumer({0: 1200, 1: 300})
    parts = await supplier(consumer).poll_partitions(0.1, 1000, 300)
    assert flat(parts) == {0: list(range(1000))}
    assert consumer.calls == [(100, 300), (0, 300), (0, 300), (0, 100)]
    values = parts[0].values
    assert values[:8] == [None, b"v1", b"v2", b"v3", b"v4", b"v5", b"v6", None]
    parts = await supplier(consumer).poll_partitions(0.1, 1000, 300)
    assert flat(parts) == {0: list(range(1000, 1200)), 1: list(range(300))}
    assert [r.offset for r in parts[0].records()] == list(range(1000, 1200))


async def test_stops_when_a_step_comes_back_short() -> None:
    consumer = FakeConsumer({0: 450})
    parts = await supplier(consumer).poll_partitions(0.5, 10_000, 200)
    assert flat(parts) == {0: list(range(450))}
    assert consumer.calls == [(500, 200), (0, 200), (0, 200)]


@pytest.mark.parametrize(("max_records", "step"), [(None, None), (100, None), (None, 40)])
async def test_without_limit_or_step(max_records: int | None, step: int | None) -> None:
    consumer = FakeConsumer({0: 130})
    parts = await supplier(consumer).poll_partitions(0.0, max_records, step)
    want = 130 if max_records is None else max_records
    assert flat(parts) == {0: list(range(want))}


async def test_nothing_assigned_or_ready() -> None:
    assert await supplier(FakeConsumer({})).poll_partitions(0.0, 10, 5) == []
    consumer = FakeConsumer({0: 0})
    assert await supplier(consumer).poll_partitions(0.0, 10, 5) == []
    assert consumer.calls == [(0, 5)]
