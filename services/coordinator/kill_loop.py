"""The leader's indexing-service duties: today ``KillUnusedSegments`` (``duties/kill.py``).

Every ``druid.coordinator.period.indexingPeriod`` while ``druid.coordinator.kill.on`` is true,
and at most once per ``kill.period``: for each datasource with unused segments (and no
coordinator-issued kill task still active for it), find the interval to kill and submit a kill
task to the overlord leader. Kill tasks run on the overlord itself, not on peon slots, so
Druid's ``killTaskSlotRatio``/``maxKillTaskSlots`` have nothing to bound; one active
coordinator-issued kill task per datasource is the limit instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from common.config import CoordinatorSettings
from common.errors import KdruidError
from common.metadata import MetadataStore
from services.coordinator.duties.kill import (
    COORDINATOR_ISSUED,
    KillConfig,
    due,
    interval_to_kill,
    kill_task,
)

log = logging.getLogger(__name__)

SubmitTask = Callable[[dict[str, Any]], Awaitable[str]]
ActiveKills = Callable[[], Awaitable[list[dict[str, Any]]]]


def kill_config(c: CoordinatorSettings) -> KillConfig:
    return KillConfig(
        period=int(c.kill_period * 1000),
        duration_to_retain=int(c.kill_duration_to_retain * 1000),
        ignore_duration_to_retain=c.kill_ignore_duration_to_retain,
        buffer_period=int(c.kill_buffer_period * 1000),
        max_segments=c.kill_max_segments,
    )


class KillUnusedSegments:
    def __init__(
        self,
        store: MetadataStore,
        cfg: KillConfig,
        submit: SubmitTask,
        active_kills: ActiveKills,
        check_term: Callable[[], None],
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.submit = submit
        self.active_kills = active_kills
        self.check_term = check_term
        self.last_run: int | None = None
        #: Druid's ``datasourceToLastKillIntervalEnd``.
        self.last_end: dict[str, int] = {}
        self.submitted: list[str] = []

    async def run(self, now: int) -> list[str]:
        """One round if due; returns the ids of the kill tasks submitted."""
        if not due(self.last_run, now, self.cfg.period):
            return []
        busy = {
            t.get("dataSource")
            for t in await self.active_kills()
            if str(t.get("id", "")).startswith(COORDINATOR_ISSUED)
        }
        self.last_run = now
        names = await self.store.data_source_names(include_unused=True)
        submitted = []
        for ds in names:
            if ds in busy:
                continue
            interval = interval_to_kill(
                await self.store.unused_segment_rows(ds), self.cfg, now, self.last_end.get(ds)
            )
            if interval is None:
                self.last_end.pop(ds, None)
                continue
            task = kill_task(
                COORDINATOR_ISSUED,
                ds,
                interval,
                limit=self.cfg.max_segments,
                max_used_status_last_updated=now - self.cfg.buffer_period,
            )
            try:
                self.check_term()
                task_id = await self.submit(task)
            except KdruidError as exc:
                log.error("submitting kill task for %s in %s failed: %s", ds, interval, exc)
                continue
            self.last_end[ds] = interval.end
            submitted.append(task_id)
        for ds in set(self.last_end) - set(names):
            del self.last_end[ds]
        log.info("submitted %d kill tasks for %d datasources", len(submitted), len(names))
        self.submitted.extend(submitted)
        return submitted

    async def loop(self, indexing_period: float) -> None:
        while True:
            try:
                await self.run(int(time.time() * 1000))
            except Exception:
                log.exception("kill duty failed")
            await asyncio.sleep(indexing_period)
