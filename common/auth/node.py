"""A node's security: its snapshot, engine, internal clients and the refresh task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from common.aio import wait_event
from common.auth.clients import InternalClients
from common.auth.config import SecuritySettings
from common.auth.db import SecuritySnapshot
from common.auth.engine import SecurityEngine
from common.auth.notify import VersionHistory, follow_changes
from common.auth.sync import (
    StoreSecurity,
    fetch_from_coordinator,
    poll_forever,
    start_coordinator_pull,
)

if TYPE_CHECKING:
    from common.aio import TaskGroup
    from common.auth.sync import ConfigStore
    from common.metrics import NodeMetrics

log = logging.getLogger(__name__)

#: Druid's ``RetryUtils`` backoff between fetch attempts: 1 s doubling, capped at 60 s.
_RETRY_BASE, _RETRY_CAP = 1.0, 60.0


def first_fetch_wait(max_sync_retries: int) -> float:
    """How long a node waits at start for its first fetch of the security maps: as long as
    Druid's cache managers retry (``maxSyncRetries`` tries with ``RetryUtils``' backoff, about
    4 minutes with the default 10) before they start with nothing."""
    waits = [min(_RETRY_CAP, _RETRY_BASE * 2.0**i) for i in range(max(0, max_sync_retries - 1))]
    return float(sum(waits))


class NodeSecurity:
    def __init__(self, settings: SecuritySettings, metrics: NodeMetrics) -> None:
        self.settings = settings
        self.needs_db = bool(settings.basic_authenticators() or settings.basic_authorizers())
        self.snapshot = SecuritySnapshot(loaded=not self.needs_db)
        self._failures = metrics.counter(
            "auth/failed",
            "Requests refused with 401 (no or bad credentials), by reason.",
            ["reason"],
        )
        self._metric_labels = metrics.labels
        self.engine = SecurityEngine(settings, lambda: self.snapshot, self._failed)
        self.clients = InternalClients(settings)
        self.store_side: StoreSecurity | None = None
        #: The coordinator's version history (served to the other nodes' long polls).
        self.versions = VersionHistory()
        #: Set once this node holds the maps (at once when it needs none).
        self.loaded = asyncio.Event()
        if not self.needs_db:
            self.loaded.set()

    def _failed(self, reason: str, user: str | None) -> None:
        self._failures.labels(**self._metric_labels(reason=reason)).inc()

    def _publish(self, snapshot: SecuritySnapshot) -> None:
        old, self.snapshot = self.snapshot, snapshot
        if (old.authn, old.authz) != (snapshot.authn, snapshot.authz):
            self.versions.changed()
        if snapshot.loaded:
            self.loaded.set()

    async def wait_loaded(self, within: float) -> bool:
        """Until the maps are held (the first fetch on a node that is not a coordinator);
        False if ``within`` seconds passed first (the fetch keeps being retried)."""
        return await wait_event(self.loaded, within)

    async def start_owner(self, store: ConfigStore, tasks: TaskGroup) -> None:
        """On the coordinator: seed the initial users, load, and re-read periodically."""
        if not self.needs_db:
            return
        self.store_side = StoreSecurity(self.settings, store, self._publish)
        await self.store_side.seed()
        owner = self.store_side
        tasks.start(
            poll_forever(
                self.settings.polling_period, owner.reload, "security data from the store"
            ),
            name="security-store-poll",
        )

    def start_cache(self, coordinators: Callable[[], list[str]], tasks: TaskGroup) -> None:
        """Elsewhere: fetch from a coordinator now, on every change it long-polls to us, and
        every polling period."""
        if not self.needs_db:
            return
        wake = asyncio.Event()

        async def fetch(client: httpx.AsyncClient, url: str) -> None:
            self._publish(await fetch_from_coordinator(self.settings, client, url))

        start_coordinator_pull(
            tasks,
            "security-cache-poll",
            "security data",
            self.settings.polling_period,
            coordinators,
            self.clients.new(timeout=10.0),
            fetch,
            wake=wake,
        )
        tasks.start(
            follow_changes(
                coordinators, self.clients, wake, min(5.0, self.settings.polling_period)
            ),
            name="security-changes",
        )
