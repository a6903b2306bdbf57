"""A real peon running index_kafka tasks against a real Kafka (tansu) and a fake overlord.

The fake overlord (``tests.support.fake_overlord``) also answers as the coordinator.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from common.aio import wait_until
from tests.support.cluster import Cluster, cluster, sqlite_properties
from tests.support.fake_overlord import (
    LONG_MAX,
    fake_overlord,
    published_totals,
    realtime_rows,
    rows,
    task_announcement,
    task_json,
    wait_task_state,
)
from tests.support.kafka import KafkaBroker, create_topic, kafka_broker, produce, unique_topic

__all__ = ["kafka_broker"]

pytestmark = pytest.mark.slow


async def task_state(c: Cluster, peon: str, task_id: str) -> str | None:
    ann = await task_announcement(c.http, c.nodes[peon].url, task_id)
    return None if ann is None else str(ann["status"])


async def wait_state(
    c: Cluster, peon: str, task_id: str, state: str, within: float = 40
) -> dict[str, Any]:
    return await wait_task_state(c.http, c.nodes[peon].url, task_id, state, within)


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
        # the stop persisted what was still in memory: the commit names all 20 records
        committed = orjson.loads(commit.read_bytes())["metadata"]["nextPartitions"]
        assert committed["partitionSequenceNumberMap"] == {"0": 20}

        await produce(kafka_broker, topic, rows(20, first=20))
        peon = await c.start("peon")
        await wait_state(c, "peon", "t4", "SUCCESS")
        assert [(t["start"], t["end"]) for t in fake.transactions] == [({0: 0}, {0: 40})]
        assert published_totals(fake) == (40, sum(range(40)))
        # the restored task re-acquired the locks of its restored sinks' time chunks (both hours)
        assert sorted(i for t, i in fake.lock_requests if t == "t4") == [
            "2024-01-01T00:00:00.000Z/2024-01-01T01:00:00.000Z",
            "2024-01-01T01:00:00.000Z/2024-01-01T02:00:00.000Z",
        ]


async def test_restored_task_fails_when_its_lock_is_gone(
    props: dict[str, str], kafka_broker: KafkaBroker
) -> None:
    """Druid's restore lock supplier: no lock for a restored segment, the task fails at once."""
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, rows(6))
    async with fake_overlord(props) as fake, cluster(props) as c:
        peon = await c.start("peon")
        task = task_json("t5", kafka_broker, topic, {0: 0}, {0: LONG_MAX})
        await c.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)

        async def read_6() -> bool:
            r = await c.http.get(f"{peon.url}/druid/worker/v1/chat/t5/offsets/current")
            return r.status_code == 200 and r.json() == {"0": 6}

        await wait_until(read_6, within=30, what="6 records read")
        await c.stop("peon")
        assert not fake.lock_requests  # a fresh task takes its locks with segmentAllocate
        fake.lock_ok = False
        await c.start("peon")
        ann = await wait_state(c, "peon", "t5", "FAILED")
        assert "Failed to acquire lock for restored segments" in ann["taskStatus"]["errorMsg"]
        assert fake.lock_requests and not fake.transactions


async def test_reading_goes_on_while_a_publish_is_slow(
    props: dict[str, str], kafka_broker: KafkaBroker
) -> None:
    """A closed sequence is published in the background: while its publish waits at the
    overlord, the task reads on into the next sequence and answers queries for the new rows."""
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, rows(10))
    async with fake_overlord(props) as fake, cluster(props) as c:
        peon = await c.start("peon")
        peon.service.handoff_poll_period = 0.1  # type: ignore[attr-defined]
        task = task_json("t6", kafka_broker, topic, {0: 0}, {0: LONG_MAX})
        await c.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)
        chat = f"{peon.url}/druid/worker/v1/chat/t6"

        async def read(n: int) -> bool:
            r = await c.http.get(f"{chat}/offsets/current")
            return r.status_code == 200 and r.json() == {"0": n}

        await wait_until(lambda: read(10), within=30, what="10 records read")
        fake.publish_gate.clear()  # the overlord now holds every publish
        try:
            assert (await c.http.post(f"{chat}/pause")).status_code == 200
            r = await c.http.post(f"{chat}/offsets/end", params={"finish": "false"}, json={"0": 10})
            assert r.status_code == 200
            await wait_until(lambda: fake.publish_waiting > 0, within=30, what="a publish waiting")

            await produce(kafka_broker, topic, rows(15, first=10, hour=2))

            async def all_queryable() -> bool:
                return await read(25) and await realtime_rows(c.http, peon.url) == 25

            await wait_until(all_queryable, within=30, what="new rows read and queryable")
            # still waiting: reading did not wait for the publish
            assert fake.publish_waiting == 1 and not fake.transactions
            assert (await c.http.get(f"{chat}/status")).json() == "READING"
            checkpoints = (await c.http.get(f"{chat}/checkpoints")).json()
            assert checkpoints == {"0": {"0": 0}, "1": {"0": 10}}
        finally:
            fake.publish_gate.set()  # (a stopping peon would wait for the held publish)
        await wait_until(lambda: len(fake.transactions) == 1, within=30, what="first publish")
        assert (fake.transactions[0]["start"], fake.transactions[0]["end"]) == ({0: 0}, {0: 10})
        assert (await c.http.post(f"{chat}/pause")).status_code == 200
        r = await c.http.post(f"{chat}/offsets/end", params={"finish": "true"}, json={"0": 25})
        assert r.status_code == 200
        await wait_state(c, "peon", "t6", "SUCCESS")
        assert [(t["start"], t["end"]) for t in fake.transactions] == [
            ({0: 0}, {0: 10}),
            ({0: 10}, {0: 25}),
        ]
        assert published_totals(fake) == (25, sum(range(25)))


async def test_a_stop_while_waiting_for_handoff_resumes_the_wait(
    props: dict[str, str], kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """A task that has published and waits for handoff stops at once for a peon restart (it
    does not hold the stop for handoffConditionTimeout) and, restored, only waits again."""
    topic = unique_topic()
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, rows(8))
    async with fake_overlord(props) as fake, cluster(props) as c:
        fake.handoff_ok = False
        fast_handoff = {"druid.segment.handoff.pollDuration": "PT0.1S"}
        peon = await c.start("peon", **fast_handoff)
        task = task_json("t7", kafka_broker, topic, {0: 0}, {0: 8})
        await c.http.post(f"{peon.url}/druid-internal/v1/worker/assignTask", json=task)
        await wait_until(lambda: bool(fake.transactions), within=30, what="publish")
        await c.stop("peon")
        assert (tmp_path / "task" / "assignedTasks" / "t7").exists()
        fake.handoff_ok = True
        await c.start("peon", **fast_handoff)
        await wait_state(c, "peon", "t7", "SUCCESS")
        assert [(t["start"], t["end"]) for t in fake.transactions] == [({0: 0}, {0: 8})]
        assert published_totals(fake) == (8, sum(range(8)))
