"""The broker's SQL ``Catalog``: what INFORMATION_SCHEMA and the ``sys`` tables read.

- Datasources and their columns: the broker's own timeline, columns from a merged
  ``segmentMetadata`` query run in-process, cached until the datasource's segments change.
- ``sys.servers``: discovery (every role), data-node sizes from the inventory, leaders asked of
  the coordinator and overlord. ``sys.server_segments``: the inventory.
- ``sys.segments``: the coordinator leader's used segments (``/metadata/datasources?full``),
  joined with the broker's view for availability, replicas and realtime segments.
- ``sys.tasks`` / ``sys.supervisors``: the overlord leader's task and supervisor lists.

The coordinator and overlord are found through discovery; a follower redirects (307) to its
leader, and the redirect is followed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from common.discovery.node import NODE_ROLES, DiscoveryDruidNode, NodeRole
from common.errors import PlanValidationError, ServiceUnavailable
from common.ids import url_id
from common.query.sql.system import (
    Served,
    ServerInfo,
    segment_rows,
    server_rows,
    server_segment_rows,
    supervisor_rows,
    task_rows,
)
from common.segments.segment import DataSegment
from services.broker.service import BrokerService

NativeRunner = Callable[[dict[str, Any]], Awaitable[list[dict[str, Any]]]]
_SEGMENTS_PATH = "/druid/coordinator/v1/metadata/datasources?full"
_LEADER_PATHS: dict[NodeRole, str] = {
    "coordinator": "/druid/coordinator/v1/leader",
    "overlord": "/druid/indexer/v1/leader",
}
_TIMEOUT_S = 10.0


class BrokerCatalog:
    def __init__(self, service: BrokerService, run_native: NativeRunner) -> None:
        self.service = service
        self.run_native = run_native
        self._columns: dict[str, tuple[frozenset[str], dict[str, str]]] = {}

    async def datasources(self) -> list[str]:
        return self.service.view.data_sources()

    def _segment_ids(self, datasource: str) -> frozenset[str]:
        timeline = self.service.view.timeline(datasource)
        if timeline is None:
            return frozenset()
        return frozenset(s.identifier for h in timeline.iter_all() for s in h.objects)

    async def columns(self, datasource: str) -> dict[str, str] | None:
        ids = self._segment_ids(datasource)
        if not ids:
            return None
        cached = self._columns.get(datasource)
        if cached is not None and cached[0] == ids:
            return cached[1]
        result = await self.run_native(
            {
                "queryType": "segmentMetadata",
                "dataSource": datasource,
                "merge": True,
                "analysisTypes": [],
                "context": {"queryId": f"sql-schema-{url_id(datasource)}-{uuid.uuid4()}"},
            }
        )
        if not result:
            return None
        cols: dict[str, Any] = result[0].get("columns", {})
        out = {"__time": "LONG"} if "__time" in cols else {}
        for name in sorted(c for c in cols if c != "__time"):
            out[name] = str(cols[name].get("type") or "STRING")
        self._columns[datasource] = (ids, out)
        return out

    async def system_rows(self, table: str) -> list[dict[str, Any]]:
        if table == "SYS.SERVERS":
            return server_rows(await self._servers())
        if table == "SYS.SERVER_SEGMENTS":
            inv = self.service.inventory.servers()
            return server_segment_rows({s.name: [str(i) for i in s.segments] for s in inv})
        if table == "SYS.SEGMENTS":
            full = await self._leader_get(
                "coordinator", "/druid/coordinator/v1/metadata/datasources?full"
            )
            published = [DataSegment.from_json(s) for ds in full for s in ds["segments"]]
            return segment_rows(published, self._served())
        if table == "SYS.TASKS":
            return task_rows(await self._leader_get("overlord", "/druid/indexer/v1/tasks"))
        if table == "SYS.SUPERVISORS":
            sups = await self._leader_get("overlord", "/druid/indexer/v1/supervisor?full")
            return supervisor_rows(sups)
        raise PlanValidationError(f"System table [{table.lower()}] is not available")

    def _served(self) -> list[Served]:
        view = self.service.view
        out = []
        for ds in view.data_sources():
            timeline = view.timeline(ds)
            if timeline is None:
                continue
            for holder in timeline.iter_all():
                for seg in holder.objects:
                    refs = view.servers_of(seg.id)
                    out.append(Served(seg, tuple((r.name, r.server_type) for r in refs)))
        return out

    async def _servers(self) -> list[ServerInfo]:
        inventory = {s.name: s for s in self.service.inventory.servers()}
        leaders = {role: await self._leader_url(role) for role in _LEADER_PATHS}
        out = []
        for role in NODE_ROLES:
            for node in await self._nodes(role):
                data = inventory.get(node.host_and_port)
                leader = leaders.get(role, "")
                out.append(
                    ServerInfo(
                        host=node.druid_node.host,
                        plaintext_port=node.druid_node.plaintext_port,
                        tls_port=node.druid_node.tls_port,
                        role=role,
                        start_time=node.start_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                        tier=data.tier if data else None,
                        curr_size=data.curr_size if data else None,
                        max_size=data.max_size if data else None,
                        is_leader=(node.url == leader) if role in _LEADER_PATHS else None,
                    )
                )
        return out

    async def _nodes(self, role: NodeRole) -> list[DiscoveryDruidNode]:
        watcher = self.service.provider.get_for_node_role(role)
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                return await watcher.wait_initialized()
        except TimeoutError:
            return watcher.get_all_nodes()

    async def _leader_url(self, role: NodeRole) -> str:
        """The leader's URL as a node of ``role`` reports it ("" when none answers)."""
        for node in await self._nodes(role):
            try:
                resp = await self.service.http.get(
                    node.url + _LEADER_PATHS[role], timeout=_TIMEOUT_S
                )
            except httpx.HTTPError:
                continue
            if resp.status_code == 200 and resp.text:
                return resp.text.strip()
        return ""

    async def _leader_get(self, role: NodeRole, path: str) -> Any:
        """GET ``path`` from the leader of ``role``, through any node of it."""
        errors: list[str] = []
        for node in await self._nodes(role):
            try:
                resp = await self.service.http.get(
                    node.url + path, timeout=_TIMEOUT_S, follow_redirects=True
                )
            except httpx.HTTPError as exc:
                errors.append(f"{node.url}: {exc!r}")
                continue
            if resp.status_code == 200:
                return resp.json()
            errors.append(f"{node.url}: HTTP {resp.status_code}")
        raise ServiceUnavailable(
            f"No {role} answered {path}" + (f" ({'; '.join(errors)})" if errors else "")
        )
