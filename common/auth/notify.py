"""Security changes reach every node over HTTP long polling (docs/long-polling.md).

The coordinator keeps a ``ChangeHistory`` of snapshot versions and serves it at
``/druid-internal/v1/security/changes``; every other node long-polls one coordinator with a
``ChangeRequestSyncer`` and re-fetches the cached maps as soon as a version arrives. This stands
in for Druid's push notifications to ``/druid-ext/basic-security/.../listen/...``; the periodic
fetch (``druid.auth.basic.common.pollingPeriod``) stays as the fallback, and a node whose
coordinator disappears from discovery follows another one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from common.aio import TaskGroup
from common.auth.clients import InternalClients
from common.longpoll import ChangeHistory, ChangeRequestSyncer

log = logging.getLogger(__name__)

CHANGES_PATH = "/druid-internal/v1/security/changes"
#: Seconds a change long-poll is held by the coordinator.
CHANGES_HOLD = 60.0


class VersionHistory:
    """The coordinator's side: one item (the new version number) per changed snapshot."""

    def __init__(self) -> None:
        self.history: ChangeHistory[int] = ChangeHistory(max_size=100)
        self.version = 0

    def changed(self) -> None:
        self.version += 1
        self.history.add([self.version])

    def current(self) -> list[int]:
        return [self.version]


async def follow_changes(
    coordinators: Callable[[], list[str]],
    clients: InternalClients,
    wake: asyncio.Event,
    recheck_every: float,
) -> None:
    """Long-poll a discovered coordinator's version history; set ``wake`` on every answer.

    Runs until cancelled; switches coordinator when the followed one leaves discovery.
    """
    client = clients.new()
    tasks = TaskGroup("security-changes")
    syncer: ChangeRequestSyncer[int] | None = None
    following: str | None = None
    try:
        while True:
            urls = coordinators()
            if following not in urls:
                if syncer is not None:
                    await syncer.stop()
                    syncer = None
                following = urls[0] if urls else None
                if following is not None:
                    syncer = ChangeRequestSyncer(
                        following,
                        CHANGES_PATH,
                        items=int,
                        full_sync=lambda _: wake.set(),
                        delta_sync=lambda _: wake.set(),
                        server_timeout=CHANGES_HOLD,
                        client=client,
                        name=f"security-changes@{following}",
                    )
                    syncer.start(tasks)
                    log.info("following security changes of %s", following)
            await asyncio.sleep(recheck_every if following else 0.5)
    finally:
        if syncer is not None:
            await syncer.stop()
        await tasks.close()
        await client.aclose()
