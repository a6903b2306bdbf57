"""Parallel native batch (Druid's ``SinglePhaseParallelIndexTaskRunner``): the supervisor task
runs one ``single_phase_sub_task`` per input split (a file, a URI, an S3 object) on other
peon slots.

* Sub-tasks are submitted to the overlord (``POST /druid/indexer/v1/task``) with the supervisor's
  group id, one split each, at most ``maxNumConcurrentSubTasks`` (and the free cluster slots) at
  a time. A split gets ``tuningConfig.maxRetry`` tries (Druid's ``TaskMonitor``: default 3, a
  new sub-task each time, e.g. after its peon was lost); when they are used up the supervisor
  stops the sub-tasks still running and fails, naming the split and the last error.
* Only the report of a split's succeeded sub-task counts: a failed attempt's report is dropped
  (its pushed files deleted), and a sub-task that is not a current attempt cannot report.
* A sub-task asks the supervisor for each segment id (``POST
  /druid/worker/v1/chat/{supervisorTaskId}/segment/allocate`` on the supervisor's peon): in
  overwrite mode the supervisor's time-chunk lock gives the version and it numbers the chunk's
  partitions; in append mode the supervisor allocates through the overlord with its own lock.
  Allocation is lineage-based (Druid's default since 0.22): a request names its sequence (the
  sub-task's ``subtaskSpecId``, the same for every try of a split) and the id it was given
  before in that sequence, so a retried split gets the very ids of the lost try: no gap in a
  chunk's partition numbers, and its files are pushed over the lost try's.
* A sub-task pushes its segments to deep storage and reports them (``POST .../report``) with its
  row counters; it publishes nothing.
* The supervisor publishes every reported segment in one ``segmentTransactionalInsert``, after
  setting each overwritten chunk's core partition count to its number of segments (Druid's
  ``SegmentPublisherUtil.annotateShardSpec``): a query sees all of them or none.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from common.aio import bounded, wait_until
from common.errors import InvalidInput, ServiceUnavailable
from common.ids import url_id
from common.ingest.batch_input.s3 import S3InputSource, parse_uri
from common.ingest.batch_input.sources import Split
from common.segments.errors import DeepStorageError
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, NumberedShardSpec, SegmentIdWithShardSpec

if TYPE_CHECKING:
    from services.peon.batch_task import BatchIndexTask

SUB_TASK_TYPE = "single_phase_sub_task"
CHAT = "/druid/worker/v1/chat"
TASK = "/druid/indexer/v1/task"
STATUS_POLL_SECONDS = 0.2
#: How long stopping the still-running sub-tasks of a failed or stopped supervisor may take.
STOP_TIMEOUT_SECONDS = 10.0


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
        #: sequence name -> the segment ids allocated in it, in order (Druid's
        #: ``sequenceToSegmentIds``).
        self._sequences: dict[str, list[SegmentIdWithShardSpec]] = {}
        self.log: logging.Logger = task.log
        #: Sub-tasks submitted and not seen complete (stopped if the supervisor fails or stops).
        self.running: set[str] = set()
        #: Submissions in flight: finished before the running sub-tasks are stopped, so none
        #: is created after its shutdown was asked for.
        self._submits: set[asyncio.Future[httpx.Response]] = set()
        self._failed = False
        #: Distinguishes this run's sub-task ids from a previous run of the same supervisor
        #: (a restarted peon runs it again from the start).
        self._run_token = secrets.token_hex(3)

    # ------------------------------------------------------------------ chat handlers

    async def allocate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("timestamp"), int):
            raise InvalidInput("segment/allocate needs {'timestamp': <epoch millis>}")
        t = self.task
        bucket = t._bucket(int(body["timestamp"]))
        sequence = body.get("sequenceName")
        previous = body.get("prevSegmentId")
        if sequence is not None and not isinstance(sequence, str):
            raise InvalidInput("segment/allocate: 'sequenceName' must be a string")
        if previous is not None and not isinstance(previous, str):
            raise InvalidInput("segment/allocate: 'prevSegmentId' must be a string")
        async with self._alloc_lock:
            if sequence is not None:
                again = self._allocated_before(sequence, previous, bucket)
                if again is not None:
                    return again.to_json()
            if t.spec.io.appendToExisting:
                self._alloc_seq += 1
                ident = await t._allocate_id(bucket, f"{t.spec.id}_{self._alloc_seq}")
            else:
                if not any(iv.contains(bucket) for iv in t._versions):
                    await t._lock_all([bucket])
                num = self._next_partition.get(bucket.start, 0)
                self._next_partition[bucket.start] = num + 1
                ident = SegmentIdWithShardSpec(
                    t.spec.data_source, bucket, t._version_for(bucket), num, 0
                )
            if sequence is not None:
                self._sequences.setdefault(sequence, []).append(ident)
            return ident.to_json()

    def _allocated_before(
        self, sequence: str, previous: str | None, bucket: Interval
    ) -> SegmentIdWithShardSpec | None:
        """The id an earlier try of the sequence got right after ``previous`` (Druid's
        ``allocateNewSegment(dataSource, timestamp, sequenceName, prevSegmentId)``); None when
        the sequence goes further than before. A retry asks in the same order, for the same
        chunks: another chunk at that place gets a new id, and the rest of the old history is
        dropped."""
        history = self._sequences.get(sequence, [])
        if previous is None:
            index = 0
        else:
            ids = [i.id for i in history]
            if previous not in ids:
                raise InvalidInput(
                    f"segment/allocate: no segment [{previous}] was allocated in sequence "
                    f"[{sequence}]"
                )
            index = ids.index(previous) + 1
        if index < len(history) and history[index].interval == bucket:
            return history[index]
        del history[index:]
        return None

    def report(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("taskId"), str):
            raise InvalidInput("report needs {'taskId', 'createdSegments'}")
        sub_id = body["taskId"]
        if sub_id not in self.running:
            raise InvalidInput(
                f"report: [{sub_id}] is not a running sub-task of [{self.task.spec.id}]"
            )
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
            "id": f"{t.id}_sub_{n}_{attempt}_{self._run_token}",
            "groupId": t.group_id,
            "dataSource": t.data_source,
            "supervisorTaskId": t.id,
            "subtaskSpecId": f"{t.id}_{n}",
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
        # Druid's TaskMonitor retries while ``numTries < maxRetry``: maxRetry tries in all.
        tries = max(1, t.spec.tuning.maxRetry)
        semaphore = asyncio.Semaphore(limit)
        succeeded: list[str] = []

        async def one(n: int, split: Split) -> None:
            async with semaphore:
                for attempt in range(tries):
                    if self._failed:
                        return  # another split failed for good: submit nothing more
                    sub = self.sub_task(n, attempt, split)
                    state, error = await self._submit_and_wait(sub)
                    if state == "SUCCESS" and sub["id"] in self.reports.segments:
                        self._merge_counts(sub["id"])
                        succeeded.append(sub["id"])
                        return
                    if state == "SUCCESS":
                        error = "it succeeded without reporting its segments"
                    self.log.warning(
                        "sub-task %s failed (try %d of %d): %s",
                        sub["id"],
                        attempt + 1,
                        tries,
                        error,
                    )
                    await self._discard(sub["id"])
                self._failed = True
                raise SubTaskFailed(
                    f"Failed in phase[{SUB_TASK_TYPE}]: the split [{split.where[:200]}] failed "
                    f"[{tries}] time(s) (tuningConfig.maxRetry); its last sub-task [{sub['id']}]: "
                    f"{error}"
                )

        jobs = [asyncio.ensure_future(one(n, s)) for n, s in enumerate(splits)]
        try:
            await asyncio.gather(*jobs)
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await self._stop_running()
        segments = [s for sub_id in succeeded for s in self.reports.segments[sub_id]]
        return annotate_core_partitions(segments) if not t.spec.io.appendToExisting else segments

    async def _discard(self, sub_id: str) -> None:
        """Forget a failed attempt's report and delete the files it pushed (never published)."""
        self.reports.totals.pop(sub_id, None)
        self.reports.events.pop(sub_id, None)
        for segment in self.reports.segments.pop(sub_id, []):
            if not segment.load_spec:
                continue
            try:
                await asyncio.to_thread(self.task.deps.deep_storage.delete, dict(segment.load_spec))
            except (DeepStorageError, OSError) as e:  # the file is an orphan at worst
                self.log.warning("could not delete %s of failed %s: %s", segment.id, sub_id, e)

    async def _stop_running(self) -> None:
        """Druid's ``TaskMonitor.stop``: ask the overlord to shut down the sub-tasks still
        running (the supervisor failed, or was stopped itself)."""
        if self._submits:
            await asyncio.gather(*self._submits, return_exceptions=True)
        if not self.running:
            return
        overlord = self.task.deps.overlord

        async def stop(sub_id: str) -> None:
            self.log.info("stopping sub-task %s", sub_id)
            try:
                await overlord.request("POST", f"{TASK}/{url_id(sub_id)}/shutdown")
            except (httpx.HTTPError, ServiceUnavailable) as e:
                self.log.warning("could not stop sub-task %s: %s", sub_id, e)

        ids, self.running = sorted(self.running), set()
        try:
            await bounded(asyncio.gather(*(stop(i) for i in ids)), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            self.log.warning("stopping sub-tasks %s timed out", ids)

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
        self.running.add(sub["id"])
        # Shielded: when the supervisor is cancelled meanwhile, the submission still completes
        # (and ``_stop_running`` waits for it) instead of maybe creating an orphan later.
        submit = asyncio.ensure_future(overlord.request("POST", TASK, json=sub))
        self._submits.add(submit)
        submit.add_done_callback(self._submits.discard)
        r = await asyncio.shield(submit)
        if r.status_code != 200:
            self.running.discard(sub["id"])
            return "FAILED", f"submit refused ({r.status_code}): {r.text[:300]}"
        status: dict[str, Any] = {}

        async def finished() -> bool:
            try:
                resp = await overlord.request("GET", f"{TASK}/{url_id(sub['id'])}/status")
            except (httpx.HTTPError, ServiceUnavailable):
                return False  # the overlord is changing leaders: ask again
            if resp.status_code == 200:
                status.update(resp.json().get("status") or {})
            return status.get("status") in ("SUCCESS", "FAILED")

        # No deadline of our own: the overlord fails a sub-task its peon loses.
        await wait_until(finished, within=float("inf"), interval=STATUS_POLL_SECONDS)
        self.running.discard(sub["id"])
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
