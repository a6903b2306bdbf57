"""The overlord's task queue and HTTP task runner against fake peons (real uvicorn servers
speaking Druid's worker protocol with common.longpoll): capacity-respecting assignment,
RUNNING -> SUCCESS, vanished peons, tasks never started, and adoption after a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from common.aio import wait_until
from common.config import IndexerRunnerSettings, MetadataStorageSettings
from common.discovery.base import NodeRoleWatcher
from common.discovery.node import DiscoveryDruidNode, DruidNode, WorkerNodeService
from common.longpoll import ChangeHistory, add_longpoll_route
from common.metadata import MetadataStore
from common.serve import RunningServer
from common.server import bind_socket
from services.overlord.tasks.model import TaskInfo
from services.overlord.tasks.queue import TaskQueue
from services.overlord.tasks.workers import DISAPPEARED


def kafka_task(task_id: str, group: str | None = None) -> dict[str, Any]:
    return {
        "type": "index_kafka",
        "id": task_id,
        "dataSource": "wiki",
        "resource": {"availabilityGroup": group or task_id, "requiredCapacity": 1},
        "dataSchema": {
            "dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
        },
        "tuningConfig": {"type": "kafka"},
        "ioConfig": {
            "type": "kafka",
            "topic": "t",
            "consumerProperties": {"bootstrap.servers": "127.0.0.1:9092"},
            "inputFormat": {"type": "json"},
            "startSequenceNumbers": {
                "type": "start",
                "stream": "t",
                "partitionSequenceNumberMap": {"0": 0},
            },
            "endSequenceNumbers": {
                "type": "end",
                "stream": "t",
                "partitionSequenceNumberMap": {"0": 9223372036854775807},
            },
        },
        "context": {"supervisorId": "wiki"},
    }


class FakePeon:
    """Druid's worker endpoints over an in-memory task table."""

    def __init__(self, capacity: int = 1, auto_start: bool = True) -> None:
        self.capacity = capacity
        self.auto_start = auto_start
        self.history: ChangeHistory[dict[str, Any]] = ChangeHistory()
        self.tasks: dict[str, dict[str, Any]] = {}
        self.assigned: list[str] = []
        self.shutdowns: list[str] = []
        self.sock = bind_socket("127.0.0.1", 0)
        self.port = int(self.sock.getsockname()[1])
        self.host = f"127.0.0.1:{self.port}"
        app = FastAPI()
        add_longpoll_route(app, "/druid-internal/v1/worker", self.history, self._snapshot)

        @app.post("/druid-internal/v1/worker/assignTask")
        async def assign(request: Request) -> dict[str, Any]:
            task = await request.json()
            if task["id"] not in self.tasks:
                self.assigned.append(task["id"])
                self.tasks[task["id"]] = self._announcement(task, "RUNNING", located=False)
                self.history.add([self._update(task["id"])])
                if self.auto_start:
                    self.start_task(task["id"])
            return {}

        @app.post("/druid/worker/v1/task/{task_id}/shutdown")
        async def shutdown(task_id: str) -> dict[str, str]:
            self.shutdowns.append(task_id)
            if task_id in self.tasks:
                self.finish(task_id, "FAILED")
            return {"task": task_id}

        self.server = RunningServer(app, self.sock)

    def _announcement(self, task: dict[str, Any], state: str, located: bool) -> dict[str, Any]:
        loc = {"host": "127.0.0.1" if located else None, "port": self.port if located else -1}
        return {
            "id": task["id"],
            "type": task["type"],
            "status": state,
            "taskStatus": {
                "id": task["id"],
                "status": state,
                "duration": -1,
                "errorMsg": None,
                "location": {**loc, "tlsPort": -1},
            },
            "taskResource": task["resource"],
            "taskLocation": {**loc, "tlsPort": -1, "k8sPodName": None},
            "taskDataSource": task["dataSource"],
        }

    def _update(self, task_id: str) -> dict[str, Any]:
        return {"type": "taskUpdate", "taskAnnouncement": self.tasks[task_id]}

    def _snapshot(self) -> list[dict[str, Any]]:
        return [{"type": "metadata", "disabled": False}] + [self._update(t) for t in self.tasks]

    def adopt(self, task: dict[str, Any]) -> None:
        """A task this peon runs already (e.g. assigned by a previous overlord)."""
        self.tasks[task["id"]] = self._announcement(task, "RUNNING", located=True)
        self.history.add([self._update(task["id"])])

    def start_task(self, task_id: str) -> None:
        ann = self.tasks[task_id]
        ann["taskLocation"].update(host="127.0.0.1", port=self.port)
        ann["taskStatus"]["location"].update(host="127.0.0.1", port=self.port)
        self.history.add([self._update(task_id)])

    def finish(self, task_id: str, state: str = "SUCCESS") -> None:
        ann = self.tasks[task_id]
        ann["status"] = state
        ann["taskStatus"] = {**ann["taskStatus"], "status": state, "duration": 42}
        self.history.add([self._update(task_id)])

    def forget(self, task_id: str) -> None:
        del self.tasks[task_id]
        self.history.add([{"type": "taskRemoval", "taskId": task_id}])

    @property
    def node(self) -> DiscoveryDruidNode:
        return DiscoveryDruidNode(
            druid_node=DruidNode(service="druid/peon", host="127.0.0.1", plaintext_port=self.port),
            node_role="peon",
            services={
                "workerNodeService": WorkerNodeService(ip="127.0.0.1", capacity=self.capacity)
            },
        )

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        self.history.close()
        await self.server.stop()


@contextlib.asynccontextmanager
async def peons(*specs: dict[str, Any]) -> AsyncIterator[list[FakePeon]]:
    started: list[FakePeon] = []
    try:
        for spec in specs:
            p = FakePeon(**spec)
            await p.start()
            started.append(p)
        yield started
    finally:
        for p in started:
            if p.server._task is not None:
                await p.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    s = await MetadataStore.connect(
        MetadataStorageSettings.model_validate(
            {"type": "sqlite", "connect_uri": str(tmp_path / "metadata.db")}
        )
    )
    try:
        yield s
    finally:
        await s.close()


def runner_settings(assign: float = 30.0, cleanup: float = 30.0) -> IndexerRunnerSettings:
    return IndexerRunnerSettings.model_validate(
        {
            "taskAssignmentTimeout": f"PT{assign}S",
            "taskCleanupTimeout": f"PT{cleanup}S",
            "syncRequestTimeout": "PT5S",
        }
    )


def watcher_with(*ps: FakePeon) -> NodeRoleWatcher:
    w = NodeRoleWatcher("peon")
    for p in ps:
        w.node_added(p.node)
    w.cache_initialized()
    return w


@contextlib.asynccontextmanager
async def queue_on(
    store: MetadataStore, watcher: NodeRoleWatcher, settings: IndexerRunnerSettings
) -> AsyncIterator[TaskQueue]:
    q = TaskQueue(store, settings, watcher, lambda: None, initial_sync_wait=5.0)
    await q.start()
    try:
        yield q
    finally:
        await q.stop()


async def test_assignment_respects_capacity_and_status_flows(store: MetadataStore) -> None:
    async with peons({"capacity": 1}, {"capacity": 2}) as (small, big):
        seen: list[tuple[str, str, str]] = []
        async with queue_on(store, watcher_with(small, big), runner_settings()) as q:
            q.add_listener(lambda info: seen.append((info.id, info.state, info.runner_state)))
            for i in range(4):
                await q.submit(kafka_task(f"task{i}"))
            await wait_until(
                lambda: len(small.assigned) + len(big.assigned) == 3, within=5, what="3 assigned"
            )
            # Capacity 1 + 2: the fourth waits.
            assert len(small.assigned) == 1 and len(big.assigned) == 2
            await wait_until(
                lambda: sum(t.runner_state == "RUNNING" for t in q.active_tasks()) == 3,
                within=5,
                what="3 running",
            )
            pending = [t for t in q.active_tasks() if t.runner_state == "PENDING"]
            assert [t.id for t in pending] == ["task3"]
            # It says why it waits (Druid's TaskStatusPlus, errorMsg), and running ones do not.
            await wait_until(
                lambda: pending[0].status_plus()["errorMsg"] is not None,
                within=5,
                what="the reason task3 waits",
            )
            waiting = pending[0].status_plus()
            assert waiting["runnerStatusCode"] == "PENDING" and waiting["statusCode"] == "RUNNING"
            assert "No free task slot: 3 of 3 slot(s) in use on 2 worker(s)" in waiting["errorMsg"]
            assert all(
                t.status_plus()["errorMsg"] is None
                for t in q.active_tasks()
                if t.runner_state == "RUNNING"
            )
            running = q.get_active("task0")
            assert running is not None and running.location.host == "127.0.0.1"

            first = small.assigned[0]
            small.finish(first, "SUCCESS")
            await wait_until(lambda: q.get_active(first) is None, within=5, what="completion")
            status = await q.status(first)
            assert status is not None and status["status"] == "SUCCESS"
            assert status["duration"] == 42
            row = await store.get_task(first)
            assert row is not None and not row.active and row.status["status"] == "SUCCESS"
            # The freed slot takes the waiting task.
            await wait_until(lambda: "task3" in small.assigned, within=5, what="task3 assigned")
            task3 = q.get_active("task3")
            assert task3 is not None and task3.status_plus()["errorMsg"] is None
            assert (first, "SUCCESS", "NONE") in seen
            assert any(s[1:] == ("RUNNING", "RUNNING") for s in seen)


async def test_replicas_go_to_different_peons(store: MetadataStore) -> None:
    async with peons({"capacity": 2}, {"capacity": 2}) as (a, b):
        async with queue_on(store, watcher_with(a, b), runner_settings()) as q:
            await q.submit(kafka_task("r0", group="grp"))
            await q.submit(kafka_task("r1", group="grp"))
            await wait_until(lambda: len(a.assigned) + len(b.assigned) == 2, within=5, what="both")
            assert len(a.assigned) == 1 and len(b.assigned) == 1


async def test_shutdown_fails_task_and_stops_it_on_the_peon(store: MetadataStore) -> None:
    async with peons({"capacity": 1}) as (p,):
        async with queue_on(store, watcher_with(p), runner_settings()) as q:
            await q.submit(kafka_task("s1"))
            await wait_until(
                lambda: (t := q.get_active("s1")) is not None and t.runner_state == "RUNNING",
                within=5,
                what="running",
            )
            assert await q.shutdown("s1", "Shutdown request from user")
            status = await q.status("s1")
            assert status is not None and status["status"] == "FAILED"
            assert status["errorMsg"] == "Shutdown request from user"
            # A RUNNING announcement still in flight when the task ended makes the runner shut
            # the (now unknown) task down once more: harmless, shutdown is idempotent.
            await wait_until(lambda: "s1" in p.shutdowns, within=5, what="peon shutdown")
            assert set(p.shutdowns) == {"s1"}
            assert not await q.shutdown("s1")


async def test_task_never_started_fails_after_assignment_timeout(store: MetadataStore) -> None:
    # The peon accepts the assignment but never reports the task (lost on its side).
    async with peons({"capacity": 1, "auto_start": False}) as (p,):
        p.history = ChangeHistory()  # announcements go nowhere: the task is never reported
        async with queue_on(store, watcher_with(p), runner_settings(assign=0.5)) as q:
            await q.submit(kafka_task("never"))
            await wait_until(lambda: q.get_active("never") is None, within=10, what="failure")
            status = await q.status("never")
            assert status is not None and status["status"] == "FAILED"
            assert "did not start it in timeout" in status["errorMsg"]


async def test_peon_that_vanishes_fails_its_tasks_after_cleanup_timeout(
    store: MetadataStore,
) -> None:
    async with peons({"capacity": 1}) as (p,):
        watcher = watcher_with(p)
        async with queue_on(store, watcher, runner_settings(cleanup=0.5)) as q:
            await q.submit(kafka_task("v1"))
            await wait_until(
                lambda: (t := q.get_active("v1")) is not None and t.runner_state == "RUNNING",
                within=5,
                what="running",
            )
            await p.stop()
            watcher.node_removed(p.host)
            await wait_until(lambda: q.get_active("v1") is None, within=10, what="cleanup")
            status = await q.status("v1")
            assert status is not None and status["status"] == "FAILED"
            assert "disappeared and did not report cleanup" in status["errorMsg"]
            assert q.runner.worker_infos() == []


async def test_task_that_disappears_from_peon_fails(store: MetadataStore) -> None:
    async with peons({"capacity": 1}) as (p,):
        async with queue_on(store, watcher_with(p), runner_settings()) as q:
            await q.submit(kafka_task("gone"))
            await wait_until(
                lambda: (t := q.get_active("gone")) is not None and t.runner_state == "RUNNING",
                within=5,
                what="running",
            )
            p.forget("gone")
            await wait_until(lambda: q.get_active("gone") is None, within=5, what="failed")
            status = await q.status("gone")
            assert status is not None and status["errorMsg"] == DISAPPEARED


async def test_restart_adopts_running_task_without_reassigning(store: MetadataStore) -> None:
    async with peons({"capacity": 2}) as (p,):
        watcher = watcher_with(p)
        async with queue_on(store, watcher, runner_settings()) as q:
            await q.submit(kafka_task("keep"))
            await q.submit(kafka_task("pending-only"))
            await wait_until(lambda: len(p.assigned) == 2, within=5, what="assigned")
        # The overlord goes away; the peon keeps running "keep" and loses "pending-only".
        p.forget("pending-only")
        p.assigned.clear()
        async with queue_on(store, watcher, runner_settings()) as q2:
            info = q2.get_active("keep")
            assert isinstance(info, TaskInfo)
            assert info.runner_state == "RUNNING" and info.location.port == p.port
            # Not assigned again, not shut down.
            await wait_until(lambda: "pending-only" in p.assigned, within=5, what="reassigned")
            assert "keep" not in p.assigned and p.shutdowns == []
            p.finish("keep")
            await wait_until(lambda: q2.get_active("keep") is None, within=5, what="done")
            status = await q2.status("keep")
            assert status is not None and status["status"] == "SUCCESS"


async def test_unknown_running_task_on_peon_is_shut_down(store: MetadataStore) -> None:
    async with peons({"capacity": 1}) as (p,):
        p.adopt(kafka_task("stray"))
        async with queue_on(store, watcher_with(p), runner_settings()):
            await wait_until(lambda: p.shutdowns == ["stray"], within=5, what="stray shut down")


async def test_status_is_final_while_the_completion_is_being_stored(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A task leaves the active set before its final status reaches the metadata store; a status
    # read in between must not answer the stored RUNNING.
    release = asyncio.Event()
    storing = asyncio.Event()
    set_status = store.set_task_status

    async def slow_set_status(task_id: str, status: dict[str, Any], active: bool) -> bool:
        if not active:
            storing.set()
            await release.wait()
        return await set_status(task_id, status, active=active)

    monkeypatch.setattr(store, "set_task_status", slow_set_status)
    async with peons({"capacity": 1}) as (p,):
        async with queue_on(store, watcher_with(p), runner_settings()) as q:
            await q.submit(kafka_task("slow"))
            await wait_until(
                lambda: (t := q.get_active("slow")) is not None and t.runner_state == "RUNNING",
                within=5,
                what="running",
            )
            p.finish("slow")
            await asyncio.wait_for(storing.wait(), 5)
            assert q.get_active("slow") is None
            status = await q.status("slow")
            assert status is not None and status["status"] == "SUCCESS"
            release.set()
            await wait_until(lambda: "slow" not in q._completing, within=5, what="stored")
            status = await q.status("slow")
            assert status is not None and status["status"] == "SUCCESS"
