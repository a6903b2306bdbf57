"""A steady stream of wikipedia-like edits for the quickstart (the shape of Druid's tutorial data).

Each record is one JSON edit: ``timestamp`` (now, ISO), ``channel``, ``page``, ``user``,
``countryName``, ``isRobot``, ``isNew``, ``added``, ``deleted``, ``delta``. Values come from small
fixed vocabularies with a skew, so topN and groupBy answers look like real traffic.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from common.aio import wait_event

log = logging.getLogger(__name__)

CHANNELS = ["#en.wikipedia", "#de.wikipedia", "#fr.wikipedia", "#ja.wikipedia", "#es.wikipedia"]
COUNTRIES = ["United States", "Germany", "France", "Japan", "Spain", "India", "Brazil", None]
PAGES = [
    "Apache Druid",
    "Kubernetes",
    "Python (programming language)",
    "Time series database",
    "Apache Kafka",
    "Online analytical processing",
    "Column-oriented DBMS",
    "Stream processing",
]
USERS = [f"editor{i}" for i in range(40)] + ["WikiBot", "CleanupBot"]


def make_edit(rng: random.Random, now: datetime) -> dict[str, Any]:
    user = rng.choices(USERS, weights=[3] * 40 + [20, 10])[0]
    added = int(rng.expovariate(1 / 120))
    deleted = int(rng.expovariate(1 / 60)) if rng.random() < 0.6 else 0
    return {
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "channel": rng.choices(CHANNELS, weights=[8, 3, 3, 2, 2])[0],
        "page": rng.choices(PAGES, weights=[5, 4, 4, 2, 3, 1, 1, 2])[0],
        "user": user,
        "countryName": rng.choice(COUNTRIES),
        "isRobot": "true" if user.endswith("Bot") else "false",
        "isNew": "true" if rng.random() < 0.1 else "false",
        "added": added,
        "deleted": deleted,
        "delta": added - deleted,
    }


TOPIC_ALREADY_EXISTS = 36  # Kafka's error code


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists (then it is kept as is)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(topic, partitions, 1)])
        errors = [e for e in resp.topic_errors if e[1] not in (0, TOPIC_ALREADY_EXISTS)]
        if errors:
            raise RuntimeError(f"creating topic {topic!r} failed: {errors}")
    finally:
        await admin.close()


async def produce_forever(
    bootstrap: str, topic: str, rate: float, stop: asyncio.Event, seed: int | None = None
) -> int:
    """Send ``rate`` edits per second to ``topic`` until ``stop`` is set; returns how many."""
    rng = random.Random(seed)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=20)
    await producer.start()
    sent = 0
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not stop.is_set():
            due = int((loop.time() - started) * rate) + 1
            for _ in range(due - sent):
                edit = make_edit(rng, datetime.now(UTC))
                await producer.send(topic, orjson.dumps(edit))
            sent = max(sent, due)
            await wait_event(stop, 0.1)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
