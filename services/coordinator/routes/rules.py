"""Retention rules API, as Druid's ``RulesResource`` (``/druid/coordinator/v1/rules``).

History, as Druid's audit manager answers it: with ``interval``, the changes made within it;
else with ``count``, the newest ``count``; else the changes of the last week
(``druid.audit.manager.auditHistoryMillis``, default 7 days)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query

from common.auth.declare import STATE, datasource_param
from common.config import JAVA_INT_MAX
from common.metadata import DEFAULT_DATASOURCE
from common.segments.intervals import Interval
from common.segments.isotime import parse_iso
from services.coordinator.rules import parse_rules, rules_json
from services.coordinator.service import CoordinatorService

#: Druid's ``druid.audit.manager.auditHistoryMillis`` default.
AUDIT_HISTORY_MS = 7 * 24 * 3600 * 1000


def filter_history(
    entries: list[dict[str, Any]], interval: str | None, count: int | None, now_ms: int
) -> list[dict[str, Any]]:
    """``entries`` (newest first, already at most ``count``) as Druid's ``fetchAuditHistory``."""
    if interval is None and count is not None:
        return entries
    window = (
        Interval(now_ms - AUDIT_HISTORY_MS, now_ms)
        if interval is None
        else Interval.parse(interval.replace("_", "/"))
    )
    return [e for e in entries if window.contains(parse_iso(e["auditTime"]))]


def rules_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1/rules", tags=["rules"])

    @router.get("", dependencies=[STATE])
    async def all_rules() -> dict[str, list[dict[str, Any]]]:
        return await service.store.get_rules()

    @router.get("/history", dependencies=[STATE])
    async def all_history(
        count: Annotated[int | None, Query(ge=1, le=JAVA_INT_MAX)] = None,
        interval: str | None = None,
    ) -> list[dict[str, Any]]:
        entries = await service.store.rules_history(None, None if interval else count)
        return filter_history(entries, interval, count, int(time.time() * 1000))

    @router.get("/{data_source}", dependencies=[datasource_param("data_source")])
    async def rules_of(data_source: str, full: str | None = None) -> list[dict[str, Any]]:
        rules = await service.store.get_rules()
        mine = list(rules.get(data_source, []))
        if full is not None and data_source != DEFAULT_DATASOURCE:
            mine += rules.get(DEFAULT_DATASOURCE, [])
        return mine

    @router.post("/{data_source}", dependencies=[datasource_param("data_source")])
    async def set_rules(
        data_source: str,
        body: Annotated[Any, Body()],
        author: Annotated[str, Header(alias="X-Druid-Author")] = "",
        comment: Annotated[str, Header(alias="X-Druid-Comment")] = "",
    ) -> dict[str, Any]:
        rules = rules_json(parse_rules(body))
        await service.store.set_rules(data_source, rules, author=author, comment=comment)
        return {}

    @router.get("/{data_source}/history", dependencies=[datasource_param("data_source")])
    async def history_of(
        data_source: str,
        count: Annotated[int | None, Query(ge=1, le=JAVA_INT_MAX)] = None,
        interval: str | None = None,
    ) -> list[dict[str, Any]]:
        entries = await service.store.rules_history(data_source, None if interval else count)
        return filter_history(entries, interval, count, int(time.time() * 1000))

    return router
