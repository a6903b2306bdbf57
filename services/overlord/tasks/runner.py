"""Druid's ``HttpRemoteTaskRunner``: tasks on peons over HTTP (druid-internals 3.6).

Peons are discovered by ``workerNodeService``; each gets a long-poll syncer on
``/druid-internal/v1/worker`` mirroring its task announcements. Pending tasks go to the least used
peon with room (``POST /druid-internal/v1/worker/assignTask``, retried, then assumed assigned as
Druid does). A task is failed when its peon does not report it within ``taskAssignmentTimeout``,
when the peon stops reporting it ("disappeared"), or when the peon has been gone from discovery
for longer than ``taskCleanupTimeout``. On start the runner waits for the first sync of every
peon, so tasks the peons already run are adopted rather than assigned (or killed) again.

The runner tells its owner (the task queue) about runner-state changes and completions through
two synchronous callbacks; the decisions themselves are the pure functions of ``workers``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from common.aio import TaskGroup, bounded, wait_event
from common.auth.clients import PLAIN_CLIENTS, InternalClients
from common.config import IndexerRunnerSettings
from common.discovery.base import NodeDiscovery
from common.discovery.node import DiscoveryDruidNode, WorkerNodeService
from common.ids import url_id
from common.longpoll import ChangeRequestSyncer
from common.metadata import iso_millis
from services.overlord.tasks.model import (
    UNKNOWN_LOCATION,
    Location,
    RunnerState,
    is_complete,
    task_status,
)
from services.overlord.tasks.workers import (
    DISAPPEARED,
    WorkerState,
    disappeared,
    housekeeping,
    no_slot_reason,
    select_worker,
)

log = logging.getLogger(__name__)

WORKER_PATH = "/druid-internal/v1/worker"
ASSIGN_MAX_RETRIES = 3  # druid.indexer.runner.assignRequestMaxRetries
SHUTDOWN_MAX_RETRIES = 3  # druid.indexer.runner.shutdownRequestMaxRetries
REQUEST_TIMEOUT = 60.0  # assignRequestHttpTimeout / shutdownRequestHttpTimeout, PT1M
#: How long start-up waits for discovery and for each peon's first sync before going on.
INITIAL_SYNC_WAIT = 30.0

UpdateCallback = Callable[[str, RunnerState, Location], None]
PendingCallback = Callable[[str, str | None], None]
CompleteCallback = Callable[[str, dict[str, Any]], None]


@dataclass
class WorkItem:
    payload: dict[str, Any]
    worker: str | None = None
    state: RunnerState = "PENDING"
    location: Location = field(default=UNKNOWN_LOCATION)
    #: Why no worker took the task yet (None once assigned).
    pending_reason: str | None = None

    @property
    def id(self) -> str:
        return str(self.payload["id"])


class HttpRemoteTaskRunner:
    def __init__(
        self,
        settings: IndexerRunnerSettings,
        discovery: NodeDiscovery,
        *,
        on_update: UpdateCallback,
        on_complete: CompleteCallback,
        on_pending: PendingCallback = lambda task_id, reason: None,
        now: Callable[[], float] = time.monotonic,
        initial_sync_wait: float = INITIAL_SYNC_WAIT,
        clients: InternalClients = PLAIN_CLIENTS,
    ) -> None:
        self.settings = settings
        self.discovery = discovery
        self._on_update = on_update
        self._on_complete = on_complete
        self._on_pending = on_pending
        self._now = now
        self._initial_sync_wait = initial_sync_wait
        self.workers: dict[str, WorkerState] = {}
        self._syncers: dict[str, ChangeRequestSyncer[dict[str, Any]]] = {}
        self.items: dict[str, WorkItem] = {}
        self._assigned_at: dict[str, tuple[str, float]] = {}
        self._wake = asyncio.Event()
        self._tasks = TaskGroup("http-remote-task-runner")
        self._http = clients.new(limits=httpx.Limits(max_connections=None))
        self._started = False
        tick = min(settings.task_assignment_timeout, settings.task_cleanup_timeout) / 5
        self._tick = max(0.05, min(1.0, tick))

    # ---- lifecycle

    async def start(self) -> None:
        self.discovery.register_listener(self)
        await wait_event(self.discovery.initialized, self._initial_sync_wait)
        try:
            await bounded(self._first_syncs(), self._initial_sync_wait)
        except TimeoutError:
            log.warning("not every worker synced within %gs; going on", self._initial_sync_wait)
        self._started = True
        for worker in self.workers.values():
            for ann in worker.running_announcements():
                if str(ann["id"]) not in self.items:
                    self._shutdown_unknown(worker, str(ann["id"]))
        self._tasks.start(self._assign_loop(), "hrtr-assign")
        self._tasks.start(self._housekeeping_loop(), "hrtr-housekeeping")
        self._wake.set()
        log.info(
            "task runner started with %d workers, %d tasks", len(self.workers), len(self.items)
        )

    async def _first_syncs(self) -> None:
        for syncer in list(self._syncers.values()):
            await syncer.initialized.wait()

    async def stop(self) -> None:
        self.discovery.remove_listener(self)
        for syncer in list(self._syncers.values()):
            await syncer.stop()
        self._syncers.clear()
        await self._tasks.close()
        await self._http.aclose()

    # ---- the queue's requests

    def run(self, payload: dict[str, Any]) -> None:
        """Take a task to run (or, while starting, one that a peon may already be running)."""
        self.items.setdefault(str(payload["id"]), WorkItem(payload))
        self._wake.set()

    def shutdown(self, task_id: str, reason: str) -> None:
        """Forget the task and ask its peon (if any) to stop it."""
        item = self.items.pop(task_id, None)
        self._assigned_at.pop(task_id, None)
        host = item.worker if item is not None else self._reported_by(task_id)
        worker = self.workers.get(host) if host else None
        if worker is not None:
            worker.assigned.pop(task_id, None)
            if worker.removed_at is None:
                self._tasks.start(self._post_shutdown(worker, task_id, reason), "hrtr-shutdown")
        self._wake.set()

    def _reported_by(self, task_id: str) -> str | None:
        for w in self.workers.values():
            if w.announcements.get(task_id, {}).get("status") == "RUNNING":
                return w.host
        return None

    # ---- discovery (NodeListener)

    def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None:
        for node in nodes:
            svc = node.service(WorkerNodeService.KEY)
            if not isinstance(svc, WorkerNodeService):
                continue
            host = node.host_and_port
            old = self.workers.get(host)
            if old is not None and old.removed_at is None:
                continue
            worker = WorkerState(
                host=host,
                url=f"{node.druid_node.scheme}://{host}",
                capacity=svc.capacity,
                ip=svc.ip,
                version=svc.version,
                category=svc.category,
            )
            if old is not None:
                # Back before the cleanup timeout: keep what we knew until its first sync.
                worker.announcements = old.announcements
                worker.assigned = old.assigned
            self.workers[host] = worker
            self._start_syncer(worker)
            log.info("worker %s added (capacity %d)", host, svc.capacity)
        self._wake.set()

    def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None:
        for node in nodes:
            worker = self.workers.get(node.host_and_port)
            if worker is None:
                continue
            worker.removed_at = self._now()
            syncer = self._syncers.pop(worker.host, None)
            if syncer is not None:
                self._tasks.start(syncer.stop(), f"hrtr-stop-syncer:{worker.host}")
            log.warning(
                "worker %s disappeared; its tasks fail unless it is back within %gs",
                worker.host,
                self.settings.task_cleanup_timeout,
            )

    def node_view_initialized(self, timed_out: bool) -> None:
        pass

    def _start_syncer(self, worker: WorkerState) -> None:
        host = worker.host
        syncer: ChangeRequestSyncer[dict[str, Any]] = ChangeRequestSyncer(
            worker.url,
            WORKER_PATH,
            items=lambda raw: dict(raw),
            full_sync=lambda items: self._full_sync(host, items),
            delta_sync=lambda items: self._delta_sync(host, items),
            server_timeout=self.settings.sync_request_timeout,
            client=self._http,
            name=f"worker-sync:{host}",
        )
        self._syncers[host] = syncer
        syncer.start(self._tasks)

    # ---- worker announcements

    def _full_sync(self, host: str, items: list[dict[str, Any]]) -> None:
        worker = self.workers.get(host)
        if worker is None:
            return
        before = worker.announcements
        worker.announcements = {}
        worker.disabled = False
        reported = []
        for item in items:
            if item.get("type") == "metadata":
                worker.disabled = bool(item.get("disabled"))
            elif item.get("type") == "taskUpdate":
                reported.append(item["taskAnnouncement"])
        ids = [str(a["id"]) for a in reported]
        for tid in disappeared(before, ids):
            self._fail_disappeared(host, tid)
        for ann in reported:
            self._announced(worker, ann)
        self._wake.set()

    def _delta_sync(self, host: str, items: list[dict[str, Any]]) -> None:
        worker = self.workers.get(host)
        if worker is None:
            return
        for item in items:
            kind = item.get("type")
            if kind == "metadata":
                worker.disabled = bool(item.get("disabled"))
            elif kind == "taskUpdate":
                self._announced(worker, item["taskAnnouncement"])
            elif kind == "taskRemoval":
                tid = str(item.get("taskId"))
                old = worker.announcements.pop(tid, None)
                if old is not None and old.get("status") == "RUNNING":
                    self._fail_disappeared(host, tid)
        self._wake.set()

    def _announced(self, worker: WorkerState, ann: dict[str, Any]) -> None:
        tid = str(ann["id"])
        worker.announcements[tid] = ann
        worker.assigned.pop(tid, None)
        self._assigned_at.pop(tid, None)
        status = dict(ann.get("taskStatus") or task_status(tid, ann.get("status", "RUNNING")))
        location = Location.from_json(ann.get("taskLocation"))
        item = self.items.get(tid)
        if item is None:
            if not is_complete(status) and self._started:
                self._shutdown_unknown(worker, tid)
            return
        if item.worker is not None and item.worker != worker.host:
            log.warning("task %s reported by %s but assigned to %s", tid, worker.host, item.worker)
            return
        if item.worker is None:
            log.info("adopting task %s running on worker %s", tid, worker.host)
        item.worker = worker.host
        if is_complete(status):
            if location.host:
                status["location"] = location.to_json()
            worker.last_completed_task_time = _iso_now()
            self._complete(tid, status)
            return
        if item.state != "RUNNING" or item.location != location:
            item.state = "RUNNING"
            item.location = location
            self._on_update(tid, "RUNNING", location)

    def _shutdown_unknown(self, worker: WorkerState, task_id: str) -> None:
        # Druid's TaskQueue: a task the runner has that the queue does not know is shut down.
        log.warning("worker %s runs unknown task %s; shutting it down", worker.host, task_id)
        reason = "task is unknown to the overlord"
        self._tasks.start(self._post_shutdown(worker, task_id, reason), "hrtr-shutdown")

    def _fail_disappeared(self, host: str, task_id: str) -> None:
        item = self.items.get(task_id)
        if item is None or item.worker != host:
            return
        log.warning("task %s disappeared from worker %s", task_id, host)
        self._complete(task_id, task_status(task_id, "FAILED", error=DISAPPEARED))

    def _complete(self, task_id: str, status: dict[str, Any]) -> None:
        item = self.items.pop(task_id, None)
        self._assigned_at.pop(task_id, None)
        if item is None:
            return
        if item.worker in self.workers:
            self.workers[item.worker].assigned.pop(task_id, None)
        self._on_complete(task_id, status)
        self._wake.set()

    # ---- assignment

    async def _assign_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.assign_pending()

    def assign_pending(self) -> None:
        """Give each unassigned task, oldest first, to a peon with room for it."""
        for item in list(self.items.values()):
            if item.worker is not None:
                continue
            worker = select_worker(self.workers.values(), item.payload)
            if worker is None:
                reason = no_slot_reason(self.workers.values(), item.payload)
                if reason != item.pending_reason:
                    log.info("task %s waits for a worker: %s", item.id, reason)
                    item.pending_reason = reason
                    self._on_pending(item.id, reason)
                continue
            if item.pending_reason is not None:
                item.pending_reason = None
                self._on_pending(item.id, None)
            item.worker = worker.host
            worker.assigned[item.id] = item.payload
            self._assigned_at[item.id] = (worker.host, self._now())
            self._tasks.start(self._post_assign(worker, item.payload), f"hrtr-assign:{item.id}")

    async def _post_assign(self, worker: WorkerState, payload: dict[str, Any]) -> None:
        url = f"{worker.url}{WORKER_PATH}/assignTask"
        body = orjson.dumps(payload)
        for attempt in range(1, ASSIGN_MAX_RETRIES + 1):
            try:
                resp = await self._http.post(
                    url,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=REQUEST_TIMEOUT,
                )
                if resp.status_code == 200:
                    log.info("assigned task %s to worker %s", payload["id"], worker.host)
                    return
                reason = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            log.info(
                "assigning %s to %s failed (%d): %s", payload["id"], worker.host, attempt, reason
            )
            if attempt < ASSIGN_MAX_RETRIES:
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        log.warning(
            "Not sure whether task[%s] was successfully assigned to worker[%s]; "
            "assuming it was (it fails if not started within the assignment timeout)",
            payload["id"],
            worker.host,
        )

    async def _post_shutdown(self, worker: WorkerState, task_id: str, reason: str) -> None:
        url = f"{worker.url}/druid/worker/v1/task/{url_id(task_id)}/shutdown"
        for attempt in range(1, SHUTDOWN_MAX_RETRIES + 1):
            try:
                resp = await self._http.post(url, timeout=REQUEST_TIMEOUT)
                if resp.status_code < 500:
                    log.info("asked %s to shut down %s (%s)", worker.host, task_id, reason)
                    return
            except httpx.HTTPError as exc:
                log.info("shutdown of %s on %s failed (%d): %s", task_id, worker.host, attempt, exc)
            if attempt < SHUTDOWN_MAX_RETRIES:
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        log.warning("could not shut down task %s on worker %s", task_id, worker.host)

    # ---- timeouts

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            self.check_timeouts()

    def check_timeouts(self) -> None:
        failures, drop = housekeeping(
            self.workers.values(),
            self._assigned_at,
            self._now(),
            self.settings.task_assignment_timeout,
            self.settings.task_cleanup_timeout,
        )
        for tid, reason in failures:
            item = self.items.get(tid)
            worker = self.workers.get(item.worker) if item and item.worker else None
            if worker is not None and worker.removed_at is None:
                self._tasks.start(self._post_shutdown(worker, tid, reason), "hrtr-shutdown")
            log.warning("failing task %s: %s", tid, reason)
            self._complete(tid, task_status(tid, "FAILED", error=reason))
        for host in drop:
            self.workers.pop(host, None)
            log.info("worker %s forgotten after the cleanup timeout", host)

    # ---- views

    def runner_state(self, task_id: str) -> tuple[RunnerState, Location]:
        item = self.items.get(task_id)
        if item is None:
            return "NONE", UNKNOWN_LOCATION
        return item.state, item.location

    def worker_infos(self) -> list[dict[str, Any]]:
        present = [w for w in self.workers.values() if w.removed_at is None]
        return [w.to_json() for w in sorted(present, key=lambda w: w.host)]

    def total_capacity(self) -> tuple[int, int]:
        present = [w for w in self.workers.values() if w.removed_at is None and not w.disabled]
        return sum(w.capacity for w in present), sum(w.used_capacity() for w in present)


def _iso_now() -> str:
    return iso_millis(datetime.now(UTC))
