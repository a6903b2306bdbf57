"""``/druid/listen/v1/lookups`` on brokers, historicals and peons: what this node has loaded,
as Druid's ``LookupListeningResource`` (``{lookupId: container}``)."""

from __future__ import annotations

from fastapi import APIRouter

from common.auth.declare import CONFIG
from common.errors import NotFound
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
