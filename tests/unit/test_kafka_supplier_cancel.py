"""A record supplier cancelled while its consumer is still connecting closes that consumer (a
peon task shut down right after it started leaked a Kafka consumer and its connections)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from common.ingest import kafka
from common.ingest.kafka import KafkaRecordSupplier


class SlowConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """Connects slowly, so a cancel lands while ``start()`` is still running."""

    made: list[SlowConsumer] = []
    connecting = asyncio.Event()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        SlowConsumer.made.append(self)

    async def start(self) -> None:
        SlowConsumer.connecting.set()
        await asyncio.sleep(30)


async def test_cancel_during_start_stops_the_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "AIOKafkaConsumer", SlowConsumer)
    SlowConsumer.made.clear()
    SlowConsumer.connecting = asyncio.Event()
    supplier = KafkaRecordSupplier({"bootstrap.servers": "127.0.0.1:1"}, "topic")
    starting = asyncio.create_task(supplier.start())
    await SlowConsumer.connecting.wait()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    await supplier.close()  # what the task runner does on its way out
    assert [c._closed for c in SlowConsumer.made] == [True]
