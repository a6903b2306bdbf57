"""``/druid/coordinator/v1/datasources``: what the data nodes serve (Druid's
``DataSourcesResource``) and handoff answers. Marking segments used or unused is in ``marking``.

The served view comes from the inventory (every data node, historicals and realtime alike, as
Druid's ``serverInventoryView``); a datasource no node serves answers 204, as in Druid.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from common.auth.declare import STATE, datasource_param
from common.config import JAVA_INT_MAX
from common.segments.intervals import Interval
from common.segments.isotime import format_iso
from common.segments.segment import DataSegment, SegmentId
from services.coordinator.duties.model import ServerState
from services.coordinator.duties.rule_match import rules_with_default
from services.coordinator.duties.status import handoff_complete
from services.coordinator.duty_loop import now_millis
from services.coordinator.service import CoordinatorService


def served_segments(servers: list[ServerState], data_source: str) -> dict[SegmentId, DataSegment]:
    result: dict[SegmentId, DataSegment] = {}
    for server in servers:
        result.update((sid, s) for sid, s in server.served.items() if s.data_source == data_source)
    return result


def served_data_sources(servers: list[ServerState]) -> list[str]:
    return sorted({s.data_source for server in servers for s in server.served.values()})


def simple_datasource(servers: list[ServerState], data_source: str) -> dict[str, Any]:
    """Druid's ``getSimpleDatasource``: per tier and in total, distinct and replicated sizes."""
    tiers: dict[str, dict[str, int]] = {}
    tier_ids: dict[str, set[SegmentId]] = defaultdict(set)
    distinct: dict[SegmentId, DataSegment] = {}
    replicated = 0
    for server in servers:
        mine = [s for s in server.served.values() if s.data_source == data_source]
        if not mine:
            continue
        stats = tiers.setdefault(server.tier, {"size": 0, "segmentCount": 0, "replicatedSize": 0})
        for seg in mine:
            if seg.id not in tier_ids[server.tier]:
                tier_ids[server.tier].add(seg.id)
                stats["size"] += seg.size
            distinct.setdefault(seg.id, seg)
            stats["replicatedSize"] += seg.size
            replicated += seg.size
        stats["segmentCount"] = len(tier_ids[server.tier])
    segments: dict[str, Any] = {
        "count": len(distinct),
        "size": sum(s.size for s in distinct.values()),
        "replicatedSize": replicated,
    }
    if distinct:
        segments["minTime"] = format_iso(min(s.interval.start for s in distinct.values()))
        segments["maxTime"] = format_iso(max(s.interval.end for s in distinct.values()))
    return {"tiers": tiers, "segments": segments}


def full_datasource(data_source: str, segments: list[DataSegment]) -> dict[str, Any]:
    """Druid's ``ImmutableDruidDataSource`` JSON."""
    return {
        "name": data_source,
        "properties": {},
        "segments": [s.to_json() for s in sorted(segments, key=lambda s: s.id)],
    }


def datasources_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/datasources", tags=["datasources"])

    @router.get("", dependencies=[STATE])
    async def datasources(simple: str | None = None, full: str | None = None) -> Any:
        servers = service.server_states()
        names = served_data_sources(servers)
        if full is not None:
            return [
                full_datasource(ds, list(served_segments(servers, ds).values())) for ds in names
            ]
        if simple is not None:
            return [{"name": ds, "properties": simple_datasource(servers, ds)} for ds in names]
        return names

    @router.get("/{data_source}", dependencies=[datasource_param("data_source")])
    async def datasource(data_source: str, full: str | None = None) -> Any:
        servers = service.server_states()
        segments = served_segments(servers, data_source)
        if not segments:
            return Response(status_code=204)
        if full is not None:
            return full_datasource(data_source, list(segments.values()))
        return simple_datasource(servers, data_source)

    @router.get("/{data_source}/segments", dependencies=[datasource_param("data_source")])
    async def datasource_segments(data_source: str, full: str | None = None) -> Any:
        segments = served_segments(service.server_states(), data_source)
        if not segments:
            return Response(status_code=204)
        ordered = [segments[sid] for sid in sorted(segments)]
        if full is not None:
            return [s.to_json() for s in ordered]
        return [s.identifier for s in ordered]

    @router.get("/{data_source}/handoffComplete", dependencies=[datasource_param("data_source")])
    async def handoff(
        data_source: str,
        interval: Annotated[str, Query()],
        partition_number: Annotated[int, Query(alias="partitionNumber", ge=0, le=JAVA_INT_MAX)],
        version: Annotated[str, Query(min_length=1)],
    ) -> bool:
        rules = rules_with_default(await service.rules(), data_source)
        return handoff_complete(
            data_source,
            rules,
            Interval.parse(interval),
            version,
            partition_number,
            service.server_states(),
            now_millis(),
        )

    return router
