"""``GET /druid/coordinator/v1/loadstatus`` and ``/loadqueue`` (Druid's ``CoordinatorResource``),
and one datasource's ``/datasources/{ds}/loadstatus`` (``DataSourcesResource``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from common.auth.declare import STATE, datasource_param
from common.errors import InvalidInput
from common.segments.intervals import Interval
from services.coordinator.duties.planning import overshadowed_ids
from services.coordinator.duties.status import load_status, unavailable_counts, under_replicated
from services.coordinator.duty_loop import now_millis
from services.coordinator.routes.intervals import parse_path_interval
from services.coordinator.service import CoordinatorService

#: Druid's ``DEFAULT_LOADSTATUS_INTERVAL_OFFSET``: without an interval, the last two weeks.
DEFAULT_LOADSTATUS_WINDOW_MS = 14 * 24 * 3600 * 1000


def status_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1", tags=["coordinator"])

    @router.get("/loadstatus", dependencies=[STATE])
    async def loadstatus(
        simple: str | None = None,
        full: str | None = None,
        cluster_view: Annotated[str | None, Query(alias="computeUsingClusterView")] = None,
    ) -> Any:
        used = await service.store.used_segments()
        rules = await service.rules()
        servers = service.server_states()
        now = now_millis()
        if simple is not None:
            return unavailable_counts(used, rules, servers, now)
        if full is not None:
            return under_replicated(used, rules, servers, now, cluster_view is not None)
        return load_status(used, rules, servers, now)

    @router.get(
        "/datasources/{data_source}/loadstatus", dependencies=[datasource_param("data_source")]
    )
    async def datasource_loadstatus(
        data_source: str,
        force_refresh: Annotated[str | None, Query(alias="forceMetadataRefresh")] = None,
        interval: str | None = None,
        simple: str | None = None,
        full: str | None = None,
        cluster_view: Annotated[str | None, Query(alias="computeUsingClusterView")] = None,
    ) -> Any:
        """Of the used, non-overshadowed segments overlapping ``interval``: the percentage
        some server serves, how many none serves (``simple``), or the replicas missing per
        tier (``full``). 204 when there are none. The metadata is always read fresh, so
        ``forceMetadataRefresh`` only has to be given, as Druid requires."""
        if force_refresh is None:
            raise InvalidInput("Invalid request. forceMetadataRefresh must be specified")
        now = now_millis()
        wanted = (
            Interval(now - DEFAULT_LOADSTATUS_WINDOW_MS, now)
            if interval is None
            else parse_path_interval(interval)
        )
        used = [
            s for s in await service.store.used_segments(data_source) if wanted.overlaps(s.interval)
        ]
        hidden = overshadowed_ids(used)
        segments = [s for s in used if s.id not in hidden]
        if not segments:
            return Response(status_code=204)
        servers = service.server_states()
        if full is not None:
            rules = await service.rules()
            return under_replicated(segments, rules, servers, now, cluster_view is not None)
        served = {sid for server in servers for sid in server.served}
        missing = sum(1 for s in segments if s.id not in served)
        if simple is not None:
            return {data_source: missing}
        return {data_source: 100.0 * (len(segments) - missing) / len(segments)}

    @router.get("/loadqueue", dependencies=[STATE])
    async def loadqueue(simple: str | None = None, full: str | None = None) -> Any:
        mode = "simple" if simple is not None else "full" if full is not None else "ids"
        peons = service.duties.peons if service.duties is not None else {}
        return {name: peon.queue_json(mode) for name, peon in sorted(peons.items())}

    return router
