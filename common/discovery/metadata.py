"""The ``metadata`` discovery backend: the discovery contracts on the SQL metadata store.

For one machine and docker-compose, where there is no Kubernetes API.

* Announce: upsert a row ``(role, host:port, node JSON, heartbeat)`` and refresh the heartbeat every
  ``heartbeatPeriod``; unannounce deletes the row. A row whose heartbeat is older than ``nodeTtl``
  is treated as gone: that is how a crashed (kill -9) process disappears.
* Discover: one poll loop per process reads all node rows every ``pollPeriod`` and feeds each role
  watcher with a full read (the watcher emits only the difference).
* Leader lock: a row in ``druid_leases`` updated only by ``UPDATE ... WHERE version = :seen``, the
  same compare-and-swap as a Kubernetes ``resourceVersion``.

Heartbeats are wall-clock seconds written by the node and judged by the reader's wall clock; the
processes of one machine or one compose project share a kernel clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from common.aio import Backoff, TaskGroup, wait_event
from common.config import MetadataDiscoverySettings
from common.discovery.base import NodeAnnouncer, NodeDiscoveryProvider, NodeRoleWatcher
from common.discovery.leader import LeaderRecord
from common.discovery.node import DiscoveryDruidNode
from common.errors import InvalidInput
from common.metadata import MetadataStore, NodeRow

log = logging.getLogger(__name__)


class MetadataAnnouncer(NodeAnnouncer):
    def __init__(
        self,
        store: MetadataStore,
        settings: MetadataDiscoverySettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._announced: dict[tuple[str, str], DiscoveryDruidNode] = {}
        self._tasks = TaskGroup("metadata-announcer")
        self._heartbeat: asyncio.Task[None] | None = None

    async def announce(self, node: DiscoveryDruidNode) -> None:
        key = (node.node_role, node.host_and_port)
        await self._store.upsert_node(key[0], key[1], node.to_json(), self._clock())
        self._announced[key] = node
        if self._heartbeat is None:
            self._heartbeat = self._tasks.start(self._beat(), "heartbeat")
        log.info("announced %s %s", node.node_role, node.host_and_port)

    async def unannounce(self, node: DiscoveryDruidNode) -> None:
        key = (node.node_role, node.host_and_port)
        self._announced.pop(key, None)
        try:
            await self._store.delete_node(*key)
        except Exception as exc:
            # Druid only logs a failed unannounce: it happens at shutdown, and the TTL cleans up.
            log.warning("unannounce of %s %s failed: %s", key[0], key[1], exc)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat_period)
            for (role, hp), node in list(self._announced.items()):
                try:
                    await self._store.upsert_node(role, hp, node.to_json(), self._clock())
                except Exception as exc:
                    log.warning("heartbeat of %s %s failed: %s", role, hp, exc)

    async def close(self) -> None:
        await self._tasks.close()


class MetadataNodeDiscoveryProvider(NodeDiscoveryProvider):
    def __init__(
        self,
        store: MetadataStore,
        settings: MetadataDiscoverySettings,
        initialization_timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._store = store
        self._settings = settings
        self._init_timeout = initialization_timeout
        self._clock = clock
        self._tasks = TaskGroup("metadata-discovery")
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def _start_watching(self, watcher: NodeRoleWatcher) -> None:
        if self._poller is None:
            self._poller = self._tasks.start(self._poll(), "poll-nodes")
        self._tasks.start(self._init_timeout_for(watcher), f"init-timeout-{watcher.role}")
        self._wake.set()  # a new watcher gets its first read now, not after a poll period

    async def _init_timeout_for(self, watcher: NodeRoleWatcher) -> None:
        if not await wait_event(watcher.initialized, self._init_timeout):
            watcher.cache_initialized(timed_out=True)

    def _alive(self, row: NodeRow, now: float) -> bool:
        return now - row.heartbeat <= self._settings.node_ttl

    def _parse(self, row: NodeRow) -> DiscoveryDruidNode | None:
        try:
            return DiscoveryDruidNode.from_json(row.payload)
        except InvalidInput as exc:
            log.warning("skipping node row %s %s: %s", row.role, row.host_and_port, exc)
            return None

    async def _poll(self) -> None:
        backoff = Backoff(base=self._settings.poll_period, cap=30.0)
        while True:
            try:
                rows = await self._store.list_nodes()
            except Exception as exc:
                delay = backoff.next_delay() or self._settings.poll_period
                log.warning("listing nodes failed (retrying in %.1fs): %s", delay, exc)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            now = self._clock()
            by_role: dict[str, list[DiscoveryDruidNode]] = {}
            for row in rows:
                if self._alive(row, now) and (node := self._parse(row)) is not None:
                    by_role.setdefault(row.role, []).append(node)
            for role, watcher in list(self._watchers.items()):
                watcher.reset_nodes(by_role.get(role, []))
                watcher.cache_initialized()
            self._wake.clear()
            await wait_event(self._wake, self._settings.poll_period)

    async def is_discoverable(self, node: DiscoveryDruidNode) -> bool:
        rows = await self._store.list_nodes(node.node_role)
        now = self._clock()
        return any(r.host_and_port == node.host_and_port and self._alive(r, now) for r in rows)

    async def close(self) -> None:
        await self._tasks.close()


class MetadataLeaseLock:
    """A ``LeaseLock`` on a ``druid_leases`` row (compare-and-swap on its version column)."""

    def __init__(self, store: MetadataStore, name: str) -> None:
        self._store = store
        self.name = name

    async def get(self) -> tuple[LeaderRecord | None, str] | None:
        row = await self._store.read_lease(self.name)
        if row is None:
            return None
        return LeaderRecord.from_json(row.payload), str(row.version)

    async def create(self, record: LeaderRecord) -> bool:
        return await self._store.create_lease(self.name, record.to_json())

    async def update(self, record: LeaderRecord, version: str) -> bool:
        return await self._store.update_lease(self.name, record.to_json(), int(version))

    def describe(self) -> str:
        return f"lease row {self.name!r}"
