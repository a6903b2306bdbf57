"""SQL as the asking user sees it (Druid's ``AuthorizableOperator`` / system-schema filtering).

A per-request view of the broker's catalog: INFORMATION_SCHEMA lists only datasources the user
may READ; a ``sys`` table needs SYSTEM_TABLE READ on its name and its rows are cut to the
datasources the user may READ (``sys.servers`` and ``sys.server_segments`` need STATE READ, as
Druid's ``SystemSchema``). Every native query the plan runs needs READ on its datasource (403).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from common.auth.declare import Forbidden, allowed, authorize_datasources, filtered, require
from common.auth.model import Action, ResourceType
from common.lookups.datasource import inline_lookups
from common.query.models import parse_query
from common.query.sql.runner import NativeResult, NativeRunner
from services.broker.sql_catalog import BrokerCatalog

_STATE_TABLES = {"SYS.SERVERS", "SYS.SERVER_SEGMENTS"}


class UserCatalog:
    def __init__(self, catalog: BrokerCatalog, request: Request) -> None:
        self._catalog = catalog
        self._request = request

    async def datasources(self) -> list[str]:
        visible = [
            ds
            for ds in await self._catalog.datasources()
            if allowed(self._request, ResourceType.DATASOURCE, ds)
        ]
        filtered(self._request)
        return visible

    async def columns(self, datasource: str) -> dict[str, str] | None:
        return await self._catalog.columns(datasource)

    async def system_rows(self, table: str) -> list[dict[str, Any]]:
        name = table.removeprefix("SYS.").lower()
        require(self._request, ResourceType.SYSTEM_TABLE, name, Action.READ)
        if table in _STATE_TABLES:
            require(self._request, ResourceType.STATE, "STATE", Action.READ)
        rows = await self._catalog.system_rows(table)
        return [
            r
            for r in rows
            if "datasource" not in r
            or r["datasource"] is None
            or allowed(self._request, ResourceType.DATASOURCE, str(r["datasource"]))
        ]


def read_tables(body: dict[str, Any]) -> list[str]:
    """The table a planned native query reads. A lookup needs no permission: as in Druid, any
    authenticated user may read any lookup (``lookup.<name>``, a join's lookup side)."""
    ds = body.get("dataSource")
    if isinstance(ds, dict) and ds.get("type") == "lookup":
        return []
    # A table names itself; anything else (a join, a query, a union) takes parsing. The runner
    # parses the query again to run it (a parse: ~0.15 ms for a timeseries with expressions).
    if isinstance(ds, str):
        return [ds]
    if isinstance(ds, dict) and ds.get("type") == "table" and isinstance(ds.get("name"), str):
        return [ds["name"]]
    return [parse_query(inline_lookups(body, lambda _name: {})).dataSource]


def authorized_runner(run_native: NativeRunner, request: Request) -> NativeRunner:
    async def run(body: dict[str, Any]) -> NativeResult:
        authorize_datasources(request, read_tables(body))
        return await run_native(body)

    return run


__all__ = ["Forbidden", "UserCatalog", "authorized_runner"]
