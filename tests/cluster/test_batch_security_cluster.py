"""Batch ingestion on a cluster running Druid's basic security: the parallel supervisor and its
sub-tasks talk to each other with the escalated internal client, and SQL ingestion needs WRITE
on the target datasource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.aio import wait_until
from tests.cluster.test_batch_cluster import TASK, index_parallel, json_rows, schema
from tests.cluster.test_ingest_e2e import cluster_props
from tests.cluster.test_security_cluster import start_secured
from tests.support.cluster import cluster
from tests.support.security import ADMIN, add_user, basic_security_properties, wait_user_known

pytestmark = pytest.mark.slow

READER = ("batchreader", "batchreader-pw")


async def test_parallel_batch_and_sql_ingestion_under_basic_security(tmp_path: Path) -> None:
    files = tmp_path / "in"
    files.mkdir()
    for day in (1, 2):
        (files / f"d{day}.json").write_text(json_rows(day, 6, day))
    props = {**cluster_props(tmp_path), **basic_security_properties()}
    async with cluster(props) as c:
        await start_secured(c, tmp_path)
        overlord = c.nodes["overlord"].url
        task = index_parallel(
            schema("sec", ["2024-01-01/2024-01-03"]),
            {"type": "local", "baseDir": str(files), "filter": "*.json"},
            {"type": "json"},
            {"maxNumConcurrentSubTasks": 2},
        )
        assert (await c.http.post(overlord + TASK, json=task)).status_code == 401
        r = await c.http.post(overlord + TASK, json=task, auth=ADMIN)
        assert r.status_code == 200, r.text
        task_id = r.json()["task"]
        final: dict[str, Any] = {}

        async def done() -> bool:
            s = await c.http.get(f"{overlord}{TASK}/{task_id}/status", auth=ADMIN)
            final.update(s.json()["status"])
            return final["status"] != "RUNNING"

        await wait_until(done, within=60, what="secured parallel task")
        assert final["status"] == "SUCCESS", final
        tasks = await c.http.get(
            f"{overlord}/druid/indexer/v1/tasks", params={"state": "complete"}, auth=ADMIN
        )
        subs = [t for t in tasks.json() if t["type"] == "single_phase_sub_task"]
        assert len(subs) == 2 and all(t["status"] == "SUCCESS" for t in subs)

        # SQL ingestion: a user who may only read the datasource cannot write to it
        coord = c.nodes["coordinator"].url
        read_only = [{"resource": {"type": "DATASOURCE", "name": "sec"}, "action": "READ"}]
        await add_user(c.http, coord, READER[0], READER[1], read_only)
        broker = c.nodes["broker"].url
        await wait_user_known(c.http, broker, READER)
        source = json.dumps({"type": "inline", "data": json_rows(1, 2, 9)})
        sig = json.dumps([{"name": "ts", "type": "string"}, {"name": "page", "type": "string"}])
        query = (
            "INSERT INTO sec SELECT TIME_PARSE(ts) AS __time, page FROM TABLE(EXTERN("
            f"'{source}', '{{\"type\": \"json\"}}', '{sig}')) PARTITIONED BY DAY"
        )
        r = await c.http.post(f"{broker}/druid/v2/sql/task", json={"query": query}, auth=READER)
        assert r.status_code == 403, r.text
        r = await c.http.post(f"{broker}/druid/v2/sql/task", json={"query": query}, auth=ADMIN)
        assert r.status_code == 200, r.text
        sql_id = r.json()["taskId"]
        final.clear()

        async def sql_done() -> bool:
            s = await c.http.get(f"{overlord}{TASK}/{sql_id}/status", auth=ADMIN)
            final.update(s.json()["status"])
            return final["status"] != "RUNNING"

        await wait_until(sql_done, within=60, what="secured SQL task")
        assert final["status"] == "SUCCESS", final
