"""Druid's ``HistoricalResource``: ``/druid/historical/v1/loadstatus`` and ``/readiness``.

``loadstatus`` says whether the segment cache has been loaded from disk; ``readiness`` is 200 once
it has, 503 before (for a Kubernetes readiness probe).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from starlette.responses import Response

from common.auth.declare import STATE


def probes_router(cache_initialized: Callable[[], bool]) -> APIRouter:
    router = APIRouter(prefix="/druid/historical/v1", tags=["historical"])

    @router.get("/loadstatus", dependencies=[STATE])
    async def load_status() -> dict[str, bool]:
        return {"cacheInitialized": cache_initialized()}

    @router.get("/readiness", dependencies=[STATE])
    async def readiness() -> Response:
        return Response(status_code=200 if cache_initialized() else 503)

    return router
