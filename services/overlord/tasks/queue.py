"""Druid's ``TaskQueue``: the leader's set of active tasks, kept in ``druid_tasks``.

Submitted tasks are stored (``active``) and handed to the runner; completions are stored
(inactive, with the final ``TaskStatus``) and the task's locks released in the same transaction;
listeners (the supervisor) hear of every status change. On becoming leader the queue reloads the
active rows and gives them to the runner, which adopts those the peons already run.

This is the API the supervisor uses: ``submit``, ``shutdown``, ``active_tasks``, ``status`` and
``add_listener``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from common.aio import TaskGroup
from common.auth.clients import PLAIN_CLIENTS, InternalClients
from common.config import IndexerRunnerSettings
from common.discovery.base import NodeDiscovery
from common.errors import InvalidInput
from common.ids import url_id
from common.metadata import MetadataStore, iso_millis
from common.metadata.tasks import TaskRow
from common.segments.deep_storage import DeepStorage
from common.segments.isotime import parse_iso
from services.overlord.tasks.local import LocalTaskRunner, runs_locally
from services.overlord.tasks.model import (
    Location,
    RunnerState,
    TaskInfo,
    task_status,
    validate_task,
)
from services.overlord.tasks.runner import HttpRemoteTaskRunner

log = logging.getLogger(__name__)

StatusListener = Callable[[TaskInfo], Any]
MAX_KEPT_REPORTS = 1000
REPORTS_TIMEOUT = 10.0


class TaskQueue:
    def __init__(
        self,
        store: MetadataStore,
        settings: IndexerRunnerSettings,
        workers: NodeDiscovery,
        check_term: Callable[[], None],
        *,
        initial_sync_wait: float | None = None,
        clients: InternalClients = PLAIN_CLIENTS,
        deep_storage: DeepStorage | None = None,
    ) -> None:
        self.store = store
        self._check_term = check_term
        self._active: dict[str, TaskInfo] = {}
        #: tasks that left ``_active`` and whose final status is being stored: a status read in
        #: between answers the final status, not the stored RUNNING one.
        self._completing: dict[str, TaskInfo] = {}
        self._listeners: list[StatusListener] = []
        self._tasks = TaskGroup("task-queue")
        self._reports: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._http = clients.new(timeout=REPORTS_TIMEOUT)
        kwargs = {} if initial_sync_wait is None else {"initial_sync_wait": initial_sync_wait}
        self.runner = HttpRemoteTaskRunner(
            settings,
            workers,
            on_update=self._runner_update,
            on_complete=self._runner_complete,
            on_pending=self._runner_pending,
            clients=clients,
            **kwargs,  # type: ignore[arg-type]
        )
        #: Kill tasks run here on the leader, not on a peon.
        self.local = LocalTaskRunner(
            store,
            deep_storage,
            on_update=self._runner_update,
            on_complete=self._runner_complete,
            on_report=self._keep_report,
        )

    async def start(self) -> None:
        """Reload the active tasks, then start the runner (which adopts running ones)."""
        rows = await self.store.list_tasks(active=True)
        for row in sorted(rows, key=lambda r: (r.created_date, r.id)):
            info = TaskInfo.from_payload(row.payload, row.status, row.created_date)
            self._active[info.id] = info
            self._runner_for(info.payload).run(info.payload)
        await self.runner.start()
        log.info("task queue started with %d active tasks", len(self._active))

    def _runner_for(self, payload: dict[str, Any]) -> HttpRemoteTaskRunner | LocalTaskRunner:
        return self.local if runs_locally(payload) else self.runner

    async def stop(self) -> None:
        await self.local.stop()
        await self.runner.stop()
        await self._tasks.close()
        await self._http.aclose()

    # ---- the API

    async def submit(self, task: Any) -> str:
        """Validate and store a task, then queue it to run; returns its id (400 when invalid)."""
        payload = validate_task(task)
        task_id = str(payload["id"])
        now = _now()
        status = task_status(task_id, "RUNNING")
        row = TaskRow(
            id=task_id,
            created_date=now,
            datasource=payload["dataSource"],
            payload=payload,
            status=status,
            active=True,
            type=payload["type"],
            group_id=payload["groupId"],
        )
        self._check_term()
        if not await self.store.insert_task(row):
            raise InvalidInput(f"Task[{task_id}] already exists!")
        info = TaskInfo.from_payload(payload, status, now)
        self._active[task_id] = info
        self._runner_for(payload).run(payload)
        log.info("task %s submitted", task_id)
        self._notify(info)
        return task_id

    async def shutdown(self, task_id: str, reason: str = "Shutdown request from user") -> bool:
        """Fail an active task now and stop it on its peon; False if it is not active."""
        info = self._active.get(task_id)
        if info is None:
            return False
        self._runner_for(info.payload).shutdown(task_id, reason)
        await self._complete(task_id, task_status(task_id, "FAILED", error=reason))
        return True

    def active_tasks(self, datasource: str | None = None) -> list[TaskInfo]:
        return [t for t in self._active.values() if datasource in (None, t.data_source)]

    def get_active(self, task_id: str) -> TaskInfo | None:
        return self._active.get(task_id)

    async def task_info(self, task_id: str) -> TaskInfo | None:
        """An active task, or a stored one (completed, or known to another leader)."""
        info = self._active.get(task_id) or self._completing.get(task_id)
        if info is not None:
            return info
        row = await self.store.get_task(task_id)
        if row is None:
            return None
        info = TaskInfo.from_payload(row.payload, row.status, row.created_date)
        info.runner_state = "NONE"
        return info

    async def status(self, task_id: str) -> dict[str, Any] | None:
        """The task's ``TaskStatus`` JSON, or None if it is unknown."""
        info = await self.task_info(task_id)
        return None if info is None else info.status

    def add_listener(self, listener: StatusListener) -> None:
        """Call ``listener(TaskInfo)`` on every status change (sync or async callable)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StatusListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def reports(self, task_id: str) -> dict[str, Any] | None:
        """Live reports from the task's peon while it runs; the last ones seen afterwards."""
        info = self._active.get(task_id)
        if info is not None and info.location.host:
            url = f"{info.location.base_url}/druid/worker/v1/chat/{url_id(task_id)}/liveReports"
            try:
                resp = await self._http.get(url)
                if resp.status_code == 200:
                    self._keep_report(task_id, resp.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.info("live reports of %s unavailable: %s", task_id, exc)
        return self._reports.get(task_id)

    def _keep_report(self, task_id: str, report: dict[str, Any]) -> None:
        self._reports[task_id] = report
        self._reports.move_to_end(task_id)
        while len(self._reports) > MAX_KEPT_REPORTS:
            self._reports.popitem(last=False)

    # ---- runner callbacks

    def _runner_update(self, task_id: str, state: RunnerState, location: Location) -> None:
        info = self._active.get(task_id)
        if info is None:
            return
        info.runner_state = state
        info.location = location
        info.status = {**info.status, "location": location.to_json()}
        self._notify(info)

    def _runner_pending(self, task_id: str, reason: str | None) -> None:
        info = self._active.get(task_id)
        if info is not None:
            info.pending_reason = reason

    def _runner_complete(self, task_id: str, status: dict[str, Any]) -> None:
        info = self._active.get(task_id)
        if info is not None and info.location.host:
            self._tasks.start(self.reports(task_id), f"last-reports:{task_id}")
        self._tasks.start(self._complete(task_id, status), f"complete:{task_id}")

    async def _complete(self, task_id: str, status: dict[str, Any]) -> None:
        info = self._active.pop(task_id, None)
        if info is None:
            return
        status = dict(status)
        if status.get("duration", -1) in (-1, None, 0):
            created = parse_iso(info.created_time)
            status["duration"] = max(0, parse_iso(_now()) - created)
        if not status.get("location") or not (status["location"] or {}).get("host"):
            status["location"] = info.location.to_json()
        info.status = status
        info.runner_state = "NONE"
        self._completing[task_id] = info
        try:
            self._check_term()
            await self.store.set_task_status(task_id, status, active=False)
        except Exception:
            # The row stays active; the next leader reloads and re-examines the task.
            log.exception("storing the completion of task %s failed", task_id)
        finally:
            self._completing.pop(task_id, None)
        log.info(
            "task %s completed: %s %s", task_id, status["status"], status.get("errorMsg") or ""
        )
        self._notify(info)
        await self._clean_pending_segments(info)

    async def _clean_pending_segments(self, info: TaskInfo) -> None:
        """Druid's ``TaskLockbox.remove``: when the last task of a group (the pending segments'
        ``task_allocator_id``) ends, the group's pending segments go; published ones are in
        ``druid_segments`` and the others can never be published."""
        if any(t.group_id == info.group_id for t in self._active.values()):
            return
        try:
            self._check_term()
            deleted = await self.store.delete_pending_of_finished_allocator(
                info.data_source, info.group_id
            )
        except Exception:
            log.exception("deleting the pending segments of task group %s failed", info.group_id)
            return
        if deleted:
            log.info(
                "deleted %d pending segments of datasource %s, task group %s",
                deleted,
                info.data_source,
                info.group_id,
            )

    def _notify(self, info: TaskInfo) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(info)
                if inspect.isawaitable(result):
                    self._tasks.start(_await(result), f"task-listener:{info.id}")
            except Exception:
                log.exception("task status listener %r failed for %s", listener, info.id)


async def _await(result: Any) -> None:
    try:
        await result
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("async task status listener failed")


def _now() -> str:
    return iso_millis(datetime.now(UTC))
