"""``/druid/coordinator/v1/servers``: the data nodes the coordinator's inventory sees (Druid's
``ServersResource``): every historical and realtime server, with what it serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from common.auth.declare import STATE
from common.errors import NotFound
from common.serverview.inventory import DruidServer
from services.coordinator.service import CoordinatorService


def simple_server(server: DruidServer) -> dict[str, Any]:
    """Druid's ``makeSimpleServer``."""
    return {
        "host": server.name,
        "tier": server.tier,
        "type": server.server_type,
        "priority": server.priority,
        "currSize": server.curr_size,
        "maxSize": server.max_size,
    }


def full_server(server: DruidServer) -> dict[str, Any]:
    """Druid's ``makeFullServer``: ``segments`` maps each segment id to the segment."""
    return {
        "host": server.name,
        "maxSize": server.max_size,
        "type": server.server_type,
        "tier": server.tier,
        "priority": server.priority,
        "segments": {str(sid): server.segments[sid].to_json() for sid in sorted(server.segments)},
        "currSize": server.curr_size,
    }


def servers_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/servers", tags=["servers"])

    def inventory() -> list[DruidServer]:
        return sorted(service.inventory.servers(), key=lambda s: s.name)

    def server_named(name: str) -> DruidServer:
        server = service.inventory.get_server(name)
        if server is None:
            raise NotFound(f"server [{name}] does not exist.")
        return server

    @router.get("", dependencies=[STATE])
    async def servers(full: str | None = None, simple: str | None = None) -> Any:
        if full is not None:
            return [full_server(s) for s in inventory()]
        if simple is not None:
            return [simple_server(s) for s in inventory()]
        return [s.name for s in inventory()]

    @router.get("/{server_name}", dependencies=[STATE])
    async def server(server_name: str, simple: str | None = None) -> Any:
        found = server_named(server_name)
        return simple_server(found) if simple is not None else full_server(found)

    @router.get("/{server_name}/segments", dependencies=[STATE])
    async def server_segments(server_name: str, full: str | None = None) -> Any:
        found = server_named(server_name)
        ordered = [found.segments[sid] for sid in sorted(found.segments)]
        if full is not None:
            return [s.to_json() for s in ordered]
        return [s.identifier for s in ordered]

    @router.get("/{server_name}/segments/{segment_id}", dependencies=[STATE])
    async def server_segment(server_name: str, segment_id: str) -> Any:
        found = server_named(server_name)
        for sid, segment in found.segments.items():
            if str(sid) == segment_id:
                return segment.to_json()
        raise NotFound(f"segment [{segment_id}] not found in server [{server_name}].")

    return router
