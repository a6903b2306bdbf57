"""Lookups config API, as Druid's ``LookupCoordinatorResource``:
``/druid/coordinator/v1/lookups/config[/{tier}[/{lookupId}]]``, stored in ``druid_config``
under ``lookupsConfig`` (see ``common.lookups.config``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from common.auth.declare import CONFIG
from common.errors import InvalidInput, NotFound
from common.lookups import config as lc
from services.coordinator.service import CoordinatorService


def lookups_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/lookups", tags=["lookups"])

    async def load() -> lc.LookupsConfig:
        return lc.decode(await service.store.get_config(lc.CONFIG_KEY))

    async def save(config: lc.LookupsConfig) -> None:
        await service.store.set_config(lc.CONFIG_KEY, lc.encode(config))

    def tier_of(config: lc.LookupsConfig, tier: str) -> dict[str, lc.Container]:
        found = config.get(tier)
        if found is None:
            raise NotFound(f"lookup tier [{tier}] not found")
        return found

    @router.get("/config", dependencies=[CONFIG])
    async def tiers(discover: Annotated[bool, Query()] = False) -> list[str]:
        if discover:
            raise InvalidInput(
                "discover=true is not supported: kdruid does not list tiers from the nodes;"
                " GET without it lists the configured tiers"
            )
        return sorted(await load())

    @router.post("/config", dependencies=[CONFIG])
    async def update_all(body: Annotated[Any, Body()] = None) -> Response:
        await save(lc.merge(await load(), body))
        return Response(status_code=202)

    @router.get("/config/all", dependencies=[CONFIG])
    async def get_all() -> lc.LookupsConfig:
        return await load()

    @router.get("/config/{tier}", dependencies=[CONFIG])
    async def get_tier(tier: str) -> list[str]:
        return sorted(tier_of(await load(), tier))

    @router.delete("/config/{tier}", dependencies=[CONFIG])
    async def delete_tier(tier: str) -> Response:
        config = await load()
        tier_of(config, tier)
        del config[tier]
        await save(config)
        return Response(status_code=202)

    @router.get("/config/{tier}/{lookup_id}", dependencies=[CONFIG])
    async def get_lookup(tier: str, lookup_id: str) -> lc.Container:
        found = tier_of(await load(), tier).get(lookup_id)
        if found is None:
            raise NotFound(f"lookup [{lookup_id}] not found in tier [{tier}]")
        return found

    @router.post("/config/{tier}/{lookup_id}", dependencies=[CONFIG])
    async def update_lookup(
        tier: str, lookup_id: str, body: Annotated[Any, Body()] = None
    ) -> Response:
        await save(lc.merge(await load(), {tier: {lookup_id: body}}))
        return Response(status_code=202)

    @router.delete("/config/{tier}/{lookup_id}", dependencies=[CONFIG])
    async def delete_lookup(tier: str, lookup_id: str) -> Response:
        config = await load()
        lookups = tier_of(config, tier)
        if lookup_id not in lookups:
            raise NotFound(f"lookup [{lookup_id}] not found in tier [{tier}]")
        del lookups[lookup_id]
        await save(config)
        return Response(status_code=202)

    return router
