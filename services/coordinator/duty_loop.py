"""The leader's duty loop: the thin I/O shell around ``duties.planning.plan_cycle``.

Runs a cycle every ``druid.coordinator.period``, and at once (after a short debounce) when the
used segments change in the metadata store (a cheap change stamp polled twice a second) or the
inventory of data nodes changes, so a new segment does not wait a full period. Each cycle reads
the used segments and rules, snapshots the historicals (inventory + load queues), plans, checks the
leader term, then writes: marks segments unused (through the overlord, see
``CoordinatorService.mark_segments_unused``), and queues cancels, drops, loads and moves on the
per-historical ``HttpLoadQueuePeon``s, which are created and stopped as historicals come and go.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from common.aio import TaskGroup, wait_event
from common.errors import InvalidInput, KdruidError
from common.metadata import MetadataStore
from common.segments.segment import DataSegment, SegmentId
from common.serverview.inventory import HttpServerInventoryView
from services.coordinator.duties.model import CyclePlan, Move, ServerState
from services.coordinator.duties.planning import plan_cycle
from services.coordinator.duties.report import CycleReporter
from services.coordinator.loadqueue import Action, HttpLoadQueuePeon
from services.coordinator.rules import Rule, parse_rules

log = logging.getLogger(__name__)

#: How often the used-segment change stamp is read from the metadata store.
METADATA_POLL_PERIOD = 0.5
#: A burst of changes (e.g. many announcements) is gathered into one cycle.
CYCLE_DEBOUNCE = 0.1
#: Druid's dynamic ``maxSegmentsToMove`` classic default.
MAX_SEGMENTS_TO_MOVE = 100

#: ``async (dataSource, segment ids) -> number changed``: how segments are marked unused.
MarkUnused = Callable[[str, list[str]], Awaitable[int]]


def now_millis() -> int:
    return int(time.time() * 1000)


def parse_stored_rules(stored: dict[str, list[dict[str, Any]]]) -> dict[str, list[Rule]]:
    """Rules as stored; a datasource whose stored rules no longer parse falls back to default."""
    result: dict[str, list[Rule]] = {}
    for ds, raw in stored.items():
        try:
            result[ds] = parse_rules(raw)
        except InvalidInput as exc:
            log.error("ignoring stored rules of %s: %s", ds, exc.message)
    return result


def server_states(
    inventory: HttpServerInventoryView, peons: dict[str, HttpLoadQueuePeon]
) -> list[ServerState]:
    """The historicals (and other data nodes) as the planner sees them now."""
    states = []
    for server in inventory.servers():
        served = dict(server.segments)
        loading: dict[SegmentId, DataSegment] = {}
        dropping: dict[SegmentId, DataSegment] = {}
        peon = peons.get(server.name)
        if peon is not None:
            peon.prune_recent(served)
            loading = {s.id: s for s in peon.segments_to_load}
            loading.update((sid, seg) for sid, (seg, _) in peon.recent_loads.items())
            dropping = {s.id: s for s in peon.segments_to_drop}
            dropping.update((sid, seg) for sid, (seg, _) in peon.recent_drops.items())
        states.append(
            ServerState(
                name=server.name,
                tier=server.tier,
                max_size=server.max_size,
                served=served,
                loading=loading,
                dropping=dropping,
                # A historical not synced yet looks empty: deciding on it would duplicate loads.
                is_historical=server.is_historical and server.synced,
            )
        )
    return states


class DutyLoop:
    """Leader-only: owns the load queues and runs the duty cycles of one leader term."""

    def __init__(
        self,
        store: MetadataStore,
        inventory: HttpServerInventoryView,
        client: httpx.AsyncClient,
        *,
        period: float,
        start_delay: float,
        check_term: Callable[[int], None],
        peon_options: dict[str, Any] | None = None,
        max_moves: int = MAX_SEGMENTS_TO_MOVE,
        mark_unused: MarkUnused | None = None,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.client = client
        self.period = period
        self.start_delay = start_delay
        self.check_term = check_term
        self.peon_options = peon_options or {}
        self.max_moves = max_moves
        self.mark_unused = mark_unused or self._mark_unused_in_store
        self.peons: dict[str, HttpLoadQueuePeon] = {}
        self.cycles = 0
        self.last_plan: CyclePlan | None = None
        self.reporter = CycleReporter()
        self._wake = asyncio.Event()
        self._tasks: TaskGroup | None = None

    def wake(self) -> None:
        """Run a cycle soon (e.g. after a REST call changed used segments)."""
        self._wake.set()

    def start(self, term: int, tasks: TaskGroup) -> None:
        self._tasks = tasks
        tasks.start(self._cycles(term), "duty-cycles")
        tasks.start(self._watch_metadata(), "duty-watch-metadata")
        tasks.start(self._watch_inventory(), "duty-watch-inventory")

    async def close(self) -> None:
        peons, self.peons = list(self.peons.values()), {}
        for peon in peons:
            await peon.stop()

    # ---- triggers
    async def _watch_metadata(self) -> None:
        stamp: tuple[int, str] | None = None
        while True:
            try:
                fresh = await self.store.segments_change_stamp()
                if fresh != stamp:
                    stamp = fresh
                    self._wake.set()
            except KdruidError as exc:
                log.warning("reading the segments change stamp failed: %s", exc)
            await asyncio.sleep(METADATA_POLL_PERIOD)

    async def _watch_inventory(self) -> None:
        while True:
            await self.inventory.changed.wait()
            self.inventory.changed.clear()
            self._wake.set()

    async def _cycles(self, term: int) -> None:
        if self.start_delay > 0:
            await asyncio.sleep(self.start_delay)
        await self.inventory.initialized.wait()
        while True:
            self._wake.clear()
            try:
                await self.run_cycle(term)
            except Exception:
                log.exception("coordinator duty cycle failed")
            await wait_event(self._wake, self.period)
            await asyncio.sleep(CYCLE_DEBOUNCE)

    # ---- one cycle
    async def run_cycle(self, term: int) -> CyclePlan:
        used = await self.store.used_segments()
        rules = parse_stored_rules(await self.store.get_rules())
        await self._sync_peons()
        plan = plan_cycle(
            used,
            rules,
            server_states(self.inventory, self.peons),
            now_millis(),
            max_moves=self.max_moves,
        )
        self.check_term(term)
        await self._mark_unused(plan.to_mark_unused)
        self._queue(plan)
        self.cycles += 1
        self.last_plan = plan
        for line in self.reporter.lines(plan):
            log.log(line.level, "%s", line.text)
        return plan

    async def _sync_peons(self) -> None:
        assert self._tasks is not None
        wanted = {s.name: s for s in self.inventory.servers() if s.is_historical}
        for name in [n for n in self.peons if n not in wanted]:
            log.info("historical %s left: stopping its load queue", name)
            await self.peons.pop(name).stop()
        for name, server in wanted.items():
            if name not in self.peons:
                peon = HttpLoadQueuePeon(name, server.url, self.client, **self.peon_options)
                peon.start(self._tasks)
                self.peons[name] = peon

    async def _mark_unused(self, segments: Sequence[DataSegment]) -> None:
        by_ds: dict[str, list[str]] = defaultdict(list)
        for s in segments:
            by_ds[s.data_source].append(s.identifier)
        for ds, ids in by_ds.items():
            n = await self.mark_unused(ds, ids)
            log.info("marked %d segments of %s unused", n, ds)

    async def _mark_unused_in_store(self, data_source: str, segment_ids: list[str]) -> int:
        return await self.store.set_segments_used(data_source, False, segment_ids=segment_ids)

    def _queue(self, plan: CyclePlan) -> None:
        for c in plan.cancels:
            if c.server in self.peons:
                self.peons[c.server].cancel(c.segment_id)
        for d in plan.drops:
            if d.server in self.peons:
                self.peons[d.server].drop(d.segment)
        for load in plan.loads:
            if load.server in self.peons:
                self.peons[load.server].load(load.segment, Action[load.action])
        for move in plan.moves:
            if move.target in self.peons:
                self.peons[move.target].load(move.segment, Action.MOVE_TO, self._after_move(move))

    def _after_move(self, move: Move) -> Callable[[bool], None]:
        def done(success: bool) -> None:
            source = self.peons.get(move.source)
            if success and source is not None:
                source.drop(move.segment)

        return done
