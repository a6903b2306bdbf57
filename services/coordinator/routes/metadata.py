"""``/druid/coordinator/v1/metadata``: segments as the metadata store records them (Druid's
``MetadataResource``). A datasource without used segments is 404, as in Druid."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from common.auth.declare import STATE, datasource_param
from common.errors import InvalidInput, NotFound
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, SegmentId
from services.coordinator.duties.planning import overshadowed_ids
from services.coordinator.duties.rule_match import find_rule, required_replicas
from services.coordinator.duty_loop import now_millis
from services.coordinator.routes.datasources import full_datasource
from services.coordinator.rules import Rule
from services.coordinator.service import CoordinatorService


def segment_status(
    segment: DataSegment, overshadowed: bool, rules: dict[str, list[Rule]], now: int
) -> dict[str, Any]:
    """Druid's ``SegmentStatusInCluster``: the segment's fields, ``overshadowed``, the replicas
    its load rule asks for over all tiers (null when no load rule applies), and ``realtime``
    false with ``numRows`` null (kdruid lists only published segments here)."""
    wanted = required_replicas(find_rule(rules, segment.data_source, segment.interval, now))
    return {
        **segment.to_json(),
        "overshadowed": overshadowed,
        "replicationFactor": sum(wanted.values()) if wanted is not None else None,
        "numRows": None,
        "realtime": False,
    }


def parse_intervals_body(body: Any) -> list[Interval]:
    if not isinstance(body, list) or not all(isinstance(i, str) for i in body):
        raise InvalidInput("The request body must be a JSON array of ISO 8601 interval strings")
    return [Interval.parse(i) for i in body]


def metadata_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/metadata", tags=["metadata"])

    async def used_of(data_source: str) -> list[DataSegment]:
        segments = await service.store.used_segments(data_source)
        if not segments:
            raise NotFound(f"datasource [{data_source}] has no used segments")
        return sorted(segments, key=lambda s: s.id)

    @router.get("/segments", dependencies=[STATE])
    async def used_segments(
        datasources: Annotated[list[str] | None, Query()] = None,
        include_overshadowed_status: Annotated[
            str | None, Query(alias="includeOvershadowedStatus")
        ] = None,
    ) -> Any:
        """Every used segment (of ``datasources`` when given), as Druid's ``getAllUsedSegments``."""
        wanted = set(datasources or ())
        used = sorted(
            (
                s
                for s in await service.store.used_segments()
                if not wanted or s.data_source in wanted
            ),
            key=lambda s: s.id,
        )
        if include_overshadowed_status is None:
            return [s.to_json() for s in used]
        hidden = overshadowed_ids(used)
        rules, now = await service.rules(), now_millis()
        return [segment_status(s, s.id in hidden, rules, now) for s in used]

    @router.get("/datasources", dependencies=[STATE])
    async def datasources(
        include_unused: Annotated[str | None, Query(alias="includeUnused")] = None,
        include_disabled: Annotated[str | None, Query(alias="includeDisabled")] = None,
        full: str | None = None,
    ) -> Any:
        if full is not None:
            by_ds: dict[str, list[DataSegment]] = defaultdict(list)
            for s in await service.store.used_segments():
                by_ds[s.data_source].append(s)
            return [full_datasource(ds, segs) for ds, segs in sorted(by_ds.items())]
        everything = include_unused is not None or include_disabled is not None
        return await service.store.data_source_names(include_unused=everything)

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

    @router.post(
        "/datasources/{data_source}/segments", dependencies=[datasource_param("data_source")]
    )
    async def segments_in_intervals(
        data_source: str, body: Annotated[Any, Body()] = None, full: str | None = None
    ) -> Any:
        """Used segments overlapping any of the intervals in the body (Druid answers an empty
        list, not 404, when none do)."""
        intervals = parse_intervals_body(body)
        used = sorted(await service.store.used_segments(data_source), key=lambda s: s.id)
        hits = [s for s in used if any(i.overlaps(s.interval) for i in intervals)]
        return [s.to_json() for s in hits] if full is not None else [s.identifier for s in hits]

    @router.get(
        "/datasources/{data_source}/unusedSegments", dependencies=[datasource_param("data_source")]
    )
    async def unused_segments(
        data_source: str,
        interval: str | None = None,
        limit: Annotated[int | None, Query(le=2**31 - 1)] = None,  # a Java int in Druid
        last_segment_id: Annotated[str | None, Query(alias="lastSegmentId")] = None,
        sort_order: Annotated[str | None, Query(alias="sortOrder")] = None,
    ) -> list[dict[str, Any]]:
        """Druid's ``getUnusedSegmentsInDataSource``: unused segments (those ``interval``
        contains), by id, after ``lastSegmentId``, at most ``limit``, as ``DataSegmentPlus``."""
        if limit is not None and limit < 0:
            raise InvalidInput(f"Invalid limit[{limit}] specified. Limit must be > 0.")
        if (
            last_segment_id is not None
            and SegmentId.try_parse(data_source, last_segment_id) is None
        ):
            raise InvalidInput(f"Invalid lastSegmentId[{last_segment_id}] specified.")
        if sort_order is not None and sort_order.upper() not in ("ASC", "DESC"):
            raise InvalidInput(
                f"Unexpected value[{sort_order}] for SortOrder. Possible values are: [ASC, DESC]"
            )
        descending = sort_order is not None and sort_order.upper() == "DESC"
        wanted = None if interval is None else Interval.parse(interval.replace("_", "/"))
        rows = [
            r
            for r in await service.store.list_segments(data_source, used=False)
            if wanted is None or wanted.contains(r.segment.interval)
        ]
        rows.sort(key=lambda r: r.segment.identifier, reverse=descending)
        if last_segment_id is not None:
            after = last_segment_id
            rows = [
                r
                for r in rows
                if (r.segment.identifier < after if descending else r.segment.identifier > after)
            ]
        return [
            {
                "dataSegment": r.segment.to_json(),
                "createdDate": r.created_date or None,
                "usedStatusLastUpdatedDate": r.used_status_last_updated or None,
                "used": r.used,
            }
            for r in rows[:limit]
        ]

    @router.get(
        "/datasources/{data_source}/segments/{segment_id}",
        dependencies=[datasource_param("data_source")],
    )
    async def segment(
        data_source: str,
        segment_id: str,
        include_unused: Annotated[str | None, Query(alias="includeUnused")] = None,
    ) -> Any:
        """The segment if used (or, with ``includeUnused`` other than ``false``, if known)."""
        if SegmentId.try_parse(data_source, segment_id) is None:
            raise InvalidInput(
                f"Could not parse Segment ID[{segment_id}] for DataSource[{data_source}]"
            )
        with_unused = include_unused is not None and include_unused.lower() != "false"
        row = await service.store.get_segment(segment_id)
        if (
            row is None
            or row.segment.data_source != data_source
            or (not row.used and not with_unused)
        ):
            raise NotFound(f"segment [{segment_id}] of datasource [{data_source}] not found")
        return row.segment.to_json()

    return router
