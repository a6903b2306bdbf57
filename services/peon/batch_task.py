"""The ``index_parallel`` / ``index`` task runner (Druid's ``ParallelIndexSupervisorTask`` run in
its sequential mode, which is also what ``index`` does).

``run()``:

1. Overwrite mode (``appendToExisting`` false): with ``granularitySpec.intervals`` the
   time-chunk locks of those intervals (widened to ``segmentGranularity``) are taken first, as
   Druid's ``isReady``; their version is the new segments' version, newer than any segment
   already there, so the new segments overshadow the old ones once published.
2. Every split of the input source is read in a worker thread and parsed by the streaming
   ``RowParser`` (``common.ingest.batch_input``); rows go to an ``IncrementalIndex`` per
   ``segmentGranularity`` bucket (rollup as in streaming), persisted to spill files in the task
   directory whenever ``maxRowsInMemory`` / ``maxBytesInMemory`` is reached
   (``common.ingest.batch_input.spill``).
3. Without ``intervals`` the buckets that got rows are locked now.
4. Each bucket's persists and in-memory rows are merged (rolled up again), partitioned
   (``dynamic`` or ``hashed``), every partition is written as a segment file and pushed to deep
   storage. In append mode each segment is allocated with
   ``segmentAllocate`` (numbered after the chunk's current partitions, current version).
5. All segments are published with one ``segmentTransactionalInsert``: all or nothing.
6. With ``awaitSegmentAvailabilityTimeoutMillis`` > 0 the task waits (at most that long) for the
   coordinator to report the segments handed off; a timeout does not fail the task.

The final report is Druid's ``ingestionStatsAndErrors`` and stays with the peon after the task
ends, so the overlord's ``/task/{id}/reports`` serves it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from common.config import S3Settings
from common.discovery.leader_client import LeaderClient
from common.errors import KdruidError
from common.ingest.batch import BatchParser, batch_supported
from common.ingest.batch_input.partition import Partition, partition
from common.ingest.batch_input.readers import parse_bytes, parse_table
from common.ingest.batch_input.s3 import S3InputSource
from common.ingest.batch_input.sources import Split, read_split, s3_client, splits
from common.ingest.batch_input.spec import (
    BatchTaskSpec,
    DruidInputSource,
    ParquetInputFormat,
)
from common.ingest.batch_input.spill import BatchIndexes, MergedChunk
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import RowParser
from common.ingest.spec import DelimitedInputFormat, JsonInputFormat
from common.segments.deep_storage import DeepStorage
from common.segments.format import read_parquet, write_parquet
from common.segments.intervals import Interval
from common.segments.isotime import format_iso
from common.segments.segment import DataSegment, NumberedShardSpec, SegmentIdWithShardSpec
from common.segments.timeline import SegmentTimeline
from services.peon.batch_parallel import ParallelRun, post_to_supervisor
from services.peon.clients import HandoffClient, TaskActionClient
from services.peon.taskspec import default_max_bytes_in_memory

BUILD_SEGMENTS = "buildSegments"


class BatchTaskFailed(KdruidError):
    error_code = "Task failed"


@dataclass
class BatchDeps:
    actions: TaskActionClient
    handoff: HandoffClient
    deep_storage: DeepStorage
    overlord: LeaderClient
    http: httpx.AsyncClient
    #: This peon's base URL (sub-tasks call their supervisor there).
    self_url: str
    handoff_poll_period: float = 10.0
    #: ``druid.s3.*``: the default client of the ``s3`` input source.
    s3: S3Settings | None = None


class BatchIndexTask:
    def __init__(
        self,
        spec: BatchTaskSpec,
        task_dir: Path,
        deps: BatchDeps,
        log: logging.Logger,
        raw_task: dict[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        #: Set while this supervisor runs sub-tasks (its chat endpoints use it).
        self.parallel: ParallelRun | None = None
        self._raw_task = raw_task or {}
        self.task_dir = task_dir
        self.deps = deps
        self.log = log
        self.meters = RowIngestionMeters(now=time.monotonic())
        t = spec.tuning
        self.handler = ParseExceptionHandler(
            self.meters, t.maxParseExceptions, t.maxSavedParseExceptions, t.logParseExceptions
        )
        fmt = spec.input_format
        row_format = fmt if fmt is not None and not isinstance(fmt, ParquetInputFormat) else None
        self.parser = RowParser(
            spec.schema, row_format or JsonInputFormat(type="json"), self.handler
        )
        # The streaming path's column-wise parser, for JSON lines and for Arrow tables
        # (Parquet files, segments of the ``druid`` input source) alike.
        plain_json = JsonInputFormat(type="json")
        columnar_format = fmt if isinstance(fmt, JsonInputFormat) else plain_json
        self.columnar = (
            BatchParser(spec.schema, columnar_format, self.meters)
            if not isinstance(fmt, DelimitedInputFormat)
            and batch_supported(spec.schema, columnar_format)
            else None
        )
        self.ingestion_state = "NOT_STARTED"
        self.error: str | None = None
        self.segments: list[DataSegment] = []
        self.segment_availability_confirmed = False
        self.segment_availability_wait_ms = 0
        max_bytes = t.maxBytesInMemory or default_max_bytes_in_memory()
        self.indexes = BatchIndexes(
            spec.schema, task_dir / "persist", t.maxRowsInMemory, max(max_bytes, 0)
        )
        #: Intermediate persists of this task and, for a supervisor, of its sub-tasks.
        self.sub_task_persists = 0
        self._versions: dict[Interval, str] = {}
        #: Set when this runs a ``compact`` task: the new segments' ``lastCompactionState``.
        self.compaction_state: dict[str, Any] | None = None
        #: A sub-task's last segment id from its supervisor (the lineage of the next request).
        self._prev_segment_id: str | None = None
        self._s3_fs: Any = None

    # ------------------------------------------------------------------ report

    def report(self) -> dict[str, Any]:
        """Druid's task report (``ingestionStatsAndErrors``)."""
        return {
            "ingestionStatsAndErrors": {
                "taskId": self.spec.id,
                "type": "ingestionStatsAndErrors",
                "payload": {
                    "ingestionState": self.ingestion_state,
                    "unparseableEvents": self.handler.unparseable_events(),
                    "rowStats": {BUILD_SEGMENTS: self.meters.totals()},
                    "errorMsg": self.error,
                    "segmentAvailabilityConfirmed": self.segment_availability_confirmed,
                    "segmentAvailabilityWaitTimeMs": self.segment_availability_wait_ms,
                    "recordsProcessed": None,
                    "persists": self.persists,
                },
            }
        }

    @property
    def persists(self) -> int:
        """Intermediate persists (Druid's ``ingest/persists/count``), sub-tasks' included."""
        return self.indexes.persists + self.sub_task_persists

    # ------------------------------------------------------------------ main

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        spec = self.spec
        try:
            overwrite = not spec.io.appendToExisting
            intervals = spec.schema.granularitySpec.intervals
            sub_task = spec.supervisor_task_id is not None
            if overwrite and intervals and not sub_task:
                await self._lock_all(intervals)
            self.ingestion_state = "BUILD_SEGMENTS"
            all_splits = await self._splits()
            if await self._run_in_parallel(all_splits):
                self.parallel = ParallelRun(self, self._raw_task)
                self.log.info("running %d sub-tasks", len(all_splits))
                segments = await self.parallel.run([s for s in all_splits if isinstance(s, Split)])
            else:
                for split in all_splits:
                    await asyncio.to_thread(self._ingest_split, split)
                if overwrite and not intervals and not sub_task:
                    await self._lock_all([self._bucket(b) for b in self.indexes.buckets])
                if self.indexes.persists:
                    self.log.info(
                        "%d intermediate persists (%d rows); merging them",
                        self.indexes.persists,
                        self.indexes.rows_persisted,
                    )
                segments = []
                for start in self.indexes.buckets:
                    segments.extend(await self._push_bucket(start, overwrite))
                    self.indexes.release(start)
            if sub_task:
                await self._report_to_supervisor(segments)
                self.ingestion_state = "COMPLETED"
                return self._status("SUCCESS", None, started)
            if self.compaction_state is not None:
                state = self.compaction_state
                segments = [s.model_copy(update={"last_compaction_state": state}) for s in segments]
            await self._publish(segments)
            self.segments = segments
            await self._await_availability()
            self.ingestion_state = "COMPLETED"
            self.log.info("task %s published %d segments", spec.id, len(segments))
            return self._status("SUCCESS", None, started)
        except (KdruidError, OSError, ValueError) as e:
            self.log.exception("task %s failed", spec.id)
            self.error = str(e)
            return self._status("FAILED", str(e), started)
        finally:
            self.indexes.close()

    async def _run_in_parallel(self, all_splits: list[Split | DataSegment]) -> bool:
        """Druid runs sub-tasks when ``maxNumConcurrentSubTasks`` > 1 and the input has more
        than one split; here also only with dynamic partitions, file-like input and a free slot
        for them (with none, the supervisor reads the splits itself, as Druid does with 1)."""
        spec = self.spec
        if spec.type != "index_parallel" or spec.tuning.maxNumConcurrentSubTasks <= 1:
            return False  # ``index`` is Druid's single-task form; sub-tasks never fan out
        if len(all_splits) <= 1 or not all(isinstance(s, Split) for s in all_splits):
            return False
        if spec.partitions.type != "dynamic":
            return False
        free = await ParallelRun(self, self._raw_task).free_slots()
        if free < 1:
            self.log.info("no free task slot for sub-tasks: reading the splits sequentially")
            return False
        return True

    async def _report_to_supervisor(self, segments: list[DataSegment]) -> None:
        spec = self.spec
        assert spec.supervisor_task_id is not None
        await post_to_supervisor(
            self.deps.http,
            str(spec.context["supervisorUrl"]),
            spec.supervisor_task_id,
            "report",
            {
                "taskId": spec.id,
                "createdSegments": [s.to_json() for s in segments],
                "rowStats": self.meters.totals(),
                "unparseableEvents": self.handler.saved(),
                "persists": self.indexes.persists,
            },
        )

    def _status(self, state: str, error: str | None, started: float) -> dict[str, Any]:
        return {
            "id": self.spec.id,
            "status": state,
            "duration": int((time.monotonic() - started) * 1000),
            "errorMsg": None if error is None else error[:1024],
        }

    def _bucket(self, start: int) -> Interval:
        return self.spec.schema.granularitySpec.segmentGranularity.bucket(start)

    # ------------------------------------------------------------------ locks

    async def _lock_all(self, intervals: list[Interval]) -> None:
        gran = self.spec.schema.granularitySpec.segmentGranularity
        for interval in intervals:
            if interval.end <= interval.start:
                continue
            start = gran.bucket_start(interval.start)
            end = gran.bucket(interval.end - 1).end
            lock_interval = Interval(start, end)
            lock = await self.deps.actions.submit(
                {
                    "type": "timeChunkLockTryAcquire",
                    "lockType": str(self.spec.context.get("taskLockType") or "EXCLUSIVE"),
                    "interval": str(lock_interval),
                }
            )
            if not lock:
                raise BatchTaskFailed(
                    f"Failed to acquire lock for interval[{lock_interval}]: another task holds "
                    "a conflicting lock"
                )
            self._versions[lock_interval] = str(lock["version"])

    def _version_for(self, bucket: Interval) -> str:
        for lock_interval, version in self._versions.items():
            if lock_interval.contains(bucket):
                return version
        raise BatchTaskFailed(f"No lock covers interval[{bucket}]")

    # ------------------------------------------------------------------ reading

    async def _splits(self) -> list[Split | DataSegment]:
        source = self.spec.io.inputSource
        if isinstance(source, DruidInputSource):
            return await self._druid_segments(source)
        if isinstance(source, S3InputSource):
            self._s3_fs = await asyncio.to_thread(s3_client, source, self.deps.s3)
        return list(await asyncio.to_thread(splits, source, self._s3_fs))

    async def _druid_segments(self, source: DruidInputSource) -> list[Split | DataSegment]:
        """The visible segments of ``dataSource`` over ``interval`` (Druid's
        ``RetrieveUsedSegmentsAction`` then the timeline)."""
        used = await self.deps.actions.submit(
            {
                "type": "segmentListUsed",
                "dataSource": source.dataSource,
                "intervals": [str(source.interval)],
            }
        )
        timeline = SegmentTimeline.of(DataSegment.from_json(s) for s in used or [])
        out: list[Split | DataSegment] = []
        for holder in timeline.lookup(source.interval, skip_objects_with_no_data=True):
            out.extend(holder.objects)
        return out

    def _ingest_split(self, split: Split | DataSegment) -> None:
        """Worker thread: read one split and add its rows to the time-chunk indexes."""
        now_ms = int(time.time() * 1000)
        if isinstance(split, DataSegment):
            self._ingest_segment(split, now_ms)
            return
        data = read_split(split, self._s3_fs)
        fmt = self.spec.input_format
        assert fmt is not None  # checked by parse_batch_task
        if isinstance(fmt, ParquetInputFormat):  # the row parser counts the other formats
            self.meters.add_processed_bytes(len(data))
        for rows in parse_bytes(self.parser, fmt, data, now_ms, self.columnar):
            self.indexes.add(rows)

    def _ingest_segment(self, segment: DataSegment, now_ms: int) -> None:
        source = self.spec.io.inputSource
        assert isinstance(source, DruidInputSource)
        path = self.task_dir / "druid-input" / f"{segment.id}.parquet"
        self.deps.deep_storage.pull(segment.load_spec or {}, path)
        try:
            table, _info = read_parquet(path)
        finally:
            path.unlink(missing_ok=True)
        # Only the part of the segment inside the input interval is read (Druid clips too).
        times = table.column("__time").cast("int64").to_numpy()
        mask = (times >= source.interval.start) & (times < source.interval.end)
        if not mask.all():
            table = table.filter(pa.array(mask))
        for rows in parse_table(self.parser, table, now_ms, columnar=self.columnar):
            self.indexes.add(rows)

    # ------------------------------------------------------------------ push and publish

    async def _push_bucket(self, start: int, overwrite: bool) -> list[DataSegment]:
        bucket = self._bucket(start)
        chunk = await asyncio.to_thread(self.indexes.merged, start)
        try:
            parts = partition(chunk.table, self.spec.partitions, chunk.dimensions)
        except ValueError as e:
            raise BatchTaskFailed(str(e)) from None
        out = []
        for i, part in enumerate(parts):
            if self.spec.supervisor_task_id is not None:
                segment = await self._from_supervisor(bucket, chunk, part)
            elif overwrite:
                segment = DataSegment(
                    dataSource=self.spec.data_source,
                    interval=bucket,
                    version=self._version_for(bucket),
                    dimensions=tuple(chunk.dimensions),
                    metrics=tuple(chunk.metrics),
                    shardSpec=part.shard_spec,
                    size=0,
                )
            else:
                segment = await self._allocate(bucket, i, chunk)
            out.append(await asyncio.to_thread(self._push, segment, part, chunk))
        return out

    async def _from_supervisor(
        self, bucket: Interval, chunk: MergedChunk, part: Partition
    ) -> DataSegment:
        """A sub-task's segment id comes from its supervisor (Druid's
        ``SupervisorTaskAccess.allocateNewSegment``)."""
        spec = self.spec
        assert spec.supervisor_task_id is not None
        request: dict[str, Any] = {"timestamp": bucket.start}
        if spec.subtask_spec_id is not None:
            request["sequenceName"] = spec.subtask_spec_id
            request["prevSegmentId"] = self._prev_segment_id
        result = await post_to_supervisor(
            self.deps.http,
            str(spec.context["supervisorUrl"]),
            spec.supervisor_task_id,
            "segment/allocate",
            request,
        )
        ident = SegmentIdWithShardSpec.from_json(result)
        self._prev_segment_id = ident.id
        return _segment_of(ident, chunk)

    async def _allocate(self, bucket: Interval, i: int, chunk: MergedChunk) -> DataSegment:
        ident = await self._allocate_id(bucket, f"{self.spec.id}_{bucket.start}_{i}")
        return _segment_of(ident, chunk)

    async def _allocate_id(self, bucket: Interval, sequence: str) -> SegmentIdWithShardSpec:
        gspec = self.spec.schema.granularitySpec
        result = await self.deps.actions.submit(
            {
                "type": "segmentAllocate",
                "dataSource": self.spec.data_source,
                "timestamp": format_iso(bucket.start),
                "queryGranularity": gspec.queryGranularity.to_json(),
                "preferredSegmentGranularity": gspec.segmentGranularity.to_json(),
                "sequenceName": sequence,
                "previousSegmentId": None,
                "skipSegmentLineageCheck": True,
                "shardSpecFactory": {"type": "numbered"},
                "lockGranularity": "TIME_CHUNK",
                "taskLockType": str(self.spec.context.get("taskLockType") or "EXCLUSIVE"),
            }
        )
        if not result:
            raise BatchTaskFailed(
                f"Could not allocate segment for row with timestamp[{format_iso(bucket.start)}]"
            )
        return SegmentIdWithShardSpec.from_json(result)

    def _push(self, segment: DataSegment, part: Partition, chunk: MergedChunk) -> DataSegment:
        out_dir = self.task_dir / "segments"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{segment.id}.parquet"
        write_parquet(
            part.table, path, segment.interval, dimensions=chunk.dimensions, metrics=chunk.metrics
        )
        try:
            return self.deps.deep_storage.push(segment, path)
        finally:
            path.unlink(missing_ok=True)

    async def _segments_to_drop(self, segments: list[DataSegment]) -> list[DataSegment]:
        """``dropExisting``: the used segments lying wholly inside ``granularitySpec.intervals``
        that this task does not replace chunk by chunk (Druid's ``segmentsToBeDropped``). The
        task's exclusive locks on those intervals keep anyone else from publishing there.

        A segment a new one overshadows (the new interval contains it, the version is newer) is
        not dropped here: the coordinator marks it unused once the new segment is served, so
        queries never see the interval empty in between (Druid's tombstones give the same)."""
        intervals = self.spec.schema.granularitySpec.intervals or []
        used = await self.deps.actions.submit(
            {
                "type": "segmentListUsed",
                "dataSource": self.spec.data_source,
                "intervals": [str(i) for i in intervals],
            }
        )
        mine = {s.identifier for s in segments}
        out = []
        for raw in used or []:
            seg = DataSegment.from_json(raw)
            if seg.identifier in mine or not any(i.contains(seg.interval) for i in intervals):
                continue
            if any(n.interval.contains(seg.interval) and n.version > seg.version for n in segments):
                continue  # overshadowed: retired by the coordinator once the new one is served
            out.append(seg)
        return out

    async def _publish(self, segments: list[DataSegment]) -> None:
        drop = await self._segments_to_drop(segments) if self.spec.io.dropExisting else []
        if not segments and not drop:
            self.log.info("task %s: no rows to publish", self.spec.id)
            return
        result = await self.deps.actions.submit(
            {
                "type": "segmentTransactionalInsert",
                "segments": [s.to_json() for s in segments],
                "segmentsToBeDropped": [s.to_json() for s in drop],
                "startMetadata": None,
                "endMetadata": None,
                "dataSource": self.spec.data_source,
            }
        )
        if not (isinstance(result, dict) and result.get("success")):
            msg = result.get("errorMsg") if isinstance(result, dict) else repr(result)
            raise BatchTaskFailed(f"Failed to publish segments: {msg}")

    async def _await_availability(self) -> None:
        timeout_ms = self.spec.tuning.awaitSegmentAvailabilityTimeoutMillis
        if timeout_ms <= 0 or not self.segments:
            return
        self.ingestion_state = "SEGMENT_AVAILABILITY_WAIT"
        started = time.monotonic()
        pending = list(self.segments)
        deadline = started + timeout_ms / 1000
        while pending and time.monotonic() < deadline:
            still = []
            for s in pending:
                done = await self.deps.handoff.is_handed_off(
                    s.data_source, str(s.interval), s.partition_num, s.version
                )
                if not done:
                    still.append(s)
            pending = still
            if pending:
                left = max(0.0, deadline - time.monotonic())
                await asyncio.sleep(min(self.deps.handoff_poll_period, left))
        self.segment_availability_wait_ms = int((time.monotonic() - started) * 1000)
        self.segment_availability_confirmed = not pending
        if pending:
            self.log.warning(
                "task %s: %d segments not available after %d ms",
                self.spec.id,
                len(pending),
                timeout_ms,
            )


def _segment_of(ident: SegmentIdWithShardSpec, chunk: MergedChunk) -> DataSegment:
    """The segment an allocated id names, before it is pushed (size set then)."""
    return DataSegment(
        dataSource=ident.data_source,
        interval=ident.interval,
        version=ident.version,
        dimensions=tuple(chunk.dimensions),
        metrics=tuple(chunk.metrics),
        shardSpec=NumberedShardSpec(partitionNum=ident.partition_num, partitions=ident.partitions),
        size=0,
    )
