"""A real peon running index_kafka tasks against a real Kafka (tansu) and a fake overlord.

The fake overlord (also answering as the coordinator) is a small FastAPI app announced through
the same metadata discovery backend the peon uses; it keeps segment allocations, the committed
offsets and published segments in memory with Druid's compare-and-swap publish semantics, and it
answers checkpoint requests the way the supervisor does (pause, end offsets, resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.compute as pc
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from common.aio import wait_until
from common.config import load_settings
from common.segments.format import read_parquet
from common.segments.granularity import parse_granularity
from common.segments.isotime import parse_iso
from common.serve import RunningServer
from common.server import NodeService, bind_socket
from tests.support.cluster import Cluster, cluster, sqlite_properties
from tests.support.kafka import KafkaBroker, create_topic, kafka_broker, produce, unique_topic

__all__ = ["kafka_broker"]

pytestmark = pytest.mark.slow
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
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/druid/indexer/v1/leader")
        @app.get("/druid/coordinator/v1/leader")
        async def leader() -> PlainTextResponse:
            return PlainTextResponse(self.url)

        @app.post("/druid/indexer/v1/action")
        async def action(request: Request) -> dict[str, Any]:
            body = orjson.loads(await request.body())
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


async def task_state(c: Cluster, peon: str, task_id: str) -> str | None:
    r = await c.get(
        peon, "/druid-internal/v1/worker", params={"counter": -1, "hash": 0, "timeout": 1}
    )
    for item in r.json()["requests"]:
        ann = item.get("taskAnnouncement")
        if ann and ann["id"] == task_id:
            return str(ann["status"])
    return None


async def wait_state(c: Cluster, peon: str, task_id: str, state: str, within: float = 40) -> None:
    async def done() -> bool:
        return await task_state(c, peon, task_id) == state

    await wait_until(done, within=within, interval=0.1, what=f"task {task_id} {state}")


def published_totals(fake: FakeOverlord) -> tuple[int, int]:
    count = added = 0
    for seg in fake.published:
        table, _ = read_parquet(seg["loadSpec"]["path"])
        count += pc.sum(table.column("count")).as_py() or 0
        added += pc.sum(table.column("added")).as_py() or 0
    return count, added


@pytest.fixture
def props(tmp_path: Path) -> dict[str, str]:
    return sqlite_properties(tmp_path)


async def test_task_reads_publishes_and_hands_off(
    props: dict[str, str], kafka_broker: KafkaBroker
) -> None:
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    data = rows(18)
    data[5:5] = [(0, b"{not json"), (0, orjson.dumps({"ts": "garbage", "page": "x"}))]
    await produce(kafka_broker, topic, data)
    async with fake_overlord(props) as fake, cluster(props) as c:
        fake.handoff_ok = False
        peon = await c.start("peon")
        peon.service.handoff_poll_period = 0.1  # type: ignore[attr-defined]
        fake.peon_url = peon.url
        task = task_json("t1", kafka_broker, topic, {0: 0}, {0: 20}, maxRowsInMemory=4)
        r = await c.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)
        assert r.status_code == 200
        # a duplicate assignment is ignored
        assert (
            await c.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)
        ).status_code == 200

        await wait_until(lambda: bool(fake.transactions), within=40, what="publish")
        assert fake.transactions == [
            {"start": {0: 0}, "end": {0: 20}, "segments": fake.transactions[0]["segments"]}
        ]
        chat = f"{peon.url}/druid/worker/v1/chat/t1"
        stats = (await c.http.get(f"{chat}/rowStats")).json()["totals"]["buildSegments"]
        assert stats["processed"] == 18 and stats["unparseable"] == 2
        # still serving its sinks as realtime segments while waiting for handoff
        served = await c.get(
            "peon", "/druid-internal/v1/segments", params={"counter": -1, "hash": 0, "timeout": 1}
        )
        loads = [s for s in served.json()["requests"] if s["action"] == "load"]
        assert len(loads) == 2  # two hours of data
        query = {
            "queryType": "timeseries",
            "dataSource": "wiki",
            "granularity": "all",
            "intervals": {
                "type": "segments",
                "segments": [
                    {
                        "itvl": s["interval"],
                        "ver": s["version"],
                        "part": s["shardSpec"]["partitionNum"],
                    }
                    for s in loads
                ],
            },
            "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}],
        }
        qr = await c.http.post(f"{peon.url}/druid/v2", json=query)
        assert qr.status_code == 200, qr.text

        fake.handoff_ok = True
        await wait_state(c, "peon", "t1", "SUCCESS")
        assert published_totals(fake) == (18, sum(range(18)))
        served = await c.get(
            "peon", "/druid-internal/v1/segments", params={"counter": -1, "hash": 0, "timeout": 1}
        )
        assert served.json()["requests"] == []
        log = await c.http.get(f"{peon.url}/druid/worker/v1/task/t1/log")
        assert log.status_code == 200 and "published sequence" in log.text
        assert (await c.get("peon", "/druid/worker/v1/tasks")).json() == ["t1"]


async def test_chat_pause_resume_and_end_offsets(
    props: dict[str, str], kafka_broker: KafkaBroker
) -> None:
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, rows(10))
    async with fake_overlord(props) as fake, cluster(props) as c:
        peon = await c.start("peon")
        peon.service.handoff_poll_period = 0.1  # type: ignore[attr-defined]
        task = task_json("t2", kafka_broker, topic, {0: 0}, {0: LONG_MAX})
        await c.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)
        chat = f"{peon.url}/druid/worker/v1/chat/t2"

        async def read(n: int) -> bool:
            r = await c.http.get(f"{chat}/offsets/current")
            return r.status_code == 200 and r.json() == {"0": n}

        await wait_until(lambda: read(10), within=30, what="10 records read")
        assert (await c.http.get(f"{chat}/status")).json() == "READING"
        r = await c.http.post(f"{chat}/offsets/end", params={"finish": "false"}, json={"0": 10})
        assert r.status_code == 400 and "paused" in r.text
        r = await c.http.post(f"{chat}/pause")
        assert r.status_code == 200 and r.json() == {"0": 10}
        assert (await c.http.get(f"{chat}/status")).json() == "PAUSED"
        assert (await c.http.post(f"{chat}/offsets/end", json={"7": 10})).status_code == 400
        assert (
            await c.http.post(f"{chat}/offsets/end", params={"finish": "false"}, json={"0": 3})
        ).status_code == 400
        r = await c.http.post(f"{chat}/offsets/end", params={"finish": "false"}, json={"0": 10})
        assert r.status_code == 200
        # setEndOffsets resumes the task; the closed sequence is published on its own
        await wait_until(lambda: len(fake.transactions) == 1, within=30, what="first publish")
        assert fake.transactions[0]["start"] == {0: 0} and fake.transactions[0]["end"] == {0: 10}
        # sequence 0 is published and then forgotten

        async def only_sequence_1() -> bool:
            r = await c.http.get(f"{chat}/checkpoints")
            return bool(r.json() == {"1": {"0": 10}})

        await wait_until(only_sequence_1, within=10, what="sequence 0 removed")
        assert (await c.http.post(f"{chat}/resume")).status_code == 200

        await produce(kafka_broker, topic, rows(5, first=10))
        await wait_until(lambda: read(15), within=30, what="15 records read")
        assert (await c.http.post(f"{chat}/pause")).status_code == 200
        r = await c.http.post(f"{chat}/offsets/end", params={"finish": "true"}, json={"0": 15})
        assert r.status_code == 200
        await wait_state(c, "peon", "t2", "SUCCESS")
        assert [(t["start"], t["end"]) for t in fake.transactions] == [
            ({0: 0}, {0: 10}),
            ({0: 10}, {0: 15}),
        ]
        assert published_totals(fake) == (15, sum(range(15)))
        # a finished task is no longer pausable
        r = await c.http.post(f"{chat}/pause")
        assert r.status_code == 404


async def test_checkpoint_on_max_rows_per_segment(
    props: dict[str, str], kafka_broker: KafkaBroker
) -> None:
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, rows(10))
    async with fake_overlord(props) as fake, cluster(props) as c:
        peon = await c.start("peon")
        peon.service.handoff_poll_period = 0.1  # type: ignore[attr-defined]
        fake.peon_url = peon.url
        task = task_json("t3", kafka_broker, topic, {0: 0}, {0: 30}, maxRowsPerSegment=4)
        await c.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)
        # 10 rows (5 an hour) fill segments past 4: the task checkpoints, publishes [0, 10)
        await wait_until(lambda: bool(fake.transactions), within=30, what="first publish")
        assert (fake.transactions[0]["start"], fake.transactions[0]["end"]) == ({0: 0}, {0: 10})
        await produce(kafka_broker, topic, rows(20, first=10))
        await wait_state(c, "peon", "t3", "SUCCESS")
        assert fake.checkpoints, "the task asked for a checkpoint"
        spans = [(t["start"][0], t["end"][0]) for t in fake.transactions]
        assert len(spans) >= 2
        assert spans[0][0] == 0 and spans[-1][1] == 30
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        assert published_totals(fake) == (30, sum(range(30)))


async def test_restarted_peon_resumes_the_task_exactly(
    props: dict[str, str], kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, rows(20))
    async with fake_overlord(props) as fake, cluster(props) as c:
        peon = await c.start("peon")
        task = task_json("t4", kafka_broker, topic, {0: 0}, {0: 40}, maxRowsInMemory=6)
        await c.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)
        chat = f"{peon.url}/druid/worker/v1/chat/t4"

        async def read_20() -> bool:
            r = await c.http.get(f"{chat}/offsets/current")
            return r.status_code == 200 and r.json() == {"0": 20}

        await wait_until(read_20, within=30, what="20 records read")
        commit = tmp_path / "task" / "t4" / "persist" / "commit.json"
        # some hydrants were persisted, the rest is only in memory
        await wait_until(commit.exists, within=10, what="a persist")
        await c.stop("peon")
        assert not fake.transactions

        await produce(kafka_broker, topic, rows(20, first=20))
        peon = await c.start("peon")
        await wait_state(c, "peon", "t4", "SUCCESS")
        assert [(t["start"], t["end"]) for t in fake.transactions] == [({0: 0}, {0: 40})]
        assert published_totals(fake) == (40, sum(range(40)))
