"""What every role's process has: the node service lifecycle and the FastAPI app around it.

``NodeService`` owns, in start order: the metadata store (when the role or the discovery backend
needs it), the discovery backend, the role's own ``on_start`` work, then the announcement of the
node. ``close()`` undoes it in reverse: unannounce first (so nobody routes to a node that is going
away), the role's work, background tasks, discovery, the store.

``create_node_app`` wraps a service in a FastAPI app whose lifespan does ``async with service``,
with Druid's error JSON and the ``/status`` endpoints every Druid node serves.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Response

import common
from common.aio import TaskGroup
from common.auth.declare import CONFIG, INTERNAL, OPEN, STATE, install_security
from common.auth.endpoints import load_status_router, management_router
from common.auth.node import NodeSecurity, first_fetch_wait
from common.config import ROLES, Settings
from common.discovery.backend import DiscoveryBackend, open_discovery
from common.discovery.base import NodeDiscoveryProvider
from common.discovery.node import DiscoveryDruidNode, DruidNode, DruidService
from common.errors import ServiceUnavailable, install_error_handlers
from common.expr.lookups import bind_lookups
from common.jsonresp import OrjsonResponse
from common.lookups.node import NodeLookups
from common.lookups.routes import LookupScopeMiddleware, listen_router
from common.metadata import MetadataStore
from common.metrics import CONTENT_TYPE, NodeMetrics
from common.procinfo import freeze_heap, memory_status

log = logging.getLogger(__name__)

#: The roles that load lookups (Druid: brokers, historicals, peons).
LOOKUP_ROLES = frozenset({"broker", "historical", "peon"})


class NodeService:
    """The lifecycle of one role's process. Roles subclass and override the hooks."""

    #: Roles that always talk to the metadata store (others only for the ``metadata`` backend).
    uses_metadata_store = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tasks = TaskGroup(f"{settings.role}-background")
        self.started_at = datetime.now(UTC)
        self._store: MetadataStore | None = None
        self._discovery: DiscoveryBackend | None = None
        self._announced: list[DiscoveryDruidNode] = []
        #: Run when the server starts shutting down, before it drains open requests: release
        #: parked long-polls here so a stop never waits out a multi-minute hold.
        self.shutdown_hooks: list[Callable[[], None]] = []
        self.metrics = NodeMetrics(settings.node.service, settings.host_and_port)
        #: Authentication, authorization and the internal HTTP clients (``common/auth``).
        self.security = NodeSecurity(settings.security, self.metrics)
        #: The lookups of this node's tier (brokers, historicals, peons; ``common/lookups``).
        self.lookups = NodeLookups(settings.lookup.tier, settings.lookup.polling_period)

    # ---- hooks
    def node_services(self) -> dict[str, DruidService]:
        """The services this node announces (``dataNodeService``, ``workerNodeService``...)."""
        return {}

    async def on_start(self) -> None:
        """Role work started before the node is announced."""

    async def on_close(self) -> None:
        """Role work stopped after the node is unannounced."""

    # ---- accessors
    @property
    def store(self) -> MetadataStore:
        if self._store is None:
            raise ServiceUnavailable(f"{self.settings.role} has no metadata store")
        return self._store

    @property
    def discovery(self) -> DiscoveryBackend:
        if self._discovery is None:
            raise ServiceUnavailable(f"{self.settings.role} is not started")
        return self._discovery

    @property
    def provider(self) -> NodeDiscoveryProvider:
        return self.discovery.provider

    @property
    def druid_node(self) -> DruidNode:
        n, tls = self.settings.node, self.settings.security.tls
        return DruidNode(
            service=n.service,
            host=n.host,
            plaintext_port=n.plaintext_port if tls.enable_plaintext_port else -1,
            tls_port=self.settings.tls_port if tls.enable_tls_port else -1,
            enable_plaintext_port=tls.enable_plaintext_port,
            enable_tls_port=tls.enable_tls_port,
        )

    @property
    def discovery_node(self) -> DiscoveryDruidNode:
        return DiscoveryDruidNode(
            druid_node=self.druid_node,
            node_role=self.settings.role,
            services=self.node_services(),
            start_time=self.started_at,
        )

    # ---- lifecycle
    async def start(self) -> None:
        s = self.settings
        if s.role in LOOKUP_ROLES:
            bind_lookups(self.lookups)  # background work started from here evaluates with them
        if self.uses_metadata_store or s.discovery.type == "metadata":
            self._store = await MetadataStore.connect(s.metadata)
        try:
            self._discovery = await open_discovery(s, self._store)
            for role in ROLES:  # the cluster view: every node knows every role
                self.provider.get_for_node_role(role)
            await self._start_security()
            await self.on_start()
            await self._wait_security_loaded()
            await self.announce()
        except BaseException:
            await self.close()
            raise
        log.info("%s started at %s", s.role, s.base_url)

    async def _start_security(self) -> None:
        if self.settings.role == "coordinator" and self._store is not None:
            self.shutdown_hooks.append(self.security.versions.history.close)
            await self.security.start_owner(self._store, self.tasks)
            return
        coordinators = self.provider.get_for_node_role("coordinator")
        self.security.start_cache(
            lambda: [n.druid_node.url for n in coordinators.get_all_nodes()], self.tasks
        )
        if self.settings.role in LOOKUP_ROLES:
            self.lookups.start(
                lambda: [n.druid_node.url for n in coordinators.get_all_nodes()],
                self.security.clients,
                self.tasks,
            )

    async def _wait_security_loaded(self) -> None:
        """As Druid's cache managers (lifecycle start, before the HTTP server and the
        announcement): a node serves and announces itself only once it holds the users and
        roles, so nobody (the coordinator's syncer with the escalator's credentials, a user)
        meets a 401 for valid credentials from a node still starting. Bounded like Druid's
        retries; after that the node starts anyway and keeps fetching."""
        wait = first_fetch_wait(self.settings.security.max_sync_retries)
        if not await self.security.wait_loaded(wait):
            log.warning(
                "no coordinator gave the security maps within %.0f s; starting anyway: basic "
                "logins are refused (401) until they are fetched",
                wait,
            )

    async def announce(self) -> None:
        node = self.discovery_node
        await self.discovery.announcer.announce(node)
        self._announced.append(node)

    async def reannounce(self) -> None:
        """Announce again with the current services (e.g. a peon that starts serving segments)."""
        node = self.discovery_node
        await self.discovery.announcer.announce(node)
        self._announced = [node]

    def begin_shutdown(self) -> None:
        for hook in self.shutdown_hooks:
            try:
                hook()
            except Exception:
                log.exception("shutdown hook %r failed", hook)

    async def close(self) -> None:
        self.begin_shutdown()
        for node in reversed(self._announced):
            await self.discovery.announcer.unannounce(node)
        self._announced.clear()
        try:
            await self.on_close()
        finally:
            await self.tasks.close()
            if self._discovery is not None:
                await self._discovery.close()
                self._discovery = None
            if self._store is not None:
                await self._store.close()
                self._store = None
        log.info("%s stopped", self.settings.role)

    async def __aenter__(self) -> NodeService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def self_discovered(self) -> bool:
        if self._discovery is None or not self._announced:
            return False
        try:
            return all([await self.provider.is_discoverable(n) for n in self._announced])
        except Exception as exc:
            # Unreachable discovery means "not discoverable" to a probe: 503, not a 500.
            log.warning("self-discovery check failed: %s", exc)
            return False


def status_router(service: NodeService) -> APIRouter:
    router = APIRouter(prefix="/status", tags=["status"])

    @router.get("", dependencies=[STATE])
    async def status() -> dict[str, Any]:
        return {
            "version": common.__version__,
            "modules": [],
            "memory": memory_status(),
        }

    @router.get("/health", dependencies=[OPEN])
    async def health() -> bool:
        return True

    @router.get("/properties", dependencies=[CONFIG])
    async def properties() -> dict[str, str]:
        return service.settings.visible_properties()

    @router.get("/selfDiscovered", dependencies=[STATE])
    async def self_discovered() -> OrjsonResponse:
        ok = await service.self_discovered()
        return OrjsonResponse({"selfDiscovered": ok}, status_code=200 if ok else 503)

    @router.get("/selfDiscovered/status", dependencies=[STATE])
    async def self_discovered_status() -> dict[str, bool]:
        return {"selfDiscovered": await service.self_discovered()}

    return router


def metrics_router(service: NodeService) -> APIRouter:
    """``GET /metrics``: the node's metrics in Prometheus text format."""
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", dependencies=[STATE])
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return router


def discovery_router(service: NodeService) -> APIRouter:
    """``GET /druid-internal/v1/discovery``: what this node's discovery sees, per role."""
    router = APIRouter(prefix="/druid-internal/v1", tags=["discovery"])

    @router.get("/discovery", dependencies=[INTERNAL])
    async def discovery() -> dict[str, Any]:
        view: dict[str, Any] = {}
        for role in ROLES:
            watcher = service.provider.get_for_node_role(role)
            view[role] = {
                "initialized": watcher.initialized.is_set(),
                "timedOut": watcher.timed_out,
                "nodes": sorted(n.host_and_port for n in watcher.get_all_nodes()),
            }
        return view

    return router


def create_node_app(
    service: NodeService, routers: Iterable[APIRouter] = (), title: str | None = None
) -> FastAPI:
    """The FastAPI app of one role: lifespan runs the service; status routes; Druid errors."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with service:
            freeze_heap()  # what start-up made lives on: out of the full collections' walk
            yield

    app = FastAPI(
        title=title or f"kdruid {service.settings.role}",
        version=common.__version__,
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.service = service
    install_error_handlers(app, service.settings.host_and_port)
    app.include_router(status_router(service))
    app.include_router(discovery_router(service))
    app.include_router(metrics_router(service))
    if service.settings.role == "coordinator":
        app.include_router(management_router(service.security))
    else:
        app.include_router(load_status_router(service.security))
    if service.settings.role in LOOKUP_ROLES:
        app.include_router(listen_router(service.lookups))
        app.add_middleware(LookupScopeMiddleware, provider=service.lookups)
    for router in routers:
        app.include_router(router)
    install_security(app, service.security, service.settings.host_and_port)
    return app


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket; with port 0 the OS picks a free port (read it back)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP (not 0) matters: asyncio enables TCP_NODELAY on accepted connections only for
    # sockets whose protocol says TCP; without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
