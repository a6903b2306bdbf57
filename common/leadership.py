"""Roles that elect a leader (coordinator, overlord): the service base and its HTTP surface.

``ElectedService`` joins the election when it starts and leaves it (releasing the lock if it leads)
when it stops; subclasses put leader-only work in ``on_become_leader``, which gets a task group that
is cancelled the moment leadership is lost, and the term to check before each write.

A follower coordinator or overlord answers a leader-only path with **307 Temporary Redirect** to the
same path and query on the leader, or **503** when no leader is known (Druid's ``RedirectFilter``).
``/leader`` and ``/isLeader`` are always answered locally (``CoordinatorRedirectInfo.LOCAL_PATHS``).
The redirect is plain ASGI middleware, so it costs nothing on the leader's own requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from common.aio import TaskGroup
from common.auth.declare import OPEN, STATE, keep_security_outermost
from common.discovery.backend import LeaderRole
from common.discovery.leader import LeaderSelector
from common.errors import ServiceUnavailable
from common.jsonresp import OrjsonResponse, dumps
from common.server import NodeService, create_node_app

SelectorGetter = Callable[[], LeaderSelector | None]


class ElectedService(NodeService):
    """A node service that takes part in its role's leader election."""

    leader_role: LeaderRole

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.selector: LeaderSelector | None = None
        self.metrics.gauge_callback(
            f"{self.leader_role}/leader",
            f"1 while this {self.leader_role} is the leader, else 0.",
            lambda: [({}, 1.0 if self.selector and self.selector.is_leader() else 0.0)],
        )
        self.metrics.gauge_callback(
            f"{self.leader_role}/leader/term",
            "How many times this node became leader since it started.",
            lambda: [({}, float(self.selector.term if self.selector else 0))],
        )

    async def on_start(self) -> None:
        self.selector = self.discovery.leader_selector(self.leader_role, self.settings.base_url)
        self.selector.register_listener(self)

    async def on_close(self) -> None:
        if self.selector is not None:
            await self.selector.close()

    def get_selector(self) -> LeaderSelector | None:
        return self.selector

    def check_term(self, term: int) -> None:
        """Raise ``ServiceUnavailable`` unless this node still leads in ``term``."""
        if self.selector is None:
            raise ServiceUnavailable(f"{self.leader_role} is not started")
        self.selector.check_term(term)

    # ---- LeaderListener
    async def become_leader(self, term: int, work: TaskGroup) -> None:
        await self.on_become_leader(term, work)

    async def stop_being_leader(self) -> None:
        await self.on_stop_being_leader()

    # ---- hooks
    async def on_become_leader(self, term: int, work: TaskGroup) -> None:
        """Start leader-only work in ``work`` (cancelled when leadership is lost)."""

    async def on_stop_being_leader(self) -> None:
        """Forget leader-only state (the work group is already cancelled)."""


def leader_router(prefix: str, get_selector: SelectorGetter) -> APIRouter:
    """``GET <prefix>/leader`` (the leader's base URL) and ``GET <prefix>/isLeader``."""
    router = APIRouter(prefix=prefix, tags=["leader"])

    @router.get("/leader", dependencies=[STATE])
    async def leader() -> PlainTextResponse:
        selector = get_selector()
        url = selector.current_leader() if selector else None
        if url is None:
            raise ServiceUnavailable("no leader is known")
        return PlainTextResponse(url)

    @router.get("/isLeader", dependencies=[OPEN])
    async def is_leader() -> OrjsonResponse:
        selector = get_selector()
        ok = selector is not None and selector.is_leader()
        return OrjsonResponse({"leader": ok}, status_code=200 if ok else 404)

    return router


class LeaderRedirectMiddleware:
    """Send requests under ``prefixes`` to the leader unless we lead or the path is local."""

    def __init__(
        self,
        app: ASGIApp,
        get_selector: SelectorGetter,
        prefixes: Iterable[str],
        local_paths: Iterable[str],
        host: str,
    ) -> None:
        self.app = app
        self.get_selector = get_selector
        self.prefixes = tuple(prefixes)
        self.local_paths = frozenset(p.rstrip("/") for p in local_paths)
        self.host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        selector = self.get_selector()
        if scope["type"] != "http" or (selector is not None and selector.is_leader()):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(self.prefixes) or path.rstrip("/") in self.local_paths:
            await self.app(scope, receive, send)
            return
        leader = selector.current_leader() if selector is not None else None
        if selector is None or leader is None or leader == selector.identity:
            body = ServiceUnavailable("no leader is known").to_druid_json(self.host)
            await _respond(send, 503, dumps(body), [(b"content-type", b"application/json")])
            return
        query = scope.get("query_string", b"").decode()
        location = leader.rstrip("/") + path + (f"?{query}" if query else "")
        await _respond(send, 307, b"", [(b"location", location.encode())])


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


def create_elected_app(service: ElectedService, prefix: str, routers: list[APIRouter]) -> FastAPI:
    """A node app for an elected role: ``<prefix>/leader`` and ``/isLeader`` answered locally,
    every other path under ``prefix`` answered by the leader (307 from followers, 503 when no
    leader is known)."""
    app = create_node_app(service, [leader_router(prefix, service.get_selector), *routers])
    app.add_middleware(
        LeaderRedirectMiddleware,
        get_selector=service.get_selector,
        prefixes=[prefix],
        local_paths=[f"{prefix}/leader", f"{prefix}/isLeader"],
        host=service.settings.host_and_port,
    )
    keep_security_outermost(app)
    return app
