"""A broker's, historical's or peon's lookups: the ``map`` lookups of its tier, read from a
coordinator (``GET /druid/coordinator/v1/lookups/config/all`` with the internal client) at start
and then every ``druid.lookup.pollingPeriod``. Served on ``/druid/listen/v1/lookups``.

Druid pushes the lookups from the coordinator to each node (``/druid/listen/v1/lookups``); kdruid
pulls them instead (the same periodic pull the security cache uses), so a change reaches a node
within one polling period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common.auth.clients import InternalClients
from common.auth.sync import poll_forever
from common.lookups.config import Container, decode

if TYPE_CHECKING:
    from common.aio import TaskGroup

log = logging.getLogger(__name__)

CONFIG_ALL = "/druid/coordinator/v1/lookups/config/all"


class NodeLookups:
    def __init__(self, tier: str, period: float) -> None:
        self.tier = tier
        self.period = period
        #: lookupId -> container, as last read from the coordinator.
        self.containers: dict[str, Container] = {}
        self.loaded = False

    def apply(self, config: dict[str, dict[str, Container]]) -> None:
        self.containers = dict(config.get(self.tier, {}))
        self.loaded = True

    def get(self, name: str) -> dict[str, Any] | None:
        """The key -> value map of lookup ``name``, or None when this node has no such lookup."""
        container = self.containers.get(name)
        if container is None:
            return None
        mapping: dict[str, Any] = container["lookupExtractorFactory"]["map"]
        return mapping

    def start(
        self, coordinators: Callable[[], list[str]], clients: InternalClients, tasks: TaskGroup
    ) -> None:
        client = clients.new(timeout=10.0)

        async def refresh() -> None:
            urls = coordinators()
            if not urls:
                raise RuntimeError("no coordinator discovered yet")
            last: Exception | None = None
            for url in urls:
                try:
                    r = await client.get(url + CONFIG_ALL)
                    r.raise_for_status()
                    self.apply(decode(r.content))
                    return
                except Exception as exc:  # try the next coordinator
                    last = exc
            raise RuntimeError(f"no coordinator answered: {last}")

        async def run() -> None:
            try:
                await poll_forever(self.period, refresh, f"lookups of tier {self.tier}")
            finally:
                await client.aclose()

        tasks.start(run(), name="lookups-poll")
