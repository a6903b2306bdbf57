"""The broker's query capacity, as Jetty's pool behind Druid's ``/druid/v2``: ``concurrent``
queries run at once (``druid.server.http.numThreads``), up to ``max_queued`` more wait
(``druid.broker.http.maxQueuedRequests``), and one more is refused with 429 ``Query capacity
exceeded`` at once rather than queueing without bound."""

from __future__ import annotations

import asyncio

from common.errors import CapacityExceeded


class QueryLimiter:
    def __init__(self, concurrent: int, max_queued: int) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrent))
        self.concurrent = max(1, concurrent)
        self.max_queued = max(0, max_queued)
        self.waiting = 0

    async def __aenter__(self) -> None:
        if self._slots.locked():
            if self.waiting >= self.max_queued:
                raise CapacityExceeded(
                    f"Too many concurrent queries: {self.concurrent} running and "
                    f"{self.waiting} queued (druid.broker.http.maxQueuedRequests = "
                    f"{self.max_queued}). Please try your query again later."
                )
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()
