"""The HTTP load queue to one historical: Druid's ``HttpLoadQueuePeon`` (druid-internals 3.5).

Holders are kept in Druid's order: by action (``DROP``, ``LOAD``, ``REPLICATE``, ``MOVE_TO``),
then newest interval first. The loop takes up to ``batch_size`` holders (the server's
``numLoadingThreads`` from ``loadCapabilities``, 1 when that cannot be read) and POSTs them to
``/druid-internal/v1/segments/changeRequests?timeout=<hostTimeoutMs>``; the historical answers
as soon as one of them finishes. 200: SUCCESS/FAILED holders complete and their callbacks run,
PENDING ones stay queued (a repeated request is idempotent on the historical); 204: go again;
anything else: wait ``repeat_delay`` (or a new request). A holder sent more than ``load_timeout``
ago fails with "timed out". ``stop()`` fails everything still queued.

Completed operations are remembered for a while (``recent_loads`` / ``recent_drops``) because the
historical's announcement of the change reaches the inventory on another connection, maybe later;
the coordinator counts them until the inventory agrees, so a replica is not assigned twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import httpx

from common.aio import TaskGroup, cancel_and_wait, wait_event
from common.segments.segment import DataSegment, SegmentId
from common.serverview.changes import SegmentChangeRequest

log = logging.getLogger(__name__)

CHANGE_REQUESTS_PATH = "/druid-internal/v1/segments/changeRequests"
LOAD_CAPABILITIES_PATH = "/druid-internal/v1/segments/loadCapabilities"
#: Druid's ``druid.coordinator.loadqueuepeon.http.hostTimeout`` default (PT5M).
HOST_TIMEOUT = 300.0
#: Druid's ``druid.coordinator.loadqueuepeon.http.repeatDelay`` default (PT1M).
REPEAT_DELAY = 60.0
#: Druid's fixed ``DEFAULT_LOAD_TIMEOUT`` (15 minutes).
LOAD_TIMEOUT = 900.0
#: How long a completed load/drop is counted while its announcement is on its way.
RECENT_TTL = 60.0
CAPABILITIES_TIMEOUT = 10.0

Callback = Callable[[bool], None]


class Action(IntEnum):
    """Druid's ``SegmentAction``, in queue priority order."""

    DROP = 0
    LOAD = 1
    REPLICATE = 2
    MOVE_TO = 3

    @property
    def is_load(self) -> bool:
        return self is not Action.DROP


@dataclass(eq=False)
class SegmentHolder:
    segment: DataSegment
    action: Action
    callbacks: list[Callback] = field(default_factory=list)
    first_sent: float | None = None

    def sort_key(self) -> tuple[int, int, int, str]:
        """Druid's order: by action (DROP, LOAD, REPLICATE, MOVE_TO), then newest interval (by
        end, then start) first, so first replicas go before extra ones."""
        iv = self.segment.interval
        return (int(self.action), -iv.end, -iv.start, str(self.segment.id))

    def change_request(self) -> dict[str, Any]:
        if self.action is Action.DROP:
            return SegmentChangeRequest.drop(self.segment).to_json()
        return SegmentChangeRequest.load(self.segment).to_json()

    def timed_out(self, now: float, load_timeout: float) -> bool:
        return self.first_sent is not None and now - self.first_sent > load_timeout


def order_holders(holders: list[SegmentHolder]) -> list[SegmentHolder]:
    return sorted(holders, key=SegmentHolder.sort_key)


def next_batch(
    holders: list[SegmentHolder], batch_size: int, now: float, load_timeout: float
) -> tuple[list[SegmentHolder], list[SegmentHolder]]:
    """(batch to send, holders that timed out), the batch in queue order."""
    expired = [h for h in holders if h.timed_out(now, load_timeout)]
    live = [h for h in order_holders(holders) if h not in expired]
    return live[: max(1, batch_size)], expired


class HttpLoadQueuePeon:
    def __init__(
        self,
        server_name: str,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        host_timeout: float = HOST_TIMEOUT,
        repeat_delay: float = REPEAT_DELAY,
        load_timeout: float = LOAD_TIMEOUT,
        batch_size: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server_name = server_name
        self.base_url = base_url.rstrip("/")
        self._client = client
        self.host_timeout = host_timeout
        self.repeat_delay = repeat_delay
        self.load_timeout = load_timeout
        self.batch_size = batch_size
        self._clock = clock
        self._loads: dict[SegmentId, SegmentHolder] = {}
        self._drops: dict[SegmentId, SegmentHolder] = {}
        self.recent_loads: dict[SegmentId, tuple[DataSegment, float]] = {}
        self.recent_drops: dict[SegmentId, tuple[DataSegment, float]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # ---- queue view
    @property
    def segments_to_load(self) -> list[DataSegment]:
        return [h.segment for h in order_holders(list(self._loads.values()))]

    @property
    def segments_to_drop(self) -> list[DataSegment]:
        return [h.segment for h in order_holders(list(self._drops.values()))]

    def load_action(self, sid: SegmentId) -> Action | None:
        h = self._loads.get(sid)
        return h.action if h else None

    def queue_json(self, mode: str) -> dict[str, Any]:
        """One server's entry of ``GET /loadqueue`` (``simple``, ``full`` or ids)."""
        loads, drops = self.segments_to_load, self.segments_to_drop
        if mode == "simple":
            return {
                "segmentsToLoad": len(loads),
                "segmentsToDrop": len(drops),
                "segmentsToLoadSize": sum(s.size for s in loads),
                "segmentsToDropSize": sum(s.size for s in drops),
            }
        if mode == "full":
            return {
                "segmentsToLoad": [s.to_json() for s in loads],
                "segmentsToDrop": [s.to_json() for s in drops],
            }
        return {
            "segmentsToLoad": [s.identifier for s in loads],
            "segmentsToDrop": [s.identifier for s in drops],
        }

    # ---- requests
    def load(
        self, segment: DataSegment, action: Action = Action.LOAD, callback: Callback | None = None
    ) -> None:
        self._add(self._loads, self._drops, segment, action, callback)

    def drop(self, segment: DataSegment, callback: Callback | None = None) -> None:
        self._add(self._drops, self._loads, segment, Action.DROP, callback)

    def cancel(self, sid: SegmentId) -> bool:
        """Cancel a queued load or drop not sent yet; its callbacks get a failure."""
        for queue in (self._loads, self._drops):
            h = queue.get(sid)
            if h is not None and h.first_sent is None:
                del queue[sid]
                _run_callbacks(h, False)
                return True
        return False

    def _add(
        self,
        queue: dict[SegmentId, SegmentHolder],
        opposite: dict[SegmentId, SegmentHolder],
        segment: DataSegment,
        action: Action,
        callback: Callback | None,
    ) -> None:
        if self._stopped:
            if callback is not None:
                callback(False)
            return
        sid = segment.id
        # A load replaces a drop not yet sent (and vice versa), as Druid cancels the opposite op.
        if sid in opposite:
            self.cancel(sid)
        holder = queue.get(sid)
        if holder is None:
            holder = queue[sid] = SegmentHolder(segment, action)
        if callback is not None:
            holder.callbacks.append(callback)
        self._wake.set()

    # ---- lifecycle
    def start(self, tasks: TaskGroup) -> None:
        self._task = tasks.start(self._run(), f"loadqueue:{self.server_name}")

    async def stop(self) -> None:
        """Stop the loop and fail every queued request."""
        self._stopped = True
        try:
            if self._task is not None:
                await cancel_and_wait([self._task])
        finally:
            self._task = None
            holders = list(self._loads.values()) + list(self._drops.values())
            self._loads.clear()
            self._drops.clear()
            for h in holders:
                _run_callbacks(h, False)

    async def _run(self) -> None:
        if self.batch_size is None:
            self.batch_size = await self._fetch_batch_size()
        while True:
            self._wake.clear()
            holders = list(self._loads.values()) + list(self._drops.values())
            batch, expired = next_batch(holders, self.batch_size, self._clock(), self.load_timeout)
            for h in expired:
                log.warning("%s: %s of %s timed out", self.server_name, h.action.name, h.segment.id)
                self._complete(h, False)
            if not batch:
                await self._wake.wait()
                continue
            if not await self._send(batch):
                await wait_event(self._wake, self.repeat_delay)

    async def _fetch_batch_size(self) -> int:
        try:
            resp = await self._client.get(
                self.base_url + LOAD_CAPABILITIES_PATH, timeout=CAPABILITIES_TIMEOUT
            )
            if resp.status_code == 200:
                n = resp.json().get("numLoadingThreads")
                if isinstance(n, int) and n >= 1:
                    return n
            log.info(
                "%s: no loadCapabilities (HTTP %s); batch size 1",
                self.server_name,
                resp.status_code,
            )
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.info("%s: loadCapabilities failed (%s); batch size 1", self.server_name, exc)
        return 1

    async def _send(self, batch: list[SegmentHolder]) -> bool:
        """POST one batch; False when the server could not be asked (wait before retrying)."""
        now = self._clock()
        for h in batch:
            if h.first_sent is None:
                h.first_sent = now
        try:
            resp = await self._client.post(
                self.base_url + CHANGE_REQUESTS_PATH,
                params={"timeout": int(self.host_timeout * 1000)},
                json=[h.change_request() for h in batch],
                headers={"Accept": "application/json"},
                timeout=self.host_timeout + 5.0,
            )
        except httpx.HTTPError as exc:
            log.warning("%s: change requests failed: %r", self.server_name, exc)
            return False
        if resp.status_code == 204:
            return True
        if resp.status_code != 200:
            log.warning(
                "%s: change requests answered HTTP %s: %s",
                self.server_name,
                resp.status_code,
                resp.text[:500],
            )
            return False
        try:
            self._apply(batch, resp.json())
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("%s: bad change request response: %s", self.server_name, exc)
            return False
        return True

    def _apply(self, batch: list[SegmentHolder], body: Any) -> None:
        by_key = {(h.action is Action.DROP, h.segment.identifier): h for h in batch}
        for item in body:
            request = item["request"]
            state = item["status"]["state"]
            key = (request.get("action") == "drop", _identifier(request))
            holder = by_key.get(key)
            if holder is None or state == "PENDING":
                continue
            if state == "FAILED":
                log.warning(
                    "%s: %s of %s failed: %s",
                    self.server_name,
                    holder.action.name,
                    holder.segment.id,
                    item["status"].get("failureCause"),
                )
            self._complete(holder, state == "SUCCESS")

    def _complete(self, holder: SegmentHolder, success: bool) -> None:
        sid = holder.segment.id
        queue = self._drops if holder.action is Action.DROP else self._loads
        if queue.get(sid) is holder:
            del queue[sid]
        if success:
            recent = self.recent_drops if holder.action is Action.DROP else self.recent_loads
            other = self.recent_loads if holder.action is Action.DROP else self.recent_drops
            recent[sid] = (holder.segment, self._clock())
            other.pop(sid, None)
        _run_callbacks(holder, success)

    def prune_recent(self, served: set[SegmentId] | dict[SegmentId, Any]) -> None:
        """Forget completed ops the inventory now reflects, or that are older than RECENT_TTL."""
        now = self._clock()
        for sid, (_, at) in list(self.recent_loads.items()):
            if sid in served or now - at > RECENT_TTL:
                del self.recent_loads[sid]
        for sid, (_, at) in list(self.recent_drops.items()):
            if sid not in served or now - at > RECENT_TTL:
                del self.recent_drops[sid]


def _identifier(request: dict[str, Any]) -> str:
    ident = request.get("identifier")
    if isinstance(ident, str):
        return ident
    segment = SegmentChangeRequest.from_json(request).segment
    return segment.identifier if segment else ""


def _run_callbacks(holder: SegmentHolder, success: bool) -> None:
    for cb in holder.callbacks:
        try:
            cb(success)
        except Exception:
            log.exception("load queue callback failed for %s", holder.segment.id)
