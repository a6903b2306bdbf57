"""Long polling end to end: a real uvicorn server with a ChangeHistory endpoint, a real syncer."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

from common.aio import Backoff, TaskGroup, wait_until
from common.auth.declare import INTERNAL, install_allow_all
from common.longpoll import (
    ChangeHistory,
    ChangeRequestSyncer,
    add_longpoll_route,
    longpoll_response,
)

PATH = "/druid-internal/v1/segments"
Change = dict[str, str]


class Node:
    """A tiny data node: a set of served ids, announced through a ChangeHistory."""

    def __init__(self) -> None:
        self.history: ChangeHistory[Change] = ChangeHistory()
        self.served: set[str] = set()
        self.failing = False

    def load(self, *ids: str) -> None:
        self.served.update(ids)
        self.history.add([{"action": "load", "id": i} for i in ids])

    def drop(self, *ids: str) -> None:
        self.served.difference_update(ids)
        self.history.add([{"action": "drop", "id": i} for i in ids])

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get(PATH)
        async def segments(request: Request) -> Response:
            if self.failing:
                return Response(b"broken", status_code=500)
            return await longpoll_response(request, self.history, self._snapshot)

        return app

    def _snapshot(self) -> list[Change]:
        return [{"action": "load", "id": i} for i in sorted(self.served)]


class Mirror:
    """The listener: what the client believes the node serves."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.full_syncs = 0

    def full_sync(self, items: list[Change]) -> None:
        self.full_syncs += 1
        self.ids = {c["id"] for c in items if c["action"] == "load"}

    def delta_sync(self, items: list[Change]) -> None:
        for c in items:
            (self.ids.add if c["action"] == "load" else self.ids.discard)(c["id"])


@asynccontextmanager
async def serve(app: FastAPI, port: int = 0) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """uvicorn in this event loop on an ephemeral (or given) port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="uvicorn")
    await wait_until(lambda: server.started or task.done(), within=10, what="uvicorn to start")
    if task.done():
        task.result()
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}", server
    finally:
        server.should_exit = True
        await task


class Recorder:
    """httpx event hooks: every request's query and every response's status, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, str]]] = []
        self.statuses: list[int] = []

    async def on_request(self, request: httpx.Request) -> None:
        self.sent.append((time.monotonic(), dict(request.url.params)))

    async def on_response(self, response: httpx.Response) -> None:
        self.statuses.append(response.status_code)


class MaxRandom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


@asynccontextmanager
async def syncing(
    base_url: str,
    mirror: Mirror,
    *,
    server_timeout: float = 0.2,
    backoff: Backoff | None = None,
    recorder: Recorder | None = None,
) -> AsyncIterator[ChangeRequestSyncer[Change]]:
    hooks: dict[str, list[Callable[..., Any]]] = {}
    if recorder is not None:
        hooks = {"request": [recorder.on_request], "response": [recorder.on_response]}
    async with httpx.AsyncClient(event_hooks=hooks) as client, TaskGroup("test") as tasks:
        syncer: ChangeRequestSyncer[Change] = ChangeRequestSyncer(
            base_url,
            PATH,
            items=dict,
            full_sync=mirror.full_sync,
            delta_sync=mirror.delta_sync,
            server_timeout=server_timeout,
            client=client,
            backoff=backoff or Backoff(base=0.02, cap=0.2),
        )
        syncer.start(tasks)
        try:
            yield syncer
        finally:
            await syncer.stop()


async def test_snapshot_then_deltas_then_idle_204s() -> None:
    node, mirror, rec = Node(), Mirror(), Recorder()
    node.load("a", "b")
    async with serve(node.app()) as (url, _), syncing(url, mirror, recorder=rec) as syncer:
        async with asyncio.timeout(10):
            await syncer.initialized.wait()
        assert mirror.ids == {"a", "b"} and mirror.full_syncs == 1
        assert rec.sent[0][1] == {"counter": "-1", "timeout": "200"}

        node.load("c")
        node.drop("a")
        await wait_until(lambda: mirror.ids == {"b", "c"}, within=10, what="deltas applied")
        assert syncer.counter == node.history.last_counter

        # Idle: the server holds each request for 200 ms and answers 204.
        await wait_until(lambda: rec.statuses.count(204) >= 2, within=10, what="idle 204s")
        assert mirror.full_syncs == 1 and syncer.consecutive_failures == 0
        assert syncer.is_synced_successfully
        last = node.history.last_counter
        assert rec.sent[-1][1] == {
            "counter": str(last.counter),
            "hash": str(last.hash),
            "timeout": "200",
        }


async def test_server_restart_forces_reset_and_full_sync() -> None:
    old, mirror, rec = Node(), Mirror(), Recorder()
    old.load("a", "b", "c")
    first = serve(old.app())
    url, _ = await first.__aenter__()
    port = int(url.rsplit(":", 1)[1])
    stopped = False
    try:
        async with syncing(url, mirror, server_timeout=30, recorder=rec) as syncer:
            await wait_until(lambda: old.history.parked == 1, within=10, what="a parked poll")
            assert mirror.ids == {"a", "b", "c"}
            held = syncer.counter
            assert held is not None and held.counter == 3

            # Stopping the node releases its parked request with "Server is shutting down.".
            old.history.close()
            await wait_until(lambda: 503 in rec.statuses, within=10, what="the shutdown 503")
            await first.__aexit__(None, None, None)
            stopped = True

            # The restarted node is at the same counter, but in a new epoch.
            new = Node()
            new.load("x", "y", "z")
            assert new.history.last_counter.counter == held.counter
            async with serve(new.app(), port=port):
                await wait_until(lambda: mirror.ids == {"x", "y", "z"}, within=10, what="resync")
                assert mirror.full_syncs == 2
                queries = [q for _, q in rec.sent]
                stale = max(i for i, q in enumerate(queries) if q.get("hash") == str(held.hash))
                assert queries[stale + 1]["counter"] == "-1"
                assert syncer.counter == new.history.last_counter
                # uvicorn drains in-flight requests before the lifespan shutdown: a node must
                # release its parked polls first or stopping waits out their timeout.
                new.history.close()
    finally:
        if not stopped:
            await first.__aexit__(None, None, None)


async def test_backoff_on_500s_then_recovery() -> None:
    node, mirror, rec = Node(), Mirror(), Recorder()
    node.load("a")
    node.failing = True
    backoff = Backoff(base=0.05, cap=0.4, rng=MaxRandom())
    async with (
        serve(node.app()) as (url, _),
        syncing(url, mirror, backoff=backoff, recorder=rec) as syncer,
    ):
        await wait_until(lambda: syncer.consecutive_failures >= 5, within=10, what="5 failures")
        assert not syncer.is_synced_successfully
        assert syncer.unstable_time > 0
        assert not syncer.initialized.is_set()
        times = [t for t, _ in rec.sent[:5]]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for gap, delay in zip(gaps, [0.05, 0.1, 0.2, 0.4], strict=True):
            assert gap >= delay * 0.9, (gaps, "requests came faster than the backoff allows")

        node.failing = False
        async with asyncio.timeout(10):
            await syncer.initialized.wait()
        assert mirror.ids == {"a"}
        assert syncer.consecutive_failures == 0 and syncer.unstable_time == 0
        assert syncer.is_synced_successfully


async def test_stop_releases_a_parked_poll_promptly_and_server_frees_the_waiter() -> None:
    node, mirror = Node(), Mirror()
    node.load("a")
    async with serve(node.app()) as (url, _):
        async with syncing(url, mirror, server_timeout=60) as syncer:
            await wait_until(lambda: node.history.parked == 1, within=10, what="a parked poll")
            started = time.monotonic()
            await syncer.stop()
            assert time.monotonic() - started < 1.0
            assert not syncer.running
        # The client hung up: the server notices and drops the waiter long before 60 s.
        await wait_until(lambda: node.history.parked == 0, within=5, what="waiter released")


async def test_abandoned_parked_request_does_not_leak_its_waiter() -> None:
    node = Node()
    async with serve(node.app()) as (url, _), httpx.AsyncClient() as client:
        polls = [
            asyncio.create_task(
                client.get(
                    url + PATH,
                    params={"counter": 0, "hash": node.history.last_counter.hash, "timeout": 60000},
                )
            )
            for _ in range(5)
        ]
        await wait_until(lambda: node.history.parked == 5, within=10, what="5 parked polls")
        for p in polls:
            p.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        await wait_until(lambda: node.history.parked == 0, within=5, what="waiters released")


def declared_app(node: Node) -> FastAPI:
    """The endpoint as the roles serve it: ``add_longpoll_route`` declared ``INTERNAL``, served
    by the security middleware itself (allow-all here), over a real socket."""
    app = FastAPI()
    add_longpoll_route(app, PATH, node.history, node._snapshot, dependencies=[INTERNAL])
    install_allow_all(app)
    return app


async def test_the_declared_route_syncs_and_frees_the_waiters_of_abandoned_polls() -> None:
    node, mirror = Node(), Mirror()
    node.load("a")
    async with serve(declared_app(node)) as (url, _), httpx.AsyncClient() as client:
        origin = {"counter": 1, "hash": node.history.last_counter.hash, "timeout": 60000}
        polls = [asyncio.create_task(client.get(url + PATH, params=origin)) for _ in range(5)]
        await wait_until(lambda: node.history.parked == 5, within=10, what="5 parked polls")
        for p in polls:
            p.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        await wait_until(lambda: node.history.parked == 0, within=5, what="waiters released")

        async with syncing(url, mirror, server_timeout=30) as syncer:
            await wait_until(lambda: node.history.parked == 1, within=10, what="a parked poll")
            assert mirror.ids == {"a"}
            node.load("b")
            await wait_until(lambda: mirror.ids == {"a", "b"}, within=10, what="the delta")
            assert syncer.consecutive_failures == 0
