"""Task slots: a peon runs several tasks at once, and a supervisor whose task finds no free slot
says so (its status ``recentErrors``, the overlord's ``pendingTasks``) instead of waiting silently.

One peon with ``druid.worker.capacity=2``: the first supervisor's two tasks take both slots and
ingest side by side; the second supervisor's task waits, and both APIs say why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.aio import wait_until
from tests.cluster.test_ingest_e2e import rows, supervisor_spec
from tests.support.cluster import cluster, sqlite_properties
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

V1 = "/druid/indexer/v1"


def spec_for(broker: KafkaBroker, topic: str, name: str, task_count: int) -> dict[str, Any]:
    spec = supervisor_spec(broker, topic, taskDuration="PT1H", taskCount=task_count)
    spec["spec"]["dataSchema"]["dataSource"] = name
    return spec


async def test_a_supervisor_without_a_free_slot_says_so(
    tmp_path: Path,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    busy_topic, waiting_topic = unique_topic("busy"), unique_topic("waiting")
    await create_topic(kafka_broker, busy_topic, 3)
    await create_topic(kafka_broker, waiting_topic, 1)
    await produce(kafka_broker, busy_topic, rows(0, 60))

    props = {**sqlite_properties(tmp_path), "druid.worker.capacity": "2"}
    async with cluster(props) as c:
        await c.start("coordinator")
        await c.start("overlord")
        peon = await c.start("peon")

        async def one_worker() -> bool:
            r = await c.get("overlord", f"{V1}/workers")
            return r.status_code == 200 and len(r.json()) == 1

        await wait_until(one_worker, within=30, what="the peon to be a worker")
        overlord = c.nodes["overlord"].url
        r = await c.http.post(
            overlord + f"{V1}/supervisor", json=spec_for(kafka_broker, busy_topic, "busy", 2)
        )
        assert r.status_code == 200, r.text

        # Two tasks of one supervisor run on the one peon at the same time, each ingesting.
        async def busy_reading() -> bool:
            r = await c.http.get(overlord + f"{V1}/supervisor/busy/status")
            active = r.json()["payload"]["activeTasks"] if r.status_code == 200 else []
            return len(active) == 2 and all(t.get("startTime") for t in active)

        await wait_until(busy_reading, within=30, what="both busy tasks reading")
        runners = peon.service.runners  # type: ignore[attr-defined]
        assert len(runners) == 2

        async def both_ingested() -> bool:
            reports = [
                (await c.http.get(overlord + f"{V1}/task/{tid}/reports")).json()
                for tid in list(runners)
            ]
            counts = [
                r["ingestionStatsAndErrors"]["payload"]["rowStats"]["totals"]["buildSegments"][
                    "processed"
                ]
                for r in reports
            ]
            return sum(counts) == 60 and all(n > 0 for n in counts)

        await wait_until(both_ingested, within=30, what="both tasks ingesting their partitions")

        # Only now the second supervisor: no slot is left for its task.
        waiting = spec_for(kafka_broker, waiting_topic, "waiting", 1)
        r = await c.http.post(overlord + f"{V1}/supervisor", json=waiting)
        assert r.status_code == 200, r.text

        # Its task is pending, and says why, in Druid's TaskStatusPlus.
        async def pending_with_reason() -> list[dict[str, Any]]:
            r = await c.http.get(overlord + f"{V1}/pendingTasks")
            assert r.status_code == 200
            return [t for t in r.json() if t["dataSource"] == "waiting" and t["errorMsg"]]

        await wait_until(pending_with_reason, within=30, what="a pending task with its reason")
        [task] = await pending_with_reason()
        assert task["runnerStatusCode"] == "PENDING" and task["statusCode"] == "RUNNING"
        assert "No free task slot: 2 of 2 slot(s) in use on 1 worker(s)" in task["errorMsg"]
        assert "druid.worker.capacity" in task["errorMsg"]

        # And the supervisor's status says it too.
        async def status_says_so() -> bool:
            r = await c.http.get(overlord + f"{V1}/supervisor/waiting/status")
            errors = r.json()["payload"]["recentErrors"] if r.status_code == 200 else []
            return any(e["exceptionClass"] == "NoTaskSlot" for e in errors)

        await wait_until(status_says_so, within=30, what="the supervisor status to say so")
        payload = (await c.http.get(overlord + f"{V1}/supervisor/waiting/status")).json()["payload"]
        [event] = [e for e in payload["recentErrors"] if e["exceptionClass"] == "NoTaskSlot"]
        assert event["message"].startswith(f"Task [{task['id']}] is waiting for a worker: ")
        assert "No free task slot" in event["message"]
        assert [t["id"] for t in payload["activeTasks"]] == [task["id"]]
        assert payload["activeTasks"][0]["startTime"] is None
