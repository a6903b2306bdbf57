"""The leader's ``CompactSegments`` duty: every ``druid.coordinator.period.indexingPeriod``, for
each datasource with a compaction config, search its time chunks newest first
(``duties/compaction.py``), record an ``AutoCompactionSnapshot``, and submit ``compact`` tasks to
the overlord while compaction task slots are free.

Slots: ``compactionTaskSlotRatio`` of the overlord's total worker capacity (at least one when
there are workers), at most ``maxCompactionTaskSlots``, minus the slots active compact tasks hold.
Chunks that an active compact task already covers are not submitted again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from common.errors import KdruidError
from common.metadata import MetadataStore
from common.segments.intervals import Interval
from services.coordinator import compaction_config
from services.coordinator.duties.compaction import (
    compact_task,
    compaction_slots,
    search,
    slots_per_task,
    snapshot,
)

log = logging.getLogger(__name__)

SubmitTask = Callable[[dict[str, Any]], Awaitable[str]]
ActiveTasks = Callable[[str], Awaitable[list[dict[str, Any]]]]
WorkerCapacity = Callable[[], Awaitable[int]]


def _task_interval(task: dict[str, Any]) -> Interval | None:
    spec = ((task.get("ioConfig") or {}).get("inputSpec")) or {}
    raw = spec.get("interval")
    try:
        return Interval.parse(raw) if isinstance(raw, str) else None
    except KdruidError:
        return None


class CompactSegments:
    def __init__(
        self,
        store: MetadataStore,
        submit: SubmitTask,
        active_payloads: ActiveTasks,
        worker_capacity: WorkerCapacity,
        check_term: Callable[[], None],
    ) -> None:
        self.store = store
        self.submit = submit
        self.active_payloads = active_payloads
        self.worker_capacity = worker_capacity
        self.check_term = check_term
        #: ``AutoCompactionSnapshot`` per datasource, from the last run.
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.submitted: list[str] = []

    async def run(self) -> list[str]:
        config = await compaction_config.load(self.store)
        if not config.compaction_configs:
            self.snapshots = {}
            return []
        active = await self.active_payloads("compact")
        by_ds: dict[str, dict[str, Any]] = {}
        busy: dict[str, list[Interval]] = {}
        used_slots = 0
        for task in active:
            ds = str(task.get("dataSource"))
            iv = _task_interval(task)
            if iv is not None:
                busy.setdefault(ds, []).append(iv)
            sub = (task.get("tuningConfig") or {}).get("maxNumConcurrentSubTasks")
            used_slots += 1 + sub if isinstance(sub, int) and sub > 1 else 1
        slots = compaction_slots(
            await self.worker_capacity(),
            config.compaction_task_slot_ratio,
            config.max_compaction_task_slots,
        )
        available = max(0, slots - used_slots)
        submitted: list[str] = []
        for ds_config in config.compaction_configs:
            ds = ds_config.data_source
            found = search(await self.store.used_segments(ds), ds_config)
            by_ds[ds] = snapshot(ds, found)
            for cand in found.to_compact:
                need = slots_per_task(ds_config)
                if need > available:
                    break
                if any(iv.overlaps(cand.interval) for iv in busy.get(ds, [])):
                    continue
                try:
                    self.check_term()
                    task_id = await self.submit(compact_task(ds_config, cand))
                except KdruidError as exc:
                    log.error(
                        "submitting compact task for %s %s failed: %s", ds, cand.interval, exc
                    )
                    by_ds[ds]["message"] = f"compact task not submitted: {exc.message}"
                    break
                available -= need
                busy.setdefault(ds, []).append(cand.interval)
                submitted.append(task_id)
        self.snapshots = by_ds
        self.submitted.extend(submitted)
        if submitted:
            log.info("submitted %d compact tasks", len(submitted))
        return submitted

    async def loop(self, indexing_period: float) -> None:
        while True:
            try:
                await self.run()
            except Exception:
                log.exception("compaction duty failed")
            await asyncio.sleep(indexing_period)
