"""The peon's task manager (Druid's ``WorkerTaskManager``, druid-internals 3.6).

Tasks assigned by the overlord are persisted as ``<baseTaskDir>/assignedTasks/<id>`` (written
through ``workerTaskManagerTmp`` and renamed, so a crash leaves the old file or the new one) and
stay there until they complete; completion writes the final ``TaskAnnouncement`` to
``completedTasks/<id>``. On start both are re-loaded: completed tasks are reported again and
assigned ones are run again, restoring from their own persisted state (unlike Druid, which
deletes the assigned file once the task runs and restores through the forking runner's
``restore.json``; one file per task is enough here).

Every state change is a ``WorkerHistoryItem`` in a long-poll ``ChangeHistory`` served at
``/druid-internal/v1/worker``; the full snapshot is a ``metadata`` item, then one ``taskUpdate``
per assigned, running or completed task.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from common.aio import TaskGroup
from common.ingest.sequences import write_json_atomic
from common.longpoll import ChangeHistory

log = logging.getLogger(__name__)

ASSIGNED = "assignedTasks"
COMPLETED = "completedTasks"
TMP = "workerTaskManagerTmp"
LOG_FILE = "log"

#: Runs one task to its final TaskStatus JSON (``id``, ``status``, ``duration``, ``errorMsg``),
#: or to None when the task stopped for a peon restart (it stays assigned, to be restored).
TaskRunFn = Callable[[dict[str, Any], Path, logging.Logger], Awaitable[dict[str, Any] | None]]


@dataclass
class TaskEntry:
    task: dict[str, Any]
    status: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    running: asyncio.Task[None] | None = None
    shutdown_requested: bool = False

    @property
    def id(self) -> str:
        return str(self.task["id"])


def task_log(base_dir: Path, task_id: str) -> Path:
    return base_dir / task_id / LOG_FILE


class WorkerTaskManager:
    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        host: str,
        port: int,
        run_task: TaskRunFn,
        tls_port: int = -1,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self.run_task = run_task
        self.history: ChangeHistory[dict[str, Any]] = ChangeHistory()
        self.tasks: dict[str, TaskEntry] = {}
        self.completed: dict[str, dict[str, Any]] = {}
        self.disabled = False
        self._group: TaskGroup | None = None
        #: Called whenever the set of running tasks changes (re-announce dataNodeService).
        self.on_change: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ JSON

    def location(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "tlsPort": self.tls_port, "k8sPodName": None}

    def task_status(
        self, task_id: str, state: str, duration: int = -1, error: str | None = None
    ) -> dict[str, Any]:
        loc = self.location()
        return {
            "id": task_id,
            "status": state,
            "duration": duration,
            "errorMsg": error,
            "location": {"host": loc["host"], "port": loc["port"], "tlsPort": loc["tlsPort"]},
        }

    def announcement(self, task: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        resource = task.get("resource") or {
            "availabilityGroup": task.get("id"),
            "requiredCapacity": 1,
        }
        return {
            "id": task["id"],
            "type": task.get("type"),
            "status": status["status"],
            "taskStatus": status,
            "taskResource": resource,
            "taskLocation": self.location(),
            "taskDataSource": task.get("dataSource"),
        }

    def _update(self, announcement: dict[str, Any]) -> dict[str, Any]:
        return {"type": "taskUpdate", "taskAnnouncement": announcement}

    def snapshot(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = [{"type": "metadata", "disabled": self.disabled}]
        items += [self._update(self.announcement(e.task, e.status)) for e in self.tasks.values()]
        items += [self._update(a) for a in self.completed.values()]
        return items

    # ------------------------------------------------------------------ lifecycle

    def start(self, group: TaskGroup) -> None:
        """Re-load completed and assigned tasks and run the assigned ones again."""
        self._group = group
        for sub in (ASSIGNED, COMPLETED, TMP):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        for path in sorted((self.base_dir / COMPLETED).iterdir()):
            try:
                self.completed[path.name] = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                log.exception("unreadable completed task file %s; removed", path)
                path.unlink(missing_ok=True)
        for path in sorted((self.base_dir / ASSIGNED).iterdir()):
            try:
                task = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                log.exception("unreadable assigned task file %s; removed", path)
                path.unlink(missing_ok=True)
                continue
            if path.name in self.completed:
                path.unlink(missing_ok=True)
                continue
            log.info("restoring task %s", path.name)
            self._run(task)

    def assign(self, task: dict[str, Any]) -> bool:
        """Persist and start a task; False for a duplicate id (ignored, as Druid)."""
        task_id = str(task["id"])
        if task_id in self.tasks or task_id in self.completed:
            log.info("task %s is already assigned; ignored", task_id)
            return False
        tmp = self.base_dir / TMP / task_id
        write_json_atomic(tmp, task)
        os.replace(tmp, self.base_dir / ASSIGNED / task_id)
        self._run(task)
        return True

    def _run(self, task: dict[str, Any]) -> None:
        assert self._group is not None
        entry = TaskEntry(task, self.task_status(task["id"], "RUNNING"))
        self.tasks[entry.id] = entry
        self.history.add([self._update(self.announcement(task, entry.status))])
        entry.running = self._group.start(self._supervise(entry), f"task:{entry.id}")
        self.on_change()

    async def _supervise(self, entry: TaskEntry) -> None:
        task_dir = self.base_dir / entry.id
        task_dir.mkdir(parents=True, exist_ok=True)
        task_logger = logging.getLogger(f"kdruid.task.{entry.id}")
        handler = logging.FileHandler(task_dir / LOG_FILE)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        task_logger.addHandler(handler)
        task_logger.setLevel(logging.INFO)
        try:
            status = await self.run_task(entry.task, task_dir, task_logger)
            if status is None:
                log.info("task %s stopped for a restart; it stays assigned", entry.id)
                return
        except asyncio.CancelledError:
            if not entry.shutdown_requested:
                raise  # the peon is stopping: the task stays assigned and is re-run on start
            status = {"id": entry.id, "status": "FAILED", "errorMsg": "task was shut down"}
        except Exception as e:
            task_logger.exception("task %s crashed", entry.id)
            status = {"id": entry.id, "status": "FAILED", "errorMsg": f"{type(e).__name__}: {e}"}
        finally:
            task_logger.removeHandler(handler)
            handler.close()
        duration = int(status.get("duration") or (time.monotonic() - entry.started) * 1000)
        final = self.task_status(entry.id, status["status"], duration, status.get("errorMsg"))
        self._complete(entry, final)

    def _complete(self, entry: TaskEntry, status: dict[str, Any]) -> None:
        announcement = self.announcement(entry.task, status)
        write_json_atomic(self.base_dir / COMPLETED / entry.id, announcement)
        (self.base_dir / ASSIGNED / entry.id).unlink(missing_ok=True)
        self.tasks.pop(entry.id, None)
        self.completed[entry.id] = announcement
        self.history.add([self._update(announcement)])
        shutil.rmtree(self.base_dir / entry.id / "persist", ignore_errors=True)
        log.info("task %s finished: %s", entry.id, status["status"])
        self.on_change()

    async def wait_stopped(self, task_ids: list[str], within: float) -> list[str]:
        """Wait up to ``within`` seconds for these tasks' coroutines to end; the ids of those
        still running."""
        running = {
            e.running: tid
            for tid in task_ids
            if (e := self.tasks.get(tid)) is not None and e.running is not None
        }
        if not running:
            return []
        _, pending = await asyncio.wait(running, timeout=within)
        return sorted(running[t] for t in pending)

    def shutdown(self, task_id: str) -> bool:
        entry = self.tasks.get(task_id)
        if entry is None or entry.running is None:
            return False
        entry.shutdown_requested = True
        entry.running.cancel()
        return True

    def remove_completed(self, task_id: str) -> None:
        if self.completed.pop(task_id, None) is not None:
            (self.base_dir / COMPLETED / task_id).unlink(missing_ok=True)
            self.history.add([{"type": "taskRemoval", "taskId": task_id}])

    def set_disabled(self, disabled: bool) -> None:
        if disabled != self.disabled:
            self.disabled = disabled
            self.history.add([{"type": "metadata", "disabled": disabled}])

    def task_ids(self) -> list[str]:
        return [*self.tasks, *self.completed]

    def read_log(self, task_id: str, offset: int) -> bytes | None:
        path = task_log(self.base_dir, task_id)
        if not path.exists():
            return None
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            # Druid: a negative offset counts from the end.
            start = max(0, size + offset) if offset < 0 else min(offset, size)
            f.seek(start)
            return f.read()

    def close(self) -> None:
        self.history.close()
