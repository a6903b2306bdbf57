"""Tasks the overlord leader runs itself: today only ``kill``, which reads and deletes but
ingests nothing, so it needs no peon slot.

Same callbacks as ``HttpRemoteTaskRunner`` (runner-state updates, completion with a
``TaskStatus``) so the task queue treats both alike; reports go to the queue's report store.
A task waits (``WAITING``) until it holds its lock, then runs (``RUNNING``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from common.aio import TaskGroup
from common.errors import KdruidError
from common.metadata import MetadataStore
from common.segments.deep_storage import DeepStorage
from services.overlord.tasks.kill import KILL_TYPE, KillRun, parse_kill
from services.overlord.tasks.model import UNKNOWN_LOCATION, Location, RunnerState, task_status

log = logging.getLogger(__name__)

LOCAL_TYPES = (KILL_TYPE,)

UpdateCallback = Callable[[str, RunnerState, Location], None]
CompleteCallback = Callable[[str, dict[str, Any]], None]
ReportCallback = Callable[[str, dict[str, Any]], None]


def runs_locally(payload: dict[str, Any]) -> bool:
    return payload.get("type") in LOCAL_TYPES


class LocalTaskRunner:
    def __init__(
        self,
        store: MetadataStore,
        deep_storage: DeepStorage | None,
        *,
        on_update: UpdateCallback,
        on_complete: CompleteCallback,
        on_report: ReportCallback,
    ) -> None:
        self.store = store
        self.deep_storage = deep_storage
        self._on_update = on_update
        self._on_complete = on_complete
        self._on_report = on_report
        self._tasks = TaskGroup("overlord-local-tasks")
        self._running: dict[str, asyncio.Task[None]] = {}

    def run(self, payload: dict[str, Any]) -> None:
        task_id = str(payload["id"])
        if task_id in self._running:
            return
        self._running[task_id] = self._tasks.start(self._run(payload), f"local-task:{task_id}")

    def shutdown(self, task_id: str, reason: str) -> None:
        task = self._running.pop(task_id, None)
        if task is not None:
            log.info("stopping local task %s: %s", task_id, reason)
            task.cancel()

    async def stop(self) -> None:
        self._running.clear()
        await self._tasks.close()

    async def _run(self, payload: dict[str, Any]) -> None:
        task_id = str(payload["id"])
        started = time.monotonic()
        status: dict[str, Any]
        try:
            if self.deep_storage is None:
                raise KdruidError("this overlord has no deep storage configured (druid.storage.*)")
            spec = parse_kill(payload)
            work = KillRun(
                spec, self.store, self.deep_storage, lambda r: self._on_report(task_id, r)
            )
            self._on_update(task_id, "WAITING", UNKNOWN_LOCATION)
            await work.acquire_lock()
            self._on_update(task_id, "RUNNING", UNKNOWN_LOCATION)
            log.info(
                "kill task %s: datasource %s, interval %s, versions %s, batchSize %d, limit %s",
                task_id,
                spec.data_source,
                spec.interval,
                spec.versions,
                spec.batch_size,
                spec.limit,
            )
            try:
                await work.run()
            finally:
                self._on_report(task_id, work.report())
            log.info("kill task %s deleted %d segments", task_id, work.killed)
            status = task_status(task_id, "SUCCESS", duration=_millis_since(started))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("local task %s failed", task_id)
            message = (
                exc.message if isinstance(exc, KdruidError) else f"{type(exc).__name__}: {exc}"
            )
            status = task_status(task_id, "FAILED", duration=_millis_since(started), error=message)
        self._running.pop(task_id, None)
        self._on_complete(task_id, status)


def _millis_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
