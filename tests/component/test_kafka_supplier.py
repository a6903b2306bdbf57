"""The Kafka record supplier against a real Kafka-protocol broker (tansu)."""

from __future__ import annotations

import pytest

from common.aio import Deadline
from common.ingest.kafka import KafkaRecordSupplier, PartitionRecords, Record, RecordSupplierError
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)


async def _read(supplier: KafkaRecordSupplier, n: int, within: float = 15.0) -> list[Record]:
    """Poll until ``n`` records arrived, then once more to prove nothing extra comes."""
    got: list[Record] = []
    deadline = Deadline(within)
    while len(got) < n:
        assert not deadline.expired, f"only {len(got)} of {n} records within {within}s"
        got.extend(await supplier.poll(0.5))
    got.extend(await supplier.poll(0.3))
    return got


async def _topic_with(broker: KafkaBroker, n: int, partitions: int = 3) -> str:
    topic = unique_topic("supplier")
    await create_topic(broker, topic, partitions)
    await produce(
        broker,
        topic,
        ((i % partitions, f"row-{i}".encode()) for i in range(n)),
        one_per_batch=True,
    )
    return topic


async def test_reads_exactly_what_was_produced_with_right_offsets(
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    n = 45
    topic = await _topic_with(kafka_broker, n)
    async with KafkaRecordSupplier(kafka_broker.consumer_properties(), topic) as supplier:
        assert await supplier.partitions() == [0, 1, 2]
        assert await supplier.earliest_offsets([0, 1, 2]) == {0: 0, 1: 0, 2: 0}
        assert await supplier.latest_offsets([0, 1, 2]) == {0: 15, 1: 15, 2: 15}
        assert await supplier.get_latest_offset(1) == 15

        supplier.assign([0, 1, 2])
        assert supplier.assignment() == {0, 1, 2}
        for p in (0, 1, 2):
            supplier.seek(p, 0)
        records = await _read(supplier, n)

    assert len(records) == n
    by_partition: dict[int, list[Record]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    for p, recs in by_partition.items():
        assert [r.offset for r in recs] == list(range(15))
        # Partition p got rows p, p+3, p+6...: record at offset k is row p + 3k.
        assert [r.value for r in recs] == [f"row-{p + 3 * k}".encode() for k in range(15)]


async def test_seek_to_middle_earliest_and_latest(kafka_broker: KafkaBroker) -> None:  # noqa: F811
    topic = await _topic_with(kafka_broker, 30)
    async with KafkaRecordSupplier(kafka_broker.consumer_properties(), topic) as supplier:
        supplier.assign([1])
        supplier.seek(1, 7)
        assert await supplier.position(1) == 7
        got = await _read(supplier, 3)
        assert [(r.partition, r.offset) for r in got] == [(1, 7), (1, 8), (1, 9)]
        assert await supplier.position(1) == 10

        await supplier.seek_to_earliest([1])
        assert await supplier.position(1) == 0

        supplier.assign([0, 2])
        await supplier.seek_to_latest([0, 2])
        assert await supplier.position(0) == 10
        assert await supplier.poll(0.2) == []
        await produce(kafka_broker, topic, [(2, b"late"), (2, None)], one_per_batch=True)
        got = await _read(supplier, 2)
        assert [(r.partition, r.offset, r.value) for r in got] == [(2, 10, b"late"), (2, 11, None)]


async def test_unknown_topic_and_empty_assignment(kafka_broker: KafkaBroker) -> None:  # noqa: F811
    async with KafkaRecordSupplier(kafka_broker.consumer_properties(), "no-such-topic") as s:
        with pytest.raises(RecordSupplierError, match="not found"):
            await s.partitions()
        s.assign([])
        assert await s.poll(0.05) == []


async def test_unreachable_broker_is_a_clear_error() -> None:
    props = {"bootstrap.servers": "127.0.0.1:1", "request.timeout.ms": "2000"}
    supplier = KafkaRecordSupplier(props, "t")
    with pytest.raises(RecordSupplierError, match="cannot connect"):
        await supplier.start()


async def _poll_all(
    supplier: KafkaRecordSupplier, n: int, max_records: int, within: float = 15.0
) -> list[tuple[int, int, bytes | None]]:
    got: list[tuple[int, int, bytes | None]] = []
    deadline = Deadline(within)
    while len(got) < n:
        assert not deadline.expired, f"only {len(got)} of {n} records within {within}s"
        for part in await supplier.poll_partitions(0.5, max_records):
            got += [(part.partition, o, v) for o, v in zip(part.offsets, part.values, strict=True)]
    for part in await supplier.poll_partitions(0.3, max_records):
        got += [(part.partition, o, v) for o, v in zip(part.offsets, part.values, strict=True)]
    return got


async def test_bulk_poll_reads_every_record_once_in_order(
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    """``poll_partitions`` decodes aiokafka's fetched batches itself (``bulk``): the same
    records, offsets and positions as ``poll``, also when a take stops between batches and
    after a seek back."""
    topic = unique_topic("bulk")
    await create_topic(kafka_broker, topic, 2)
    rows = [(i % 2, None if i % 11 == 5 else f"row-{i}".encode()) for i in range(60)]
    await produce(kafka_broker, topic, rows[:20], one_per_batch=True)  # 20 one-record batches
    await produce(kafka_broker, topic, rows[20:])  # a few batches of many records
    want = {p: [v for q, v in rows if q == p] for p in (0, 1)}
    async with KafkaRecordSupplier(kafka_broker.consumer_properties(), topic) as supplier:
        assert supplier.bulk
        supplier.assign([0, 1])
        supplier.seek(0, 0)
        supplier.seek(1, 0)
        first: list[PartitionRecords] = []
        while not first:
            first = await supplier.poll_partitions(0.5, 4)
        for part in first:  # what is held but not handed out is still to come
            assert await supplier.position(part.partition) == part.offsets[-1] + 1
        got = [
            (part.partition, o, v)
            for part in first
            for o, v in zip(part.offsets, part.values, strict=True)
        ]
        got += await _poll_all(supplier, 60 - len(got), max_records=4)
        for p in (0, 1):
            mine = [(o, v) for q, o, v in got if q == p]
            assert [o for o, _ in mine] == list(range(30))
            assert [v for _, v in mine] == want[p]
        assert await supplier.position(0) == 30 and await supplier.position(1) == 30
        supplier.seek(1, 25)  # back, into what was already taken
        again = await _poll_all(supplier, 5, max_records=1000)
        assert again == [(1, o, want[1][o]) for o in range(25, 30)]
