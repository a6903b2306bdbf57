"""Served endpoints of Druid's API reference that no other test exercised (``docs/api.md`` names
this file for them): ``/status`` and the leader endpoints on every role, the coordinator's
``/cluster``, the peon's enable/disable and its task's ``unparseableEvents``, ``liveReports`` and
``stop``, the overlord's task lists by state, ``shutdownAllTasks`` and ``pendingSegments``, and
the supervisors' ``suspendAll``, ``resumeAll``, ``terminateAll`` and deprecated ``shutdown``."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import common
from common.aio import wait_until
from common.config import ROLES
from tests.component.test_overlord_api import c, post
from tests.component.test_overlord_runner import kafka_task
from tests.component.test_peon_kafka_task import (
    fake_overlord,
    rows,
    task_json,
    task_state,
    wait_state,
)
from tests.component.test_supervisor_api import Env, count_running, env, spec, topic_with
from tests.support.cluster import Cluster, cluster, sqlite_properties
from tests.support.kafka import KafkaBroker, create_topic, kafka_broker, produce, unique_topic

__all__ = ["c", "env", "kafka_broker"]

V1 = "/druid/indexer/v1"


async def test_every_role_status_cluster_and_leaders(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as cl:
        for role in ROLES:
            await cl.start(role)
        for role in ROLES:
            status = (await cl.get(role, "/status")).json()
            assert status["version"] == common.__version__, role
            assert (await cl.get(role, "/status/health")).json() is True
            props = (await cl.get(role, "/status/properties")).json()
            assert props["druid.plaintextPort"] == str(cl.nodes[role].settings.node.plaintext_port)

            async def discovered(role: str = role) -> bool:
                r = await cl.get(role, "/status/selfDiscovered/status")
                return bool(r.json() == {"selfDiscovered": True})

            await wait_until(discovered, within=10, what=f"{role} self-discovered")

        # leaders answer with their own URL on every coordinator/overlord path
        for role, prefix in (("coordinator", "/druid/coordinator/v1"), ("overlord", V1)):

            async def leads(role: str = role, prefix: str = prefix) -> bool:
                return (await cl.get(role, f"{prefix}/isLeader")).status_code == 200

            await wait_until(leads, within=20, what=f"{role} leads")
            assert (await cl.get(role, f"{prefix}/leader")).text == cl.nodes[role].url

        async def everyone() -> bool:
            view = (await cl.get("coordinator", "/druid/coordinator/v1/cluster")).json()
            return all(len(view.get(r.upper(), [])) == 1 for r in ROLES)

        await wait_until(everyone, within=20, what="every role in /cluster")
        view = (await cl.get("coordinator", "/druid/coordinator/v1/cluster")).json()
        broker = cl.nodes["broker"].settings
        assert view["BROKER"] == [
            {
                "host": broker.node.host,
                "service": broker.node.service,
                "plaintextPort": broker.node.plaintext_port,
                "tlsPort": -1,
            }
        ]
        full = (await cl.get("coordinator", "/druid/coordinator/v1/cluster?full")).json()
        assert full["BROKER"][0]["druidNode"]["plaintextPort"] == broker.node.plaintext_port

        # the peon (Druid's MiddleManager endpoints)
        host = cl.nodes["peon"].settings.host_and_port
        worker = cl.nodes["peon"].url + "/druid/worker/v1"
        assert (await cl.http.get(f"{worker}/enabled")).json() == {host: True}
        assert (await cl.http.post(f"{worker}/disable")).json() == {host: "disabled"}
        assert (await cl.http.get(f"{worker}/enabled")).json() == {host: False}
        assert (await cl.http.post(f"{worker}/enable")).json() == {host: "enabled"}
        assert (await cl.http.get(f"{worker}/enabled")).json() == {host: True}
        assert (await cl.http.get(f"{worker}/tasks")).json() == []
        assert (await cl.http.post(f"{worker}/task/nope/shutdown")).status_code == 404


async def test_task_lists_by_state_shutdown_all_and_pending_segments(c: Cluster) -> None:
    for task_id in ("t1", "t2"):
        assert (await post(c, f"{V1}/task", kafka_task(task_id))).status_code == 200
    # no peon: both wait for a slot, newest first
    assert [t["id"] for t in (await c.get("overlord", f"{V1}/pendingTasks")).json()] == [
        "t2",
        "t1",
    ]
    assert (await c.get("overlord", f"{V1}/runningTasks")).json() == []
    assert (await c.get("overlord", f"{V1}/waitingTasks")).json() == []
    assert (await c.get("overlord", f"{V1}/task/t1/log")).status_code == 404

    r = await post(c, f"{V1}/datasources/wiki/shutdownAllTasks", None)
    assert r.json() == {"dataSource": "wiki"}
    for task_id in ("t1", "t2"):
        status = (await c.get("overlord", f"{V1}/task/{task_id}/status")).json()["status"]
        assert status["statusCode"] == "FAILED"
    assert (await c.get("overlord", f"{V1}/pendingTasks")).json() == []
    # createdTimeInterval uses '_' between start and end, as Druid's
    for created in ("2000-01-01_3000-01-01", "2000-01-01/3000-01-01"):
        params = {"state": "complete", "createdTimeInterval": created}
        done = (await c.get("overlord", f"{V1}/tasks", params=params)).json()
        assert sorted(t["id"] for t in done) == ["t1", "t2"]

    url = c.nodes["overlord"].url + f"{V1}/pendingSegments/wiki"
    assert (await c.http.delete(url)).json() == {"numDeleted": 0}
    bad = await c.http.delete(url, params={"interval": "yesterday"})
    assert bad.status_code == 400 and bad.json()["errorMessage"]


@pytest.mark.slow
async def test_peon_task_reports_unparseable_events_and_stops_without_publishing(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
) -> None:
    props = sqlite_properties(tmp_path)
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    data = rows(6)
    data[2:2] = [(0, b"{not json"), (0, orjson.dumps({"ts": "garbage", "page": "x"}))]
    await produce(kafka_broker, topic, data)
    async with fake_overlord(props) as fake, cluster(props) as cl:
        peon = await cl.start("peon", **{"druid.worker.capacity": "2"})
        fake.peon_url = peon.url
        # the end offset is far ahead: the task keeps reading until stopped. Druid saves no
        # parse exceptions by default (maxSavedParseExceptions 0): ask for some.
        task = task_json("t1", kafka_broker, topic, {0: 0}, {0: 1000}, maxSavedParseExceptions=5)
        r = await cl.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)
        assert r.status_code == 200
        chat = f"{peon.url}/druid/worker/v1/chat/t1"

        async def read_all() -> bool:
            r = await cl.http.get(f"{chat}/rowStats")
            if r.status_code != 200:
                return False
            totals = r.json()["totals"]["buildSegments"]
            return bool(totals["processed"] == 6 and totals["unparseable"] == 2)

        await wait_until(read_all, within=40, what="six rows read")
        events = (await cl.http.get(f"{chat}/unparseableEvents")).json()
        assert list(events) == ["buildSegments"] and len(events["buildSegments"]) == 2
        report = (await cl.http.get(f"{chat}/liveReports")).json()["ingestionStatsAndErrors"]
        assert report["taskId"] == "t1" and report["type"] == "ingestionStatsAndErrors"
        payload = report["payload"]
        assert payload["ingestionState"] == "BUILD_SEGMENTS"
        assert payload["rowStats"]["totals"]["buildSegments"]["processed"] == 6
        assert len(payload["unparseableEvents"]["buildSegments"]) == 2

        assert (await cl.http.get(f"{chat}/status")).json() == "READING"

        async def past_all_eight() -> bool:
            # the offsets move once the rows are in the index (after segment allocation)
            return bool((await cl.http.get(f"{chat}/offsets/current")).json() == {"0": 8})

        await wait_until(past_all_eight, within=20, what="current offset 8")
        assert (await cl.http.get(f"{chat}/offsets/end")).json() == {"0": 1000}
        started = (await cl.http.get(f"{chat}/time/start")).json()
        assert started.endswith("Z") and started[:2] == "20"

        # a second task, shut down through the worker API
        second = task_json("t2", kafka_broker, topic, {0: 0}, {0: 1000})
        r = await cl.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=second)
        assert r.status_code == 200
        await wait_until(
            lambda: task_state(cl, "peon", "t2"), within=20, what="second task announced"
        )
        shut = await cl.http.post(f"{peon.url}/druid/worker/v1/task/t2/shutdown")
        assert shut.json() == {"task": "t2"}
        await wait_state(cl, "peon", "t2", "FAILED")

        assert (await cl.http.post(f"{chat}/stop")).status_code == 200

        async def finished() -> bool:
            return await task_state(cl, "peon", "t1") in ("SUCCESS", "FAILED")

        await wait_until(finished, within=40, what="task stopped")
        assert fake.transactions == []


@pytest.mark.slow
async def test_supervisors_suspend_resume_and_terminate_all(env: Env) -> None:
    topic = await topic_with(env.broker, [2])
    for sup_id in ("wiki", "wiki2"):
        assert (await env.post("", spec(env.broker, topic, sup_id))).status_code == 200
    assert sorted((await env.get("")).json()) == ["wiki", "wiki2"]
    # each step waits for the supervisors to settle, as an operator would
    await count_running(env, 2)

    def in_state(state: str) -> bool:
        return all(env.manager.get(s).state.state == state for s in ("wiki", "wiki2"))

    async def suspended() -> list[bool]:
        return [s["suspended"] for s in (await env.get("?state=true")).json()]

    assert (await env.post("/suspendAll")).json() == {"status": "success"}
    assert await suspended() == [True, True]
    await wait_until(lambda: in_state("SUSPENDED"), within=20, what="both SUSPENDED")
    for t in env.queue.running():
        env.queue.finish(t["id"], "SUCCESS")
    assert (await env.post("/resumeAll")).json() == {"status": "success"}
    assert await suspended() == [False, False]
    await count_running(env, 2)

    # the deprecated shutdown is terminate
    assert (await env.post("/wiki2/shutdown")).json() == {"id": "wiki2"}
    assert (await env.get("")).json() == ["wiki"]
    assert (await env.post("/terminateAll")).json() == {"status": "success"}
    assert (await env.get("")).json() == []
    history = (await env.get("/history")).json()
    assert {h[0]["spec"]["type"] for h in history.values()} == {"NoopSupervisorSpec"}
