"""``HttpServerInventoryView``: which data node serves which segment, kept current by long polling.

As Druid's (druid-internals 3.4): data nodes are found through discovery of ``dataNodeService``;
each gets one ``ChangeRequestSyncer`` on ``/druid-internal/v1/segments``; a full sync replaces the
node's segment set (callbacks see only the difference), a delta applies loads and drops in order;
a node that leaves discovery has its syncer stopped and its segments removed. The view is
initialized once discovery is and every known node has synced once (or ``serverTimeout`` + 10 s
passed), and then fires ``segment_view_initialized``.

Callbacks are synchronous and run on the event loop, in event order; they must not block.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from common.aio import TaskGroup, bounded
from common.auth.clients import PLAIN_CLIENTS, InternalClients
from common.discovery.base import NodeDiscovery
from common.discovery.node import DataNodeService, DiscoveryDruidNode
from common.longpoll import ChangeRequestSyncer
from common.metrics import NodeMetrics
from common.segments.segment import DataSegment, SegmentId
from common.serverview.announcer import SEGMENTS_PATH
from common.serverview.changes import SegmentChangeRequest

log = logging.getLogger(__name__)


@dataclass
class DruidServer:
    """One data node as the inventory sees it."""

    node: DiscoveryDruidNode
    service: DataNodeService
    segments: dict[SegmentId, DataSegment] = field(default_factory=dict)
    syncer: ChangeRequestSyncer[SegmentChangeRequest] | None = None

    @property
    def name(self) -> str:
        return self.node.host_and_port

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def tier(self) -> str:
        return self.service.tier

    @property
    def priority(self) -> int:
        return self.service.priority

    @property
    def server_type(self) -> str:
        return self.service.server_type

    @property
    def max_size(self) -> int:
        return self.service.max_size

    @property
    def curr_size(self) -> int:
        return sum(s.size for s in self.segments.values())

    @property
    def is_historical(self) -> bool:
        """A replication target (Druid: historical and bridge)."""
        return self.server_type in ("historical", "bridge")

    @property
    def synced(self) -> bool:
        return self.syncer is not None and self.syncer.is_synced_successfully

    def metadata_json(self) -> dict[str, Any]:
        """Druid's ``DruidServerMetadata`` JSON (``hostAndTlsPort`` null: kdruid has no TLS)."""
        return {
            "name": self.name,
            "host": self.name,
            "hostAndTlsPort": None,
            "maxSize": self.max_size,
            "type": self.server_type,
            "tier": self.tier,
            "priority": self.priority,
        }

    def sync_status(self) -> dict[str, Any]:
        syncer = self.syncer
        return {
            "synced": syncer is not None and syncer.initialized.is_set(),
            "syncedSuccessfully": self.synced,
            "unstableTimeMillis": int((syncer.unstable_time if syncer else 0.0) * 1000),
            **(syncer.debug_info() if syncer else {}),
        }


class SegmentCallback(Protocol):
    def segment_added(self, server: DruidServer, segment: DataSegment) -> None: ...

    def segment_removed(self, server: DruidServer, segment: DataSegment) -> None: ...

    def server_removed(self, server: DruidServer) -> None: ...

    def segment_view_initialized(self) -> None: ...


class HttpServerInventoryView:
    def __init__(
        self,
        discovery: NodeDiscovery,
        *,
        server_timeout: float,
        name: str = "inventory",
        accept: Callable[[DiscoveryDruidNode], bool] = lambda _: True,
        clients: InternalClients = PLAIN_CLIENTS,
    ) -> None:
        self._discovery = discovery
        self._server_timeout = server_timeout
        self._accept = accept
        self._servers: dict[str, DruidServer] = {}
        self._callbacks: list[SegmentCallback] = []
        self._tasks = TaskGroup(name)
        self._client = clients.new(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None)
        )
        self.initialized = asyncio.Event()
        self._discovery_initialized = asyncio.Event()
        #: Bumped on every change; waiters (e.g. the coordinator's duty loop) watch it.
        self.changed = asyncio.Event()

    # ---- public view
    def servers(self) -> list[DruidServer]:
        return list(self._servers.values())

    def get_server(self, name: str) -> DruidServer | None:
        return self._servers.get(name)

    def servers_of(self, segment_id: SegmentId) -> list[DruidServer]:
        return [s for s in self._servers.values() if segment_id in s.segments]

    def register_callback(self, callback: SegmentCallback) -> None:
        """After initialization the callback first gets every current segment."""
        self._callbacks.append(callback)
        if self.initialized.is_set():
            for server in self._servers.values():
                for segment in server.segments.values():
                    callback.segment_added(server, segment)
            callback.segment_view_initialized()

    def register_metrics(self, metrics: NodeMetrics) -> None:
        """Druid's ``serverview/sync/healthy`` and ``serverview/sync/unstableTime`` per server."""
        labels = ["server", "tier"]
        metrics.gauge_callback(
            "serverview/sync/healthy",
            "1 when this node's long-poll sync with the data node is healthy, else 0.",
            lambda: [({"server": s.name, "tier": s.tier}, float(s.synced)) for s in self.servers()],
            labels,
        )
        metrics.gauge_callback(
            "serverview/sync/unstableTime",
            "Milliseconds the sync with the data node has been failing (0 when healthy).",
            lambda: [
                ({"server": s.name, "tier": s.tier}, s.syncer.unstable_time * 1000.0)
                for s in self.servers()
                if s.syncer is not None
            ],
            labels,
        )

    # ---- lifecycle
    def start(self) -> None:
        self._discovery.register_listener(self)
        self._tasks.start(self._initialize(), "initialize")

    async def close(self) -> None:
        self._discovery.remove_listener(self)
        syncers = [s.syncer for s in self._servers.values() if s.syncer is not None]
        await self._tasks.close()
        for syncer in syncers:
            await syncer.stop()
        await self._client.aclose()

    async def _initialize(self) -> None:
        await self._discovery_initialized.wait()
        deadline = self._server_timeout + 10.0
        waits = [s.syncer.initialized.wait() for s in self._servers.values() if s.syncer]
        if waits:
            try:
                await bounded(asyncio.gather(*waits), deadline)
            except TimeoutError:
                unsynced = [s.name for s in self._servers.values() if not s.synced]
                log.warning("inventory initialized without a first sync from %s", unsynced)
        self.initialized.set()
        self._notify("segment_view_initialized")

    # ---- discovery listener
    def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None:
        for node in nodes:
            svc = node.service(DataNodeService.KEY)
            if not isinstance(svc, DataNodeService) or not self._accept(node):
                continue
            if node.host_and_port in self._servers:
                self._remove_server(node.host_and_port)
            self._add_server(node, svc)

    def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None:
        for node in nodes:
            self._remove_server(node.host_and_port)

    def node_view_initialized(self, timed_out: bool) -> None:
        self._discovery_initialized.set()

    # ---- servers
    def _add_server(self, node: DiscoveryDruidNode, svc: DataNodeService) -> None:
        server = DruidServer(node, svc)
        server.syncer = ChangeRequestSyncer(
            node.url,
            SEGMENTS_PATH,
            items=SegmentChangeRequest.from_json,
            full_sync=lambda reqs: self._full_sync(server, reqs),
            delta_sync=lambda reqs: self._delta_sync(server, reqs),
            server_timeout=self._server_timeout,
            client=self._client,
            name=f"segments@{server.name}",
            on_health_change=lambda healthy: self._sync_health_changed(server, healthy),
        )
        self._servers[server.name] = server
        server.syncer.start(self._tasks)
        log.info("inventory: added %s server %s", server.server_type, server.name)

    def _remove_server(self, name: str) -> None:
        server = self._servers.pop(name, None)
        if server is None:
            return
        if server.syncer is not None and not self._tasks.closed:
            self._tasks.start(server.syncer.stop(), f"stop-syncer:{name}")
        for segment in list(server.segments.values()):
            self._notify("segment_removed", server, segment)
        server.segments.clear()
        self._notify("server_removed", server)
        log.info("inventory: removed server %s", name)

    def _sync_health_changed(self, server: DruidServer, healthy: bool) -> None:
        """A server became synced (or stopped being): planners that skip unsynced servers must
        look again even when no segment changed (e.g. an empty historical's first sync after
        failed attempts, or a recovery with nothing new)."""
        if self._servers.get(server.name) is server:
            self.changed.set()

    def _full_sync(self, server: DruidServer, requests: list[SegmentChangeRequest]) -> None:
        if self._servers.get(server.name) is not server:
            return
        fresh = {r.segment.id: r.segment for r in requests if r.action == "load" and r.segment}
        for sid in [sid for sid in server.segments if sid not in fresh]:
            self._notify("segment_removed", server, server.segments.pop(sid))
        for sid, segment in fresh.items():
            if sid not in server.segments:
                server.segments[sid] = segment
                self._notify("segment_added", server, segment)

    def _delta_sync(self, server: DruidServer, requests: list[SegmentChangeRequest]) -> None:
        if self._servers.get(server.name) is not server:
            return
        for r in requests:
            if r.segment is None:
                continue
            if r.action == "load" and r.segment.id not in server.segments:
                server.segments[r.segment.id] = r.segment
                self._notify("segment_added", server, r.segment)
            elif r.action == "drop" and r.segment.id in server.segments:
                self._notify("segment_removed", server, server.segments.pop(r.segment.id))

    def _notify(self, method: str, *args: Any) -> None:
        self.changed.set()
        for callback in list(self._callbacks):
            try:
                getattr(callback, method)(*args)
            except Exception:
                log.exception("inventory callback %r failed in %s", callback, method)
