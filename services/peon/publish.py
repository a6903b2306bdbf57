"""Publishing a sequence and waiting for handoff (druid-internals 4.4 and 4.6).

A sequence closed by a checkpoint is handed over (``hand_over``) and published in the
background, in order, while the read loop goes on with the next sequence (Druid's
``publishAndRegisterHandoff`` futures): reading never waits for a push or a publish. A background
failure is kept and raised in the read loop (``raise_failure``), which fails the task. The last
sequences are published when the task stops reading, after the handed-over ones (``drain``).

``publish(sequence)``: push every sink of the sequence to deep storage (hydrants merged into one
Parquet file each), then ``segmentTransactionalInsert`` the segments with the sequence's start
offsets as ``startMetadata`` and its end offsets as ``endMetadata``: the overlord commits both in
one transaction, so a sequence's rows are published exactly once. Retryable failures are retried
up to 5 times (Druid's ``MAX_RETRIES``); any other failure fails the task, and the supervisor
restarts from the committed offsets.

Published segments wait for handoff in ``<taskDir>/handoff.json``: their sinks are still served
(a broker may query them) until the coordinator says a historical serves them, then dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from common.aio import Backoff, cancel_and_wait, wait_event
from common.ingest.partitions import PartitionId
from common.ingest.sequences import SequenceMetadata, kafka_metadata, write_json_atomic
from common.segments.deep_storage import DeepStorage
from common.segments.segment import DataSegment, SegmentId
from services.peon.clients import HandoffClient, TaskActionClient

if TYPE_CHECKING:
    from services.peon.runner import KafkaIndexTaskRunner

log = logging.getLogger(__name__)

MAX_PUBLISH_RETRIES = 5
#: Druid's ``druid.segment.handoff.pollDuration`` default (PT1M).
DEFAULT_HANDOFF_POLL_PERIOD = 60.0
HANDOFF_FILE = "handoff.json"


class PublishFailed(Exception):
    """``segmentTransactionalInsert`` failed for good; the task fails."""


@dataclass
class TaskDeps:
    """What a task needs from the peon process."""

    actions: TaskActionClient
    handoff: HandoffClient
    deep_storage: DeepStorage
    announce: Callable[[DataSegment], None]
    unannounce: Callable[[DataSegment], None]
    handoff_poll_period: float = DEFAULT_HANDOFF_POLL_PERIOD


class Publisher:
    def __init__(self, runner: KafkaIndexTaskRunner, deps: TaskDeps) -> None:
        self.runner = runner
        self.deps = deps
        self.pending: dict[SegmentId, DataSegment] = {}
        #: Segments handed off to historicals (Druid's ``ingest/handoff/count``).
        self.handoffs = 0
        self._handed_off = asyncio.Event()
        self._kick = asyncio.Event()
        self._save_lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        #: Closed sequences handed over for a background publish, oldest first.
        self._queue: list[SequenceMetadata] = []
        self._handed_over: set[str] = set()
        self._worker: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    @property
    def _file(self) -> Path:
        return self.runner.task_dir / HANDOFF_FILE

    def load_pending(self) -> None:
        if self._file.exists():
            for d in orjson.loads(self._file.read_bytes()):
                seg = DataSegment.from_json(d)
                self.pending[seg.id] = seg

    def awaits_handoff(self, sid: SegmentId) -> bool:
        return sid in self.pending

    async def _save_pending(self) -> None:
        # The watcher and a publish may both save: one writer at a time.
        async with self._save_lock:
            value = [s.to_json() for s in self.pending.values()]
            await asyncio.to_thread(write_json_atomic, self._file, value)

    # ------------------------------------------------------------------ background publish

    def hand_over(self, seq: SequenceMetadata) -> None:
        """Publish a closed sequence in the background, after those handed over before it."""
        if seq.sequence_name in self._handed_over:
            return
        self._handed_over.add(seq.sequence_name)
        self._queue.append(seq)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._publish_queued(), name=f"publish:{self.runner.spec.id}"
            )

    def handed_over(self, seq: SequenceMetadata) -> bool:
        return seq.sequence_name in self._handed_over

    @property
    def publishing(self) -> int:
        """Sequences handed over and not yet published."""
        return len(self._queue)

    async def _publish_queued(self) -> None:
        while self._queue and self._failure is None:
            seq = self._queue[0]
            try:
                await self.publish(seq, final=False)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.runner.log.exception("background publish of %s failed", seq.sequence_name)
                self._failure = e
                return
            self._queue.pop(0)

    def raise_failure(self) -> None:
        """Raise the error of a failed background publish (the read loop fails the task)."""
        if self._failure is not None:
            raise self._failure

    async def drain(self) -> None:
        """Wait for the handed-over sequences to be published; raise a failure."""
        worker = self._worker
        if worker is not None:
            await asyncio.wait({worker})
        self.raise_failure()

    # ------------------------------------------------------------------ publish

    async def publish(self, seq: SequenceMetadata, final: bool) -> None:
        r = self.runner
        sinks = [s for s in r.appenderator.sinks.values() if s.sequence_name == seq.sequence_name]
        sinks = [s for s in sinks if s.identifier.segment_id not in self.pending]
        segments: list[DataSegment] = await asyncio.to_thread(
            lambda: [r.appenderator.push(s, self.deps.deep_storage) for s in sinks]
        )
        end = dict(seq.end_offsets)
        if final:
            end = {p: min(o, r.current_offsets.get(p, o)) for p, o in end.items()}
        if segments or end != seq.start_offsets:
            await self._insert(seq, segments, end)
        r.log.info(
            "published sequence %s: %d segments, offsets %s -> %s",
            seq.sequence_name,
            len(segments),
            seq.start_offsets,
            end,
        )
        for seg in segments:
            self.pending[seg.id] = seg
        self._kick.set()  # ask the coordinator at once, then every poll period
        self._handed_off.clear() if self.pending else self._handed_off.set()
        await self._save_pending()
        r.sequences = [s for s in r.sequences if s is not seq]
        await r.save_sequences()

    async def _insert(
        self, seq: SequenceMetadata, segments: list[DataSegment], end: dict[PartitionId, int]
    ) -> None:
        spec = self.runner.spec
        action: dict[str, Any] = {
            "type": "segmentTransactionalInsert",
            "segments": [s.to_json() for s in segments],
            "startMetadata": None,
            "endMetadata": None,
            "supervisorId": spec.supervisor_id,
            "dataSource": spec.data_source,
        }
        if spec.use_transaction:
            action["startMetadata"] = kafka_metadata(
                spec.stream, seq.start_offsets, "start", seq.exclusive_start_partitions
            )
            action["endMetadata"] = kafka_metadata(spec.stream, end, "end")
        backoff = Backoff(base=0.5, cap=10.0)
        for attempt in range(1, MAX_PUBLISH_RETRIES + 1):
            result = await self.deps.actions.submit(action)
            if isinstance(result, dict) and result.get("success"):
                return
            msg = result.get("errorMsg") if isinstance(result, dict) else repr(result)
            retryable = isinstance(result, dict) and bool(result.get("retryable"))
            if not retryable or attempt == MAX_PUBLISH_RETRIES:
                raise PublishFailed(f"Failed to publish segments of [{seq.sequence_name}]: {msg}")
            (log.debug if attempt <= 3 else log.warning)(
                "publish of %s failed (attempt %d, retryable): %s", seq.sequence_name, attempt, msg
            )
            await backoff.sleep()

    # ------------------------------------------------------------------ handoff

    def start_handoff_watch(self) -> None:
        if not self.pending:
            self._handed_off.set()
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(), name=f"handoff:{self.runner.spec.id}"
        )

    async def _watch(self) -> None:
        try:
            await self._watch_loop()
        except Exception:
            self.runner.log.exception("handoff watcher of %s failed", self.runner.spec.id)
            raise

    async def _watch_loop(self) -> None:
        while True:
            for sid, seg in list(self.pending.items()):
                done = await self.deps.handoff.is_handed_off(
                    seg.data_source, str(seg.interval), seg.partition_num, seg.version
                )
                if done:
                    self.runner.log.info("segment %s handed off; dropping it", sid)
                    self.pending.pop(sid, None)
                    self.handoffs += 1
                    self.runner.drop_sink(sid)
                    await self._save_pending()
            if not self.pending:
                self._handed_off.set()
            await wait_event(self._kick, self.deps.handoff_poll_period)
            self._kick.clear()

    async def wait_for_handoff(self, within: float) -> None:
        """Wait until every published segment is handed off; ``timeout`` 0 waits forever.
        A timeout is only logged (Druid raises an alert and does not fail the task)."""
        if not self.pending:
            return
        waiter = asyncio.ensure_future(self._handed_off.wait())
        try:
            watching = {waiter} | ({self._watcher} if self._watcher is not None else set())
            done, _ = await asyncio.wait(
                watching, timeout=within or None, return_when=asyncio.FIRST_COMPLETED
            )
            if self._watcher in done:
                self._watcher.result()  # the watcher died: its error fails the task
            if waiter not in done:
                raise TimeoutError
        except TimeoutError:
            log.warning(
                "handoff of %d segments of task %s did not complete within %.0fs",
                len(self.pending),
                self.runner.spec.id,
                within,
            )
        finally:
            waiter.cancel()

    async def close(self) -> None:
        worker, watcher = self._worker, self._watcher
        self._worker = self._watcher = None
        try:
            if worker is not None:  # the worker first, as it may kick the watcher
                await cancel_and_wait([worker])
        finally:
            if watcher is not None:
                await cancel_and_wait([watcher])
