"""Finding and talking to the leader of a role (Druid's ``DruidLeaderClient``).

Any announced node of the role answers ``GET <prefix>/leader`` with the leader's base URL; the
URL is cached until a request to it fails or answers 503. The peon uses it for task actions and
handoff, the coordinator to submit kill and compaction tasks to the overlord.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from common.discovery.base import NodeDiscoveryProvider
from common.discovery.node import NodeRole
from common.errors import ServiceUnavailable


class LeaderClient:
    """Finds and talks to the leader of ``role`` (``overlord`` or ``coordinator``)."""

    def __init__(
        self,
        provider: NodeDiscoveryProvider,
        role: NodeRole,
        prefix: str,
        http: httpx.AsyncClient,
    ) -> None:
        self.provider = provider
        self.role = role
        self.prefix = prefix
        self.http = http
        self._leader: str | None = None

    async def leader(self) -> str:
        if self._leader is not None:
            return self._leader
        nodes = self.provider.get_for_node_role(self.role).get_all_nodes()
        for node in nodes:
            try:
                r = await self.http.get(f"{node.url}{self.prefix}/leader", timeout=5.0)
            except httpx.HTTPError:
                continue
            if r.status_code == 200 and r.text.strip():
                self._leader = r.text.strip().rstrip("/")
                return self._leader
        raise ServiceUnavailable(f"no {self.role} leader is known")

    async def warm(self) -> None:
        """Look the leader up now if it is not known (a failure is left to the first request,
        which looks again)."""
        with contextlib.suppress(ServiceUnavailable):
            await self.leader()

    def forget(self) -> None:
        self._leader = None

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        """One request to the leader (redirects followed); a connection failure forgets it."""
        base = await self.leader()
        try:
            r = await self.http.request(
                method, base + path, json=json, params=params, follow_redirects=True
            )
        except httpx.HTTPError:
            self.forget()
            raise
        if r.status_code == 503:
            self.forget()
        return r
