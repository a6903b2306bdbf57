"""The data node's ``/druid/v2`` router on a real server: segments-spec queries answered with an
Arrow IPC partial, missing segments reported, sub-interval descriptors, cancel, timeout, 400s."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
from fastapi import FastAPI

from common.aio import wait_until
from common.auth.declare import install_allow_all
from common.errors import NotFound, install_error_handlers
from common.query import finalize, from_ipc, merge, parse_query, run_segment
from common.query.datanode import segment_lookup
from common.query.http import ARROW_STREAM, RESPONSE_CONTEXT_HEADER, data_node_query_router
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, SegmentId
from common.serve import RunningServer
from common.server import bind_socket

DAY = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start
VERSION = "2024-02-01T00:00:00.000Z"


def day_segment(day: int, rows: int = 48) -> tuple[DataSegment, pa.Table]:
    iv = Interval(T0 + day * DAY, T0 + (day + 1) * DAY)
    step = DAY // rows
    table = pa.table(
        {
            "__time": pa.array([iv.start + i * step for i in range(rows)], pa.int64()),
            "page": [f"p{(i + day) % 5}" for i in range(rows)],
            "added": pa.array([i + 100 * day for i in range(rows)], pa.int64()),
        }
    )
    seg = DataSegment(dataSource="wiki", interval=iv, version=VERSION, dimensions=["page"])
    return seg, table


class Registry:
    """In-memory stand-in for a historical's open segments; ``gate`` can hold queries."""

    def __init__(self) -> None:
        self.open: dict[SegmentId, tuple[DataSegment, pa.Table]] = {}
        self.gate = threading.Event()
        self.gate.set()
        self.reads = 0

    def add(self, seg: DataSegment, table: pa.Table) -> None:
        self.open[seg.id] = (seg, table)

    def get(self, sid: SegmentId) -> tuple[DataSegment, pa.Table]:
        self.reads += 1
        self.gate.wait(30)
        if sid not in self.open:
            raise NotFound(str(sid))
        return self.open[sid]


@pytest.fixture
async def node() -> AsyncIterator[tuple[str, Registry, httpx.AsyncClient]]:
    reg = Registry()
    for day in range(3):
        reg.add(*day_segment(day))
    app = FastAPI()
    install_error_handlers(app, "dn:8083")
    getter = segment_lookup(lambda: [s for s, _ in reg.open.values()], reg.get)
    app.include_router(data_node_query_router(getter, "dn:8083", processing_threads=2))
    install_allow_all(app)
    server = RunningServer(app, bind_socket())
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            yield server.url, reg, client
    finally:
        reg.gate.set()
        await server.stop()


def spec(*descs: tuple[Interval, int]) -> dict[str, Any]:
    return {
        "type": "segments",
        "segments": [{"itvl": str(iv), "ver": VERSION, "part": p} for iv, p in descs],
    }


def day(d: int) -> Interval:
    return Interval(T0 + d * DAY, T0 + (d + 1) * DAY)


TIMESERIES = {
    "queryType": "timeseries",
    "dataSource": "wiki",
    "granularity": "day",
    "aggregations": [
        {"type": "count", "name": "rows"},
        {"type": "longSum", "name": "added", "fieldName": "added"},
    ],
}


async def test_partial_as_arrow_and_missing_segments(node: Any) -> None:
    _, reg, client = node
    missing = Interval(T0 + 7 * DAY, T0 + 8 * DAY)
    body = {**TIMESERIES, "intervals": spec((day(0), 0), (day(2), 0), (missing, 0))}
    resp = await client.post("/druid/v2", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == ARROW_STREAM
    context = orjson.loads(resp.headers[RESPONSE_CONTEXT_HEADER])
    assert context == {"missingSegments": [{"itvl": str(missing), "ver": VERSION, "part": 0}]}
    partial = from_ipc(resp.content)

    query = parse_query(body)
    expected = merge(
        query,
        [
            run_segment(query, reg.open[s.id][1], interval=s.interval, segment_id=str(s.id))
            for s, _ in (reg.open[day_segment(d)[0].id] for d in (0, 2))
        ],
    )
    assert finalize(query, partial) == finalize(query, expected)
    result = finalize(query, partial)
    assert [r["result"]["rows"] for r in result] == [48, 48]
    assert [r["timestamp"][:10] for r in result] == ["2024-01-01", "2024-01-03"]


async def test_sub_interval_descriptor_reads_only_that_part(node: Any) -> None:
    _, _, client = node
    half = Interval(T0 + DAY, T0 + DAY + DAY // 2)
    body = {**TIMESERIES, "granularity": "all", "intervals": spec((half, 0))}
    resp = await client.post("/druid/v2", json=body)
    assert orjson.loads(resp.headers[RESPONSE_CONTEXT_HEADER]) == {"missingSegments": []}
    result = finalize(parse_query(body), from_ipc(resp.content))
    assert result[0]["result"]["rows"] == 24
    assert result[0]["result"]["added"] == sum(100 + i for i in range(24))


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "Malformed JSON"),
        ({**TIMESERIES, "intervals": ["2024-01-01/2024-01-04"]}, "segments spec"),
        ({**TIMESERIES, "queryType": "nope", "intervals": ["2024-01-01/2024-01-04"]}, "nope"),
        ({**TIMESERIES, "intervals": {"type": "segments", "segments": []}}, "at least one"),
    ],
)
async def test_bad_queries_are_400(node: Any, body: Any, needle: str) -> None:
    _, _, client = node
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = await client.post("/druid/v2/", content=content)
    assert resp.status_code == 400
    err = resp.json()
    assert err["error"] in ("Json parse failed", "Invalid input")
    assert needle in err["errorMessage"]
    assert err["host"] == "dn:8083"


async def test_cancel_and_timeout(node: Any) -> None:
    _, reg, client = node
    reg.gate.clear()
    body = {**TIMESERIES, "intervals": spec((day(0), 0)), "context": {"queryId": "q1"}}
    pending = asyncio.create_task(client.post("/druid/v2", json=body))
    await wait_until(lambda: reg.reads > 0, within=5, what="the node to start reading")
    assert (await client.delete("/druid/v2/q1")).status_code == 202
    resp = await pending
    assert resp.status_code == 500 and resp.json()["error"] == "Query cancelled"

    slow = {**body, "context": {"queryId": "q2", "timeout": 100}}
    resp = await client.post("/druid/v2", json=slow)
    assert resp.status_code == 504 and resp.json()["error"] == "Query timeout"
    reg.gate.set()
    # The node still answers after both.
    ok = await client.post("/druid/v2", json={**body, "context": {"queryId": "q3"}})
    assert ok.status_code == 200
