"""A fake overlord (also answering as the coordinator) for tests of a real peon.

A small FastAPI app announced through the metadata discovery backend the peon uses: it keeps
segment allocations, the committed offsets and published segments in memory with Druid's
compare-and-swap publish semantics, grants (or refuses, ``lock_ok``) time-chunk locks, answers
checkpoint requests the way the supervisor does (pause, end offsets, resume), and holds a
``segmentTransactionalInsert`` while ``publish_gate`` is cleared (a slow publish). Also the
``index_kafka`` task JSON and rows the peon tests use, and helpers to watch a peon's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from common.aio import wait_until
from common.config import load_settings
from common.segments.format import read_parquet
from common.segments.granularity import parse_granularity
from common.segments.isotime import parse_iso
from common.serve import RunningServer
from common.server import NodeService, bind_socket
from tests.support.kafka import KafkaBroker

LONG_MAX = 9223372036854775807
VERSION = "2024-01-01T00:00:00.000Z"


@dataclass
class FakeOverlord:
    url: str = ""
    peon_url: str = ""
    committed: dict[int, int] | None = None
    allocations: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    handoff_ok: bool = True
    #: Intervals of timeChunkLockAcquire actions (a restored task re-acquires its locks).
    lock_requests: list[tuple[str, str]] = field(default_factory=list)
    #: Answer lock requests with a lock (else null, as the overlord on a conflict).
    lock_ok: bool = True
    #: Set: segmentTransactionalInsert answers; cleared: it waits (a slow publish).
    publish_gate: asyncio.Event = field(default_factory=asyncio.Event)
    #: Publishes held at the gate now.
    publish_waiting: int = 0
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.publish_gate.set()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/druid/indexer/v1/leader")
        @app.get("/druid/coordinator/v1/leader")
        async def leader() -> PlainTextResponse:
            return PlainTextResponse(self.url)

        @app.post("/druid/indexer/v1/action")
        async def action(request: Request) -> dict[str, Any]:
            body = orjson.loads(await request.body())
            if body["action"]["type"] == "segmentTransactionalInsert":
                self.publish_waiting += 1
                try:
                    await self.publish_gate.wait()
                finally:
                    self.publish_waiting -= 1
            return {"result": self.act(body["task"], body["action"])}

        @app.get("/druid/coordinator/v1/datasources/{ds}/handoffComplete")
        async def handoff(ds: str, interval: str, partitionNumber: int, version: str) -> bool:
            return self.handoff_ok and any(
                s["interval"] == interval and s["shardSpec"]["partitionNum"] == partitionNumber
                for s in self.published
            )

        return app

    def act(self, task: dict[str, Any], action: dict[str, Any]) -> Any:
        kind = action["type"]
        if kind == "segmentAllocate":
            gran = parse_granularity(action["preferredSegmentGranularity"])
            interval = str(gran.bucket(parse_iso(action["timestamp"])))
            key = (action["sequenceName"], interval)
            if key not in self.allocations:
                n = sum(1 for (_, i) in self.allocations if i == interval)
                self.allocations[key] = {
                    "dataSource": action["dataSource"],
                    "interval": interval,
                    "version": VERSION,
                    "shardSpec": {"type": "numbered", "partitionNum": n, "partitions": 0},
                }
            return self.allocations[key]
        if kind == "segmentTransactionalInsert":
            start = _offsets(action["startMetadata"])
            end = _offsets(action["endMetadata"])
            if self.committed is not None:
                common = set(start) & set(self.committed)
                if any(start[p] > self.committed[p] for p in common):
                    return {
                        "segments": [],
                        "success": False,
                        "retryable": True,
                        "errorMsg": "ahead",
                    }
                if any(start[p] != self.committed[p] for p in common):
                    return {"segments": [], "success": False, "retryable": False, "errorMsg": "x"}
            self.committed = {**(self.committed or {}), **end}
            self.transactions.append({"start": start, "end": end, "segments": action["segments"]})
            self.published.extend(action["segments"])
            return {"segments": action["segments"], "success": True, "errorMsg": None}
        if kind == "timeChunkLockAcquire":
            self.lock_requests.append((task["id"], action["interval"]))
            if not self.lock_ok:
                return None
            return {
                "type": "TIME_CHUNK",
                "groupId": task["id"],
                "dataSource": "wiki",
                "interval": action["interval"],
                "version": VERSION,
                "priority": 75,
                "revoked": False,
                "lockType": action["lockType"],
            }
        if kind == "checkPointDataSourceMetadata":
            self.checkpoints.append(action)
            t = asyncio.get_running_loop().create_task(self._checkpoint(task["id"]))
            self.background.add(t)
            t.add_done_callback(self.background.discard)
            return True
        raise AssertionError(f"unexpected action {kind}")

    async def _checkpoint(self, task_id: str) -> None:
        """What the supervisor does for a checkpoint: pause, set end offsets, (task resumes)."""
        chat = f"{self.peon_url}/druid/worker/v1/chat/{task_id}"
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                r = await http.post(f"{chat}/pause")
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.05)
            r = await http.post(f"{chat}/offsets/end", params={"finish": "false"}, json=r.json())
            assert r.status_code == 200, r.text


def _offsets(meta: dict[str, Any]) -> dict[int, int]:
    return {int(p): o for p, o in meta["partitions"]["partitionSequenceNumberMap"].items()}


@contextlib.asynccontextmanager
async def fake_overlord(props: dict[str, str]) -> AsyncIterator[FakeOverlord]:
    fake = FakeOverlord()
    sock = bind_socket("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    fake.url = f"http://127.0.0.1:{port}"
    server = RunningServer(fake.app(), sock)
    await server.start()
    nodes = []
    try:
        for role in ("overlord", "coordinator"):
            s = load_settings(
                role, properties={**props, "druid.plaintextPort": str(port)}, environ={}
            )
            node = NodeService(s)
            await node.start()
            nodes.append(node)
        yield fake
    finally:
        for node in reversed(nodes):
            await node.close()
        for t in list(fake.background):
            t.cancel()
        await asyncio.gather(*fake.background, return_exceptions=True)
        await server.stop()


def task_json(
    task_id: str,
    broker: KafkaBroker,
    topic: str,
    start: dict[int, int],
    end: dict[int, int],
    **tuning: Any,
) -> dict[str, Any]:
    return {
        "type": "index_kafka",
        "id": task_id,
        "groupId": task_id,
        "dataSource": "wiki",
        "resource": {"availabilityGroup": task_id, "requiredCapacity": 1},
        "dataSchema": {
            "dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page", "user"]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
            ],
            "granularitySpec": {
                "segmentGranularity": "HOUR",
                "queryGranularity": "NONE",
                "rollup": False,
            },
        },
        "tuningConfig": {"type": "kafka", **tuning},
        "ioConfig": {
            "type": "kafka",
            "taskGroupId": 0,
            "baseSequenceName": task_id,
            "topic": topic,
            "consumerProperties": broker.consumer_properties(),
            "inputFormat": {"type": "json"},
            "startSequenceNumbers": {
                "type": "start",
                "stream": topic,
                "partitionSequenceNumberMap": {str(p): o for p, o in start.items()},
                "exclusivePartitions": [],
            },
            "endSequenceNumbers": {
                "type": "end",
                "stream": topic,
                "partitionSequenceNumberMap": {str(p): o for p, o in end.items()},
            },
            "useTransaction": True,
            "pollTimeout": 50,
        },
        "context": {"supervisorId": "wiki"},
    }


def rows(n: int, first: int = 0, hour: int = 0) -> list[tuple[int, bytes]]:
    return [
        (
            0,
            orjson.dumps(
                {
                    "ts": f"2024-01-01T{hour + (i % 2):02d}:{i % 60:02d}:00Z",
                    "page": f"p{i % 3}",
                    "user": f"u{i}",
                    "added": i,
                }
            ),
        )
        for i in range(first, first + n)
    ]


async def task_announcement(
    http: httpx.AsyncClient, peon_url: str, task_id: str
) -> dict[str, Any] | None:
    """The peon worker's latest ``TaskAnnouncement`` of the task (None: unknown to it)."""
    r = await http.get(
        f"{peon_url}/druid-internal/v1/worker", params={"counter": -1, "hash": 0, "timeout": 1}
    )
    for item in r.json()["requests"]:
        ann = item.get("taskAnnouncement")
        if ann and ann["id"] == task_id:
            return dict(ann)
    return None


async def wait_task_state(
    http: httpx.AsyncClient, peon_url: str, task_id: str, state: str, within: float = 40
) -> dict[str, Any]:
    """Wait for the task's announced status; its announcement."""
    found: dict[str, Any] = {}

    async def done() -> bool:
        ann = await task_announcement(http, peon_url, task_id)
        if ann is not None and ann["status"] == state:
            found.update(ann)
            return True
        return False

    await wait_until(done, within=within, interval=0.1, what=f"task {task_id} {state}")
    return found


async def realtime_rows(http: httpx.AsyncClient, peon_url: str) -> int:
    """Rows the peon answers for over every segment it announces (its sinks)."""
    served = await http.get(
        f"{peon_url}/druid-internal/v1/segments", params={"counter": -1, "hash": 0, "timeout": 1}
    )
    loads = [s for s in served.json()["requests"] if s["action"] == "load"]
    if not loads:
        return 0
    query = {
        "queryType": "timeseries",
        "dataSource": "wiki",
        "granularity": "all",
        "intervals": {
            "type": "segments",
            "segments": [
                {"itvl": s["interval"], "ver": s["version"], "part": s["shardSpec"]["partitionNum"]}
                for s in loads
            ],
        },
        "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}],
    }
    r = await http.post(f"{peon_url}/druid/v2", json=query)
    assert r.status_code == 200, r.text
    # a data node answers with its partial result as an Arrow stream
    partial = pa.ipc.open_stream(r.content).read_all()
    return int(pc.sum(partial.column("rows")).as_py() or 0)


def published_totals(fake: FakeOverlord) -> tuple[int, int]:
    count = added = 0
    for seg in fake.published:
        table, _ = read_parquet(seg["loadSpec"]["path"])
        count += pc.sum(table.column("count")).as_py() or 0
        added += pc.sum(table.column("added")).as_py() or 0
    return count, added
