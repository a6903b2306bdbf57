"""A real broker over an in-memory data node, both served over HTTP in this process.

The broker finds the data node by discovery, learns its segments by the inventory long poll and
scatter-gathers native queries to it over HTTP, as in a cluster; the data node serves Arrow
tables held in memory (no deep storage, no segment cache), so a test can load a few small
datasources in milliseconds. Used by ``tests/component/test_sql_broker.py`` and the conformance
suite (``tests/conformance``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pyarrow as pa
from fastapi import FastAPI

from common.aio import wait_until
from common.config import Settings, load_settings
from common.discovery.node import DataNodeService, DruidService
from common.errors import NotFound
from common.query.datanode import segment_lookup
from common.query.http import data_node_query_router
from common.segments.segment import DataSegment, SegmentId
from common.serve import RunningServer
from common.server import NodeService, bind_socket, create_node_app
from common.serverview.announcer import SegmentAnnouncer
from services.broker.app import create_app as broker_app
from tests.support.cluster import sqlite_properties

T = TypeVar("T")


class MemoryDataNode(NodeService):
    """A data node serving in-memory segments; clearing ``gate`` holds every read."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.announcer = SegmentAnnouncer()
        self.shutdown_hooks.append(self.announcer.close)
        self.open: dict[SegmentId, tuple[DataSegment, pa.Table]] = {}
        self.gate = threading.Event()
        self.gate.set()
        self.reads = 0

    def node_services(self) -> dict[str, DruidService]:
        return {
            DataNodeService.KEY: DataNodeService(
                tier="_default_tier", max_size=10**9, server_type="historical", priority=0
            )
        }

    def serve(self, seg: DataSegment, table: pa.Table) -> None:
        self.open[seg.id] = (seg, table)
        self.announcer.announce([seg])

    def get(self, sid: SegmentId) -> tuple[DataSegment, pa.Table]:
        self.reads += 1
        self.gate.wait(30)
        if sid not in self.open:
            raise NotFound(str(sid))
        return self.open[sid]

    def app(self) -> FastAPI:
        host = self.settings.host_and_port
        getter = segment_lookup(lambda: [s for s, _ in self.open.values()], self.get)
        return create_node_app(
            self, [self.announcer.router(host), data_node_query_router(getter, host)]
        )


@contextlib.asynccontextmanager
async def broker_over(
    tmp: Path,
    segments: Iterable[tuple[DataSegment, pa.Table]],
    ready: Callable[[httpx.AsyncClient, str], Awaitable[bool]],
) -> AsyncIterator[tuple[httpx.AsyncClient, MemoryDataNode, str]]:
    """Start a data node serving ``segments`` and a broker; yield ``(client, node, broker_url)``
    once ``ready(client, broker_url)`` is true (the broker has seen the segments)."""
    props = sqlite_properties(tmp)
    servers: list[RunningServer] = []
    http = httpx.AsyncClient(timeout=20)
    node: MemoryDataNode | None = None
    url = ""
    try:
        for role in ("historical", "broker"):
            sock = bind_socket()
            settings = load_settings(
                role,
                properties={**props, "druid.plaintextPort": str(sock.getsockname()[1])},
                environ={},
            )
            if role == "historical":
                node = MemoryDataNode(settings)
                app = node.app()
            else:
                app = broker_app(settings)
            server = RunningServer(app, sock)
            await server.start()
            servers.append(server)
            url = settings.base_url
        assert node is not None
        for seg, table in segments:
            node.serve(seg, table)
        await wait_until(lambda: ready(http, url), within=20, what="the broker to see the segments")
        yield http, node, url
    finally:
        if node is not None:
            node.gate.set()
        for server in reversed(servers):
            await server.stop()
        await http.aclose()


class ThreadedBroker:
    """``broker_over`` run on an event loop in its own thread, for synchronous tests that share
    one broker across many cases (a module- or session-scoped fixture)."""

    def __init__(
        self,
        tmp: Path,
        segments: list[tuple[DataSegment, pa.Table]],
        ready: Callable[[httpx.AsyncClient, str], Awaitable[bool]],
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sqlenv", daemon=True)
        self._thread.start()
        self._stop: asyncio.Event | None = None
        started: Future[str] = Future()
        self._done = self._submit(self._serve(tmp, segments, ready, started))
        self.url = started.result(timeout=60)
        self._client = httpx.Client(timeout=30)

    def _submit(self, coro: Awaitable[T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    async def _serve(
        self,
        tmp: Path,
        segments: list[tuple[DataSegment, pa.Table]],
        ready: Callable[[httpx.AsyncClient, str], Awaitable[bool]],
        started: Future[str],
    ) -> None:
        self._stop = asyncio.Event()
        try:
            async with broker_over(tmp, segments, ready) as (_http, _node, url):
                started.set_result(url)
                await self._stop.wait()
        except BaseException as e:
            if not started.done():
                started.set_exception(e)
            raise

    def post(self, path: str, body: Any) -> httpx.Response:
        """POST ``body`` as JSON to the broker (blocking)."""
        return self._client.post(f"{self.url}{path}", json=body)

    def close(self) -> None:
        self._client.close()
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        try:
            self._done.result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
