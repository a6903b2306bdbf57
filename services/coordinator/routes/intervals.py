"""What the data nodes serve by interval: of one datasource, by interval, tier and segment
(Druid's ``DataSourcesResource``: ``/datasources/{ds}/intervals``, ``/tiers``, ``/segments/{id}``),
and of all datasources (``IntervalsResource``: ``/intervals``).

As in Druid, the view is the inventory (historicals and realtime servers); a datasource no server
serves answers 204. Interval path parameters use ``_`` for ``/`` (``2024-01-01_2024-01-02``).
Intervals are listed newest first (Druid orders them by start then end, reversed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from common.auth.declare import STATE, datasource_param
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from common.segments.timeline import SegmentTimeline
from services.coordinator.service import CoordinatorService


def parse_path_interval(text: str) -> Interval:
    """An interval path parameter, ``_`` standing for ``/``; a bad one is a 400 naming it."""
    return Interval.parse(text.replace("_", "/"))


def _newest_first(intervals: set[Interval]) -> list[Interval]:
    return sorted(intervals, reverse=True)


def served_by_interval(
    segments: list[DataSegment],
    hosts_of: Callable[[DataSegment], list[str]],
    keep: Callable[[Interval], bool],
    full: bool,
) -> dict[str, Any]:
    """Druid's ``getServedSegmentsInInterval``: per interval, ``{size, count}`` or (``full``)
    ``{segmentId: {"metadata": segment, "servers": [host...]}}``."""
    chosen = sorted((s for s in segments if keep(s.interval)), key=lambda s: s.id)
    result: dict[str, Any] = {}
    for interval in _newest_first({s.interval for s in chosen}):
        mine = [s for s in chosen if s.interval == interval]
        if full:
            result[str(interval)] = {
                s.identifier: {"metadata": s.to_json(), "servers": hosts_of(s)} for s in mine
            }
        else:
            result[str(interval)] = {"size": sum(s.size for s in mine), "count": len(mine)}
    return result


def size_and_count(segments: list[DataSegment]) -> dict[str, int]:
    return {"size": sum(s.size for s in segments), "count": len(segments)}


def by_interval_and_datasource(segments: list[DataSegment]) -> dict[str, Any]:
    """Druid's ``IntervalsResource`` map: interval (newest first) -> datasource -> size, count."""
    result: dict[str, Any] = {}
    for interval in _newest_first({s.interval for s in segments}):
        mine = [s for s in segments if s.interval == interval]
        result[str(interval)] = {
            ds: size_and_count([s for s in mine if s.data_source == ds])
            for ds in sorted({s.data_source for s in mine})
        }
    return result


def cluster_intervals_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/intervals", tags=["intervals"])

    def served() -> list[DataSegment]:
        found: dict[Any, DataSegment] = {}
        for server in service.inventory.servers():
            found.update(server.segments)
        return [found[sid] for sid in sorted(found)]

    @router.get("", dependencies=[STATE])
    async def all_intervals() -> dict[str, Any]:
        return by_interval_and_datasource(served())

    @router.get("/{interval}", dependencies=[STATE])
    async def within(interval: str, simple: str | None = None, full: str | None = None) -> Any:
        wanted = parse_path_interval(interval)
        inside = [s for s in served() if wanted.contains(s.interval)]
        if full is not None:
            return by_interval_and_datasource(inside)
        if simple is not None:
            return {
                str(i): size_and_count([s for s in inside if s.interval == i])
                for i in _newest_first({s.interval for s in inside})
            }
        return size_and_count(inside) if inside else {}

    return router


def intervals_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/datasources", tags=["datasources"])

    def served(data_source: str) -> list[DataSegment]:
        found: dict[Any, DataSegment] = {}
        for server in service.inventory.servers():
            for sid, segment in server.segments.items():
                if segment.data_source == data_source:
                    found.setdefault(sid, segment)
        return [found[sid] for sid in sorted(found)]

    def hosts_of(segment: DataSegment) -> list[str]:
        return sorted(s.name for s in service.inventory.servers_of(segment.id))

    @router.get("/{data_source}/intervals", dependencies=[datasource_param("data_source")])
    async def intervals(
        data_source: str, simple: str | None = None, full: str | None = None
    ) -> Any:
        segments = served(data_source)
        if not segments:
            return Response(status_code=204)
        if simple is None and full is None:
            return [str(i) for i in _newest_first({s.interval for s in segments})]
        return served_by_interval(segments, hosts_of, lambda _: True, full is not None)

    @router.get(
        "/{data_source}/intervals/{interval}", dependencies=[datasource_param("data_source")]
    )
    async def in_interval(
        data_source: str, interval: str, simple: str | None = None, full: str | None = None
    ) -> Any:
        wanted = parse_path_interval(interval)
        segments = served(data_source)
        if not segments:
            return Response(status_code=204)
        if simple is None and full is None:
            return [s.identifier for s in segments if wanted.contains(s.interval)]
        return served_by_interval(segments, hosts_of, wanted.contains, full is not None)

    @router.get(
        "/{data_source}/intervals/{interval}/serverview",
        dependencies=[datasource_param("data_source")],
    )
    async def server_view(data_source: str, interval: str) -> list[dict[str, Any]]:
        """Druid's ``ImmutableSegmentLoadInfo`` per segment visible in the interval, incomplete
        partition sets included: ``{"segment", "servers": [DruidServerMetadata]}``."""
        wanted = parse_path_interval(interval)
        timeline = SegmentTimeline.of(served(data_source))
        return [
            {
                "segment": chunk.obj.to_json(),
                "servers": [
                    s.metadata_json()
                    for s in sorted(
                        service.inventory.servers_of(chunk.obj.id), key=lambda s: s.name
                    )
                ],
            }
            for holder in timeline.lookup_with_incomplete_partitions(wanted)
            for chunk in holder.chunks
        ]

    @router.get(
        "/{data_source}/segments/{segment_id}", dependencies=[datasource_param("data_source")]
    )
    async def served_segment(data_source: str, segment_id: str) -> Any:
        for segment in served(data_source):
            if segment.identifier == segment_id:
                return {"metadata": segment.to_json(), "servers": hosts_of(segment)}
        return Response(status_code=204)

    @router.get("/{data_source}/tiers", dependencies=[datasource_param("data_source")])
    async def tiers(data_source: str) -> list[str]:
        return sorted(
            {
                server.tier
                for server in service.inventory.servers()
                if any(s.data_source == data_source for s in server.segments.values())
            }
        )

    return router
