"""The ``index_parallel`` supervisor's sub-task scheduling (``ParallelRun``) against a scripted
overlord, and ``dropExisting``'s choice of segments to drop in the publish.

The overlord fake answers the calls the supervisor makes (submit, status, shutdown); each
sub-task's fate is scripted per split and try, and a succeeding sub-task reports its segments
through the supervisor's chat handler first, as a real one does."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.aio import wait_until
from common.errors import InvalidInput
from common.ingest.batch_input.sources import Split
from common.ingest.batch_input.spec import parse_batch_task
from common.segments.deep_storage import DeepStorage
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, NumberedShardSpec
from services.peon.batch_parallel import ParallelRun, SubTaskFailed
from services.peon.batch_task import BatchDeps, BatchIndexTask

DAY1 = Interval.parse("2024-01-01/2024-01-02")
DAY2 = Interval.parse("2024-01-02/2024-01-03")
MONTH = Interval.parse("2024-01-01/2024-02-01")


def task_json(**tuning: Any) -> dict[str, Any]:
    return {
        "type": "index_parallel",
        "id": "sup",
        "spec": {
            "dataSchema": {
                "dataSource": "ds",
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["k"]},
                "granularitySpec": {
                    "segmentGranularity": "DAY",
                    "intervals": ["2024-01-01/2024-01-03"],
                },
            },
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": {"type": "http", "uris": ["http://x/a", "http://x/b"]},
                "inputFormat": {"type": "json"},
            },
            "tuningConfig": {"type": "index_parallel", "maxNumConcurrentSubTasks": 2, **tuning},
        },
    }


def segment(interval: Interval, version: str, num: int, path: Path | None = None) -> DataSegment:
    return DataSegment(
        dataSource="ds",
        interval=interval,
        version=version,
        dimensions=("k",),
        metrics=(),
        shardSpec=NumberedShardSpec(partitionNum=num, partitions=0),
        size=1,
        loadSpec={"type": "local", "path": str(path)} if path else {},
    )


class Overlord:
    """Scripted sub-task outcomes: ``fates[(split, try)]`` is ``"ok"``, ``"report-then-fail"``
    (reports its segments, then its peon is lost), ``"fail"`` or ``"hang"`` (runs until shut
    down)."""

    def __init__(self, tmp: Path, fates: dict[tuple[int, int], str]) -> None:
        self.tmp = tmp
        self.fates = fates
        self.run: ParallelRun | None = None
        self.status: dict[str, dict[str, Any]] = {}
        self.submitted: list[str] = []
        self.shutdowns: list[str] = []
        self.files: dict[str, Path] = {}

    @staticmethod
    def split_try(sub_id: str) -> tuple[int, int]:
        _, _, n, attempt, _ = sub_id.split("_")  # sup_sub_<n>_<try>_<run>
        return int(n), int(attempt)

    def _report(self, sub_id: str) -> None:
        assert self.run is not None
        n, attempt = self.split_try(sub_id)
        path = self.tmp / f"{sub_id}.parquet"
        path.write_bytes(b"x")
        self.files[sub_id] = path
        seg = segment(DAY1, "v1", 10 * n + attempt, path)
        self.run.report(
            {
                "taskId": sub_id,
                "createdSegments": [seg.to_json()],
                "rowStats": {"processed": 10},
            }
        )

    async def _play(self, sub_id: str) -> None:
        fate = self.fates.get(self.split_try(sub_id), "ok")
        await asyncio.sleep(0.01)
        if fate == "hang":
            return
        if fate in ("ok", "report-then-fail"):
            self._report(sub_id)
        if fate == "ok":
            self.status[sub_id] = {"status": "SUCCESS"}
        else:
            self.status[sub_id] = {"status": "FAILED", "errorMsg": f"lost {sub_id}"}

    async def request(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        if method == "POST" and path == "/druid/indexer/v1/task":
            sub_id = json["id"]
            self.submitted.append(sub_id)
            self.status[sub_id] = {"status": "RUNNING"}
            asyncio.get_running_loop().create_task(self._play(sub_id))
            return httpx.Response(200, json={"task": sub_id})
        if method == "POST" and path.endswith("/shutdown"):
            sub_id = path.split("/")[-2]
            self.shutdowns.append(sub_id)
            self.status[sub_id] = {"status": "FAILED", "errorMsg": "Shutdown request from user"}
            return httpx.Response(200, json={"task": sub_id})
        if method == "GET" and path.endswith("/status"):
            sub_id = path.split("/")[-2]
            return httpx.Response(200, json={"task": sub_id, "status": self.status[sub_id]})
        raise AssertionError(f"unexpected {method} {path}")


def parallel(tmp: Path, overlord: Overlord, **tuning: Any) -> ParallelRun:
    raw = task_json(**tuning)
    deps = BatchDeps(
        actions=None,  # type: ignore[arg-type]
        handoff=None,  # type: ignore[arg-type]
        deep_storage=DeepStorage("local", storage_directory=str(tmp / "deep")),
        overlord=overlord,  # type: ignore[arg-type]
        http=None,  # type: ignore[arg-type]
        self_url="http://peon",
    )
    task = BatchIndexTask(parse_batch_task(raw), tmp / "task", deps, logging.getLogger("test"), raw)
    run = ParallelRun(task, raw)
    overlord.run = run
    return run


SPLITS = [Split("http", "http://x/a"), Split("http", "http://x/b")]


async def test_a_lost_sub_task_is_retried_and_only_the_successful_report_counts(
    tmp_path: Path,
) -> None:
    overlord = Overlord(tmp_path, {(0, 0): "report-then-fail", (0, 1): "fail"})
    run = parallel(tmp_path, overlord)
    segments = await run.run(SPLITS)
    # split 0 needed three tries (maxRetry 3 by default), split 1 one
    assert sorted(overlord.split_try(s) for s in overlord.submitted) == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
    ]
    # the lost first try had reported: its segment is not published and its file is deleted
    assert sorted(s.partition_num for s in segments) == [2, 10]
    tries = {overlord.split_try(s): s for s in overlord.submitted}
    assert not overlord.files[tries[(0, 0)]].exists()
    assert overlord.files[tries[(0, 2)]].exists() and overlord.files[tries[(1, 0)]].exists()
    assert run.task.meters.totals()["processed"] == 20
    assert overlord.shutdowns == []


async def test_max_retry_is_druids_number_of_tries(tmp_path: Path) -> None:
    overlord = Overlord(tmp_path, {(0, 0): "fail", (0, 1): "fail", (1, 0): "hang"})
    run = parallel(tmp_path, overlord, maxRetry=2)
    with pytest.raises(SubTaskFailed) as failed:
        await run.run(SPLITS)
    message = str(failed.value)
    assert message.startswith("Failed in phase[single_phase_sub_task]: the split [http://x/a]")
    assert "failed [2] time(s) (tuningConfig.maxRetry)" in message
    [last] = [s for s in overlord.submitted if overlord.split_try(s) == (0, 1)]
    assert message.endswith(f"its last sub-task [{last}]: lost {last}")
    # split 1 was still running: stopped through the overlord, as Druid's TaskMonitor.stop
    [hung] = [s for s in overlord.submitted if overlord.split_try(s) == (1, 0)]
    assert overlord.shutdowns == [hung]
    assert run.running == set()


async def test_max_retry_zero_still_tries_once(tmp_path: Path) -> None:
    overlord = Overlord(tmp_path, {(0, 0): "fail"})
    run = parallel(tmp_path, overlord, maxRetry=0)
    with pytest.raises(SubTaskFailed, match=r"failed \[1\] time\(s\)"):
        await run.run(SPLITS)
    assert [overlord.split_try(s) for s in overlord.submitted if s.startswith("sup_sub_0")] == [
        (0, 0)
    ]


async def test_a_stopped_supervisor_stops_its_sub_tasks(tmp_path: Path) -> None:
    overlord = Overlord(tmp_path, {(0, 0): "hang", (1, 0): "hang"})
    run = parallel(tmp_path, overlord)
    job = asyncio.ensure_future(run.run(SPLITS))
    await wait_until(lambda: len(overlord.submitted) == 2, within=5, what="both submitted")
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert sorted(overlord.shutdowns) == sorted(overlord.submitted)


async def test_only_a_running_sub_task_may_report(tmp_path: Path) -> None:
    run = parallel(tmp_path, Overlord(tmp_path, {}))
    with pytest.raises(InvalidInput, match="is not a running sub-task of"):
        run.report({"taskId": "sup_sub_0_0_old", "createdSegments": []})


class Actions:
    def __init__(self, used: list[DataSegment]) -> None:
        self.used = used

    async def submit(self, action: dict[str, Any]) -> Any:
        assert action["type"] == "segmentListUsed"
        return [s.to_json() for s in self.used]


async def test_drop_existing_leaves_overshadowed_segments_to_the_coordinator(
    tmp_path: Path,
) -> None:
    """Segments a new one overshadows are not dropped in the publish (the coordinator retires
    them once the new one is served: no gap for queries); the rest of the interval is."""
    old_day1 = segment(DAY1, "2023", 0)
    old_day2 = segment(DAY2, "2023", 0)
    outside = segment(Interval.parse("2024-01-03/2024-01-04"), "2023", 0)
    raw = task_json()
    raw["spec"]["ioConfig"]["dropExisting"] = True
    deps = BatchDeps(
        actions=Actions([old_day1, old_day2, outside]),  # type: ignore[arg-type]
        handoff=None,  # type: ignore[arg-type]
        deep_storage=DeepStorage("local", storage_directory=str(tmp_path)),
        overlord=None,  # type: ignore[arg-type]
        http=None,  # type: ignore[arg-type]
        self_url="http://peon",
    )
    task = BatchIndexTask(parse_batch_task(raw), tmp_path, deps, logging.getLogger("t"), raw)
    new_day1 = segment(DAY1, "2024", 0)
    assert await task._segments_to_drop([new_day1]) == [old_day2]
    # a coarser new segment overshadows every day inside it
    assert await task._segments_to_drop([segment(MONTH, "2024", 0)]) == []
    # an older "new" version overshadows nothing
    assert await task._segments_to_drop([segment(DAY1, "2022", 0)]) == [old_day1, old_day2]


async def test_lineage_allocation_gives_a_retry_the_ids_of_the_try_before(tmp_path: Path) -> None:
    run = parallel(tmp_path, Overlord(tmp_path, {}))
    run.task._versions[Interval.parse("2024-01-01/2024-01-03")] = "v1"

    async def alloc(sequence: str | None, prev: str | None, day: Interval = DAY1) -> str:
        body: dict[str, Any] = {"timestamp": day.start}
        if sequence is not None:
            body.update(sequenceName=sequence, prevSegmentId=prev)
        got = await run.allocate(body)
        return f"{got['interval']}#{got['shardSpec']['partitionNum']}"

    p0 = "ds_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v1"  # partition 0's id
    first = await alloc("sup_0", None)
    second = await alloc("sup_0", p0)
    other = await alloc("sup_1", None)
    assert [first[-1], second[-1], other[-1]] == ["0", "1", "2"]
    # the retry of split 0 walks the same lineage, then goes on with new numbers
    assert await alloc("sup_0", None) == first
    assert await alloc("sup_0", p0) == second
    assert (await alloc("sup_0", f"{p0}_1"))[-1] == "3"
    # another chunk where the try before had this one: a new id, the old history dropped
    assert (await alloc("sup_1", None, DAY2)).endswith("#0")
    with pytest.raises(InvalidInput, match="no segment \\[nope\\] was allocated"):
        await alloc("sup_1", "nope")
    # without a sequence (an older sub-task) every request is a new partition
    assert (await alloc(None, None))[-1] == "4"
