"""Exactly-once ingestion while processes die: ``kill -9`` of the peon (twice), the overlord and
the historical, each restarted on the same port and data directories, while rows are produced and
tasks roll over every few seconds. Afterwards the offsets committed with the segments equal what
was produced, and the broker's totals are exact: no row lost, none counted twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.aio import wait_until
from tests.cluster.test_ingest_e2e import PARTITIONS, TOTALS, expected, rows, supervisor_spec
from tests.support.cluster import FAST_DISCOVERY
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)
from tests.support.procs import ProcCluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BATCHES = 12
BATCH = 50
ROLES = ("coordinator", "overlord", "historical", "broker", "peon")


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcCluster]:
    props = {
        "druid.metadata.storage.type": "sqlite",
        "druid.metadata.storage.connector.connectURI": str(tmp_path / "metadata.db"),
        "druid.storage.storageDirectory": str(tmp_path / "deep"),
        "druid.indexer.task.baseTaskDir": str(tmp_path / "task"),
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(tmp_path / "cache"), "maxSize": 10**9}]
        ),
        "druid.coordinator.period": "PT1S",
        "druid.segment.handoff.pollDuration": "PT0.2S",
        "druid.worker.capacity": "4",
        "druid.segmentCache.dropSegmentDelayMillis": "100",
        "druid.indexer.runner.taskAssignmentTimeout": "PT30S",
        "druid.indexer.runner.taskCleanupTimeout": "PT10S",
        **FAST_DISCOVERY,
    }
    cluster = ProcCluster(tmp_path, props)
    for role in ROLES:
        cluster.add(role)
    try:
        yield cluster
    finally:
        cluster.close()


async def restart(procs: ProcCluster, name: str) -> None:
    procs.kill(name)
    procs.start(name)
    await asyncio.to_thread(procs.wait_healthy, name)


async def broker_totals(http: httpx.AsyncClient, procs: ProcCluster) -> tuple[int, int] | None:
    try:
        resp = await http.post(procs.procs["broker"].url + "/druid/v2", json=TOTALS)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    result = resp.json()
    if not result:
        return (0, 0)
    r = result[0]["result"]
    return int(r["rows"] or 0), int(r["added"] or 0)


async def test_kill_9_peon_overlord_historical_keeps_totals_exact(
    procs: ProcCluster,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    topic = unique_topic("wiki")
    await create_topic(kafka_broker, topic, PARTITIONS)
    for role in ROLES:
        procs.start(role)
    for role in ROLES:
        await asyncio.to_thread(procs.wait_healthy, role)

    async with httpx.AsyncClient(timeout=10.0) as http:
        overlord = procs.procs["overlord"].url

        async def ready() -> bool:
            try:
                workers = await http.get(overlord + "/druid/indexer/v1/workers")
            except httpx.HTTPError:
                return False
            return workers.status_code == 200 and len(workers.json()) == 1

        await wait_until(ready, within=60, what="overlord leader with one worker")
        spec = supervisor_spec(kafka_broker, topic, taskDuration="PT4S")
        resp = await http.post(overlord + "/druid/indexer/v1/supervisor", json=spec)
        assert resp.status_code == 200, resp.text

        async def producer() -> None:
            for b in range(BATCHES):
                await produce(kafka_broker, topic, rows(b * BATCH, BATCH))
                await asyncio.sleep(0.5)

        produced = asyncio.create_task(producer())
        try:
            await asyncio.sleep(1.5)
            await restart(procs, "peon")
            await asyncio.sleep(1.5)
            await restart(procs, "overlord")
            await asyncio.sleep(1.5)
            await restart(procs, "historical")
            await asyncio.sleep(2.0)
            await restart(procs, "peon")
        finally:
            await produced
        total = BATCHES * BATCH

        async def published_all() -> bool:
            from common.config import load_settings
            from common.metadata import MetadataStore

            settings = load_settings(
                "overlord",
                config_path=procs.procs["overlord"].config,
                environ={},
            )
            store = await MetadataStore.connect(settings.metadata)
            try:
                md = await store.get_datasource_metadata("wiki")
            finally:
                await store.close()
            if md is None:
                return False
            offsets = md["partitions"]["partitionSequenceNumberMap"]
            return sum(int(o) for o in offsets.values()) == total

        try:
            await wait_until(published_all, within=150, interval=0.5, what="all offsets committed")

            async def exact() -> bool:
                return await broker_totals(http, procs) == expected(total)

            await wait_until(exact, within=60, interval=0.5, what="exact totals at the broker")
        except TimeoutError as exc:
            got = await broker_totals(http, procs)
            views = []
            for name, path in (
                ("broker", "/druid-internal/v1/discovery"),
                ("historical", "/druid-internal/v1/segments?counter=-1&timeout=1"),
                ("coordinator", "/druid/coordinator/v1/loadstatus?simple"),
            ):
                try:
                    r = await http.get(procs.procs[name].url + path)
                    views.append(f"{name} {path}: {r.status_code} {r.text[:1500]}")
                except httpx.HTTPError as e:
                    views.append(f"{name} {path}: {e}")
            details = "\n".join(
                [
                    *views,
                    procs.warnings(),
                    *(f"--- {n}:\n{t}" for n, t in procs.tracebacks().items()),
                ]
            )
            raise AssertionError(
                f"{exc}; broker totals {got}, want {expected(total)}\n{details}"
            ) from None
