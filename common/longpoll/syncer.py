"""Client side of HTTP long polling: Druid's ``ChangeRequestHttpSyncer`` (druid-internals 3.3).

A ``ChangeRequestSyncer`` keeps one remote ``ChangeHistory`` mirrored into a listener: it loops
``GET <base_url><path>?counter=-1&timeout=T`` (no counter yet) or ``?counter=C&hash=H&timeout=T``,
hands a full snapshot to ``full_sync`` and later changes to ``delta_sync``, starts over with a full
sync when the server answers ``resetCounter``, and backs off (full jitter, 2 min cap) on failures.

The listener callbacks are plain synchronous functions run on the event loop: the listener's
state changes atomically with respect to other coroutines, and the next poll is not sent until it
returns. A listener with slow work hands it to a task of its own.

Health follows Druid: ``is_synced_successfully``, ``unstable_time``, ``needs_reset`` and
``debug_info()``, all computed from an injected ``now`` clock so they are testable without sleeping.
``on_health_change(healthy)`` is called when the syncer turns healthy (a success with no failure
since) or unhealthy (a first failure): a first sync of an empty server, or a recovery that brings
no change, is news to whoever plans on synced servers only (the coordinator's duty loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx
import orjson
from pydantic import TypeAdapter

from common.aio import Backoff, TaskGroup, cancel_and_wait
from common.auth.clients import PLAIN_CLIENTS, InternalClients
from common.longpoll.history import ChangeRequestsSnapshot, Counter

log = logging.getLogger(__name__)

T = TypeVar("T")

HTTP_TIMEOUT_EXTRA = 5.0
"""Seconds the client waits beyond the server's hold (Druid's ``HTTP_TIMEOUT_EXTRA_MS``)."""
DEFAULT_SERVER_TIMEOUT = 240.0
"""Druid's ``druid.serverview.http.serverTimeout`` default, PT4M."""
MAX_BACKOFF = 120.0
"""Druid caps the delay between failed attempts at 2 minutes."""
NEEDS_RESET_EXTRA = 120.0

_SNAPSHOT = TypeAdapter(ChangeRequestsSnapshot[Any])


class ChangeRequestSyncer(Generic[T]):
    """Mirror one server's long-poll endpoint into ``full_sync`` / ``delta_sync`` callbacks.

    ``items`` turns each JSON item into a ``T``: a pydantic ``TypeAdapter`` or any function.
    ``client`` may be shared between syncers; it is then not closed by ``stop()``, and its pool
    limit must allow one parked connection per syncer (httpx's default is 100).
    """

    def __init__(
        self,
        base_url: str,
        path: str,
        *,
        items: TypeAdapter[T] | Callable[[Any], T],
        full_sync: Callable[[list[T]], None],
        delta_sync: Callable[[list[T]], None],
        server_timeout: float = DEFAULT_SERVER_TIMEOUT,
        client: httpx.AsyncClient | None = None,
        clients: InternalClients = PLAIN_CLIENTS,
        name: str | None = None,
        now: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        unstable_alert_after: float = 60.0,
        on_health_change: Callable[[bool], None] | None = None,
    ) -> None:
        if server_timeout <= 0:
            raise ValueError(f"server_timeout must be positive, got {server_timeout}")
        self.url = base_url.rstrip("/") + path
        self.name = name or self.url
        self.server_timeout = server_timeout
        self.max_duration_to_wait_for_sync = 3 * (server_timeout + HTTP_TIMEOUT_EXTRA)
        self.unstable_alert_after = unstable_alert_after
        self._parse: Callable[[Any], T] = (
            items.validate_python if isinstance(items, TypeAdapter) else items
        )
        self._full_sync = full_sync
        self._delta_sync = delta_sync
        self._client = client
        self._clients = clients
        self._own_client = client is None
        self._now = now
        self._backoff = backoff or Backoff(base=1.0, cap=MAX_BACKOFF)
        self._task: asyncio.Task[None] | None = None
        self._on_health_change = on_health_change
        self._reported_healthy = False

        self.counter: Counter | None = None
        self.consecutive_failures = 0
        self.initialized = asyncio.Event()
        self.last_request_at: float | None = None
        self.last_success_at: float | None = None
        self.unstable_since: float | None = None

    # ---- lifecycle

    def start(self, tasks: TaskGroup) -> None:
        """Run the sync loop as a task owned by ``tasks``."""
        if self._task is not None:
            raise RuntimeError(f"syncer {self.name} already started")
        self._task = tasks.start(self._run(), name=f"longpoll-sync:{self.name}")

    async def stop(self) -> None:
        """Cancel the loop (and any parked request) and close the client if it is ours."""
        try:
            if self._task is not None:
                await cancel_and_wait([self._task])
        finally:
            if self._own_client and self._client is not None:
                await self._client.aclose()
                self._client = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            delay = await self.sync_once()
            if delay > 0:
                await asyncio.sleep(delay)

    # ---- one exchange

    async def sync_once(self) -> float:
        """Send one request, apply its answer; return the seconds to wait before the next one."""
        sent_with = self.counter
        timeout_ms = round(self.server_timeout * 1000)
        if sent_with is None:
            params = {"counter": "-1", "timeout": str(timeout_ms)}
        else:
            params = {
                "counter": str(sent_with.counter),
                "hash": str(sent_with.hash),
                "timeout": str(timeout_ms),
            }
        self.last_request_at = self._now()
        try:
            response = await self._http().get(
                self.url,
                params=params,
                headers={"Accept": "application/json"},
                timeout=self.server_timeout + HTTP_TIMEOUT_EXTRA,
            )
            return self.handle_response(sent_with, response.status_code, response.content)
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            # Not a network failure: log the trace, but keep the loop alive like any failure.
            log.exception("%s: unexpected error in sync", self.name)
            return self._failed(f"{type(exc).__name__}: {exc}")

    def handle_response(self, sent_with: Counter | None, status: int, body: bytes) -> float:
        """Apply one answer to the request sent with ``sent_with``; return the next delay."""
        if status == 204:
            self._succeeded()
            return 0.0
        if status != 200:
            return self._failed(f"HTTP {status}: {body[:300]!r}")
        try:
            snapshot = _SNAPSHOT.validate_python(orjson.loads(body))
        except ValueError as exc:
            return self._failed(f"bad snapshot body: {exc}")
        if snapshot.reset_counter:
            if sent_with is None:
                # A reset of a full sync would loop forever without backing off.
                return self._failed(f"server reset a full sync: {snapshot.reset_cause}")
            log.info("%s: server asked for a reset: %s", self.name, snapshot.reset_cause)
            self.counter = None
            self._answered()
            return 0.0
        if snapshot.counter is None or snapshot.requests is None:
            return self._failed("snapshot without counter or requests")
        try:
            items = [self._parse(raw) for raw in snapshot.requests]
            if sent_with is None:
                self._full_sync(items)
            else:
                self._delta_sync(items)
        except Exception as exc:
            log.exception("%s: applying %d changes failed", self.name, len(snapshot.requests))
            return self._failed(f"applying changes failed: {type(exc).__name__}: {exc}")
        self.counter = snapshot.counter
        self._succeeded()
        self.initialized.set()
        return 0.0

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._clients.new()
        return self._client

    def _answered(self) -> None:
        """The server answered properly: whatever failed before is over."""
        if self.consecutive_failures:
            log.info("%s: sync recovered after %d failures", self.name, self.consecutive_failures)
        self.consecutive_failures = 0
        self.unstable_since = None
        self._backoff.reset()

    def _succeeded(self) -> None:
        self._answered()
        self.last_success_at = self._now()
        self._report_health()

    def _report_health(self) -> None:
        healthy = self.consecutive_failures == 0 and self.last_success_at is not None
        if healthy == self._reported_healthy:
            return
        self._reported_healthy = healthy
        if self._on_health_change is not None:
            try:
                self._on_health_change(healthy)
            except Exception:
                log.exception("%s: health listener failed", self.name)

    def _failed(self, reason: str) -> float:
        now = self._now()
        self.consecutive_failures += 1
        if self.unstable_since is None:
            self.unstable_since = now
        delay = min(MAX_BACKOFF, self._backoff.next_delay(now) or 0.0)
        unstable = now - self.unstable_since
        level = logging.WARNING if unstable > self.unstable_alert_after else logging.INFO
        log.log(
            level,
            "%s: sync failed (%d in a row, unstable for %.0f s), retrying in %.1f s: %s",
            self.name,
            self.consecutive_failures,
            unstable,
            delay,
            reason,
        )
        self._report_health()
        return delay

    # ---- health

    @property
    def is_synced_successfully(self) -> bool:
        """No current failures and a success within ``3 * (server_timeout + 5 s)``."""
        if self.consecutive_failures > 0 or self.last_success_at is None:
            return False
        return self._now() - self.last_success_at <= self.max_duration_to_wait_for_sync

    @property
    def unstable_time(self) -> float:
        """Seconds since the first of the current run of failures; 0 when stable."""
        return 0.0 if self.unstable_since is None else self._now() - self.unstable_since

    @property
    def needs_reset(self) -> bool:
        """No request sent for ``3 * (server_timeout + 5 s) + 2 min``: the loop is stuck."""
        if self.last_request_at is None:
            return False
        idle = self._now() - self.last_request_at
        return idle > self.max_duration_to_wait_for_sync + NEEDS_RESET_EXTRA

    def debug_info(self) -> dict[str, Any]:
        """Druid's syncer debug map (``null`` for what has not happened yet)."""
        now = self._now()

        def millis_since(at: float | None) -> int | None:
            return None if at is None else round((now - at) * 1000)

        return {
            "millisSinceLastRequest": millis_since(self.last_request_at),
            "millisSinceLastSuccess": millis_since(self.last_success_at),
            "consecutiveFailedAttemptCount": self.consecutive_failures,
            "syncScheduled": self.running,
        }
