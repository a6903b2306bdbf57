"""The broker's process: the inventory of data nodes, the timeline built from it, and the
query machinery (capacity, running queries, scatter-gather over one shared HTTP client).

Start: the inventory view (``dataNodeService`` discovery, one long-poll per data node) feeding
``BrokerServerView``; the node is announced after. Close: the inventory, then the HTTP client.
"""

from __future__ import annotations

import aiohttp
import httpx

from common.config import Settings
from common.errors import ServiceUnavailable
from common.query.lifecycle import RunningQueries
from common.server import NodeService
from common.serverview.inventory import DruidServer, HttpServerInventoryView
from services.broker.limiter import QueryLimiter
from services.broker.scatter import ScatterGather
from services.broker.view import BrokerServerView


class BrokerService(NodeService):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.view = BrokerServerView(self._server_is_live)
        self.running = RunningQueries()
        self.limiter = QueryLimiter(
            settings.server_http.num_threads, settings.broker.max_queued_requests
        )
        #: druid.server.http.maxScatterGatherBytes (None: unlimited).
        limit = settings.server_http.max_scatter_gather_bytes
        self.max_scatter_gather_bytes: int | None = limit if limit > 0 else None
        self._inventory: HttpServerInventoryView | None = None
        self._http: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._scatter: ScatterGather | None = None
        m = self.metrics
        labels = ["dataSource", "type"]
        self._query_time = m.histogram(
            "query/time", "Seconds from a native query's arrival to its answer.", labels
        )
        self._query_outcomes = {
            outcome: m.counter(f"query/{outcome}/count", doc, labels)
            for outcome, doc in (
                ("success", "Native queries answered."),
                ("failed", "Native queries that failed (bad input, errors)."),
                ("interrupted", "Native queries cancelled."),
                ("timeout", "Native queries that timed out."),
            )
        }
        self._query_count = m.counter("query/count", "Native queries received.", labels)

    def record_query(self, data_source: str, query_type: str, seconds: float, outcome: str) -> None:
        """Druid's query/time, query/count and query/{success,failed,interrupted,timeout}/count."""
        labels = self.metrics.labels(dataSource=data_source, type=query_type)
        self._query_count.labels(**labels).inc()
        self._query_outcomes[outcome].labels(**labels).inc()
        self._query_time.labels(**labels).observe(seconds)

    @property
    def inventory(self) -> HttpServerInventoryView:
        if self._inventory is None:
            raise ServiceUnavailable("broker is not started")
        return self._inventory

    @property
    def scatter(self) -> ScatterGather:
        if self._scatter is None:
            raise ServiceUnavailable("broker is not started")
        return self._scatter

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise ServiceUnavailable("broker is not started")
        return self._http

    def inventory_initialized(self) -> bool:
        return self._inventory is not None and self.view.initialized

    def _server_is_live(self, server: DruidServer) -> bool:
        return self._inventory is not None and self._inventory.get_server(server.name) is server

    async def on_start(self) -> None:
        self._http = self.security.clients.new(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None)
        )
        self._session = self.security.clients.session()  # the queries to data nodes
        self._scatter = ScatterGather(self.view, self._session)
        self._inventory = HttpServerInventoryView(
            self.provider.get_for_service("dataNodeService"),
            server_timeout=self.settings.serverview_http.server_timeout,
            name="broker-inventory",
            clients=self.security.clients,
        )
        self._inventory.register_callback(self.view)
        self._inventory.register_metrics(self.metrics)
        self._inventory.start()

    async def on_close(self) -> None:
        try:
            if self._inventory is not None:
                await self._inventory.close()
        finally:
            try:
                if self._http is not None:
                    await self._http.aclose()
            finally:
                if self._session is not None:
                    await self._session.close()
