"""Publishing a sequence and waiting for handoff (druid-internals 4.4 and 4.6).

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
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from common.aio import Backoff
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
        await asyncio.to_thread(r.persist_sequences)

    async def _insert(
        self, seq: SequenceMetadata, segments: list[DataSegment], end: dict[int, int]
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
                spec.topic, seq.start_offsets, "start", seq.exclusive_start_partitions
            )
            action["endMetadata"] = kafka_metadata(spec.topic, end, "end")
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.deps.handoff_poll_period)
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
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
