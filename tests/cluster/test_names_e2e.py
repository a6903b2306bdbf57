"""A Kafka supervisor end to end on a datasource name Druid allows but URLs do not: a space, a
percent sign, ``?``, ``!`` and non-ASCII letters (the suffix Druid's own Kafka integration test
gives its datasource).

Every internal call carries the name or an id built from it (supervisor -> peon chat, overlord ->
peon shutdown, peon -> coordinator handoff, coordinator -> historical load, broker -> data nodes),
so the rows only get ingested, queried (native JSON and SQL with a quoted identifier), handed off
and published when every one of them encodes it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from common.aio import wait_until
from services.historical.service import HistoricalService
from services.peon.service import PeonService
from tests.cluster.test_ingest_e2e import (
    cluster_props,
    expected,
    rows,
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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NAME = "wiki %Россия 한국 中国!?"
SUP = f"/druid/indexer/v1/supervisor/{quote(NAME, safe='')}"


async def native_totals(c: Cluster) -> tuple[int, int]:
    query = {
        "queryType": "timeseries",
        "dataSource": NAME,
        "intervals": ["2024-01-01/2024-01-02"],
        "granularity": "all",
        "aggregations": [
            {"type": "longSum", "name": "rows", "fieldName": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
        ],
    }
    resp = await c.http.post(c.nodes["broker"].url + "/druid/v2", json=query)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    if not result:
        return 0, 0
    r = result[0]["result"]
    return int(r["rows"] or 0), int(r["added"] or 0)


async def sql_totals(c: Cluster) -> tuple[int, int]:
    quoted = NAME.replace('"', '""')
    sql = f'SELECT SUM("count") AS "rows", SUM(added) AS added FROM "{quoted}"'
    resp = await c.http.post(c.nodes["broker"].url + "/druid/v2/sql", json={"query": sql})
    assert resp.status_code == 200, resp.text
    [row] = resp.json()
    return int(row["rows"] or 0), int(row["added"] or 0)


async def test_supervisor_on_a_name_with_space_percent_and_non_ascii(
    tmp_path: Path,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    topic = unique_topic("names")
    await create_topic(kafka_broker, topic, 3)
    await produce(kafka_broker, topic, rows(0, 120))

    async with cluster(cluster_props(tmp_path)) as c:
        await start_cluster(c, tmp_path)
        spec = supervisor_spec(kafka_broker, topic, taskDuration="PT6S", taskCount=2)
        spec["spec"]["dataSchema"]["dataSource"] = NAME
        overlord = c.nodes["overlord"].url
        resp = await c.http.post(overlord + "/druid/indexer/v1/supervisor", json=spec)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"id": NAME}

        # Two reading tasks, both running on the peon (chat works: start times are known).
        async def two_tasks_reading() -> bool:
            status = await c.http.get(overlord + SUP + "/status")
            active = status.json()["payload"]["activeTasks"] if status.status_code == 200 else []
            return len(active) == 2 and all(t.get("startTime") for t in active)

        await wait_until(two_tasks_reading, within=30, what="two reading tasks")
        runners = c.nodes["peon"].service.runners  # type: ignore[attr-defined]
        assert len(runners) == 2, "both tasks run on the one peon at once"

        async def realtime() -> bool:
            return await native_totals(c) == expected(120)

        await wait_until(realtime, within=30, what="120 rows queryable on the peon")
        assert await sql_totals(c) == expected(120)
        metrics = (await c.get("peon", "/metrics")).text
        label = 'dataSource="' + NAME + '"'
        processed = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("druid_ingest_events_processed{") and label in line
        ]
        assert sum(processed) == 120, metrics

        # Rollover: tasks publish, the coordinator has the historical load the segments, and
        # the peon stops serving them.
        async def handed_off() -> bool:
            return served_by(c, HistoricalService) > 0 and served_by(c, PeonService) == 0

        await wait_until(handed_off, within=60, what="segments handed off to the historical")
        assert await native_totals(c) == expected(120)
        assert await sql_totals(c) == expected(120)

        # Published: segments in the metadata store and in deep storage under the raw name (as
        # Druid lays it out: <dataSource>/<start>_<end>/<version>/<partitionNum>/).
        coordinator = c.nodes["coordinator"].url
        segs = await c.http.get(
            coordinator
            + "/druid/coordinator/v1/metadata/datasources/"
            + quote(NAME, safe="")
            + "/segments",
            params={"full": ""},
        )
        assert segs.status_code == 200, segs.text
        assert segs.json() and {s["dataSource"] for s in segs.json()} == {NAME}
        assert (tmp_path / "deep" / NAME).is_dir()
        store = c.nodes["overlord"].service.store
        committed = await store.get_datasource_metadata(NAME)
        assert committed is not None
        offsets = committed["partitions"]["partitionSequenceNumberMap"]
        assert {int(p): int(o) for p, o in offsets.items()} == {0: 40, 1: 40, 2: 40}

        # The completed tasks are listed for the datasource, every one a SUCCESS.
        done = await c.http.get(
            overlord + "/druid/indexer/v1/tasks", params={"datasource": NAME, "state": "complete"}
        )
        assert done.status_code == 200
        statuses = {t["statusCode"] for t in done.json()}
        assert statuses == {"SUCCESS"}, done.json()
        task_id = done.json()[0]["id"]
        one = await c.http.get(
            overlord + "/druid/indexer/v1/task/" + quote(task_id, safe="") + "/status"
        )
        assert one.status_code == 200 and one.json()["status"]["status"] == "SUCCESS"
