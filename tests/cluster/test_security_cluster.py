"""The whole cluster with Druid's basic security and TLS only (certificates made here): ingestion,
handoff and queries work over authenticated HTTPS internal traffic, and a user with READ on one
datasource sees only it.

Every internal call (long polling, the load queue, supervisor-to-peon chat, task actions,
broker-to-data-node queries) must carry the escalator's credentials, or the cluster stalls:
ingestion reaching the historical proves them all.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.aio import wait_until
from services.historical.service import HistoricalService
from services.peon.service import PeonService
from tests.cluster.test_ingest_e2e import (
    PARTITIONS,
    TOTALS,
    cluster_props,
    expected,
    rows,
    served_by,
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
from tests.support.security import ADMIN, add_user, basic_security_properties, wait_user_known
from tests.support.tls import make_pki, tls_properties

pytestmark = pytest.mark.slow

READER = ("reader", "reader-pw")
OTHER = ("other", "other-pw")


async def start_secured(c: Cluster, tmp: Path) -> None:
    await c.start("coordinator")
    await c.start("overlord")
    cache = json.dumps([{"path": str(tmp / "cache"), "maxSize": 10**9}])
    await c.start("historical", **{"druid.segmentCache.locations": cache})
    await c.start("broker")
    await c.start("peon")

    async def ready() -> bool:
        ov = await c.get("overlord", "/druid/indexer/v1/isLeader")  # open, as in Druid
        co = await c.get("coordinator", "/druid/coordinator/v1/isLeader")
        workers = await c.get("overlord", "/druid/indexer/v1/workers", auth=ADMIN)
        return (
            ov.status_code == co.status_code == 200
            and workers.status_code == 200
            and len(workers.json()) == 1
        )

    await wait_until(ready, within=30, what="leaders and a worker (seen with credentials)")


async def native(c: Cluster, auth: tuple[str, str]) -> Any:
    return await c.http.post(c.nodes["broker"].url + "/druid/v2", json=TOTALS, auth=auth)


async def sql(c: Cluster, query: str, auth: tuple[str, str]) -> Any:
    return await c.http.post(
        c.nodes["broker"].url + "/druid/v2/sql", json={"query": query}, auth=auth
    )


async def test_secured_cluster_ingests_hands_off_and_filters_what_users_see(
    tmp_path: Path,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    topic = unique_topic("wiki")
    await create_topic(kafka_broker, topic, PARTITIONS)
    await produce(kafka_broker, topic, rows(0, 200))

    pki = make_pki(tmp_path)
    props = {**cluster_props(tmp_path), **basic_security_properties(), **tls_properties(pki)}
    async with cluster(props) as c:
        await c.http.aclose()
        c.http = httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(pki.ca)), timeout=10
        )
        await start_secured(c, tmp_path)
        assert all(n.url.startswith("https://") for n in c.nodes.values())
        coord = c.nodes["coordinator"].url
        await add_user(
            c.http,
            coord,
            *READER,
            [
                {"resource": {"type": "DATASOURCE", "name": "wiki"}, "action": "READ"},
                {"resource": {"type": "SYSTEM_TABLE", "name": "segments"}, "action": "READ"},
            ],
        )
        await add_user(
            c.http,
            coord,
            *OTHER,
            [
                {"resource": {"type": "DATASOURCE", "name": "elsewhere"}, "action": "READ"},
                {"resource": {"type": "SYSTEM_TABLE", "name": "segments"}, "action": "READ"},
            ],
        )
        for node in c.nodes.values():
            await wait_user_known(c.http, node.url, OTHER)

        spec = supervisor_spec(kafka_broker, topic, taskDuration="PT6S")
        url = c.nodes["overlord"].url + "/druid/indexer/v1/supervisor"
        assert (await c.http.post(url, json=spec)).status_code == 401
        assert (await c.http.post(url, json=spec, auth=READER)).status_code == 403
        resp = await c.http.post(url, json=spec, auth=ADMIN)
        assert resp.status_code == 200, resp.text

        async def rows_seen() -> bool:
            r = await native(c, READER)
            assert r.status_code == 200, r.text
            result = r.json()
            return bool(result) and result[0]["result"]["rows"] == expected(200)[0]

        await wait_until(rows_seen, within=60, what="200 rows queryable (peon, realtime)")

        async def handed_off() -> bool:
            return served_by(c, HistoricalService) > 0 and served_by(c, PeonService) == 0

        await wait_until(handed_off, within=90, what="segments handed off to the historical")
        r = await native(c, READER)
        assert r.json()[0]["result"] == {"rows": 200, "added": sum(range(200))}

        # READ on one datasource: sees it; another user sees nothing of it.
        assert (await native(c, OTHER)).status_code == 403
        assert (await native(c, ("reader", "wrong"))).status_code == 401
        count = await sql(c, "SELECT COUNT(*) AS n FROM wiki", READER)
        assert count.status_code == 200, count.text
        assert count.json() == [{"n": 200}]
        assert (await sql(c, "SELECT COUNT(*) AS n FROM wiki", OTHER)).status_code == 403
        tables = "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'druid'"
        assert (await sql(c, tables, READER)).json() == [{"TABLE_NAME": "wiki"}]
        assert (await sql(c, tables, OTHER)).json() == []
        segs = "SELECT DISTINCT datasource FROM sys.segments"
        assert (await sql(c, segs, READER)).json() == [{"datasource": "wiki"}]
        assert (await sql(c, segs, OTHER)).json() == []
        assert (await sql(c, "SELECT * FROM sys.servers", READER)).status_code == 403
