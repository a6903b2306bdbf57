"""The overlord's pure decisions: worker selection and timeouts, lock granting, allocation
chunks and partition numbers, Druid's pending-segment sha1, and the publish start-offset rule."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import pytest

from common.errors import InvalidInput
from common.ingest.metadata import DataSourceMetadata
from common.metadata.datasource_metadata import decide_commit
from common.metadata.locks import TaskLock, decide_lock
from common.metadata.pending import (
    SegmentIdWithShardSpec,
    choose_chunk,
    next_partition,
    sequence_name_prev_id_sha1,
)
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from services.overlord.tasks.model import task_status, validate_task
from services.overlord.tasks.workers import (
    WorkerState,
    disappeared,
    housekeeping,
    no_slot_reason,
    select_worker,
)

HOUR = Interval.parse("2024-01-01T10:00:00Z/2024-01-01T11:00:00Z")
DAY = Interval.parse("2024-01-01/2024-01-02")


def payload(tid: str, group: str | None = None, cap: int = 1) -> dict[str, Any]:
    return {"id": tid, "resource": {"availabilityGroup": group or tid, "requiredCapacity": cap}}


def ann(tid: str, status: str = "RUNNING", group: str | None = None) -> dict[str, Any]:
    return {
        "id": tid,
        "status": status,
        "taskResource": {"availabilityGroup": group or tid, "requiredCapacity": 1},
    }


def test_select_worker_least_used_with_room() -> None:
    a = WorkerState("a:1", "http://a:1", capacity=2, announcements={"x": ann("x")})
    b = WorkerState("b:1", "http://b:1", capacity=2)
    assert select_worker([a, b], payload("t")) is b
    b.assigned["y"] = payload("y")
    b.assigned["z"] = payload("z")
    assert select_worker([a, b], payload("t")) is a
    a.announcements["w"] = ann("w")
    assert select_worker([a, b], payload("t")) is None
    # Completed tasks free their slot.
    a.announcements["w"]["status"] = "SUCCESS"
    assert select_worker([a, b], payload("t")) is a


def test_select_worker_skips_disabled_removed_and_same_availability_group() -> None:
    a = WorkerState("a:1", "http://a:1", capacity=5, announcements={"r0": ann("r0", group="g")})
    b = WorkerState("b:1", "http://b:1", capacity=5, disabled=True)
    c = WorkerState("c:1", "http://c:1", capacity=5, removed_at=1.0)
    assert select_worker([a, b, c], payload("r1", group="g")) is None
    assert select_worker([a, b, c], payload("r1", group="h")) is a
    assert select_worker([a], payload("big", cap=6)) is None


def test_disappeared_only_incomplete_missing_tasks() -> None:
    before = {"a": ann("a"), "b": ann("b", "SUCCESS"), "c": ann("c")}
    assert disappeared(before, ["c"]) == ["a"]


def test_housekeeping_timeouts() -> None:
    w = WorkerState("a:1", "http://a:1", capacity=2, announcements={"started": ann("started")})
    gone = WorkerState("g:1", "http://g:1", capacity=2, removed_at=100.0)
    gone.announcements["orphan"] = ann("orphan")
    assigned = {"started": ("a:1", 0.0), "late": ("a:1", 0.0), "fresh": ("a:1", 99.0)}
    failures, drop = housekeeping(
        [w, gone], assigned, now=105.0, assignment_timeout=10, cleanup_timeout=10
    )
    assert [f[0] for f in failures] == ["late"]
    assert "did not start it in timeout" in failures[0][1]
    assert drop == []
    failures, drop = housekeeping(
        [w, gone], {}, now=111.0, assignment_timeout=10, cleanup_timeout=10
    )
    assert failures and failures[0][0] == "orphan" and drop == ["g:1"]


def test_worker_json_is_druids() -> None:
    w = WorkerState("a:1", "http://a:1", capacity=3, announcements={"x": ann("x")})
    w.assigned["y"] = payload("y")
    body = w.to_json()
    assert body["worker"]["host"] == "a:1" and body["worker"]["scheme"] == "http"
    assert body["currCapacityUsed"] == 2 and body["runningTasks"] == ["x", "y"]
    w.disabled = True
    assert w.to_json()["worker"]["version"] == ""


def lock(task: str, group: str, interval: Interval, kind: str = "EXCLUSIVE") -> TaskLock:
    return TaskLock(task, group, "wiki", interval, "v0", kind)


def test_decide_lock() -> None:
    args = {"data_source": "wiki", "new_version": "vNew"}
    got, fresh = decide_lock(
        [], task_id="t", group_id="g", interval=HOUR, lock_type="EXCLUSIVE", **args
    )
    assert got is not None and fresh and got.version == "vNew"
    held = lock("t", "g", HOUR)
    assert decide_lock(
        [held], task_id="t", group_id="g", interval=HOUR, lock_type="EXCLUSIVE", **args
    ) == (held, False)
    same_group, fresh = decide_lock(
        [held], task_id="t2", group_id="g", interval=HOUR, lock_type="EXCLUSIVE", **args
    )
    assert same_group is not None and fresh and same_group.version == "v0"
    assert decide_lock(
        [held], task_id="o", group_id="o", interval=HOUR, lock_type="EXCLUSIVE", **args
    ) == (None, False)
    assert decide_lock(
        [held], task_id="t2", group_id="g", interval=DAY, lock_type="EXCLUSIVE", **args
    ) == (None, False)
    app = lock("a", "ga", HOUR, "APPEND")
    other, _ = decide_lock(
        [app], task_id="b", group_id="gb", interval=HOUR, lock_type="APPEND", **args
    )
    assert other is not None and other.version == "v0"
    other_ds, _ = decide_lock(
        [held],
        task_id="o",
        group_id="o",
        interval=HOUR,
        lock_type="EXCLUSIVE",
        data_source="other",
        new_version="x",
    )
    assert other_ds is not None


def seg(interval: Interval, version: str, part: int, core: int = 0) -> DataSegment:
    return DataSegment.model_validate(
        {
            "dataSource": "wiki",
            "interval": str(interval),
            "version": version,
            "loadSpec": {},
            "shardSpec": {"type": "numbered", "partitionNum": part, "partitions": core},
        }
    )


def test_choose_chunk_and_next_partition() -> None:
    chunk = choose_chunk(HOUR, HOUR, [], [])
    assert chunk is not None and (chunk.interval, chunk.version) == (HOUR, None)
    used = [seg(DAY, "v1", 0, 2), seg(DAY, "v1", 1, 2)]
    chunk = choose_chunk(HOUR, HOUR, used, [])
    assert chunk is not None and (chunk.interval, chunk.version) == (DAY, "v1")
    assert next_partition(DAY, "v1", used, [SegmentIdWithShardSpec("wiki", DAY, "v1", 4)]) == (5, 2)
    assert next_partition(DAY, "v2", used, []) == (0, 0)
    pending = [SegmentIdWithShardSpec("wiki", HOUR, "v9", 0)]
    chunk = choose_chunk(HOUR, DAY, [], pending)
    assert chunk is not None and (chunk.interval, chunk.version) == (HOUR, "v9")
    # Existing data that overlaps the row but does not contain it: no allocation.
    assert choose_chunk(DAY, DAY, [seg(HOUR, "v1", 0)], []) is None


def test_sequence_sha1_is_druids_layout() -> None:
    expected = (
        hashlib.sha1(b"seq" + b"\xff" + struct.pack("<qq", HOUR.start, HOUR.end) + b"\xff" + b"v1")
        .hexdigest()
        .upper()
    )
    assert sequence_name_prev_id_sha1("seq", None, HOUR, "v1", True) == expected
    with_prev = hashlib.sha1(b"seq\xffprev\xffv1").hexdigest().upper()
    assert sequence_name_prev_id_sha1("seq", "prev", HOUR, "v1", False) == with_prev


def test_decide_commit_rules() -> None:
    start = DataSourceMetadata.start("t", {0: 10})
    end = DataSourceMetadata.end("t", {0: 20})
    new, failure = decide_commit(None, start, end)
    assert failure is None and new == end
    stored = DataSourceMetadata.end("t", {0: 10, 1: 5})
    new, failure = decide_commit(stored, start, end)
    assert failure is None and new == DataSourceMetadata.end("t", {0: 20, 1: 5})
    _, failure = decide_commit(DataSourceMetadata.end("t", {0: 5}), start, end)
    assert failure is not None and failure.retryable and "ahead of" in (failure.error_msg or "")
    _, failure = decide_commit(DataSourceMetadata.end("t", {0: 15}), start, end)
    assert failure is not None and not failure.retryable
    assert "Inconsistency between stored metadata state" in (failure.error_msg or "")


def test_validate_task_fills_defaults_and_refuses_bad_ones() -> None:
    from tests.component.test_overlord_runner import kafka_task

    raw = kafka_task("k")
    del raw["resource"]
    del raw["dataSource"]
    task = validate_task(raw)
    assert task["dataSource"] == "wiki" and task["groupId"] == "k"
    assert task["resource"] == {"availabilityGroup": "k", "requiredCapacity": 1}
    for bad in (None, [], {"type": "noop"}, {**kafka_task("k"), "dataSource": "other"}):
        with pytest.raises(InvalidInput):
            validate_task(bad)


def test_task_status_truncates_error() -> None:
    status = task_status("t", "FAILED", error="x" * 5000)
    assert len(status["errorMsg"]) == 1024
    assert status["location"] == {"host": None, "port": -1, "tlsPort": -1}


def test_no_slot_reason_says_what_blocks_the_task() -> None:
    payload = {"id": "t", "resource": {"availabilityGroup": "grp", "requiredCapacity": 1}}
    assert "No worker is running" in no_slot_reason([], payload)
    off = WorkerState("a:1", "http://a:1", capacity=2, disabled=True)
    assert "All 1 worker(s) are disabled" in no_slot_reason([off], payload)
    full = WorkerState("a:1", "http://a:1", capacity=1, announcements={"x": ann("x")})
    gone = WorkerState("g:1", "http://g:1", capacity=4, removed_at=1.0)
    reason = no_slot_reason([full, gone], payload)
    assert "No free task slot: 1 of 1 slot(s) in use on 1 worker(s)" in reason
    assert "druid.worker.capacity" in reason
    replica = WorkerState(
        "b:1", "http://b:1", capacity=3, announcements={"r": ann("r", group="grp")}
    )
    assert select_worker([full, replica], payload) is None
    assert "availabilityGroup [grp]" in no_slot_reason([full, replica], payload)
