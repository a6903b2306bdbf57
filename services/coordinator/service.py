"""The coordinator's process: leader election, the inventory of data nodes, and the leader-only
duty loop (rules, assignment, drops, overshadowed segments, balancing) with its load queues."""

from __future__ import annotations

from typing import Any

import httpx

from common.aio import TaskGroup
from common.errors import ServiceUnavailable
from common.leadership import ElectedService
from common.serverview.inventory import HttpServerInventoryView
from services.coordinator.duties.model import ServerState
from services.coordinator.duty_loop import DutyLoop, parse_stored_rules, server_states
from services.coordinator.loadqueue import HttpLoadQueuePeon
from services.coordinator.rules import Rule


class CoordinatorService(ElectedService):
    leader_role = "coordinator"
    uses_metadata_store = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inventory: HttpServerInventoryView | None = None
        self._http: httpx.AsyncClient | None = None
        #: The current term's duty loop, while this node leads.
        self.duties: DutyLoop | None = None
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
        )
        self.duties = duties
        duties.start(term, work)

    async def on_stop_being_leader(self) -> None:
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
