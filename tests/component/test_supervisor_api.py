"""The Supervisor API and run loop against a real metadata store, a real Kafka broker (tansu), a
fake task queue with the contract's API, and a fake peon serving Druid's chat endpoints.

The manager's router is served by uvicorn and driven with httpx, as a user would; the fake peon
records every chat request so the tests can check what the supervisor told each task.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from common.aio import wait_until
from common.auth.declare import install_allow_all
from common.config import MetadataStorageSettings
from common.errors import MetadataStoreError, install_error_handlers
from common.ingest.kafka import KafkaRecordSupplier
from common.jsonresp import OrjsonResponse
from common.metadata import MetadataStore
from common.metadata.pending import AllocateRequest
from common.segments.intervals import Interval
from common.segments.isotime import parse_iso
from common.serve import RunningServer
from common.server import bind_socket
from services.overlord.supervisor.manager import SupervisorManager
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)

BASE = "/druid/indexer/v1/supervisor"
LONG_MAX = 9223372036854775807
pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------- fakes
@dataclass
class FakeTask:
    payload: dict[str, Any]
    status: str = "READING"
    current: dict[str, int] = field(default_factory=dict)
    end: dict[str, int] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class FakePeon:
    """Druid's chat endpoints for every task the fake queue assigned to it."""

    def __init__(self) -> None:
        self.tasks: dict[str, FakeTask] = {}
        self.app = FastAPI()
        chat = "/druid/worker/v1/chat/{tid}"

        def task(tid: str) -> FakeTask:
            return self.tasks[tid]

        @self.app.get(chat + "/status")
        async def status(tid: str) -> str:
            return task(tid).status

        @self.app.get(chat + "/time/start")
        async def start(tid: str) -> str:
            return task(tid).started

        @self.app.get(chat + "/offsets/current")
        async def current(tid: str) -> dict[str, int]:
            return task(tid).current

        @self.app.get(chat + "/offsets/end")
        async def end(tid: str) -> dict[str, int]:
            return task(tid).end

        @self.app.get(chat + "/checkpoints")
        async def checkpoints(tid: str) -> dict[str, dict[str, int]]:
            return task(tid).checkpoints

        @self.app.post(chat + "/pause")
        async def pause(tid: str) -> Any:
            t = task(tid)
            t.calls.append(("pause", None))
            if t.status not in ("READING", "PAUSED"):
                return OrjsonResponse("Can't pause, task is not in a pausable state", 409)
            t.status = "PAUSED"
            return t.current

        @self.app.post(chat + "/offsets/end")
        async def set_end(tid: str, request: Request, finish: bool = False) -> Any:
            t = task(tid)
            body = await request.json()
            t.calls.append(("setEnd", (body, finish)))
            if t.status != "PAUSED":
                return OrjsonResponse("Task must be paused", 400)
            if finish:
                t.end = body
                t.status = "PUBLISHING"
            else:
                t.checkpoints[str(len(t.checkpoints))] = body
                t.status = "READING"
            return body

    def add(self, payload: dict[str, Any]) -> None:
        starts = payload["ioConfig"]["startSequenceNumbers"]["partitionSequenceNumberMap"]
        ends = payload["ioConfig"]["endSequenceNumbers"]["partitionSequenceNumberMap"]
        self.tasks[payload["id"]] = FakeTask(
            payload,
            current=dict(starts),
            end=dict(ends),
            checkpoints=dict(payload["context"]["checkpoints"]),
        )

    def advance(self, by: int) -> None:
        for t in self.tasks.values():
            if t.status == "READING":
                t.current = {p: o + by for p, o in t.current.items()}


class FakeTaskQueue:
    """The contract's ``service.task_queue``: submit, shutdown, active_tasks, status."""

    def __init__(self, peon: FakePeon, port: int) -> None:
        self.peon = peon
        self.port = port
        self.tasks: dict[str, dict[str, Any]] = {}
        self.shutdowns: list[str] = []

    async def submit(self, task: dict[str, Any]) -> str:
        self.tasks[task["id"]] = {
            "id": task["id"],
            "type": task["type"],
            "dataSource": task["dataSource"],
            "payload": task,
            "status": {"id": task["id"], "status": "RUNNING"},
            "location": {"host": "127.0.0.1", "port": self.port},
        }
        self.peon.add(task)
        return str(task["id"])

    async def shutdown(self, task_id: str, reason: str) -> None:
        self.shutdowns.append(task_id)
        self.finish(task_id, "FAILED")

    def finish(self, task_id: str, status: str) -> None:
        self.tasks[task_id]["status"] = {"id": task_id, "status": status}
        self.peon.tasks.pop(task_id, None)

    def active_tasks(self, datasource: str | None = None) -> list[dict[str, Any]]:
        return [
            t
            for t in self.tasks.values()
            if t["status"]["status"] == "RUNNING" and datasource in (None, t["dataSource"])
        ]

    async def status(self, task_id: str) -> dict[str, Any] | None:
        t = self.tasks.get(task_id)
        return None if t is None else t["status"]

    def running(self) -> list[dict[str, Any]]:
        return self.active_tasks()


@dataclass
class FakeService:
    store: MetadataStore
    task_queue: FakeTaskQueue


@dataclass
class Env:
    http: httpx.AsyncClient
    url: str
    store: MetadataStore
    queue: FakeTaskQueue
    peon: FakePeon
    manager: SupervisorManager
    broker: KafkaBroker

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(self.url + BASE + path, json=body)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(self.url + BASE + path)


@pytest.fixture
async def env(tmp_path: Path, kafka_broker: KafkaBroker) -> AsyncIterator[Env]:  # noqa: F811
    settings = MetadataStorageSettings.model_validate(
        {"type": "sqlite", "connect_uri": str(tmp_path / "m.db")}
    )
    store = await MetadataStore.connect(settings)
    peon = FakePeon()
    peon_server = RunningServer(peon.app, bind_socket())
    await peon_server.start()
    queue = FakeTaskQueue(peon, peon_server.port)
    manager = SupervisorManager(FakeService(store, queue))
    app = FastAPI(default_response_class=OrjsonResponse)
    install_error_handlers(app)
    app.include_router(manager.router())
    install_allow_all(app)
    server = RunningServer(app, bind_socket())
    await server.start()
    await manager.start(term=1)
    http = httpx.AsyncClient(timeout=30.0)
    try:
        yield Env(http, server.url, store, queue, peon, manager, kafka_broker)
    finally:
        await http.aclose()
        await manager.stop()
        await server.stop()
        await peon_server.stop()
        await store.close()


async def topic_with(broker: KafkaBroker, per_partition: list[int]) -> str:
    topic = unique_topic("sup")
    await create_topic(broker, topic, len(per_partition))
    records = [(p, b'{"ts":"2024-01-01T00:00:00Z"}') for p, n in enumerate(per_partition)]
    await produce(broker, topic, [r for r in records for _ in range(per_partition[r[0]])], True)
    return topic


def spec(broker: KafkaBroker, topic: str, sup_id: str = "wiki", **io: Any) -> dict[str, Any]:
    return {
        "type": "kafka",
        "id": sup_id,
        "spec": {
            "dataSchema": {"dataSource": "wiki", "timestampSpec": {"column": "ts"}},
            "ioConfig": {
                "topic": topic,
                "inputFormat": {"type": "json"},
                "consumerProperties": broker.consumer_properties(),
                "startDelay": "PT0S",
                "period": "PT1S",
                **io,
            },
            "tuningConfig": {
                "type": "kafka",
                "chatRetries": 1,
                "httpTimeout": "PT2S",
                "chatRetryMinWait": "PT0.05S",
                "chatRetryMaxWait": "PT0.1S",
            },
        },
    }


def starts_of(task: dict[str, Any]) -> dict[str, int]:
    seqs: dict[str, int] = task["payload"]["ioConfig"]["startSequenceNumbers"][
        "partitionSequenceNumberMap"
    ]
    return seqs


async def count_running(env: Env, n: int) -> None:
    await wait_until(lambda: len(env.queue.running()) == n, within=20, what=f"{n} tasks running")


# ---------------------------------------------------------------------------- tests
async def test_create_submits_replicas_per_group_from_latest_and_committed(env: Env) -> None:
    topic = await topic_with(env.broker, [3, 5, 2])
    # Partition 1 has committed offsets: that is where its group starts.
    await env.store.reset_datasource_metadata(
        "wiki",
        {"type": "kafka", "partitions": {"type": "end", "stream": topic,
                                         "partitionSequenceNumberMap": {"1": 4}}},
    )  # fmt: skip
    resp = await env.post("", spec(env.broker, topic, taskCount=2, replicas=2))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": "wiki"}
    await count_running(env, 4)
    by_group: dict[int, list[dict[str, Any]]] = {}
    for t in env.queue.running():
        by_group.setdefault(t["payload"]["ioConfig"]["taskGroupId"], []).append(t)
    assert sorted(by_group) == [0, 1] and all(len(ts) == 2 for ts in by_group.values())
    g0, g1 = by_group[0], by_group[1]
    # Group 0 reads partitions 0 and 2 from the latest offsets; group 1 partition 1 from the commit.
    assert all(starts_of(t) == {"0": 3, "2": 2} for t in g0)
    assert all(starts_of(t) == {"1": 4} for t in g1)
    for t in g0:
        p = t["payload"]
        base = p["ioConfig"]["baseSequenceName"]
        assert base.startswith("index_kafka_wiki_") and p["resource"]["availabilityGroup"] == base
        assert p["id"].startswith(base + "_") and p["context"]["supervisorId"] == "wiki"
        ends = p["ioConfig"]["endSequenceNumbers"]["partitionSequenceNumberMap"]
        assert ends == {"0": LONG_MAX, "2": LONG_MAX}
        assert p["context"]["checkpoints"] == {"0": {"0": 3, "2": 2}}
    assert len({t["payload"]["ioConfig"]["baseSequenceName"] for t in g0}) == 1

    # The stored spec, the list forms and the history.
    got = (await env.get("/wiki")).json()
    assert got["spec"]["ioConfig"]["taskCount"] == 2 and got["suspended"] is False
    assert (await env.get("")).json() == ["wiki"]
    [state] = (await env.get("?state=true")).json()
    assert state["id"] == "wiki" and state["healthy"] is True
    [full] = (await env.get("?full")).json()
    assert full["spec"]["id"] == "wiki" and full["source"] == topic
    history = (await env.get("/wiki/history")).json()
    assert len(history) == 1 and history[0]["spec"]["id"] == "wiki" and history[0]["version"]

    # Re-posting the same spec with skipRestartIfUnmodified keeps the tasks.
    resp = await env.http.post(
        env.url + BASE + "?skipRestartIfUnmodified=true",
        json=spec(env.broker, topic, taskCount=2, replicas=2),
    )
    assert resp.status_code == 200 and len((await env.get("/wiki/history")).json()) == 1
    assert env.queue.shutdowns == []


async def test_status_report_shape_and_lag(env: Env) -> None:
    topic = await topic_with(env.broker, [10, 10])
    assert (await env.post("", spec(env.broker, topic, useEarliestOffset=True))).status_code == 200
    await count_running(env, 1)
    env.peon.advance(4)  # read 4 of the 10 records on each partition

    async def lag_is_12() -> bool:
        report = (await env.get("/wiki/status")).json()
        return bool(report["payload"]["aggregateLag"] == 12)

    await wait_until(lag_is_12, within=20, what="lag of 12")
    report = (await env.get("/wiki/status")).json()
    assert set(report) == {"id", "generationTime", "payload"}
    p = report["payload"]
    assert p["id"] == "wiki" and p["dataSource"] == "wiki" and p["stream"] == topic
    assert p["partitions"] == 2 and p["replicas"] == 1 and p["durationSeconds"] == 3600
    assert p["latestOffsets"] == {"0": 10, "1": 10}
    assert p["minimumLag"] == {"0": 6, "1": 6}
    assert (p["state"], p["detailedState"], p["healthy"]) == ("RUNNING", "RUNNING", True)
    assert p["suspended"] is False and p["recentErrors"] == [] and p["offsetsLastUpdated"]
    [task] = p["activeTasks"]
    assert task["type"] == "ACTIVE" and task["startingOffsets"] == {"0": 0, "1": 0}
    assert task["currentOffsets"] == {"0": 4, "1": 4} and task["lag"] == {"0": 6, "1": 6}
    assert 0 < task["remainingSeconds"] <= 3600 or task["remainingSeconds"] == 0
    assert p["publishingTasks"] == []
    health = await env.get("/wiki/health")
    assert health.status_code == 200 and health.json() == {"healthy": True}


async def test_checkpoint_pauses_replicas_and_sets_max_offsets(env: Env) -> None:
    topic = await topic_with(env.broker, [5])
    body = spec(env.broker, topic, replicas=2, useEarliestOffset=True)
    assert (await env.post("", body)).status_code == 200
    await count_running(env, 2)
    a, b = (env.peon.tasks[t["id"]] for t in env.queue.running())
    a.current, b.current = {"0": 3}, {"0": 5}
    start = {"type": "kafka", "partitions": {"type": "start", "stream": topic,
                                             "partitionSequenceNumberMap": {"0": 0}}}  # fmt: skip
    assert await env.manager.checkpoint("wiki", 0, start) is True
    await wait_until(
        lambda: all(("setEnd", ({"0": 5}, False)) in t.calls for t in (a, b)),
        within=10,
        what="both replicas got end offsets {0: 5}",
    )
    assert a.status == b.status == "READING"
    # The same checkpoint from the other replica is a no-op; an unknown supervisor is refused.
    assert await env.manager.checkpoint("wiki", 0, start) is True
    assert await env.manager.checkpoint("nope", 0, start) is False
    assert sum(1 for c in a.calls if c[0] == "pause") == 1
    # New replicas get the new checkpoint in their context.
    env.queue.finish(next(iter(t["id"] for t in env.queue.running())), "FAILED")
    await count_running(env, 2)
    newest = [t for t in env.queue.running() if t["id"] not in (a.payload["id"], b.payload["id"])]
    assert newest[0]["payload"]["context"]["checkpoints"] == {"0": {"0": 0}, "1": {"0": 5}}


async def test_rollover_after_task_duration_then_next_generation(env: Env) -> None:
    topic = await topic_with(env.broker, [7])
    body = spec(env.broker, topic, taskDuration="PT1S", useEarliestOffset=True)
    assert (await env.post("", body)).status_code == 200
    await count_running(env, 1)
    first = env.queue.running()[0]["id"]
    env.peon.tasks[first].current = {"0": 6}
    await wait_until(
        lambda: env.peon.tasks[first].status == "PUBLISHING", within=20, what="rollover"
    )
    assert ("setEnd", ({"0": 6}, True)) in env.peon.tasks[first].calls
    # The next generation starts where the previous one ends, while it publishes.
    await count_running(env, 2)
    second = next(t for t in env.queue.running() if t["id"] != first)
    assert starts_of(second) == {"0": 6}
    report = (await env.get("/wiki/status")).json()["payload"]
    assert [t["id"] for t in report["publishingTasks"]] == [first]
    env.queue.finish(first, "SUCCESS")

    async def published() -> bool:
        report = (await env.get("/wiki/status")).json()["payload"]
        return first not in [t["id"] for t in report["publishingTasks"]]

    await wait_until(published, within=10, what="publishing group completed")
    assert first not in env.queue.shutdowns


async def test_failed_group_restarts_from_committed_offsets(env: Env) -> None:
    topic = await topic_with(env.broker, [9])
    assert (await env.post("", spec(env.broker, topic))).status_code == 200
    await count_running(env, 1)
    first = env.queue.running()[0]
    assert starts_of(first) == {"0": 9}
    await env.store.reset_datasource_metadata(
        "wiki",
        {"type": "kafka", "partitions": {"type": "end", "stream": topic,
                                         "partitionSequenceNumberMap": {"0": 2}}},
    )  # fmt: skip
    env.queue.finish(first["id"], "FAILED")
    await count_running(env, 1)
    assert starts_of(env.queue.running()[0]) == {"0": 2}
    report = (await env.get("/wiki/status")).json()["payload"]
    assert any("failed" in e["message"] for e in report["recentErrors"])


async def test_suspend_resume_reset_terminate(env: Env) -> None:
    topic = await topic_with(env.broker, [4, 4])
    assert (await env.post("", spec(env.broker, topic, taskCount=2))).status_code == 200
    await count_running(env, 2)
    env.peon.advance(1)

    resp = await env.post("/wiki/suspend")
    assert resp.status_code == 200 and resp.json()["suspended"] is True
    # Suspend is graceful: every reading task is told to finish at its offsets and publish.
    await wait_until(
        lambda: all(t.status == "PUBLISHING" for t in env.peon.tasks.values()),
        within=20,
        what="tasks publishing",
    )
    assert {tuple(t.end.values()) for t in env.peon.tasks.values()} == {(5,)}
    again = await env.post("/wiki/suspend")
    assert again.status_code == 400 and again.json() == {"error": "[wiki] is already suspended"}
    await wait_until(
        lambda: env.manager.get("wiki").state.state == "SUSPENDED", within=10, what="SUSPENDED"
    )
    for t in env.queue.running():
        env.queue.finish(t["id"], "SUCCESS")
    await env.store.reset_datasource_metadata(
        "wiki",
        {"type": "kafka", "partitions": {"type": "end", "stream": topic,
                                         "partitionSequenceNumberMap": {"0": 5, "1": 5}}},
    )  # fmt: skip
    assert len(env.queue.running()) == 0

    resp = await env.post("/wiki/resume")
    assert resp.status_code == 200 and resp.json()["suspended"] is False
    assert (await env.post("/wiki/resume")).json() == {"error": "[wiki] is already running"}
    await count_running(env, 2)
    assert all(list(starts_of(t).values()) == [5] for t in env.queue.running())

    # Reset: the committed offsets and the pending segments are deleted, and the reading
    # tasks killed and recreated.
    hour = Interval.parse("2024-01-01T00/2024-01-01T01")
    allocated = await env.store.allocate_segment(
        AllocateRequest("t-old", "index_kafka_wiki", "wiki", hour, hour, "s", None, True, "APPEND")
    )
    assert allocated is not None and await env.store.pending_segments("wiki")
    before = {t["id"] for t in env.queue.running()}
    resp = await env.post("/wiki/reset")
    assert resp.status_code == 200 and resp.json() == {"id": "wiki"}
    assert await env.store.get_datasource_metadata("wiki") is None
    assert await env.store.pending_segments("wiki") == []
    assert before <= set(env.queue.shutdowns)
    await count_running(env, 2)
    assert all(list(starts_of(t).values()) == [4] for t in env.queue.running())  # latest

    # resetOffsets overwrites the given partition only.
    md: dict[str, Any] = {"type": "kafka", "partitions": {"type": "end", "stream": topic,
                                          "partitionSequenceNumberMap": {"1": 1}}}  # fmt: skip
    resp = await env.post("/wiki/resetOffsets", md)
    assert resp.status_code == 200
    stored = await env.store.get_datasource_metadata("wiki")
    assert stored is not None and stored["partitions"]["partitionSequenceNumberMap"] == {"1": 1}
    wrong = {**md, "partitions": {**md["partitions"], "stream": "other"}}
    assert (await env.post("/wiki/resetOffsets", wrong)).status_code == 400

    # Terminate: tasks finish and publish, a tombstone ends the history, the id is gone.
    reading = [t["id"] for t in env.queue.running()]
    resp = await env.post("/wiki/terminate")
    assert resp.status_code == 200 and resp.json() == {"id": "wiki"}
    assert all(env.peon.tasks[t].status == "PUBLISHING" for t in reading if t in env.peon.tasks)
    gone = await env.get("/wiki")
    assert gone.status_code == 404 and gone.json() == {"error": "[wiki] does not exist"}
    assert (await env.get("")).json() == []
    history = (await env.get("/wiki/history")).json()
    assert history[0]["spec"]["type"] == "NoopSupervisorSpec"
    assert [h["spec"].get("suspended") for h in history[1:4]] == [False, True, False]
    assert "wiki" in (await env.get("/history")).json()


async def test_errors_and_unknown_ids(env: Env) -> None:
    bad = await env.post("", {"type": "kafka", "spec": {"dataSchema": {"dataSource": "x"}}})
    assert bad.status_code == 400 and "ioConfig" in bad.json()["errorMessage"]
    no_servers = spec(env.broker, "t")
    no_servers["spec"]["ioConfig"]["consumerProperties"] = {}
    resp = await env.post("", no_servers)
    assert resp.status_code == 400 and "bootstrap.servers" in resp.json()["errorMessage"]
    not_json = await env.http.post(env.url + BASE, content=b"{nope")
    assert not_json.status_code == 400
    for path in ("/nope", "/nope/status", "/nope/health"):
        r = await env.get(path)
        assert r.status_code == 404 and r.json() == {"error": "[nope] does not exist"}, path
    for path in ("/nope/suspend", "/nope/resume", "/nope/reset", "/nope/terminate"):
        r = await env.post(path)
        assert r.status_code == 404 and r.json() == {"error": "[nope] does not exist"}, path
    assert (await env.get("/nope/history")).status_code == 404
    assert (await env.post("/suspendAll")).json() == {"status": "success"}


async def test_unreachable_stream_makes_the_supervisor_unhealthy(env: Env) -> None:
    body = spec(env.broker, "t")
    body["spec"]["ioConfig"]["consumerProperties"] = {"bootstrap.servers": "127.0.0.1:1"}
    assert (await env.post("", body)).status_code == 200

    async def unhealthy() -> bool:
        return (await env.get("/wiki/health")).status_code == 503

    await wait_until(unhealthy, within=30, what="unhealthy supervisor")
    p = (await env.get("/wiki/status")).json()["payload"]
    assert p["state"] == "UNHEALTHY_SUPERVISOR"
    assert p["detailedState"] == "UNABLE_TO_CONNECT_TO_STREAM"
    assert p["recentErrors"] and p["recentErrors"][-1]["streamException"] is True


async def test_new_leader_restores_supervisors_and_adopts_tasks(env: Env) -> None:
    topic = await topic_with(env.broker, [3, 3])
    assert (await env.post("", spec(env.broker, topic, sup_id="a"))).status_code == 200
    assert (await env.post("", spec(env.broker, topic, sup_id="b"))).status_code == 200
    await count_running(env, 2)
    assert (await env.post("/b/terminate")).status_code == 200
    task_ids = {
        t["id"] for t in env.queue.running() if t["payload"]["context"]["supervisorId"] == "a"
    }
    assert len(task_ids) == 1
    await env.manager.stop()
    assert (await env.get("")).status_code == 503
    await env.manager.start(term=2)
    assert (await env.get("")).json() == ["a"]

    async def adopted() -> bool:
        report = (await env.get("/a/status")).json()["payload"]
        return {t["id"] for t in report["activeTasks"]} == task_ids

    await wait_until(adopted, within=20, what="running task adopted")
    running_a = {
        t["id"] for t in env.queue.running() if t["payload"]["context"]["supervisorId"] == "a"
    }
    assert running_a == task_ids
    assert env.queue.shutdowns == []


async def test_message_rejection_bounds_reach_tasks_and_survive_adoption(env: Env) -> None:
    topic = await topic_with(env.broker, [2])
    body = spec(
        env.broker,
        topic,
        lateMessageRejectionPeriod="PT1H",
        earlyMessageRejectionPeriod="PT10M",
        taskDuration="PT30M",
    )
    before = now_ms()
    assert (await env.post("", body)).status_code == 200
    await count_running(env, 1)
    [task] = env.queue.running()
    io = task["payload"]["ioConfig"]
    low, high = parse_iso(io["minimumMessageTime"]), parse_iso(io["maximumMessageTime"])
    after = now_ms()
    # Druid: now - lateMessageRejectionPeriod; now + taskDuration + earlyMessageRejectionPeriod.
    assert before - 3_600_000 - 1000 <= low <= after - 3_600_000
    assert before + 2_400_000 - 1000 <= high <= after + 2_400_000
    # A new leader adopts the task (its bounds are part of its sequence name) instead of killing it.
    await env.manager.stop()
    await env.manager.start(term=2)

    async def adopted() -> bool:
        report = (await env.get("/wiki/status")).json()["payload"]
        return [t["id"] for t in report["activeTasks"]] == [task["id"]]

    await wait_until(adopted, within=20, what="task with message-time bounds adopted")
    assert env.queue.shutdowns == []
    assert [t["id"] for t in env.queue.running()] == [task["id"]]


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_a_spec_that_cannot_be_stored_leaves_no_supervisor_nor_consumer(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new supervisor connects to the stream while its spec is stored: when storing fails,
    the request fails, no supervisor runs and the consumer it was opening is closed."""
    topic = await topic_with(env.broker, [2])
    opened: list[Any] = []
    real_start = KafkaRecordSupplier.start

    async def start(self: KafkaRecordSupplier) -> None:
        await real_start(self)
        opened.append(self)

    async def fail(*_: Any) -> None:
        await wait_until(lambda: bool(opened), within=20, what="the consumer connected")
        raise MetadataStoreError("metadata store: insert failed: disk full")

    monkeypatch.setattr(KafkaRecordSupplier, "start", start)
    monkeypatch.setattr(env.store, "insert_supervisor_spec", fail)
    r = await env.post("", spec(env.broker, topic))
    assert r.status_code >= 500
    assert "wiki" not in env.manager._supervisors
    assert opened and all(s._consumer is None for s in opened)  # closed
    assert (await env.get("")).json() == []
    assert env.queue.running() == []
