"""``GET /druid/coordinator/v1/loadstatus`` and ``/loadqueue`` (Druid's ``CoordinatorResource``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from common.auth.declare import STATE
from services.coordinator.duties.status import load_status, unavailable_counts, under_replicated
from services.coordinator.duty_loop import now_millis
from services.coordinator.service import CoordinatorService


def status_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1", tags=["coordinator"])

    @router.get("/loadstatus", dependencies=[STATE])
    async def loadstatus(simple: str | None = None, full: str | None = None) -> Any:
        used = await service.store.used_segments()
        rules = await service.rules()
        servers = service.server_states()
        now = now_millis()
        if simple is not None:
            return unavailable_counts(used, rules, servers, now)
        if full is not None:
            return under_replicated(used, rules, servers, now)
        return load_status(used, rules, servers, now)

    @router.get("/loadqueue", dependencies=[STATE])
    async def loadqueue(simple: str | None = None, full: str | None = None) -> Any:
        mode = "simple" if simple is not None else "full" if full is not None else "ids"
        peons = service.duties.peons if service.duties is not None else {}
        return {name: peon.queue_json(mode) for name, peon in sorted(peons.items())}

    return router
