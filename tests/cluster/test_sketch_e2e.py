"""Sketch metrics end to end: Kafka -> peon (rollup into sketch metrics) -> publish ->
historical, every role real and in-process. Native sketch aggregators and the DataSketches SQL
functions answer the same through the broker while the peon serves the rows and after the
historical took them over, and the broker's SQL schema types the columns ``COMPLEX<...>``.
Quantiles stay within their exact range (fewer than 2k values per merge): beyond it DataSketches
compacts at random and answers agree only within the sketch's error (see docs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from common.aio import wait_until
from services.historical.service import HistoricalService
from services.peon.service import PeonService
from tests.cluster.test_ingest_e2e import (
    PARTITIONS,
    T0,
    cluster_props,
    served_by,
    start_cluster,
    supervisor_spec,
)
from tests.support.cluster import Cluster, cluster
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)

pytestmark = pytest.mark.slow

N = 600
USERS = 250


def rows() -> list[tuple[int, bytes]]:
    out = []
    for i in range(N):
        edit = {
            "ts": T0 + (i % 2) * 3_600_000 + (i % 5) * 60_000,
            "page": f"p{i % 3}",
            "user": f"u{i % USERS}",
            "latency": float(i % 100),
        }
        out.append((i % PARTITIONS, orjson.dumps(edit)))
    return out


METRICS = [
    {"type": "count", "name": "count"},
    {"type": "hyperUnique", "name": "unique_users", "fieldName": "user"},
    {"type": "HLLSketchBuild", "name": "hll_users", "fieldName": "user"},
    {"type": "thetaSketch", "name": "theta_users", "fieldName": "user"},
    {"type": "quantilesDoublesSketch", "name": "q_latency", "fieldName": "latency"},
]
NATIVE = {
    "queryType": "groupBy",
    "dataSource": "web",
    "intervals": ["2024-01-01/2024-01-02"],
    "granularity": "hour",
    "dimensions": ["page"],
    "aggregations": [
        {"type": "longSum", "name": "rows", "fieldName": "count"},
        {"type": "hyperUnique", "name": "hu", "fieldName": "unique_users"},
        {"type": "HLLSketchMerge", "name": "hll", "fieldName": "hll_users", "round": True},
        {"type": "thetaSketch", "name": "theta", "fieldName": "theta_users"},
        {"type": "quantilesDoublesSketch", "name": "q", "fieldName": "q_latency"},
    ],
    "postAggregations": [
        {
            "type": "quantilesDoublesSketchToQuantile",
            "name": "p90",
            "field": {"type": "fieldAccess", "fieldName": "q"},
            "fraction": 0.9,
        }
    ],
}
SQL = (
    "SELECT APPROX_COUNT_DISTINCT(unique_users), APPROX_COUNT_DISTINCT_DS_HLL(hll_users), "
    "APPROX_COUNT_DISTINCT_DS_THETA(theta_users), APPROX_QUANTILE_DS(q_latency, 0.5, 1024), "
    'DS_THETA(theta_users), SUM("count") FROM web'
)


async def answers(c: Cluster) -> tuple[Any, Any]:
    broker = c.nodes["broker"].url
    native = await c.http.post(broker + "/druid/v2", json=NATIVE)
    assert native.status_code == 200, native.text
    sql = await c.http.post(
        broker + "/druid/v2/sql",
        json={
            "query": SQL,
            "resultFormat": "array",
            "header": True,
            "typesHeader": True,
            "sqlTypesHeader": True,
        },
    )
    assert sql.status_code == 200, sql.text
    return native.json(), sql.json()


async def test_sketch_metrics_answer_the_same_before_and_after_handoff(
    tmp_path: Path,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    topic = unique_topic("web")
    await create_topic(kafka_broker, topic, PARTITIONS)
    await produce(kafka_broker, topic, rows())

    async with cluster(cluster_props(tmp_path)) as c:
        await start_cluster(c, tmp_path)
        spec = supervisor_spec(kafka_broker, topic, taskDuration="PT8S")
        schema = spec["spec"]["dataSchema"]
        schema.update(
            dataSource="web",
            dimensionsSpec={"dimensions": ["page"]},
            metricsSpec=METRICS,
            granularitySpec={
                "segmentGranularity": "hour",
                "queryGranularity": "minute",
                "rollup": True,
            },
        )
        resp = await c.http.post(
            c.nodes["overlord"].url + "/druid/indexer/v1/supervisor", json=spec
        )
        assert resp.status_code == 200, resp.text

        async def realtime() -> bool:
            resp = await c.http.post(c.nodes["broker"].url + "/druid/v2", json=NATIVE)
            return resp.status_code == 200 and sum(r["event"]["rows"] for r in resp.json()) == N

        await wait_until(realtime, within=30, what=f"{N} rows queryable")
        assert served_by(c, PeonService) > 0, "the first answer should come from the peon"
        before = await answers(c)
        native, sql = before
        assert len(native) == 6  # 2 hours x 3 pages
        for r in native:
            e = r["event"]
            assert e["rows"] == 100
            # users of one (hour, page): i = h + 2k, i % 3 = page -> 100 rows, 100 distinct users
            assert e["hu"] == pytest.approx(100, rel=0.05)
            assert e["hll"] == pytest.approx(100, rel=0.05)
            assert e["theta"] == 100.0 and e["q"] == 100
        header, types, sql_types, row = sql[0], sql[1], sql[2], sql[3]
        assert len(header) == 6 and types[4] == "COMPLEX<thetaSketch>"
        assert sql_types[4] == "OTHER"
        assert row[0] == pytest.approx(USERS, rel=0.05)
        assert row[1] == pytest.approx(USERS, rel=0.05)
        assert row[2] == USERS  # theta is exact below its size
        # 0..99 six times each; k=1024 keeps 600 values exact (no random compaction), so the
        # answer is the same wherever the rows are
        assert row[3] == 49.0 and row[5] == N

        async def handed_off() -> bool:
            return served_by(c, HistoricalService) > 0 and served_by(c, PeonService) == 0

        await wait_until(handed_off, within=60, what="segments handed off to the historical")
        assert await answers(c) == before
