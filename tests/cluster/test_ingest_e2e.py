"""Streaming ingestion end to end: Kafka (tansu) -> supervisor -> peon -> publish -> historical.

Every role is real and in-process: coordinator, overlord, historical, broker and peon on the
metadata discovery backend (SQLite), local deep storage, a real Kafka-protocol broker. Rows
produced to a 3-partition topic become queryable through the broker while the peon still holds
them, are published with their offsets in one transaction, handed off to the historical, and the
totals stay exact (nothing lost, nothing twice) across task rollovers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from common.aio import wait_until
from services.historical.service import HistoricalService
from services.peon.service import PeonService
from tests.support.cluster import Cluster, cluster, sqlite_properties
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)

pytestmark = pytest.mark.slow

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
PAGES = ["Druid", "Kafka", "Kubernetes", "Python", "Arrow"]
PARTITIONS = 3


def rows(start: int, n: int) -> list[tuple[int, bytes]]:
    """``n`` edits spread over three hours and the partitions; row i adds i. ``tags`` is a plain
    string in the first hour, multi-value in the second and absent from the third, so the hours'
    segments have different schemas."""
    out = []
    for i in range(start, start + n):
        edit: dict[str, Any] = {
            "ts": T0 + (i % 3) * 3_600_000 + i,
            "page": PAGES[i % 5],
            "added": i,
        }
        if i % 3 == 0:
            edit["tags"] = f"t{i % 2}"
        elif i % 3 == 1:
            edit["tags"] = ["t0", f"x{i % 2}"]
        out.append((i % PARTITIONS, orjson.dumps(edit)))
    return out


def supervisor_spec(broker: KafkaBroker, topic: str, **io: Any) -> dict[str, Any]:
    return {
        "type": "kafka",
        "spec": {
            "dataSchema": {
                "dataSource": "wiki",
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["page", "tags"]},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "hour",
                    "queryGranularity": "none",
                    "rollup": False,
                },
            },
            "ioConfig": {
                "topic": topic,
                "inputFormat": {"type": "json"},
                "consumerProperties": broker.consumer_properties(),
                "taskCount": 1,
                "replicas": 1,
                "startDelay": "PT0S",
                "period": "PT0.5S",
                "useEarliestOffset": True,
                "completionTimeout": "PT60S",
                **io,
            },
            "tuningConfig": {
                "type": "kafka",
                "chatRetries": 3,
                "httpTimeout": "PT5S",
                "chatRetryMinWait": "PT0.05S",
                "chatRetryMaxWait": "PT0.2S",
            },
        },
    }


TOTALS = {
    "queryType": "timeseries",
    "dataSource": "wiki",
    "intervals": ["2024-01-01/2024-01-02"],
    "granularity": "all",
    "aggregations": [
        {"type": "longSum", "name": "rows", "fieldName": "count"},
        {"type": "longSum", "name": "added", "fieldName": "added"},
    ],
}


async def totals(c: Cluster) -> tuple[int, int]:
    resp = await c.http.post(c.nodes["broker"].url + "/druid/v2", json=TOTALS)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    if not result:
        return 0, 0
    r = result[0]["result"]
    return int(r["rows"] or 0), int(r["added"] or 0)


SNAPSHOT: list[dict[str, Any]] = [
    {
        **TOTALS,
        "aggregations": [
            {"type": "count", "name": "n"},
            {"type": "longMin", "name": "first", "fieldName": "__time"},
            {"type": "longMax", "name": "last", "fieldName": "__time"},
        ],
    },
    {**TOTALS, "granularity": "minute", "aggregations": [{"type": "count", "name": "n"}]},
    {
        **TOTALS,
        "queryType": "groupBy",
        "dimensions": ["tags"],
        "aggregations": [{"type": "count", "name": "n"}],
    },
    {**TOTALS, "queryType": "scan", "columns": ["__time", "page", "tags"], "order": "ascending"},
]


async def snapshot(c: Cluster) -> list[Any]:
    """The SNAPSHOT queries' answers (scan: its events, whatever segments hold them)."""
    out: list[Any] = []
    for q in SNAPSHOT:
        resp = await c.http.post(c.nodes["broker"].url + "/druid/v2", json=q)
        assert resp.status_code == 200, resp.text
        context = orjson.loads(resp.headers["X-Druid-Response-Context"])
        assert "missingSegments" not in context, (q["queryType"], context)
        result = resp.json()
        if q["queryType"] == "scan":
            result = [e for batch in result for e in batch["events"]]
        out.append(result)
    return out


def expected(n: int) -> tuple[int, int]:
    return n, sum(range(n))


def served_by(c: Cluster, kind: type) -> int:
    count = 0
    for node in c.nodes.values():
        service = node.service
        if isinstance(service, kind):
            count += len(service.announcer.served)  # type: ignore[attr-defined]
    return count


async def start_cluster(c: Cluster, tmp: Path) -> None:
    await c.start("coordinator")
    await c.start("overlord")
    await c.start(
        "historical",
        **{
            "druid.segmentCache.locations": json.dumps(
                [{"path": str(tmp / "cache"), "maxSize": 10**9}]
            )
        },
    )
    await c.start("broker")
    await c.start("peon")

    async def ready() -> bool:
        ov = await c.get("overlord", "/druid/indexer/v1/isLeader")
        co = await c.get("coordinator", "/druid/coordinator/v1/isLeader")
        workers = await c.get("overlord", "/druid/indexer/v1/workers")
        return (
            ov.status_code == co.status_code == 200
            and workers.status_code == 200
            and len(workers.json()) == 1
        )

    await wait_until(ready, within=30, what="leaders and a worker")


def cluster_props(tmp: Path) -> dict[str, str]:
    return {
        **sqlite_properties(tmp),
        "druid.coordinator.period": "PT1S",
        "druid.segment.handoff.pollDuration": "PT0.2S",
        "druid.worker.capacity": "3",
        "druid.segmentCache.dropSegmentDelayMillis": "100",
    }


async def test_rows_are_queryable_realtime_then_from_historicals_exactly_once(
    tmp_path: Path,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    topic = unique_topic("wiki")
    await create_topic(kafka_broker, topic, PARTITIONS)
    await produce(kafka_broker, topic, rows(0, 300))

    async with cluster(cluster_props(tmp_path)) as c:
        await start_cluster(c, tmp_path)
        # Long enough for the realtime answers below to be read before the tasks publish, on a
        # slow, loaded machine too (CI once read them past 8 s: a handoff under way meanwhile).
        spec = supervisor_spec(kafka_broker, topic, taskDuration="PT15S")
        resp = await c.http.post(
            c.nodes["overlord"].url + "/druid/indexer/v1/supervisor", json=spec
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"id": "wiki"}

        # Realtime: the peon answers for rows it has not published yet.
        async def realtime() -> bool:
            return await totals(c) == expected(300)

        await wait_until(realtime, within=30, what="300 rows queryable")
        assert served_by(c, PeonService) > 0, "the first answer should come from the peon"
        metrics = (await c.get("peon", "/metrics")).text
        processed = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("druid_ingest_events_processed{") and 'dataSource="wiki"' in line
        ]
        assert sum(processed) == 300, metrics
        for name in ("unparseable", "thrownAway"):
            assert f"druid_ingest_events_{name}{{" in metrics
        assert "druid_ingest_persists_count{" in metrics
        assert "druid_ingest_handoff_count{" in metrics
        realtime_answers = await snapshot(c)
        assert served_by(c, HistoricalService) == 0, "a handoff began before the realtime reads"
        [summary] = realtime_answers[0]
        assert summary["result"] == {"n": 300, "first": T0, "last": T0 + 2 * 3_600_000 + 299}
        assert summary["timestamp"] == "2024-01-01T00:00:00.000Z"  # the first row's time
        tags = {e["__time"]: e["tags"] for e in realtime_answers[3]}
        hour = 3_600_000  # rows 0, 1, 2: a plain string, multi-value, none
        assert [tags[T0], tags[T0 + hour + 1], tags[T0 + 2 * hour + 2]] == [
            "t0",
            ["t0", "x1"],
            None,
        ]

        # Handoff: after the task's duration its segments are published and loaded by the
        # historical, and the peon stops serving them.
        async def handed_off() -> bool:
            return served_by(c, HistoricalService) > 0 and served_by(c, PeonService) == 0

        await wait_until(handed_off, within=60, what="segments handed off to the historical")
        assert await totals(c) == expected(300)
        # The historical answers exactly what the peon answered before handoff.
        assert await snapshot(c) == realtime_answers

        # The offsets committed with the segments cover exactly what was produced.
        store = c.nodes["overlord"].service.store
        committed = await store.get_datasource_metadata("wiki")
        assert committed is not None
        offsets = committed["partitions"]["partitionSequenceNumberMap"]
        assert {int(p): int(o) for p, o in offsets.items()} == {0: 100, 1: 100, 2: 100}

        # More rows, ingested by the next task generation: totals stay exact.
        await produce(kafka_broker, topic, rows(300, 150))

        async def all_rows() -> bool:
            return await totals(c) == expected(450)

        await wait_until(all_rows, within=60, what="450 rows queryable")

        status = await c.get("overlord", "/druid/indexer/v1/supervisor/wiki/status")
        assert status.status_code == 200
        payload = status.json()["payload"]
        assert payload["dataSource"] == "wiki" and payload["stream"] == topic
        assert payload["state"] in ("RUNNING", "PENDING"), payload
