"""A broker's, historical's or peon's lookups: the ``map`` lookups of its tier, read from a
coordinator (``GET /druid/coordinator/v1/lookups/config/all`` with the internal client) at start
and then every ``druid.lookup.pollingPeriod``. Served on ``/druid/listen/v1/lookups``, and the
``LookupProvider`` the node's queries evaluate ``lookup()``, lookup dimension specs and
extraction functions with (``common.expr.lookups``).

Druid pushes the lookups from the coordinator to each node (``/druid/listen/v1/lookups``); kdruid
pulls them instead (the same periodic pull the security cache uses, ``start_coordinator_pull``),
so a change reaches a node within one polling period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from common.auth.clients import InternalClients
from common.auth.sync import start_coordinator_pull
from common.expr.lookups import MapLookup
from common.lookups.config import Container, decode

if TYPE_CHECKING:
    from common.aio import TaskGroup

log = logging.getLogger(__name__)

CONFIG_ALL = "/druid/coordinator/v1/lookups/config/all"


def map_lookup(container: Container) -> MapLookup:
    """The extractor of a ``map`` lookup container (``injective``/``isOneToOne`` kept)."""
    factory = container["lookupExtractorFactory"]
    injective = bool(factory.get("injective") or factory.get("isOneToOne"))
    return MapLookup(dict(factory["map"]), injective)


class NodeLookups:
    def __init__(self, tier: str, period: float) -> None:
        self.tier = tier
        self.period = period
        #: lookupId -> container, as last read from the coordinator.
        self.containers: dict[str, Container] = {}
        self._extractors: dict[str, MapLookup] = {}
        self.loaded = False

    def apply(self, config: dict[str, dict[str, Container]]) -> None:
        containers = dict(config.get(self.tier, {}))
        old = self._extractors
        extractors = {}
        for name, container in containers.items():
            same = self.containers.get(name) == container and name in old
            extractors[name] = old[name] if same else map_lookup(container)
        # One assignment each: a query sees either the old or the new set.
        self._extractors = extractors
        self.containers = containers
        self.loaded = True

    def get(self, name: str) -> dict[str, Any] | None:
        """The key -> value map of lookup ``name``, or None when this node has no such lookup."""
        container = self.containers.get(name)
        if container is None:
            return None
        mapping: dict[str, Any] = container["lookupExtractorFactory"]["map"]
        return mapping

    # ---- LookupProvider
    def lookup(self, name: str) -> MapLookup | None:
        return self._extractors.get(name)

    def lookup_names(self) -> list[str]:
        return sorted(self._extractors)

    def start(
        self, coordinators: Callable[[], list[str]], clients: InternalClients, tasks: TaskGroup
    ) -> None:
        async def fetch(client: httpx.AsyncClient, url: str) -> None:
            r = await client.get(url + CONFIG_ALL)
            r.raise_for_status()
            self.apply(decode(r.content))

        start_coordinator_pull(
            tasks,
            "lookups-poll",
            f"lookups of tier {self.tier}",
            self.period,
            coordinators,
            clients.new(timeout=10.0),
            fetch,
        )
