"""The discovery backend a process uses: announcer + node discovery + leader selectors, by type.

``druid.discovery.type`` picks it: ``metadata`` (this package, on the SQL store) or ``k8s``
(``common.k8s``, imported only when chosen so the metadata backend never loads kubernetes_asyncio).
"""

from __future__ import annotations

import abc
from typing import Literal, Protocol

from common.config import Settings
from common.discovery.base import NodeAnnouncer, NodeDiscoveryProvider
from common.discovery.leader import LeaderSelector, LeaseLock
from common.discovery.metadata import (
    MetadataAnnouncer,
    MetadataLeaseLock,
    MetadataNodeDiscoveryProvider,
)
from common.metadata import MetadataStore

LeaderRole = Literal["coordinator", "overlord"]


class LeaseTiming(Protocol):
    """A backend's lease settings in seconds: leaseDuration, renewDeadline, retryPeriod."""

    @property
    def lease_duration(self) -> float: ...

    @property
    def renew_deadline(self) -> float: ...

    @property
    def retry_period(self) -> float: ...


class DiscoveryBackend(abc.ABC):
    announcer: NodeAnnouncer
    provider: NodeDiscoveryProvider
    timing: LeaseTiming

    @abc.abstractmethod
    def leader_lock(self, role: LeaderRole) -> LeaseLock:
        """The lock object of the coordinator or overlord election."""

    def leader_selector(self, role: LeaderRole, identity: str) -> LeaderSelector:
        """A selector for the coordinator or overlord election; identity is the node's base URL."""
        return LeaderSelector(
            self.leader_lock(role),
            identity,
            role=role,
            lease_duration=self.timing.lease_duration,
            renew_deadline=self.timing.renew_deadline,
            retry_period=self.timing.retry_period,
        )

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop watchers and heartbeats (selectors are closed by their owners first)."""


class MetadataDiscoveryBackend(DiscoveryBackend):
    def __init__(self, settings: Settings, store: MetadataStore) -> None:
        self._settings = settings.metadata_discovery
        self.timing = settings.metadata_discovery
        self._store = store
        self._announcer = MetadataAnnouncer(store, self._settings)
        self.announcer = self._announcer
        self._provider = MetadataNodeDiscoveryProvider(
            store, self._settings, settings.discovery.initialization_timeout
        )
        self.provider = self._provider

    def leader_lock(self, role: LeaderRole) -> LeaseLock:
        return MetadataLeaseLock(self._store, f"leaderelection-{role}")

    async def close(self) -> None:
        await self._provider.close()
        await self._announcer.close()


async def open_discovery(settings: Settings, store: MetadataStore | None) -> DiscoveryBackend:
    """The backend ``druid.discovery.type`` names; ``metadata`` needs the store."""
    if settings.discovery.type == "k8s":
        from common.k8s.backend import K8sDiscoveryBackend

        return await K8sDiscoveryBackend.create(settings)
    if store is None:
        raise ValueError("the metadata discovery backend needs the metadata store")
    return MetadataDiscoveryBackend(settings, store)
