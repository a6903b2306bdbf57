"""The coordinator's process: leader election, the inventory of data nodes, and the leader-only
duty loop (rules, assignment, drops, overshadowed segments, balancing) with its load queues."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from common.aio import TaskGroup
from common.discovery.leader_client import LeaderClient
from common.errors import InvalidInput, ServiceUnavailable
from common.leadership import ElectedService
from common.serverview.inventory import HttpServerInventoryView
from services.coordinator.compact_loop import CompactSegments
from services.coordinator.duties.model import ServerState
from services.coordinator.duty_loop import DutyLoop, parse_stored_rules, server_states
from services.coordinator.kill_loop import KillUnusedSegments, kill_config
from services.coordinator.loadqueue import HttpLoadQueuePeon
from services.coordinator.rules import Rule

OVERLORD_PREFIX = "/druid/indexer/v1"
log = logging.getLogger(__name__)


class CoordinatorService(ElectedService):
    leader_role = "coordinator"
    uses_metadata_store = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inventory: HttpServerInventoryView | None = None
        self._http: httpx.AsyncClient | None = None
        #: The current term's duty loop, while this node leads.
        self.duties: DutyLoop | None = None
        #: The kill duty of the current term (only with druid.coordinator.kill.on=true).
        self.kill_duty: KillUnusedSegments | None = None
        #: The auto-compaction duty of the current term.
        self.compact_duty: CompactSegments | None = None
        self._overlord: LeaderClient | None = None
        c = self.settings.coordinator
        #: Options for every load queue, from druid.coordinator.loadqueuepeon.http.*.
        self.peon_options: dict[str, Any] = {
            "host_timeout": c.load_queue_host_timeout,
            "repeat_delay": c.load_queue_repeat_delay,
            "batch_size": c.load_queue_batch_size,
        }

    @property
    def inventory(self) -> HttpServerInventoryView:
        if self._inventory is None:
            raise ServiceUnavailable("coordinator is not started")
        return self._inventory

    async def on_start(self) -> None:
        self._inventory = HttpServerInventoryView(
            self.provider.get_for_service("dataNodeService"),
            server_timeout=self.settings.serverview_http.server_timeout,
            name="coordinator-inventory",
            clients=self.security.clients,
        )
        self._inventory.register_metrics(self.metrics)
        self._inventory.start()
        self._register_queue_metrics()
        self._http = self.security.clients.new(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None)
        )
        self._overlord = LeaderClient(self.provider, "overlord", OVERLORD_PREFIX, self._http)
        await super().on_start()

    def _queued(self) -> list[HttpLoadQueuePeon]:
        return list(self.duties.peons.values()) if self.duties is not None else []

    def _register_queue_metrics(self) -> None:
        m = self.metrics
        m.gauge_callback(
            "segment/loadQueue/count",
            "Segments queued to load on the historical.",
            lambda: [({"server": p.server_name}, len(p.segments_to_load)) for p in self._queued()],
            ["server"],
        )
        m.gauge_callback(
            "segment/loadQueue/size",
            "Bytes of segments queued to load on the historical.",
            lambda: [
                ({"server": p.server_name}, sum(s.size for s in p.segments_to_load))
                for p in self._queued()
            ],
            ["server"],
        )
        m.gauge_callback(
            "segment/dropQueue/count",
            "Segments queued to drop from the historical.",
            lambda: [({"server": p.server_name}, len(p.segments_to_drop)) for p in self._queued()],
            ["server"],
        )

    async def on_close(self) -> None:
        try:
            await super().on_close()  # leaves the election: the duty loop stops first
        finally:
            if self.duties is not None:
                await self.duties.close()
                self.duties = None
            if self._inventory is not None:
                await self._inventory.close()
            if self._http is not None:
                await self._http.aclose()

    async def on_become_leader(self, term: int, work: TaskGroup) -> None:
        assert self._http is not None
        duties = DutyLoop(
            self.store,
            self.inventory,
            self._http,
            period=self.settings.coordinator.period,
            start_delay=self.settings.coordinator.start_delay,
            check_term=self.check_term,
            peon_options=dict(self.peon_options),
            mark_unused=self.mark_segments_unused,
        )
        self.duties = duties
        duties.start(term, work)
        c = self.settings.coordinator
        if c.kill_on:
            self.kill_duty = KillUnusedSegments(
                self.store,
                kill_config(c),
                self.submit_task,
                self.active_kill_tasks,
                lambda: self.check_term(term),
            )
            work.start(self.kill_duty.loop(c.indexing_period), "kill-unused-segments")
        self.compact_duty = CompactSegments(
            self.store,
            self.submit_task,
            self.active_task_payloads,
            self.total_worker_capacity,
            lambda: self.check_term(term),
        )
        work.start(self.compact_duty.loop(c.indexing_period), "compact-segments")

    async def on_stop_being_leader(self) -> None:
        self.kill_duty = None
        self.compact_duty = None
        duties, self.duties = self.duties, None
        if duties is not None:
            await duties.close()

    # ---- views for the REST endpoints
    def server_states(self) -> list[ServerState]:
        """Every data node: what it serves, and (while leading) what its load queue holds."""
        peons = self.duties.peons if self.duties is not None else {}
        return server_states(self.inventory, peons)

    async def rules(self) -> dict[str, list[Rule]]:
        return parse_stored_rules(await self.store.get_rules())

    def wake_duties(self) -> None:
        if self.duties is not None:
            self.duties.wake()

    # ---- the overlord leader, for kill tasks
    async def _overlord_call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        if self._overlord is None:
            raise ServiceUnavailable("coordinator is not started")
        try:
            return await self._overlord.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"the overlord leader could not be reached: {exc}") from None

    async def submit_task(self, task: dict[str, Any]) -> str:
        """Submit a task to the overlord leader; its 400 comes back as a 400, else a 503."""
        r = await self._overlord_call("POST", f"{OVERLORD_PREFIX}/task", task)
        if r.status_code == 200:
            return str(r.json()["task"])
        message = _error_message(r)
        if r.status_code == 400:
            raise InvalidInput(f"the overlord refused the task: {message}")
        raise ServiceUnavailable(f"the overlord answered {r.status_code}: {message}")

    async def mark_segments_unused(self, data_source: str, segment_ids: list[str]) -> int:
        """Druid's ``DruidCoordinator.markSegmentsAsUnused`` (drop rules, overshadowed segments):
        through the overlord's ``markUnused``; directly in the metadata store when the overlord
        lacks that API (404) or the cluster runs no overlord at all; any other failure marks
        nothing now (logged) and the next cycle tries again."""
        overlords = self.provider.get_for_node_role("overlord").get_all_nodes()
        if overlords:
            path = f"{OVERLORD_PREFIX}/datasources/{quote(data_source, safe='')}/markUnused"
            try:
                r = await self._overlord_call("POST", path, {"segmentIds": segment_ids})
            except ServiceUnavailable as exc:
                log.error("could not mark segments of %s unused: %s", data_source, exc.message)
                return 0
            if r.status_code == 200:
                return int(r.json().get("numChangedSegments", 0))
            if r.status_code != 404:
                log.error(
                    "could not mark segments of %s unused: the overlord answered %d: %s",
                    data_source,
                    r.status_code,
                    _error_message(r),
                )
                return 0
            log.info("the overlord cannot mark segments: updating the metadata store directly")
        return await self.store.set_segments_used(data_source, False, segment_ids=segment_ids)

    async def _overlord_json(self, path: str) -> Any:
        r = await self._overlord_call("GET", f"{OVERLORD_PREFIX}{path}")
        if r.status_code != 200:
            raise ServiceUnavailable(f"the overlord answered {r.status_code} to {path}")
        return r.json()

    async def active_tasks(self, task_type: str) -> list[dict[str, Any]]:
        """``TaskStatusPlus`` of the tasks of a type the overlord leader has not finished."""
        active: list[dict[str, Any]] = []
        for state in ("running", "pending", "waiting"):
            active.extend(await self._overlord_json(f"/tasks?state={state}&type={task_type}"))
        return active

    async def active_kill_tasks(self) -> list[dict[str, Any]]:
        return await self.active_tasks("kill")

    async def active_task_payloads(self, task_type: str) -> list[dict[str, Any]]:
        """The payloads of the active tasks of a type (for their intervals and tuning)."""
        payloads = []
        for t in await self.active_tasks(task_type):
            body = await self._overlord_json(f"/task/{t['id']}")
            if isinstance(body, dict) and isinstance(body.get("payload"), dict):
                payloads.append(body["payload"])
        return payloads

    async def total_worker_capacity(self) -> int:
        body = await self._overlord_json("/totalWorkerCapacity")
        return int(body.get("currentClusterCapacity") or 0)


def _error_message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500]
    if isinstance(body, dict):
        return str(body.get("errorMessage") or body.get("error") or body)
    return str(body)[:500]
