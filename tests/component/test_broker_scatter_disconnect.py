"""The broker asks a data node again when the node closed the connection before answering: a
pooled keep-alive connection the node closed as idle while the broker's event loop was busy
fails at once on reuse (``ServerDisconnectedError``), and must not make the node's segments
"missing" (a partial answer, or an SQL error), as it did before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pyarrow as pa

from common.aio import Deadline
from common.query.ipc import to_ipc
from common.query.specs import SegmentDescriptor
from common.segments.intervals import Interval
from common.segments.segment import SegmentId
from services.broker.plan import ByteBudget, SegmentUnit
from services.broker.scatter import ScatterGather
from services.broker.view import ServerRef

PARTIAL = pa.table({"__time": pa.array([0], pa.int64()), "rows": pa.array([7], pa.int64())})
IV = Interval.parse("2024-01-01/2024-01-02")
UNIT = SegmentUnit(
    SegmentDescriptor(itvl=IV, ver="v1", part=0),
    SegmentId(data_source="wiki", interval=IV, version="v1"),
)


@asynccontextmanager
async def node(closes: int) -> AsyncIterator[tuple[str, list[int]]]:
    """A data node that closes its first ``closes`` connections once it has read the request,
    then answers a partial; yields its URL and the count of requests it read."""
    seen = [0]
    body = to_ipc(PARTIAL)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        seen[0] += 1
        if seen[0] <= closes:
            writer.close()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"X-Druid-Response-Context: {}\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen


async def call(url: str) -> tuple[pa.Table | None, set[SegmentDescriptor]]:
    ref = ServerRef(name="h1", url=url, tier="_default_tier", priority=0, server_type="historical")
    base = {"queryType": "timeseries", "dataSource": "wiki", "context": {}}
    async with aiohttp.ClientSession() as session:
        scatter = ScatterGather(None, session)  # type: ignore[arg-type]
        return await scatter._call(ref, base, [UNIT], ByteBudget(None, "q"), Deadline(10.0))


async def test_a_closed_connection_is_asked_again() -> None:
    async with node(closes=1) as (url, seen):
        partial, missing = await call(url)
    assert seen[0] == 2
    assert partial is not None and partial.equals(PARTIAL) and missing == set()


async def test_a_node_that_keeps_closing_is_unreachable() -> None:
    async with node(closes=5) as (url, seen):
        partial, missing = await call(url)
    assert seen[0] == 2  # asked once more, not forever
    assert partial is None and missing == {UNIT.descriptor}
