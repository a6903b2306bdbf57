"""The overlord's task API and task actions over HTTP, on a real overlord (no peons: tasks stay
pending, which is what the API must then say)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from common.aio import wait_until
from common.ingest.metadata import DataSourceMetadata
from services.overlord.service import OverlordService
from tests.component.test_overlord_runner import kafka_task
from tests.support.cluster import Cluster, cluster, sqlite_properties

V1 = "/druid/indexer/v1"


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(sqlite_properties(tmp_path)) as cl:
        await cl.start("overlord")

        async def leading() -> bool:
            return (await cl.get("overlord", f"{V1}/isLeader")).status_code == 200

        await wait_until(leading, within=10, what="overlord leads")
        service = cl.nodes["overlord"].service
        assert isinstance(service, OverlordService)
        await wait_until(lambda: service.leading_queue is not None, within=10, what="queue")
        yield cl


async def post(c: Cluster, path: str, body: Any) -> Any:
    return await c.http.post(c.nodes["overlord"].url + path, json=body)


async def test_submit_status_list_shutdown(c: Cluster) -> None:
    r = await post(c, f"{V1}/task", kafka_task("t1"))
    assert r.status_code == 200 and r.json() == {"task": "t1"}
    task = (await c.get("overlord", f"{V1}/task/t1")).json()
    assert task["task"] == "t1" and task["payload"]["groupId"] == "t1"
    status = (await c.get("overlord", f"{V1}/task/t1/status")).json()
    assert status["task"] == "t1"
    plus = status["status"]
    assert (plus["statusCode"], plus["runnerStatusCode"], plus["dataSource"]) == (
        "RUNNING",
        "PENDING",
        "wiki",
    )
    assert set(plus) >= {"id", "groupId", "type", "createdTime", "queueInsertionTime", "location"}
    pending = (await c.get("overlord", f"{V1}/tasks", params={"state": "pending"})).json()
    assert [t["id"] for t in pending] == ["t1"]
    assert (await c.get("overlord", f"{V1}/tasks", params={"state": "running"})).json() == []
    assert [t["id"] for t in (await c.get("overlord", f"{V1}/pendingTasks")).json()] == ["t1"]
    r = await post(c, f"{V1}/taskStatus", ["t1", "nope"])
    assert list(r.json()) == ["t1"] and r.json()["t1"]["status"] == "RUNNING"

    r = await post(c, f"{V1}/task/t1/shutdown", None)
    assert r.status_code == 200 and r.json() == {"task": "t1"}
    plus = (await c.get("overlord", f"{V1}/task/t1/status")).json()["status"]
    assert (plus["statusCode"], plus["runnerStatusCode"]) == ("FAILED", "NONE")
    assert plus["errorMsg"] == "Shutdown request from user"
    complete = (await c.get("overlord", f"{V1}/tasks", params={"state": "complete"})).json()
    assert [t["id"] for t in complete] == ["t1"]
    assert [t["id"] for t in (await c.get("overlord", f"{V1}/completeTasks")).json()] == ["t1"]
    assert (await c.get("overlord", f"{V1}/tasks", params={"datasource": "other"})).json() == []
    # max and n are Java ints in Druid: beyond that (or negative) is a 400, never a database error
    for params in ({"max": 2**31}, {"max": -1}, {"max": 362777152002192441344}):
        r = await c.get("overlord", f"{V1}/tasks", params=params)
        assert r.status_code == 400, (params, r.status_code, r.text)
    assert (await c.get("overlord", f"{V1}/completeTasks", params={"n": 2**40})).status_code == 400


async def test_generated_id_and_unknowns(c: Cluster) -> None:
    body = kafka_task("x")
    del body["id"]
    r = await post(c, f"{V1}/task", body)
    assert r.status_code == 200 and r.json()["task"].startswith("index_kafka_wiki_")
    r = await c.get("overlord", f"{V1}/task/missing/status")
    assert r.status_code == 404 and r.json() == {"task": "missing", "status": None}
    assert (await c.get("overlord", f"{V1}/task/missing")).status_code == 404
    assert (await post(c, f"{V1}/task/missing/shutdown", None)).status_code == 404
    assert (await c.get("overlord", f"{V1}/task/missing/reports")).status_code == 404
    r = await c.get("overlord", f"{V1}/tasks", params={"state": "bogus"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.update(type="index_hadoop"), "Could not resolve type id 'index_hadoop'"),
        # a batch task is validated as one: its ioConfig needs an inputSource
        (lambda t: t.update(type="index_parallel"), "Invalid ioConfig: inputSource"),
        (
            lambda t: t.update(
                type="index_parallel",
                ioConfig={"inputSource": {"type": "local", "files": ["/x"]}},
            ),
            "'inputFormat' is required",
        ),
        (lambda t: t.pop("dataSchema"), "Invalid dataSchema"),
        # the stream is the start sequence numbers' (Druid's task has no topic), else topic
        (
            lambda t: (t["ioConfig"].pop("topic"), t["ioConfig"]["startSequenceNumbers"].clear()),
            "'topic' is required",
        ),
        (lambda t: t["ioConfig"].update(consumerProperties={}), "bootstrap.servers"),
        (lambda t: t["ioConfig"].update(inputFormat={"type": "avro"}), "Invalid inputFormat"),
        (
            lambda t: t["ioConfig"]["startSequenceNumbers"].update(
                partitionSequenceNumberMap={"x": 1}
            ),
            "startSequenceNumbers",
        ),
        (lambda t: t.update(id="a/b"), "field [Task ID]: Value [a/b] cannot contain"),
    ],
)
async def test_bad_tasks_are_400(c: Cluster, mutate: Any, message: str) -> None:
    task = kafka_task("bad")
    mutate(task)
    r = await post(c, f"{V1}/task", task)
    assert r.status_code == 400, r.text
    assert message in r.json()["errorMessage"]


async def test_duplicate_and_non_json_are_400(c: Cluster) -> None:
    assert (await post(c, f"{V1}/task", kafka_task("dup"))).status_code == 200
    r = await post(c, f"{V1}/task", kafka_task("dup"))
    assert r.status_code == 400 and "already exists" in r.json()["errorMessage"]
    r = await c.http.post(c.nodes["overlord"].url + f"{V1}/task", content=b"{nope")
    assert r.status_code == 400


async def test_task_actions(c: Cluster) -> None:
    await post(c, f"{V1}/task", kafka_task("a1"))
    task = {"id": "a1", "dataSource": "wiki", "groupId": "a1", "type": "index_kafka"}

    async def act(action: dict[str, Any], task_ref: Any = task) -> Any:
        return await post(c, f"{V1}/action", {"task": task_ref, "action": action})

    allocate = {
        "type": "segmentAllocate",
        "dataSource": "wiki",
        "timestamp": "2024-01-01T10:15:00.000Z",
        "queryGranularity": "none",
        "preferredSegmentGranularity": "hour",
        "sequenceName": "seq_0",
        "previousSegmentId": None,
        "skipSegmentLineageCheck": True,
        "lockGranularity": "TIME_CHUNK",
        "taskLockType": "EXCLUSIVE",
    }
    r = await act(allocate)
    assert r.status_code == 200, r.text
    sid = r.json()["result"]
    assert sid["interval"] == "2024-01-01T10:00:00.000Z/2024-01-01T11:00:00.000Z"
    assert sid["shardSpec"] == {"type": "numbered", "partitionNum": 0, "partitions": 0}
    assert (await act(allocate)).json()["result"] == sid

    segment = {
        "dataSource": "wiki",
        "interval": sid["interval"],
        "version": sid["version"],
        "loadSpec": {"type": "local", "path": "/tmp/x"},
        "shardSpec": sid["shardSpec"],
        "size": 10,
    }
    start = DataSourceMetadata.start("t", {0: 0}).to_json()
    end = DataSourceMetadata.end("t", {0: 100}).to_json()
    publish = {
        "type": "segmentTransactionalInsert",
        "segments": [segment],
        "startMetadata": start,
        "endMetadata": end,
        "supervisorId": "wiki",
        "dataSource": "wiki",
    }
    r = await act(publish)
    result = r.json()["result"]
    assert result["success"] and result["errorMsg"] is None and not result["retryable"]
    service = c.nodes["overlord"].service
    assert isinstance(service, OverlordService)
    assert await service.store.get_datasource_metadata("wiki") == end
    r = await act(publish)  # the very same publish again (a task restarted after it): a no-op
    result = r.json()["result"]
    assert result["success"] and await service.store.get_datasource_metadata("wiki") == end
    other = {**segment, "shardSpec": {"type": "numbered", "partitionNum": 7, "partitions": 0}}
    r = await act({**publish, "segments": [other]})  # stale start, different segment: refused
    result = r.json()["result"]
    assert not result["success"] and not result["retryable"]

    # A segment outside the task's locks cannot be published.
    outside = {**segment, "interval": "2025-01-01T00:00:00.000Z/2025-01-01T01:00:00.000Z"}
    r = await act({**publish, "segments": [outside], "startMetadata": None, "endMetadata": None})
    assert r.status_code == 500 and "not covered by locks" in r.json()["errorMessage"]

    # A segment to drop must be covered by the task's locks too.
    r = await act(
        {
            **publish,
            "segments": [],
            "segmentsToBeDropped": [outside],
            "startMetadata": None,
            "endMetadata": None,
        }
    )
    assert r.status_code == 500 and "not covered by locks" in r.json()["errorMessage"]

    # segmentListUsed: used segments overlapping the intervals, of any datasource.
    listed = {"type": "segmentListUsed", "dataSource": "wiki", "intervals": [sid["interval"]]}
    used = (await act(listed)).json()["result"]
    assert [u["shardSpec"]["partitionNum"] for u in used] == [0]
    far = {**listed, "intervals": ["2030-01-01/2030-01-02"]}
    assert (await act(far)).json()["result"] == []
    assert (await act({**listed, "dataSource": "other"})).json()["result"] == []
    assert (await act({**listed, "intervals": []})).status_code == 400

    checkpoint = {
        "type": "checkPointDataSourceMetadata",
        "supervisorId": "wiki",
        "taskGroupId": 0,
        "checkpointMetadata": start,
    }
    assert (await act(checkpoint)).json() == {"result": False}
    calls: list[tuple[str, int, DataSourceMetadata]] = []

    async def handler(sup: str, group: int, md: DataSourceMetadata) -> bool:
        calls.append((sup, group, md))
        return True

    service.checkpoint_handler = handler
    assert (await act(checkpoint)).json() == {"result": True}
    assert calls == [("wiki", 0, DataSourceMetadata.from_json(start))]

    interval = "2024-02-01T00:00:00.000Z/2024-02-02T00:00:00.000Z"
    lock = (await act({"type": "timeChunkLockAcquire", "interval": interval})).json()["result"]
    assert lock["interval"] == interval and lock["lockType"] == "EXCLUSIVE"
    assert lock["groupId"] == "a1" and lock["dataSource"] == "wiki"
    assert (await act({"type": "lockRelease", "interval": interval})).json() == {"result": None}
    locks = (await act({"type": "lockList"})).json()["result"]
    assert [lk["interval"] for lk in locks] == [sid["interval"]]

    r = await act(allocate, task_ref={"id": "nobody"})
    assert r.status_code == 404
    r = await act({"type": "segmentFly"})
    assert r.status_code == 400 and "segmentFly" in r.json()["errorMessage"]
    r = await act({"type": "segmentAllocate", "dataSource": "wiki"})
    assert r.status_code == 400
    assert (await post(c, f"{V1}/action", {"action": allocate})).status_code == 400

    # Completion releases the task's locks; actions of a finished task are refused.
    await post(c, f"{V1}/task/a1/shutdown", None)
    assert await service.store.task_locks(["a1"]) == []
    assert (await act(allocate)).status_code == 404


async def test_capacity_and_workers_without_peons(c: Cluster) -> None:
    r = await c.get("overlord", f"{V1}/totalWorkerCapacity")
    assert r.json() == {
        "currentClusterCapacity": 0,
        "maximumCapacityWithAutoScale": 0,
        "usedClusterCapacity": 0,
    }
    assert (await c.get("overlord", f"{V1}/workers")).json() == []
