"""``/druid/indexer/v1/datasources``: marking segments used or unused on the overlord (Druid's
``OverlordDataSourcesResource``, which the web console calls). Every answer is Druid's
``SegmentUpdateResponse`` ``{"numChangedSegments": n}``; marking used skips overshadowed
segments (see ``common.metadata.segment_updates``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from common.auth.declare import datasource_param
from common.metadata.segment_updates import (
    mark_unused,
    mark_used,
    parse_segment_filter,
    parse_segment_id,
)
from services.overlord.service import OverlordService


def datasources_router(service: OverlordService) -> APIRouter:
    router = APIRouter(prefix="/druid/indexer/v1/datasources", tags=["datasources"])

    @router.post("/{data_source}", dependencies=[datasource_param("data_source")])
    async def mark_all_used(data_source: str) -> dict[str, int]:
        return {"numChangedSegments": await mark_used(service.store, data_source, None)}

    @router.delete("/{data_source}", dependencies=[datasource_param("data_source")])
    async def mark_all_unused(data_source: str) -> dict[str, int]:
        return {"numChangedSegments": await mark_unused(service.store, data_source, None)}

    @router.post("/{data_source}/markUsed", dependencies=[datasource_param("data_source")])
    async def mark_some_used(
        data_source: str, body: Annotated[Any, Body()] = None
    ) -> dict[str, int]:
        f = parse_segment_filter(data_source, body)
        return {"numChangedSegments": await mark_used(service.store, data_source, f)}

    @router.post("/{data_source}/markUnused", dependencies=[datasource_param("data_source")])
    async def mark_some_unused(
        data_source: str, body: Annotated[Any, Body()] = None
    ) -> dict[str, int]:
        f = parse_segment_filter(data_source, body)
        return {"numChangedSegments": await mark_unused(service.store, data_source, f)}

    async def mark_one(data_source: str, segment_id: str, used: bool) -> dict[str, int]:
        parse_segment_id(data_source, segment_id)
        n = await service.store.set_segments_used(data_source, used, segment_ids=[segment_id])
        return {"numChangedSegments": n}

    @router.post(
        "/{data_source}/segments/{segment_id}", dependencies=[datasource_param("data_source")]
    )
    async def mark_segment_used(data_source: str, segment_id: str) -> dict[str, int]:
        return await mark_one(data_source, segment_id, True)

    @router.delete(
        "/{data_source}/segments/{segment_id}", dependencies=[datasource_param("data_source")]
    )
    async def mark_segment_unused(data_source: str, segment_id: str) -> dict[str, int]:
        return await mark_one(data_source, segment_id, False)

    return router
