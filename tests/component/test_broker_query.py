"""A real broker over two in-memory data nodes (real discovery, long polls and ``/druid/v2``):
readiness, selection across replicas, retry of missing segments, missingSegments, 400s that leave
the broker serving, timeout 504, cancel 500, capacity 429, the scatter-gather byte bound."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
from fastapi import FastAPI

from common.aio import wait_until
from common.config import Settings, load_settings
from common.errors import NotFound
from common.query.http import RESPONSE_CONTEXT_HEADER
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, SegmentId
from common.serve import RunningServer
from common.server import bind_socket
from services.broker.app import create_app as broker_app
from tests.support.cluster import sqlite_properties
from tests.support.sqlenv import MemoryDataNode

DAY = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start
V1 = "2024-02-01T00:00:00.000Z"
ROWS = 24


def day_segment(d: int) -> tuple[DataSegment, pa.Table]:
    iv = Interval(T0 + d * DAY, T0 + (d + 1) * DAY)
    table = pa.table(
        {
            "__time": pa.array([iv.start + i * (DAY // ROWS) for i in range(ROWS)], pa.int64()),
            "page": [f"p{i % 3}" for i in range(ROWS)],
            "added": pa.array([d * 1000 + i for i in range(ROWS)], pa.int64()),
        }
    )
    return DataSegment(dataSource="wiki", interval=iv, version=V1, dimensions=["page"]), table


class FakeDataNode(MemoryDataNode):
    """A data node with in-memory segments; ``gate`` holds its reads, ``hide`` makes it answer
    that an announced segment is missing."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.hide: set[SegmentId] = set()

    def get(self, sid: SegmentId) -> tuple[DataSegment, pa.Table]:
        found = super().get(sid)  # counts the read and waits on the gate
        if sid in self.hide:
            raise NotFound(str(sid))
        return found


class Env:
    def __init__(self, tmp: Path) -> None:
        self.props = sqlite_properties(tmp)
        self.servers: dict[str, RunningServer] = {}
        self.nodes: dict[str, FakeDataNode] = {}
        self.http = httpx.AsyncClient(timeout=20)
        self.broker_url = ""

    async def _serve(self, name: str, role: str, make: Any, extra: dict[str, str]) -> Any:
        sock = bind_socket()
        props = {**self.props, **extra, "druid.plaintextPort": str(sock.getsockname()[1])}
        settings = load_settings(role, properties=props, environ={})
        app, obj = make(settings)
        server = RunningServer(app, sock)
        await server.start()
        self.servers[name] = server
        return obj, settings.base_url

    async def data_node(self, name: str) -> FakeDataNode:
        def make(settings: Settings) -> tuple[FastAPI, FakeDataNode]:
            node = FakeDataNode(settings)
            return node.app(), node

        node, _ = await self._serve(name, "historical", make, {})
        self.nodes[name] = node
        return node

    async def broker(self, name: str = "broker", **extra: str) -> str:
        def make(settings: Settings) -> tuple[FastAPI, None]:
            return broker_app(settings), None

        _, url = await self._serve(name, "broker", make, extra)
        return str(url)

    async def stop(self, name: str) -> None:
        await self.servers.pop(name).stop()

    async def close(self) -> None:
        for node in self.nodes.values():
            node.gate.set()
        for name in reversed(list(self.servers)):
            await self.stop(name)
        await self.http.aclose()

    async def query(self, url: str, body: Any, **kw: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return await self.http.post(
            f"{url}/druid/v2", content=content, headers={"Content-Type": "application/json"}, **kw
        )


@contextlib.asynccontextmanager
async def environment(tmp: Path) -> AsyncIterator[Env]:
    env = Env(tmp)
    try:
        yield env
    finally:
        await env.close()


def timeseries(**kw: Any) -> dict[str, Any]:
    return {
        "queryType": "timeseries",
        "dataSource": "wiki",
        "intervals": ["2024-01-01/2024-01-05"],
        "granularity": "day",
        "aggregations": [
            {"type": "count", "name": "rows"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
        ],
        **kw,
    }


def expected_days(days: list[int]) -> list[tuple[str, int, int]]:
    return [
        (f"2024-01-0{d + 1}T00:00:00.000Z", ROWS, sum(d * 1000 + i for i in range(ROWS)))
        for d in days
    ]


def rows_of(resp: httpx.Response) -> list[tuple[str, int, int]]:
    assert resp.status_code == 200, resp.text
    return [(r["timestamp"], r["result"]["rows"], r["result"]["added"]) for r in resp.json()]


async def ready(env: Env, url: str, segments: int) -> None:
    async def check() -> bool:
        r = await env.http.get(f"{url}/druid/broker/v1/readiness")
        if r.status_code != 200:
            return False
        probe = await env.query(url, {**timeseries(), "granularity": "all"})
        rows = probe.json()
        return bool(rows) and rows[0]["result"]["rows"] == segments * ROWS

    await wait_until(check, within=20, what="the broker to see every segment")


async def test_replicas_retry_and_missing_segments(tmp_path: Path) -> None:
    async with environment(tmp_path) as env:
        a = await env.data_node("a")
        b = await env.data_node("b")
        for d in range(3):
            a.serve(*day_segment(d))
        for d in (0, 1, 3):  # days 0 and 1 replicated; day 2 only on a, day 3 only on b
            b.serve(*day_segment(d))
        url = await env.broker()
        status = (await env.http.get(f"{url}/druid/broker/v1/loadstatus")).json()
        assert set(status) == {"inventoryInitialized"}
        await ready(env, url, 4)

        resp = await env.query(url, timeseries())
        assert rows_of(resp) == expected_days([0, 1, 2, 3])
        assert resp.headers["X-Druid-Query-Id"]
        assert orjson.loads(resp.headers[RESPONSE_CONTEXT_HEADER]) == {}

        # Replicas spread: over repeated queries both nodes read day 0.
        before = (a.reads, b.reads)
        for _ in range(12):
            await env.query(url, timeseries(intervals=["2024-01-01/2024-01-02"]))
        assert a.reads > before[0] and b.reads > before[1]

        # a claims day 0 but no longer has it: the broker retries it on b.
        a.hide = {day_segment(0)[0].id, day_segment(1)[0].id}
        for _ in range(4):
            assert rows_of(await env.query(url, timeseries())) == expected_days([0, 1, 2, 3])

        # b goes away: day 3 has no replica, the answer says which segment is missing.
        a.hide = set()
        await env.stop("b")
        resp = await env.query(url, timeseries(context={"queryId": "after-b"}))
        assert rows_of(resp) == expected_days([0, 1, 2])
        missing = orjson.loads(resp.headers[RESPONSE_CONTEXT_HEADER])["missingSegments"]
        assert missing == [{"itvl": str(day_segment(3)[0].interval), "ver": V1, "part": 0}]
        assert resp.headers["X-Druid-Query-Id"] == "after-b"


BAD_QUERIES: list[tuple[Any, str]] = [
    (b"{", "Json parse failed"),
    (b"[1, 2]", "Json parse failed"),
    (
        {"queryType": "select", "dataSource": "wiki", "intervals": ["2024/2025"]},
        "Json parse failed",
    ),
    (timeseries(intervals=["2024-01-05/2024-01-01"]), "Json parse failed"),
    (timeseries(intervals="yesterday"), "Json parse failed"),
    (timeseries(granularity="fortnight"), "Json parse failed"),
    (timeseries(aggregations=[{"type": "median", "name": "m"}]), "Json parse failed"),
    (timeseries(filter={"type": "search", "dimension": "page"}), "Json parse failed"),
    (timeseries(context={"timeout": -5}), "Json parse failed"),
    (timeseries(context={"maxScatterGatherBytes": "lots"}), "Resource limit exceeded"),
    ({**timeseries(), "dataSource": {"type": "query"}}, "Json parse failed"),
    (
        {"queryType": "topN", "dataSource": "wiki", "intervals": ["2024/2025"], "threshold": 0},
        "Json parse failed",
    ),
]


async def test_errors_timeout_cancel_and_limits(tmp_path: Path) -> None:
    async with environment(tmp_path) as env:
        a = await env.data_node("a")
        for d in range(2):
            a.serve(*day_segment(d))
        url = await env.broker()
        await ready(env, url, 2)

        for body, code in BAD_QUERIES:
            resp = await env.query(url, body)
            assert resp.status_code == 400, (body, resp.text)
            err = resp.json()
            assert err["error"] == code, (body, err)
            assert set(err) == {"error", "errorMessage", "errorClass", "host"}
        # Unknown datasource: an empty result, not an error.
        resp = await env.query(url, timeseries(dataSource="nope"))
        assert resp.status_code == 200 and resp.json() == []
        # Still serving.
        assert rows_of(await env.query(url, timeseries())) == expected_days([0, 1])

        # The scatter-gather byte bound: over it is Druid's resource limit error, not an OOM.
        resp = await env.query(url, timeseries(context={"maxScatterGatherBytes": 64}))
        assert resp.status_code == 400 and resp.json()["error"] == "Resource limit exceeded"

        a.gate.clear()
        resp = await env.query(url, timeseries(context={"timeout": 200}))
        assert resp.status_code == 504 and resp.json()["error"] == "Query timeout"

        pending = asyncio.create_task(env.query(url, timeseries(context={"queryId": "slow-1"})))
        reads = a.reads
        await wait_until(lambda: a.reads > reads, within=5, what="the fan-out to reach the node")
        assert (await env.http.delete(f"{url}/druid/v2/slow-1")).status_code == 202
        resp = await pending
        assert resp.status_code == 500 and resp.json()["error"] == "Query cancelled"
        a.gate.set()
        assert rows_of(await env.query(url, timeseries())) == expected_days([0, 1])


async def test_capacity_429(tmp_path: Path) -> None:
    async with environment(tmp_path) as env:
        a = await env.data_node("a")
        a.serve(*day_segment(0))
        url = await env.broker(
            **{"druid.server.http.numThreads": "1", "druid.broker.http.maxQueuedRequests": "1"}
        )
        await ready(env, url, 1)
        a.gate.clear()
        first = asyncio.create_task(env.query(url, timeseries()))
        reads = a.reads
        await wait_until(lambda: a.reads > reads, within=5, what="the first query to run")
        queued = asyncio.create_task(env.query(url, timeseries()))
        await wait_until(
            lambda: env.servers["broker"].app.state.service.limiter.waiting == 1,
            within=5,
            what="the second query to queue",
        )
        over = await env.query(url, timeseries())
        assert over.status_code == 429 and over.json()["error"] == "Query capacity exceeded"
        a.gate.set()
        assert rows_of(await first) == expected_days([0])
        assert rows_of(await queued) == expected_days([0])


async def test_readiness_before_inventory(tmp_path: Path) -> None:
    async with environment(tmp_path) as env:
        url = await env.broker(**{"druid.discovery.initializationTimeout": "PT30S"})
        # Nothing is known until discovery initializes; readiness follows the inventory.
        r = await env.http.get(f"{url}/druid/broker/v1/loadstatus")
        initialized = r.json()["inventoryInitialized"]
        readiness = await env.http.get(f"{url}/druid/broker/v1/readiness")
        assert readiness.status_code == (200 if initialized else 503)
        await wait_until(
            lambda: env.servers["broker"].app.state.service.inventory_initialized(),
            within=20,
            what="inventory initialized",
        )
        assert (await env.http.get(f"{url}/druid/broker/v1/readiness")).status_code == 200


pytestmark = pytest.mark.slow
