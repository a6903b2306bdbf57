"""``/druid/listen/v1/lookups`` on brokers, historicals and peons: what this node has loaded,
as Druid's ``LookupListeningResource`` (``{lookupId: container}``); and the middleware that makes
those lookups the evaluation context of every request the node serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from common.auth.declare import CONFIG
from common.errors import NotFound
from common.expr.lookups import LookupProvider, lookup_scope
from common.lookups.config import Container
from common.lookups.node import NodeLookups


def listen_router(lookups: NodeLookups) -> APIRouter:
    router = APIRouter(prefix="/druid/listen/v1/lookups", tags=["lookups"])

    @router.get("", dependencies=[CONFIG])
    async def all_lookups() -> dict[str, Container]:
        return lookups.containers

    @router.get("/{lookup_id}", dependencies=[CONFIG])
    async def one(lookup_id: str) -> Container:
        found = lookups.containers.get(lookup_id)
        if found is None:
            raise NotFound(f"lookup [{lookup_id}] is not loaded on this node")
        return found

    return router


class LookupScopeMiddleware:
    """ASGI middleware: each request is served inside ``lookup_scope(provider)``, so the
    expressions, dimension specs and extraction functions it evaluates (also in the worker
    threads it starts) use this node's lookups."""

    def __init__(self, app: Any, provider: LookupProvider) -> None:
        self.app = app
        self.provider = provider

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with lookup_scope(self.provider):
            await self.app(scope, receive, send)
