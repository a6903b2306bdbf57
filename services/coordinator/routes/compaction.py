"""Automatic compaction API, as Druid's ``CoordinatorCompactionConfigsResource`` and
``CoordinatorCompactionResource``: ``/druid/coordinator/v1/config/compaction`` (the cluster config
and one ``DataSourceCompactionConfig`` per datasource) and ``/compaction/status|progress``
(the ``AutoCompactionSnapshot``s of the duty's last run)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from common.auth.declare import CONFIG, STATE
from common.config import JAVA_INT_MAX
from common.errors import InvalidInput, NotFound
from services.coordinator import compaction_config as cc
from services.coordinator.service import CoordinatorService


def compaction_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1", tags=["compaction"])

    @router.get("/config/compaction", dependencies=[CONFIG])
    async def get_all() -> dict[str, Any]:
        return (await cc.load(service.store)).to_json()

    @router.post("/config/compaction", dependencies=[CONFIG])
    async def add_or_update(body: Annotated[Any, Body()] = None) -> Response:
        new = cc.parse_datasource_config(body)
        config = await cc.load(service.store)
        others = [c for c in config.compaction_configs if c.data_source != new.data_source]
        config.compaction_configs = [*others, new]
        await cc.save(service.store, config)
        return Response(status_code=200)

    @router.post("/config/compaction/taskslots", dependencies=[CONFIG])
    async def task_slots(
        ratio: Annotated[float | None, Query()] = None,
        max: Annotated[int | None, Query(le=JAVA_INT_MAX)] = None,
    ) -> Response:
        config = await cc.load(service.store)
        if ratio is not None:
            if not 0 <= ratio <= 1:
                raise InvalidInput(f"ratio[{ratio}] must be between 0 and 1")
            config.compaction_task_slot_ratio = ratio
        if max is not None:
            if max < 0:
                raise InvalidInput(f"max[{max}] must be >= 0")
            config.max_compaction_task_slots = max
        await cc.save(service.store, config)
        return Response(status_code=200)

    @router.post("/config/compaction/cluster", dependencies=[CONFIG])
    async def cluster_config(body: Annotated[Any, Body()] = None) -> Response:
        if not isinstance(body, dict):
            raise InvalidInput("the cluster compaction config must be a JSON object")
        known = {"compactionTaskSlotRatio", "maxCompactionTaskSlots", "useAutoScaleSlots", "engine"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise InvalidInput(f"unknown or unsupported cluster compaction field(s) {unknown}")
        config = await cc.load(service.store)
        merged = {**config.to_json(), **{k: v for k, v in body.items() if v is not None}}
        try:
            updated = cc.DruidCompactionConfig.model_validate(merged)
        except ValueError as exc:
            raise InvalidInput(f"invalid cluster compaction config: {exc}") from None
        await cc.save(service.store, updated)
        return Response(status_code=200)

    @router.get("/config/compaction/{data_source}", dependencies=[CONFIG])
    async def get_one(data_source: str) -> dict[str, Any]:
        found = (await cc.load(service.store)).for_data_source(data_source)
        if found is None:
            raise NotFound(f"datasource [{data_source}] has no compaction config")
        return found.to_json()

    @router.delete("/config/compaction/{data_source}", dependencies=[CONFIG])
    async def delete_one(data_source: str) -> Response:
        config = await cc.load(service.store)
        if config.for_data_source(data_source) is None:
            raise NotFound(f"datasource [{data_source}] has no compaction config")
        config.compaction_configs = [
            c for c in config.compaction_configs if c.data_source != data_source
        ]
        await cc.save(service.store, config)
        return Response(status_code=200)

    def snapshots() -> dict[str, dict[str, Any]]:
        duty = service.compact_duty
        return duty.snapshots if duty is not None else {}

    @router.get("/compaction/status", dependencies=[STATE])
    async def status(
        data_source: Annotated[str | None, Query(alias="dataSource")] = None,
    ) -> dict[str, Any]:
        snaps = snapshots()
        if data_source is not None:
            if data_source not in snaps:
                raise NotFound(f"unknown compaction status for datasource [{data_source}]")
            return {"latestStatus": [snaps[data_source]]}
        return {"latestStatus": [snaps[k] for k in sorted(snaps)]}

    @router.get("/compaction/progress", dependencies=[STATE])
    async def progress(
        data_source: Annotated[str, Query(alias="dataSource")],
    ) -> dict[str, Any]:
        snap = snapshots().get(data_source)
        if snap is None:
            raise NotFound(f"unknown compaction progress for datasource [{data_source}]")
        return {"remainingSegmentSize": snap["bytesAwaitingCompaction"]}

    return router
