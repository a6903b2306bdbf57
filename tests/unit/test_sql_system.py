"""sys table rows from what the cluster reports: overshadowing, availability, realtime-only
segments, servers, tasks and supervisors in Druid's column conventions."""

from __future__ import annotations

import orjson

from common.query.sql.catalog import SYSTEM_TABLES
from common.query.sql.system import (
    Served,
    ServerInfo,
    segment_rows,
    server_rows,
    server_segment_rows,
    supervisor_rows,
    task_rows,
)
from common.segments.intervals import Interval
from common.segments.segment import DataSegment

DAY = Interval.parse("2024-01-01/2024-01-02")


def seg(version: str, part: int = 0, day: Interval = DAY) -> DataSegment:
    return DataSegment(
        dataSource="wiki",
        interval=day,
        version=version,
        dimensions=["page"],
        metrics=["added"],
        shardSpec={"type": "numbered", "partitionNum": part, "partitions": 1},
        size=100 + part,
    )


def test_segments_overshadowed_available_and_realtime() -> None:
    old, new = seg("2024-02-01T00:00:00.000Z"), seg("2024-03-01T00:00:00.000Z")
    rt = seg("2024-04-01T00:00:00.000Z", day=Interval.parse("2024-01-05/2024-01-06"))
    served = [
        Served(new, (("h1:8083", "historical"), ("h2:8083", "historical"))),
        Served(rt, (("peon:8100", "indexer-executor"),)),
    ]
    rows = {r["segment_id"]: r for r in segment_rows([old, new], served)}
    assert list(rows) == sorted([old.identifier, new.identifier, rt.identifier])
    o, n, r = rows[old.identifier], rows[new.identifier], rows[rt.identifier]
    assert all(list(x) == list(SYSTEM_TABLES["SYS.SEGMENTS"]) for x in (o, n, r))
    assert (o["is_published"], o["is_overshadowed"], o["is_active"], o["is_available"]) == (
        1,
        1,
        0,
        0,
    )
    assert (n["is_published"], n["is_overshadowed"], n["is_active"], n["num_replicas"]) == (
        1,
        0,
        1,
        2,
    )
    assert (r["is_published"], r["is_realtime"], r["is_active"], r["is_available"]) == (0, 1, 1, 1)
    assert n["start"] == "2024-01-01T00:00:00.000Z" and n["end"] == "2024-01-02T00:00:00.000Z"
    assert orjson.loads(n["shard_spec"])["type"] == "numbered"
    assert orjson.loads(n["dimensions"]) == ["page"] and n["replication_factor"] == -1


def test_servers_tasks_supervisors() -> None:
    assert server_segment_rows({"b:1": ["s2", "s1"], "a:1": ["s3"]}) == [
        {"server": "a:1", "segment_id": "s3"},
        {"server": "b:1", "segment_id": "s1"},
        {"server": "b:1", "segment_id": "s2"},
    ]
    servers = server_rows(
        [
            ServerInfo("10.0.0.2", 8083, -1, "historical", None, "_default_tier", 5, 10),
            ServerInfo("10.0.0.1", 8081, -1, "coordinator", "t", is_leader=True),
            ServerInfo("10.0.0.3", 8091, -1, "middleManager", None),
        ]
    )
    assert [s["server_type"] for s in servers] == ["coordinator", "historical", "middle_manager"]
    assert servers[0]["is_leader"] == 1 and servers[1]["is_leader"] is None
    assert servers[1]["server"] == "10.0.0.2:8083" and servers[1]["curr_size"] == 5
    tasks = task_rows(
        [
            {
                "id": "t1",
                "groupId": "g",
                "type": "index_kafka",
                "dataSource": "wiki",
                "createdTime": "c",
                "queueInsertionTime": "q",
                "statusCode": "RUNNING",
                "runnerStatusCode": "RUNNING",
                "duration": -1,
                "location": {"host": "10.0.0.4", "port": 8100, "tlsPort": -1},
                "errorMsg": None,
            },
            {"id": "t2", "statusCode": "SUCCESS", "location": {"host": None, "port": -1}},
        ]
    )
    assert tasks[0]["location"] == "10.0.0.4:8100" and tasks[0]["plaintext_port"] == 8100
    assert tasks[1]["location"] is None and tasks[1]["plaintext_port"] == -1
    assert list(tasks[0]) == list(SYSTEM_TABLES["SYS.TASKS"])
    sups = supervisor_rows(
        [
            {
                "id": "wiki",
                "state": "RUNNING",
                "detailedState": "RUNNING",
                "healthy": True,
                "suspended": False,
                "type": "kafka",
                "source": "topic",
                "spec": {"type": "kafka"},
            }
        ]
    )
    assert sups == [
        {
            "supervisor_id": "wiki",
            "state": "RUNNING",
            "detailed_state": "RUNNING",
            "healthy": 1,
            "type": "kafka",
            "source": "topic",
            "suspended": 0,
            "spec": '{"type":"kafka"}',
        }
    ]
