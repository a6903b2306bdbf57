"""``/druid/v2/datasources`` and ``/druid/v2/candidates`` on the broker (Druid's
``ClientInfoResource`` and ``BrokerQueryResource.getQueryTargets``).

Datasource names, dimensions and metrics come from what the data nodes announce (the broker's
inventory, as Druid's ``serverInventoryView``). Without an ``interval`` the columns are those of
segments overlapping the last ``P1W`` (Druid's ``druid.query.segmentMetadata.defaultHistory``
default). ``full`` and ``candidates`` read the broker's timeline: per visible interval, the
columns or the segment with the servers that serve it (``LocatedSegmentDescriptor``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from common.auth.declare import STATE, datasource_param
from common.errors import InvalidInput
from common.query import parse_query
from common.segments.intervals import Interval, condense
from common.segments.period import UTC_ZONE, Period, add_period
from common.segments.segment import DataSegment
from common.segments.timeline import SegmentTimeline
from services.broker.service import BrokerService

#: Druid's ``SegmentMetadataQueryConfig.defaultHistory``.
DEFAULT_HISTORY = Period.parse("P1W")


def default_interval(now_ms: int) -> Interval:
    return Interval(add_period(UTC_ZONE, now_ms, DEFAULT_HISTORY, -1), now_ms)


def parse_interval_param(text: str | None, now_ms: int) -> Interval:
    if text is None or text == "":
        return default_interval(now_ms)
    return Interval.parse(text)


def columns_of(segments: list[DataSegment], interval: Interval) -> dict[str, list[str]]:
    """Dimensions and metrics of the segments overlapping ``interval`` (sorted, distinct)."""
    dims: set[str] = set()
    mets: set[str] = set()
    for s in segments:
        if interval.overlaps(s.interval):
            dims.update(s.dimensions)
            mets.update(s.metrics)
    return {"dimensions": sorted(dims), "metrics": sorted(mets)}


def columns_by_interval(timeline: SegmentTimeline | None, interval: Interval) -> dict[str, Any]:
    """Druid's ``getDatasource(full)``: per visible interval the columns served there, abutting
    intervals with the same columns collapsed into one."""
    if timeline is None:
        return {}
    pieces: list[tuple[Interval, dict[str, list[str]]]] = []
    for holder in timeline.lookup(interval):
        cols = columns_of(holder.objects, holder.interval)
        if pieces and pieces[-1][0].abuts(holder.interval) and pieces[-1][1] == cols:
            pieces[-1] = (pieces[-1][0].with_end(holder.interval.end), cols)
        else:
            pieces.append((holder.interval, cols))
    return {str(i): cols for i, cols in pieces}


def info_router(service: BrokerService) -> APIRouter:
    router = APIRouter(tags=["datasources"])

    def now_ms() -> int:
        return int(time.time() * 1000)

    def segments_of(data_source: str) -> list[DataSegment]:
        found: dict[Any, DataSegment] = {}
        for server in service.inventory.servers():
            for sid, seg in server.segments.items():
                if seg.data_source == data_source:
                    found.setdefault(sid, seg)
        return list(found.values())

    def server_metadata(name: str) -> dict[str, Any] | None:
        server = service.inventory.get_server(name)
        return None if server is None else server.metadata_json()

    def located(
        data_source: str, intervals: list[Interval], num_candidates: int
    ) -> list[dict[str, Any]]:
        """Druid's ``ServerViewUtil.getTargetLocations``."""
        timeline = service.view.timeline(data_source)
        if timeline is None:
            return []
        result = []
        for interval in intervals:
            for holder in timeline.lookup(interval):
                for chunk in holder.chunks:
                    refs = sorted(
                        service.view.servers_of(chunk.obj.id), key=lambda r: (-r.priority, r.name)
                    )
                    if num_candidates >= 0:
                        refs = refs[:num_candidates]
                    locations = [m for r in refs if (m := server_metadata(r.name)) is not None]
                    result.append(
                        {
                            "interval": str(holder.interval),
                            "version": holder.version,
                            "partitionNumber": chunk.partition_num,
                            "size": chunk.obj.size,
                            "locations": locations,
                        }
                    )
        return result

    @router.get("/druid/v2/datasources", dependencies=[STATE])
    async def datasources() -> list[str]:
        return sorted(
            {
                s.data_source
                for server in service.inventory.servers()
                for s in server.segments.values()
            }
        )

    @router.get(
        "/druid/v2/datasources/{data_source}", dependencies=[datasource_param("data_source")]
    )
    async def datasource(
        data_source: str, interval: str | None = None, full: str | None = None
    ) -> dict[str, Any]:
        wanted = parse_interval_param(interval, now_ms())
        if full is None:
            return columns_of(segments_of(data_source), wanted)
        return columns_by_interval(service.view.timeline(data_source), wanted)

    @router.get(
        "/druid/v2/datasources/{data_source}/dimensions",
        deprecated=True,
        dependencies=[datasource_param("data_source")],
    )
    async def dimensions(data_source: str, interval: str | None = None) -> list[str]:
        wanted = parse_interval_param(interval, now_ms())
        return columns_of(segments_of(data_source), wanted)["dimensions"]

    @router.get(
        "/druid/v2/datasources/{data_source}/metrics",
        deprecated=True,
        dependencies=[datasource_param("data_source")],
    )
    async def metrics(data_source: str, interval: str | None = None) -> list[str]:
        wanted = parse_interval_param(interval, now_ms())
        return columns_of(segments_of(data_source), wanted)["metrics"]

    @router.get(
        "/druid/v2/datasources/{data_source}/candidates",
        dependencies=[datasource_param("data_source")],
    )
    async def candidates(
        data_source: str, intervals: str | None = None, numCandidates: int = -1
    ) -> list[dict[str, Any]]:
        if not intervals:
            raise InvalidInput("'intervals' is required: comma-separated ISO 8601 intervals")
        parsed = condense(Interval.parse(i.strip()) for i in intervals.split(","))
        return located(data_source, parsed, numCandidates)

    @router.post("/druid/v2/candidates", dependencies=[STATE])
    @router.post("/druid/v2/candidates/", include_in_schema=False, dependencies=[STATE])
    async def query_candidates(request: Request, numCandidates: int = -1) -> list[dict[str, Any]]:
        query = parse_query(await request.body())
        return located(query.dataSource, list(query.intervals.intervals), numCandidates)

    return router
