"""Marking segments used or unused through the coordinator (Druid's deprecated
``DataSourcesResource`` write endpoints; the overlord serves the same under
``/druid/indexer/v1/datasources``). Kill (permanent deletion of *unused* segments) submits a
``kill`` task to the overlord leader, as Druid's ``killUnusedSegmentsInInterval`` does: task id
prefix ``api-issued``, answer 200 with an empty body once the overlord accepted it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from common.auth.declare import datasource_param
from common.errors import InvalidInput
from common.metadata.segment_updates import (
    mark_unused,
    mark_used,
    parse_segment_filter,
    parse_segment_id,
)
from common.segments.intervals import Interval
from services.coordinator.duties.kill import API_ISSUED, kill_task
from services.coordinator.service import CoordinatorService


def marking_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/datasources", tags=["datasources"])

    def changed(n: int) -> int:
        if n:
            service.wake_duties()
        return n

    @router.post("/{data_source}/markUsed", dependencies=[datasource_param("data_source")])
    async def mark_some_used(
        data_source: str, body: Annotated[Any, Body()] = None
    ) -> dict[str, int]:
        f = parse_segment_filter(data_source, body)
        return {"numChangedSegments": changed(await mark_used(service.store, data_source, f))}

    @router.post("/{data_source}/markUnused", dependencies=[datasource_param("data_source")])
    async def mark_some_unused(
        data_source: str, body: Annotated[Any, Body()] = None
    ) -> dict[str, int]:
        f = parse_segment_filter(data_source, body)
        return {"numChangedSegments": changed(await mark_unused(service.store, data_source, f))}

    async def submit_kill(data_source: str, interval: str) -> Response:
        # Druid accepts '_' in place of '/' in a path interval.
        parsed = Interval.parse(interval.replace("_", "/"))
        await service.submit_task(kill_task(API_ISSUED, data_source, parsed))
        return Response(status_code=200)

    @router.delete(
        "/{data_source}", response_model=None, dependencies=[datasource_param("data_source")]
    )
    async def mark_all_unused(
        data_source: str, kill: str | None = None, interval: str | None = None
    ) -> dict[str, int] | Response:
        if kill is not None and kill.lower() == "true":
            if not interval:
                raise InvalidInput("kill=true requires an 'interval' query parameter")
            return await submit_kill(data_source, interval)
        return {"numChangedSegments": changed(await mark_unused(service.store, data_source, None))}

    @router.post("/{data_source}", dependencies=[datasource_param("data_source")])
    async def mark_all_used(data_source: str) -> dict[str, int]:
        return {"numChangedSegments": changed(await mark_used(service.store, data_source, None))}

    async def mark_one(data_source: str, segment_id: str, used: bool) -> dict[str, bool]:
        parse_segment_id(data_source, segment_id)
        n = await service.store.set_segments_used(data_source, used, segment_ids=[segment_id])
        return {"segmentStateChanged": changed(n) > 0}

    @router.delete(
        "/{data_source}/segments/{segment_id}", dependencies=[datasource_param("data_source")]
    )
    async def mark_segment_unused(data_source: str, segment_id: str) -> dict[str, bool]:
        return await mark_one(data_source, segment_id, False)

    @router.post(
        "/{data_source}/segments/{segment_id}", dependencies=[datasource_param("data_source")]
    )
    async def mark_segment_used(data_source: str, segment_id: str) -> dict[str, bool]:
        return await mark_one(data_source, segment_id, True)

    @router.delete(
        "/{data_source}/intervals/{interval}", dependencies=[datasource_param("data_source")]
    )
    async def kill_interval(data_source: str, interval: str) -> Response:
        return await submit_kill(data_source, interval)

    return router
