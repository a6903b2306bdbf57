"""The ``index_kafka`` task runner (Druid's ``SeekableStreamIndexTaskRunner``, druid-internals 4.2).

``run()``: restore sequences and the appenderator's persisted sinks, seek the record supplier to
the committed ``nextPartitions`` (or the start offsets), then read: poll, parse and route the
batch in a worker thread, allocate segments per (sequence, time chunk) through the overlord, add
the rows to the sinks in a worker thread, advance the current offsets. Persists, checkpoint
requests, publishes and handoff follow Druid; the chat endpoints (``services.peon.chat``) drive
pause/resume/end offsets through the methods of ``TaskControl``.

A sequence closed by a checkpoint is persisted and handed to the publisher, which pushes and
publishes it in the background while the loop reads on into the next sequence. Restored sinks get
their time-chunk locks re-acquired before reading starts (Druid's ``driver.startJob`` lock
supplier); a lock that cannot be had fails the task at once. A stop for a peon restart
(``stop_for_restart``) persists what is in memory and returns ``None``: the task stays assigned
and the restarted peon restores it from the persists.

Every CPU- or disk-heavy step runs in ``asyncio.to_thread`` on a bounded batch, so the event loop
keeps answering status, chat and long-poll requests while the task reads at full speed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from common.aio import run_to_end
from common.errors import KdruidError
from common.ingest.appenderator import Appenderator, PersistLimits, Sink
from common.ingest.batch import BatchParser, ColumnBatch, batch_supported
from common.ingest.kafka import KafkaRecordSupplier, PartitionRecords
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import InputRow, RowParser
from common.ingest.partitions import PartitionId
from common.ingest.route import Routed, Router
from common.ingest.sequences import (
    SequenceMetadata,
    end_sequence_numbers,
    initial_sequences,
    int_keys,
    kafka_metadata,
    load_sequences,
    save_sequences,
)
from common.segments.isotime import format_iso
from common.segments.segment import DataSegment, SegmentId, SegmentIdWithShardSpec
from services.peon.control import TaskControl, TaskStatus
from services.peon.publish import Publisher, PublishFailed, TaskDeps
from services.peon.taskspec import KafkaTaskSpec

#: Records per poll: bounds the work one worker-thread step does (and so pause latency).
MAX_POLL_RECORDS = 10_000
#: Records aiokafka decodes on the event loop in one go (see ``poll_partitions``).
POLL_STEP_RECORDS = 500
#: Druid's wait for a restored segment's lock (``TimeChunkLockAcquireAction`` timeout, ms).
LOCK_TIMEOUT_MS = 1000


class TaskFailed(KdruidError):
    error_code = "Task failed"


class KafkaIndexTaskRunner(TaskControl):
    def __init__(
        self,
        spec: KafkaTaskSpec,
        task_dir: Path,
        deps: TaskDeps,
        log: logging.Logger,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.task_dir = task_dir
        self.deps = deps
        self.log = log
        self.meters = RowIngestionMeters(now=time.monotonic())
        t = spec.tuning
        self.handler = ParseExceptionHandler(
            self.meters,
            t.max_parse_exceptions,
            t.max_saved_parse_exceptions,
            t.log_parse_exceptions,
        )
        self.parser = RowParser(spec.schema, spec.input_format, self.handler)
        self.router = Router(
            self.parser,
            BatchParser(spec.schema, spec.input_format, self.meters)
            if batch_supported(spec.schema, spec.input_format)
            else None,
            spec.schema.granularitySpec.segmentGranularity,
            *spec.message_window,
            log,
        )
        self.appenderator = Appenderator(
            spec.schema,
            task_dir / "persist",
            PersistLimits(
                t.max_rows_in_memory, t.max_bytes_in_memory, t.intermediate_persist_period
            ),
            now=time.monotonic(),
            on_sink_added=self._sink_added,
        )
        self.publisher = Publisher(self, deps)
        self.sequences: list[SequenceMetadata] = []
        self.current_offsets: dict[PartitionId, int] = {}
        self._sequences_lock = asyncio.Lock()
        self._last_segment: dict[str, str] = {}
        self._checkpoint_pending = False
        self._next_checkpoint_time = time.monotonic() + t.intermediate_handoff_period

    # ------------------------------------------------------------------ TaskControl hooks

    def end_offsets(self) -> dict[PartitionId, int]:
        return dict(self.sequences[-1].end_offsets) if self.sequences else {}

    async def save_sequences(self) -> None:
        # The read loop's persists, the chat's end offsets and background publishes all write
        # the file: one at a time, each writing a snapshot taken under the lock, so an older
        # snapshot never lands after a newer one.
        async with self._sequences_lock:
            snapshot = [SequenceMetadata.from_json(s.to_json()) for s in self.sequences]
            await asyncio.to_thread(save_sequences, self.task_dir, snapshot)

    # ------------------------------------------------------------------ realtime segments

    def _sink_added(self, sink: Sink) -> None:
        self.deps.announce(self.sink_segment(sink))

    def sink_segment(self, sink: Sink) -> DataSegment:
        return sink.identifier.data_segment(
            self.spec.schema.dimensionsSpec.names, [m.name for m in self.spec.schema.metricsSpec]
        )

    def drop_sink(self, segment_id: SegmentId) -> None:
        sink = self.appenderator.drop(segment_id)
        if sink is not None:
            self.deps.unannounce(self.sink_segment(sink))

    # ------------------------------------------------------------------ main

    async def run(self) -> dict[str, Any] | None:
        """The task's final status, or None when it stopped for a peon restart (it stays
        assigned and is restored from its persists)."""
        started = time.monotonic()
        supplier: KafkaRecordSupplier | None = None
        # The consumer connects to Kafka while the task restores its state and locks: neither
        # waits for the other (the first poll needs both).
        opening: asyncio.Task[KafkaRecordSupplier] | None = asyncio.create_task(
            self._open_supplier()
        )
        spec = self.spec
        try:
            self.status = TaskStatus.STARTING
            await self._restore()
            await self._reacquire_locks()
            self.ingestion_state = "BUILD_SEGMENTS"
            self.publisher.start_handoff_watch()
            assert opening is not None
            if self._assignment():
                # shielded: a shutdown now must not cancel the start-up half-way (see
                # ``_close_opening``), which is finished and closed in the clean-up instead
                supplier = await asyncio.shield(opening)
                opening = None
                self._assign(supplier, initial=True)
                self.status = TaskStatus.READING
                await self._read_loop(supplier)
                await supplier.close()
                supplier = None
            # else: restored after it had read everything (e.g. stopped while waiting for
            # handoff): there is nothing to read; the consumer opened meanwhile is closed below.
            await _close_opening(opening)
            opening = None
            self.status = TaskStatus.PUBLISHING
            # Druid's ``finally: driver.persist``: what is in memory reaches disk on any stop.
            await self._persist()
            await self.publisher.drain()
            if self.restart_requested:
                self.log.info(
                    "task %s persisted at %s for a restart", spec.id, self.current_offsets
                )
                return None
            if not self.stop_requested or self.publish_on_stop:
                for seq in list(self.sequences):
                    await self.publisher.publish(seq, final=True)
            self.ingestion_state = "SEGMENT_AVAILABILITY_WAIT"
            if not await self._wait_for_handoff():
                # Published; only the handoff wait is left, which the restored task resumes
                # (its sequences are gone, ``handoff.json`` names what it waits for).
                self.log.info("task %s stops waiting for handoff for a restart", spec.id)
                return None
            self.ingestion_state = "COMPLETED"
            self.log.info("task %s succeeded", self.spec.id)
            return self.task_status("SUCCESS", None, started)
        except (KdruidError, PublishFailed, OSError, ValueError) as e:
            self.log.exception("task %s failed", self.spec.id)
            self.error = str(e)
            return self.task_status("FAILED", str(e), started)
        finally:
            self.finished.set()
            # To its end even if the task is cancelled again meanwhile (a shutdown, then the
            # peon stopping): a consumer closed half-way leaves its Kafka connection open.
            await run_to_end(self._release(opening, supplier))

    async def _release(
        self,
        opening: asyncio.Task[KafkaRecordSupplier] | None,
        supplier: KafkaRecordSupplier | None,
    ) -> None:
        await _close_opening(opening)
        if supplier is not None:
            await supplier.close()
        await self.publisher.close()
        self.appenderator.close()

    async def _open_supplier(self) -> KafkaRecordSupplier:
        spec = self.spec
        supplier = KafkaRecordSupplier(spec.consumer_properties, spec.stream, spec.multi_topic)
        await supplier.start()
        return supplier

    async def _wait_for_handoff(self) -> bool:
        """Wait for handoff (bounded by ``handoffConditionTimeout``); False when a stop for a
        peon restart came first."""
        wait = asyncio.ensure_future(
            self.publisher.wait_for_handoff(self.spec.tuning.handoff_condition_timeout)
        )
        restart = asyncio.ensure_future(self.restart_event.wait())
        try:
            await asyncio.wait({wait, restart}, return_when=asyncio.FIRST_COMPLETED)
            if wait.done():
                wait.result()
                return True
            return False
        finally:
            for f in (wait, restart):
                f.cancel()
            await asyncio.gather(wait, restart, return_exceptions=True)

    def task_status(self, state: str, error: str | None, started: float) -> dict[str, Any]:
        return {
            "id": self.spec.id,
            "status": state,
            "duration": int((time.monotonic() - started) * 1000),
            "errorMsg": None if error is None else error[:1024],
        }

    async def _restore(self) -> None:
        spec = self.spec
        restored = await asyncio.to_thread(load_sequences, self.task_dir)
        if restored is not None:
            self.sequences = restored
        else:
            self.sequences = initial_sequences(
                spec.base_sequence_name, spec.start_offsets, spec.end_offsets, spec.checkpoints
            )
            await self.save_sequences()
        self.publisher.load_pending()
        commit = await asyncio.to_thread(self.appenderator.restore)
        next_partitions = (commit or {}).get("nextPartitions")
        if next_partitions:
            stream = next_partitions.get("stream")
            if stream != spec.stream:
                raise TaskFailed(f"restored stream [{stream}] is not the task's [{spec.stream}]")
            self.current_offsets = int_keys(next_partitions["partitionSequenceNumberMap"])
        else:
            self.current_offsets = dict(spec.start_offsets)
        names = {s.sequence_name for s in self.sequences}
        for sid, sink in list(self.appenderator.sinks.items()):
            if sink.sequence_name in names:
                self._last_segment[sink.sequence_name] = str(sid)
            elif not self.publisher.awaits_handoff(sid):
                self.appenderator.drop(sid)
        for seq in self.sequences:
            seq.update_assignments(self.current_offsets)
        self.log.info(
            "task %s starts at %s with %d sequences, %d restored sinks",
            spec.id,
            self.current_offsets,
            len(self.sequences),
            len(self.appenderator.sinks),
        )

    async def _reacquire_locks(self) -> None:
        """Druid's restore lock supplier: the time-chunk lock of every restored sink, before
        the task reads on (a task whose lock was lost fails now, not at its publish)."""
        intervals = {str(s.identifier.interval) for s in self.appenderator.sinks.values()}
        for interval in sorted(intervals):
            lock = await self.deps.actions.submit(
                {
                    "type": "timeChunkLockAcquire",
                    "lockType": self.spec.lock_type,
                    "interval": interval,
                    "timeout": LOCK_TIMEOUT_MS,
                }
            )
            if not lock or (isinstance(lock, dict) and lock.get("revoked")):
                raise TaskFailed(f"Failed to acquire lock for restored segments in [{interval}]")
        if intervals:
            self.log.info("re-acquired locks of %d restored time chunks", len(intervals))

    def _assignment(self) -> dict[PartitionId, int]:
        ends = self.end_offsets()
        return {p: o for p, o in self.current_offsets.items() if o < ends.get(p, o)}

    def _assign(self, supplier: KafkaRecordSupplier, initial: bool = False) -> None:
        """Assign the partitions left to read and seek them, when that set changed.

        An unchanged or emptied assignment is left alone: aiokafka's fetcher loses a stop()
        that arrives while it is still cancelling the fetches of a replaced assignment, and
        the task stops right after its assignment empties.
        """
        todo = self._assignment()
        if not initial and (not todo or todo.keys() == supplier.assignment()):
            return
        supplier.assign(todo)
        for p, o in todo.items():
            supplier.seek(p, o)

    async def _read_loop(self, supplier: KafkaRecordSupplier) -> None:
        while True:
            self.publisher.raise_failure()
            if self.pause_requested:
                await self.wait_while_paused()
                self._assign(supplier)
            if self.stop_requested:
                break
            if self.sequences and self.sequences[-1].checkpointed:
                self.status = TaskStatus.PUBLISHING
            await self._publish_closed_sequences()
            if not self._assignment():
                break
            parts = await supplier.poll_partitions(
                self.spec.poll_timeout, MAX_POLL_RECORDS, POLL_STEP_RECORDS
            )
            if parts:
                await self._process(parts)
            else:
                self.meters.tick(time.monotonic())
            now = time.monotonic()
            if self.appenderator.persist_reason(now) is not None:
                await self._persist()
            await self._maybe_checkpoint(now)
            self._assign(supplier)

    async def _process(self, parts: list[PartitionRecords]) -> None:
        routed = await asyncio.to_thread(self._parse_and_route, parts)
        by_sink: dict[SegmentId, tuple[Sink, list[InputRow], list[ColumnBatch]]] = {}
        for key in routed.keys:
            seq_name, bucket = key
            ident = await self._segment_for(seq_name, bucket)
            sink = self.appenderator.get_or_create_sink(ident, seq_name)
            _, rows, batches = by_sink.setdefault(ident.segment_id, (sink, [], []))
            if key in routed.rows:
                rows.extend(routed.rows[key])
            else:
                batches.append(routed.columns[key])
        if by_sink:
            await asyncio.to_thread(_add_all, list(by_sink.values()))
        self.current_offsets.update(routed.next_offsets)
        for seq in self.sequences:
            seq.update_assignments(self.current_offsets)

    def _parse_and_route(self, parts: list[PartitionRecords]) -> Routed:
        """Worker thread: parse the records and route their rows to (sequence, time chunk)."""
        return self.router.route(
            parts, self.current_offsets, self.end_offsets(), self.sequences, int(time.time() * 1000)
        )

    async def _segment_for(self, seq_name: str, bucket: int) -> SegmentIdWithShardSpec:
        for sink in self.appenderator.sinks.values():
            if sink.sequence_name == seq_name and sink.identifier.interval.contains(bucket):
                return sink.identifier
        gspec = self.spec.schema.granularitySpec
        result = await self.deps.actions.submit(
            {
                "type": "segmentAllocate",
                "dataSource": self.spec.data_source,
                "timestamp": format_iso(bucket),
                "queryGranularity": gspec.queryGranularity.to_json(),
                "preferredSegmentGranularity": gspec.segmentGranularity.to_json(),
                "sequenceName": seq_name,
                "previousSegmentId": self._last_segment.get(seq_name),
                "skipSegmentLineageCheck": True,
                "shardSpecFactory": {"type": "numbered"},
                "lockGranularity": "TIME_CHUNK",
                "taskLockType": self.spec.lock_type,
            }
        )
        if not result:
            raise TaskFailed(
                f"Could not allocate segment for row with timestamp[{format_iso(bucket)}]"
            )
        ident = SegmentIdWithShardSpec.from_json(result)
        self._last_segment[seq_name] = str(ident)
        return ident

    def commit_metadata(self) -> dict[str, Any]:
        return {"nextPartitions": end_sequence_numbers(self.spec.stream, self.current_offsets)}

    async def _persist(self) -> None:
        swapped = self.appenderator.swap(time.monotonic())
        commit = self.commit_metadata()
        # Sequences first: a commit naming offsets must never meet older sequences on restore.
        await self.save_sequences()
        await asyncio.to_thread(self.appenderator.persist_hydrants, swapped, commit)

    async def _publish_closed_sequences(self) -> None:
        """Hand each sequence the supervisor closed (and this task has read to its end) to the
        background publisher, once its rows are on disk; reading goes on meanwhile."""
        for seq in list(self.sequences):
            if (
                not seq.is_open
                and seq.checkpointed
                and seq is not self.sequences[-1]
                and not self.publisher.handed_over(seq)
            ):
                await self._persist()
                self.publisher.hand_over(seq)

    async def _maybe_checkpoint(self, now: float) -> None:
        """Druid's push trigger: a full segment or ``intermediateHandoffPeriod`` makes the task
        pause itself and ask the supervisor (through the overlord) for a checkpoint."""
        if self._checkpoint_pending or not self.sequences:
            return
        latest = self.sequences[-1]
        if latest.checkpointed:
            return
        t = self.spec.tuning
        sinks = [
            s for s in self.appenderator.sinks.values() if s.sequence_name == latest.sequence_name
        ]
        full = any(s.num_rows >= t.max_rows_per_segment for s in sinks)
        total = self.appenderator.total_rows >= t.max_total_rows
        due = now >= self._next_checkpoint_time
        if not (full or total or due):
            return
        self._checkpoint_pending = True
        self._next_checkpoint_time = now + t.intermediate_handoff_period
        self.request_pause()
        ok = await self.deps.actions.submit(
            {
                "type": "checkPointDataSourceMetadata",
                "supervisorId": self.spec.supervisor_id,
                "dataSource": self.spec.data_source,
                "taskGroupId": self.spec.task_group_id,
                "checkpointMetadata": kafka_metadata(
                    self.spec.stream,
                    latest.start_offsets,
                    "start",
                    latest.exclusive_start_partitions,
                ),
                "currentCheckPoint": kafka_metadata(
                    self.spec.stream,
                    latest.start_offsets,
                    "start",
                    latest.exclusive_start_partitions,
                ),
            }
        )
        if not ok:
            raise TaskFailed(
                f"Checkpoint request with sequences [{latest.sequence_name}] failed, dying"
            )

    def on_end_offsets_set(self) -> None:
        self._checkpoint_pending = False


#: How long a shutdown lets a consumer's start-up in progress finish before cancelling it.
OPEN_GRACE_S = 5.0


async def _close_opening(
    opening: asyncio.Task[KafkaRecordSupplier] | None, grace: float = OPEN_GRACE_S
) -> None:
    """Close a supplier's start-up that is no longer wanted: let one in progress finish (up to
    ``grace`` s) and close what it opened. Cancelling aiokafka half-way through its bootstrap
    leaves that connection open, its reader task running on; only a start-up that takes longer
    than ``grace`` (Kafka unreachable) is cancelled. Its failure does not matter then."""
    if opening is None:
        return
    if not opening.done() and not opening.cancelling():
        await asyncio.wait([opening], timeout=grace)
        if not opening.done():
            opening.cancel()
    await asyncio.wait([opening])  # the caller's own cancellation still propagates
    if not opening.cancelled() and opening.exception() is None:
        await opening.result().close()


def _add_all(work: list[tuple[Sink, list[InputRow], list[ColumnBatch]]]) -> None:
    for sink, rows, batches in work:
        if rows:
            Appenderator.add_rows(sink, rows)
        for batch in batches:
            Appenderator.add_batch(sink, batch)
