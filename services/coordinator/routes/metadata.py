"""``/druid/coordinator/v1/metadata``: segments as the metadata store records them (Druid's
``MetadataResource``). A datasource without used segments is 404, as in Druid."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from common.auth.declare import STATE, datasource_param
from common.errors import NotFound
from common.segments.segment import DataSegment
from services.coordinator.routes.datasources import full_datasource
from services.coordinator.service import CoordinatorService


def metadata_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/metadata", tags=["metadata"])

    async def used_of(data_source: str) -> list[DataSegment]:
        segments = await service.store.used_segments(data_source)
        if not segments:
            raise NotFound(f"datasource [{data_source}] has no used segments")
        return sorted(segments, key=lambda s: s.id)

    @router.get("/datasources", dependencies=[STATE])
    async def datasources(
        include_unused: Annotated[str | None, Query(alias="includeUnused")] = None,
        full: str | None = None,
    ) -> Any:
        if full is not None:
            by_ds: dict[str, list[DataSegment]] = defaultdict(list)
            for s in await service.store.used_segments():
                by_ds[s.data_source].append(s)
            return [full_datasource(ds, segs) for ds, segs in sorted(by_ds.items())]
        return await service.store.data_source_names(include_unused=include_unused is not None)

    @router.get("/datasources/{data_source}", dependencies=[datasource_param("data_source")])
    async def datasource(data_source: str) -> Any:
        return full_datasource(data_source, await used_of(data_source))

    @router.get(
        "/datasources/{data_source}/segments", dependencies=[datasource_param("data_source")]
    )
    async def segments(data_source: str, full: str | None = None) -> Any:
        used = await used_of(data_source)
        if full is not None:
            return [s.to_json() for s in used]
        return [s.identifier for s in used]

    @router.get(
        "/datasources/{data_source}/segments/{segment_id}",
        dependencies=[datasource_param("data_source")],
    )
    async def segment(
        data_source: str,
        segment_id: str,
        include_unused: Annotated[str | None, Query(alias="includeUnused")] = None,
    ) -> Any:
        row = await service.store.get_segment(segment_id)
        if (
            row is None
            or row.segment.data_source != data_source
            or (not row.used and include_unused is None)
        ):
            raise NotFound(f"segment [{segment_id}] of datasource [{data_source}] not found")
        return row.segment.to_json()

    return router
