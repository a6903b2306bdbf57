"""Multi-topic ingestion (``topicPattern``) end to end on a real Kafka-protocol broker (tansu).

Two topics match the pattern and one does not; a third matching topic is created while the
supervisor runs. Every role is real and in-process (as in ``test_ingest_e2e``). Exactly the
matching topics' rows become queryable; the supervisor names partitions ``topic:partition`` in
its status, the tasks' offsets and the committed ``druid_dataSource`` metadata (whose stream is
the pattern); the topic that appears later is found, read from its first record although
``useEarliestOffset`` is false, after the reading tasks stop early for the new partition set
(``taskDuration`` is ten minutes: without the early stop the new topic would wait for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from common.aio import wait_until
from tests.cluster.test_ingest_e2e import cluster_props, start_cluster, supervisor_spec, totals
from tests.support.cluster import Cluster, cluster
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def edits(first: int, n: int, partitions: int) -> list[tuple[int, bytes]]:
    """``n`` edits adding ``first`` ... ``first + n - 1``, spread over the partitions."""
    return [
        (i % partitions, orjson.dumps({"ts": T0 + i, "page": f"p{i % 4}", "added": i}))
        for i in range(first, first + n)
    ]


def expected(*ranges: tuple[int, int]) -> tuple[int, int]:
    return sum(n for _, n in ranges), sum(sum(range(a, a + n)) for a, n in ranges)


async def status(c: Cluster) -> dict[str, Any]:
    r = await c.get("overlord", "/druid/indexer/v1/supervisor/wiki/status")
    assert r.status_code == 200, r.text
    payload: dict[str, Any] = r.json()["payload"]
    return payload


async def test_topic_pattern_reads_matching_topics_and_new_ones(
    tmp_path: Path,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    prefix = unique_topic("m")
    clicks, views, late = f"{prefix}-clicks", f"{prefix}-views", f"{prefix}-late"
    other = f"x{prefix}-clicks"  # matches only partially: not read
    pattern = prefix.replace("-", "\\-") + "-(clicks|views|late)"
    await create_topic(kafka_broker, clicks, 2)
    await create_topic(kafka_broker, views, 1)
    await create_topic(kafka_broker, other, 1)

    async with cluster({**cluster_props(tmp_path), "druid.worker.capacity": "4"}) as c:
        await start_cluster(c, tmp_path)
        spec = supervisor_spec(
            kafka_broker, clicks, taskDuration="PT10M", taskCount=2, useEarliestOffset=False
        )
        io = spec["spec"]["ioConfig"]
        del io["topic"]
        io["topicPattern"] = pattern
        spec["spec"]["tuningConfig"]["repartitionTransitionDuration"] = "PT1S"
        r = await c.http.post(c.nodes["overlord"].url + "/druid/indexer/v1/supervisor", json=spec)
        assert r.status_code == 200, r.text

        # useEarliestOffset is false: produce once the tasks read (from the latest offsets).
        async def reading() -> bool:
            p = await status(c)
            tasks = p["activeTasks"]
            return bool(tasks) and all(t.get("currentOffsets") for t in tasks)

        await wait_until(reading, within=60, interval=0.2, what="tasks reading")
        payload = await status(c)
        assert payload["stream"] == pattern and payload["partitions"] == 3
        assert set(payload["latestOffsets"]) == {f"{clicks}:0", f"{clicks}:1", f"{views}:0"}
        started = {p for t in payload["activeTasks"] for p in t["startingOffsets"]}
        assert started == set(payload["latestOffsets"])
        assert "minimumLagMillis" not in payload and "aggregateLagMillis" not in payload

        await produce(kafka_broker, clicks, edits(0, 40, 2))
        await produce(kafka_broker, views, edits(100, 20, 1))
        await produce(kafka_broker, other, edits(1000, 10, 1))

        async def rows_are(want: tuple[int, int]) -> bool:
            return await totals(c) == want

        await wait_until(
            lambda: rows_are(expected((0, 40), (100, 20))), within=60, what="matching rows"
        )

        # A new matching topic: found, read from its first record.
        await create_topic(kafka_broker, late, 1)
        await produce(kafka_broker, late, edits(200, 10, 1))
        want = expected((0, 40), (100, 20), (200, 10))
        await wait_until(lambda: rows_are(want), within=90, interval=0.2, what="late topic rows")
        four = {f"{clicks}:0", f"{clicks}:1", f"{views}:0", f"{late}:0"}

        async def lag_of_all() -> bool:
            # the groups read every topic-partition, each with its lag
            p = await status(c)
            read = set().union(*(t["currentOffsets"] for t in p["activeTasks"]))
            return p["partitions"] == 4 and read == four and set(p.get("minimumLag") or ()) == four

        await wait_until(lag_of_all, within=30, interval=0.2, what="lag per topic-partition")
        payload = await status(c)
        assert set(payload["latestOffsets"]) == four and payload["aggregateLag"] >= 0

        # Suspending publishes everything: the committed offsets are keyed topic:partition.
        r = await c.http.post(c.nodes["overlord"].url + "/druid/indexer/v1/supervisor/wiki/suspend")
        assert r.status_code == 200, r.text
        store = c.nodes["overlord"].service.store  # type: ignore[attr-defined]
        produced = {f"{clicks}:0": 20, f"{clicks}:1": 20, f"{views}:0": 20, f"{late}:0": 10}

        async def committed() -> bool:
            md = await store.get_datasource_metadata("wiki")
            if md is None:
                return False
            parts = md["partitions"]
            assert parts["stream"] == pattern
            return bool(parts["partitionSequenceNumberMap"] == produced)

        await wait_until(committed, within=90, interval=0.3, what="all offsets committed")
        assert await totals(c) == want
