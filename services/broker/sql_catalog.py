"""The broker's SQL ``Catalog``: datasources and their columns from its own timeline (a merged
``segmentMetadata`` query run in-process), and ``sys.servers`` from the inventory view."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from common.errors import PlanValidationError
from services.broker.service import BrokerService

NativeRunner = Callable[[dict[str, Any]], Awaitable[list[dict[str, Any]]]]


class BrokerCatalog:
    def __init__(self, service: BrokerService, run_native: NativeRunner) -> None:
        self.service = service
        self.run_native = run_native

    async def datasources(self) -> list[str]:
        return self.service.view.data_sources()

    async def columns(self, datasource: str) -> dict[str, str] | None:
        if datasource not in self.service.view.data_sources():
            return None
        result = await self.run_native(
            {
                "queryType": "segmentMetadata",
                "dataSource": datasource,
                "merge": True,
                "analysisTypes": [],
                "context": {"queryId": f"sql-schema-{datasource}"},
            }
        )
        if not result:
            return None
        cols: dict[str, Any] = result[0].get("columns", {})
        out = {"__time": "LONG"} if "__time" in cols else {}
        for name in sorted(c for c in cols if c != "__time"):
            out[name] = str(cols[name].get("type") or "STRING")
        return out

    async def system_rows(self, table: str) -> list[dict[str, Any]]:
        if table == "SYS.SERVERS":
            rows = []
            for s in self.service.inventory.servers():
                host, _, port = s.name.rpartition(":")
                rows.append(
                    {
                        "server": s.name,
                        "host": host,
                        "plaintext_port": int(port) if port.isdigit() else None,
                        "tls_port": -1,
                        "server_type": s.server_type,
                        "tier": s.tier,
                        "curr_size": s.curr_size,
                        "max_size": s.max_size,
                        "is_leader": None,
                        "start_time": None,
                    }
                )
            return rows
        raise PlanValidationError(f"System table [{table.lower()}] is not available yet")
