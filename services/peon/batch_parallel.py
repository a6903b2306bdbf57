"""Parallel native batch (Druid's ``SinglePhaseParallelIndexTaskRunner``): the supervisor task
runs one ``single_phase_sub_task`` per input split (a file, a URI, an S3 object) on other
peon slots.

* Sub-tasks are submitted to the overlord (``POST /druid/indexer/v1/task``) with the supervisor's
  group id, one split each, at most ``maxNumConcurrentSubTasks`` (and the free cluster slots) at
  a time. A failed sub-task is retried up to ``maxRetry`` (Druid's default 3) times.
* A sub-task asks the supervisor for each segment id (``POST
  /druid/worker/v1/chat/{supervisorTaskId}/segment/allocate`` on the supervisor's peon): in
  overwrite mode the supervisor's time-chunk lock gives the version and it numbers the chunk's
  partitions; in append mode the supervisor allocates through the overlord with its own lock.
* A sub-task pushes its segments to deep storage and reports them (``POST .../report``) with its
  row counters; it publishes nothing.
* The supervisor publishes every reported segment in one ``segmentTransactionalInsert``, after
  setting each overwritten chunk's core partition count to its number of segments (Druid's
  ``SegmentPublisherUtil.annotateShardSpec``): a query sees all of them or none.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from common.aio import wait_until
from common.errors import InvalidInput
from common.ids import url_id
from common.ingest.batch_input.s3 import S3InputSource, parse_uri
from common.ingest.batch_input.sources import Split
from common.segments.segment import DataSegment, NumberedShardSpec, SegmentIdWithShardSpec

if TYPE_CHECKING:
    from services.peon.batch_task import BatchIndexTask

SUB_TASK_TYPE = "single_phase_sub_task"
CHAT = "/druid/worker/v1/chat"
TASK = "/druid/indexer/v1/task"
#: Druid's ``maxRetry`` default for sub-tasks.
DEFAULT_MAX_RETRY = 3
STATUS_POLL_SECONDS = 0.2


def split_source(source: dict[str, Any], split: Split) -> dict[str, Any]:
    """The input source JSON of a sub-task that reads only ``split``."""
    if split.kind == "file":
        return {"type": "local", "files": [split.where]}
    if split.kind == "s3":
        return S3InputSource.model_validate(source).split_json(parse_uri(split.where))
    if split.kind == "http":
        out = {"type": "http", "uris": [split.where]}
        for key in ("httpAuthenticationUsername", "httpAuthenticationPassword"):
            if key in source:
                out[key] = source[key]
        return out
    return {"type": "inline", "data": split.where}


@dataclass
class SubTaskReports:
    """What the supervisor has heard from its sub-tasks."""

    segments: dict[str, list[DataSegment]] = field(default_factory=dict)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    persists: dict[str, int] = field(default_factory=dict)


class ParallelRun:
    """The supervisor side: allocation, reports and sub-task scheduling."""

    def __init__(self, task: BatchIndexTask, raw_task: dict[str, Any]) -> None:
        self.task = task
        self.raw = raw_task
        self.reports = SubTaskReports()
        self._alloc_lock = asyncio.Lock()
        self._next_partition: dict[int, int] = {}
        self._alloc_seq = 0
        self.log: logging.Logger = task.log

    # ------------------------------------------------------------------ chat handlers

    async def allocate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("timestamp"), int):
            raise InvalidInput("segment/allocate needs {'timestamp': <epoch millis>}")
        t = self.task
        bucket = t._bucket(int(body["timestamp"]))
        async with self._alloc_lock:
            if t.spec.io.appendToExisting:
                self._alloc_seq += 1
                return (await t._allocate_id(bucket, f"{t.spec.id}_{self._alloc_seq}")).to_json()
            if not any(iv.contains(bucket) for iv in t._versions):
                await t._lock_all([bucket])
            num = self._next_partition.get(bucket.start, 0)
            self._next_partition[bucket.start] = num + 1
            ident = SegmentIdWithShardSpec(
                t.spec.data_source, bucket, t._version_for(bucket), num, 0
            )
            return ident.to_json()

    def report(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("taskId"), str):
            raise InvalidInput("report needs {'taskId', 'createdSegments'}")
        sub_id = body["taskId"]
        try:
            segments = [DataSegment.from_json(s) for s in body.get("createdSegments") or []]
        except ValueError as e:
            raise InvalidInput(f"report: bad segment: {e}") from None
        self.reports.segments[sub_id] = segments
        self.reports.totals[sub_id] = dict(body.get("rowStats") or {})
        self.reports.events[sub_id] = list(body.get("unparseableEvents") or [])
        self.reports.persists[sub_id] = int(body.get("persists") or 0)

    # ------------------------------------------------------------------ scheduling

    def sub_task(self, n: int, attempt: int, split: Split) -> dict[str, Any]:
        spec = self.raw.get("spec") if isinstance(self.raw.get("spec"), dict) else self.raw
        assert isinstance(spec, dict)
        io = dict(spec["ioConfig"])
        io["inputSource"] = split_source(io["inputSource"], split)
        t = self.task.spec
        return {
            "type": SUB_TASK_TYPE,
            "id": f"{t.id}_sub_{n}_{attempt}",
            "groupId": t.group_id,
            "dataSource": t.data_source,
            "supervisorTaskId": t.id,
            "spec": {
                "dataSchema": spec["dataSchema"],
                "ioConfig": io,
                "tuningConfig": spec.get("tuningConfig") or {},
            },
            "context": {**t.context, "supervisorUrl": self.task.deps.self_url},
        }

    async def free_slots(self) -> int:
        r = await self.task.deps.overlord.request("GET", "/druid/indexer/v1/totalWorkerCapacity")
        if r.status_code != 200:
            return 0
        body = r.json()
        return int(body.get("currentClusterCapacity", 0)) - int(body.get("usedClusterCapacity", 0))

    async def run(self, splits: list[Split]) -> list[DataSegment]:
        t = self.task
        limit = t.spec.tuning.maxNumConcurrentSubTasks
        max_retry = int(t.spec.context.get("maxRetry", DEFAULT_MAX_RETRY))
        semaphore = asyncio.Semaphore(limit)

        async def one(n: int, split: Split) -> None:
            async with semaphore:
                for attempt in range(max_retry + 1):
                    sub = self.sub_task(n, attempt, split)
                    state, error = await self._submit_and_wait(sub)
                    if state == "SUCCESS" and sub["id"] in self.reports.segments:
                        self._merge_counts(sub["id"])
                        return
                    self.log.warning("sub-task %s ended %s: %s", sub["id"], state, error)
                raise SubTaskFailed(
                    f"sub-task for split [{split.where[:200]}] failed {max_retry + 1} times"
                )

        await asyncio.gather(*(one(n, s) for n, s in enumerate(splits)))
        segments = [s for segs in self.reports.segments.values() for s in segs]
        return annotate_core_partitions(segments) if not t.spec.io.appendToExisting else segments

    def _merge_counts(self, sub_id: str) -> None:
        meters = self.task.meters
        for name, n in self.reports.totals.get(sub_id, {}).items():
            if n:
                meters.increment(name, int(n))
        for event in self.reports.events.get(sub_id, []):
            self.task.handler.keep(event)
        self.task.sub_task_persists += self.reports.persists.get(sub_id, 0)

    async def _submit_and_wait(self, sub: dict[str, Any]) -> tuple[str, str | None]:
        overlord = self.task.deps.overlord
        r = await overlord.request("POST", TASK, json=sub)
        if r.status_code != 200:
            return "FAILED", f"submit refused ({r.status_code}): {r.text[:300]}"
        status: dict[str, Any] = {}

        async def finished() -> bool:
            try:
                resp = await overlord.request("GET", f"{TASK}/{url_id(sub['id'])}/status")
            except httpx.HTTPError:
                return False
            if resp.status_code == 200:
                status.update(resp.json().get("status") or {})
            return status.get("status") in ("SUCCESS", "FAILED")

        # No deadline of our own: the overlord fails a sub-task its peon loses.
        await wait_until(finished, within=float("inf"), interval=STATUS_POLL_SECONDS)
        return str(status["status"]), status.get("errorMsg")


class SubTaskFailed(InvalidInput):
    """A split could not be ingested within ``maxRetry`` attempts (fails the supervisor)."""

    error_code = "Task failed"


def annotate_core_partitions(segments: list[DataSegment]) -> list[DataSegment]:
    """Each chunk's core partition count: ``n`` when its segments are numbered ``0..n-1``. A
    retried sub-task can leave a gap (a number allocated to the failed attempt); such a chunk
    keeps ``partitions`` 0 (complete when non-empty), since pushed files cannot be renumbered.
    Publishing is one transaction either way, so no query sees part of a chunk."""
    nums: dict[tuple[int, int, str], set[int]] = {}
    for s in segments:
        nums.setdefault((s.interval.start, s.interval.end, s.version), set()).add(s.partition_num)
    out = []
    for s in segments:
        if isinstance(s.shard_spec, NumberedShardSpec):
            have = nums[(s.interval.start, s.interval.end, s.version)]
            n = len(have) if have == set(range(len(have))) else 0
            s = s.model_copy(
                update={"shard_spec": NumberedShardSpec(partitionNum=s.partition_num, partitions=n)}
            )
        out.append(s)
    return out


async def post_to_supervisor(
    http: httpx.AsyncClient, url: str, supervisor_id: str, path: str, body: dict[str, Any]
) -> Any:
    r = await http.post(f"{url}{CHAT}/{url_id(supervisor_id)}/{path}", json=body, timeout=60.0)
    if r.status_code != 200:
        raise SubTaskFailed(
            f"supervisor task [{supervisor_id}] answered {r.status_code} to {path}: {r.text[:300]}"
        )
    return r.json() if r.content else None
