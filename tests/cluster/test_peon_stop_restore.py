"""A peon process stopped with SIGTERM keeps what its streaming task read, and resumes it.

The peon is a real OS process (``services.cli peon``); the overlord and coordinator are the fake
of ``tests.support.fake_overlord`` (in this process, on the same SQLite discovery). The task's
rows are only in memory when the peon gets SIGTERM (no persist is due): the stop persists them
and leaves the task assigned; the restarted peon restores the sinks from disk (they answer
queries before a record is read again), re-acquires their locks, reads on from the persisted
offsets, and a chat ``/stop?publish=true`` (Druid's ``stopGracefully`` with publish) publishes
exactly the rows read, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from common.aio import wait_until
from tests.support.cluster import sqlite_properties
from tests.support.fake_overlord import (
    LONG_MAX,
    fake_overlord,
    published_totals,
    realtime_rows,
    rows,
    task_json,
    wait_task_state,
)
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)
from tests.support.procs import ProcCluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcCluster]:
    cluster = ProcCluster(tmp_path, sqlite_properties(tmp_path))
    cluster.add("peon", **{"druid.segment.handoff.pollDuration": "PT0.2S"})
    try:
        yield cluster
    finally:
        cluster.close()


async def test_sigterm_persists_and_the_restarted_peon_restores(
    procs: ProcCluster,
    tmp_path: Path,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, rows(12))
    task_dir = tmp_path / "task"
    commit = task_dir / "t1" / "persist" / "commit.json"
    async with fake_overlord(sqlite_properties(tmp_path)) as fake:
        procs.start("peon")
        await asyncio.to_thread(procs.wait_healthy, "peon")
        peon = procs.procs["peon"].url
        chat = f"{peon}/druid/worker/v1/chat/t1"
        # No persist is due before the stop: rows stay in memory.
        task = task_json(
            "t1",
            kafka_broker,
            topic,
            {0: 0},
            {0: LONG_MAX},
            maxRowsInMemory=100_000,
            intermediatePersistPeriod="PT1H",
        )
        async with httpx.AsyncClient(timeout=10.0) as http:
            r = await http.post(f"{peon}/druid-internal/v1/worker/assignTask", json=task)
            assert r.status_code == 200, r.text

            async def read(n: int) -> bool:
                r = await http.get(f"{chat}/offsets/current")
                return r.status_code == 200 and r.json() == {"0": n}

            await wait_until(lambda: read(12), within=60, what="12 records read")
            assert await realtime_rows(http, peon) == 12
            assert not commit.exists()

            await asyncio.to_thread(procs.stop, "peon", 60.0)  # SIGTERM
            assert "peon stopped" in procs.procs["peon"].log_tail(5)  # a clean stop, not a kill

            # The stop persisted the in-memory rows with the offsets they reach, and the task
            # is still assigned (not completed): the next peon restores it.
            metadata = orjson.loads(commit.read_bytes())["metadata"]
            assert metadata["nextPartitions"]["partitionSequenceNumberMap"] == {"0": 12}
            assert (task_dir / "assignedTasks" / "t1").exists()
            assert not (task_dir / "completedTasks" / "t1").exists()
            assert "persisted at" in (task_dir / "t1" / "log").read_text()
            assert not fake.transactions and not fake.lock_requests

            procs.start("peon")
            await asyncio.to_thread(procs.wait_healthy, "peon")

            async def reading() -> bool:
                r = await http.get(f"{chat}/status")
                return r.status_code == 200 and r.json() == "READING"

            # READING once restored: sinks loaded from disk, their locks re-acquired
            await wait_until(reading, within=60, what="restored task reading")
            assert await read(12)
            # Restored from disk, not read again: nothing processed, all 12 rows answered.
            stats = (await http.get(f"{chat}/rowStats")).json()["totals"]["buildSegments"]
            assert stats["processed"] == 0
            assert await realtime_rows(http, peon) == 12
            # both hours' time chunks had their locks re-acquired by the restored task
            assert sorted(i for t, i in fake.lock_requests if t == "t1") == [
                "2024-01-01T00:00:00.000Z/2024-01-01T01:00:00.000Z",
                "2024-01-01T01:00:00.000Z/2024-01-01T02:00:00.000Z",
            ]

            await produce(kafka_broker, topic, rows(3, first=12))
            await wait_until(lambda: read(15), within=60, what="3 more records read")
            # Druid's stopGracefully with publish: the task publishes what it has read.
            r = await http.post(f"{chat}/stop", params={"publish": "true"})
            assert r.status_code == 200, r.text
            await wait_task_state(http, peon, "t1", "SUCCESS", within=60)
    assert [(t["start"], t["end"]) for t in fake.transactions] == [({0: 0}, {0: 15})]
    assert published_totals(fake) == (15, sum(range(15)))
