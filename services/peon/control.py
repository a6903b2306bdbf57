"""The chat-facing state machine of a streaming task: status, pause/resume, end offsets, stop.

Druid's ``SeekableStreamIndexTaskRunner`` chat handlers (druid-internals 4.1, 4.3): ``pause`` is
only allowed while READING or PAUSED (409 otherwise), waits up to 2 s for the read loop to park
(200 with the current offsets) or answers 202; ``resume`` releases the loop and waits up to 5 s
for it to leave PAUSED; ``set_end_offsets`` applies the rules of
``common.ingest.sequences.decide_end_offsets`` under the pause lock, persists the sequences and
resumes. The read loop calls ``wait_while_paused`` at the top of each iteration.

Two stops end the read loop: ``stop(publish)`` (the chat ``/stop``, Druid's ``stopGracefully``
through the task client: the task publishes what it has read when asked to, else it ends without
publishing and the supervisor restarts from the committed offsets), and ``stop_for_restart`` (the
peon process is shutting down: the task persists what it holds in memory and stays assigned, so
the restarted peon restores it from its persists, as Druid's ``restoreTasksOnRestart``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from common.aio import wait_event
from common.ingest.partitions import PartitionId, offsets_json
from common.ingest.sequences import (
    EndOffsetsError,
    SequenceMetadata,
    decide_end_offsets,
    int_keys,
)
from services.peon.taskspec import KafkaTaskSpec

PAUSE_WAIT = 2.0
RESUME_WAIT = 5.0


class TaskStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    STARTING = "STARTING"
    READING = "READING"
    PAUSED = "PAUSED"
    PUBLISHING = "PUBLISHING"


class TaskControl:
    """Shared by the read loop and the chat endpoints; subclasses own the sequences."""

    sequences: list[SequenceMetadata]
    current_offsets: dict[PartitionId, int]
    spec: KafkaTaskSpec

    def __init__(self) -> None:
        self._status = TaskStatus.NOT_STARTED
        self.ingestion_state = "NOT_STARTED"
        self.pause_requested = False
        self.stop_requested = False
        self.publish_on_stop = False
        #: The process is shutting down: persist, keep the task assigned, do not publish.
        self.restart_requested = False
        #: Set by any ``stop_for_restart`` (also one that comes after the read loop ended).
        self.restart_event = asyncio.Event()
        self.error: str | None = None
        self.start_time = datetime.now(UTC)
        self.finished = asyncio.Event()
        self._changed = asyncio.Event()
        self._pause_lock = asyncio.Lock()

    # ------------------------------------------------------------------ status

    @property
    def status(self) -> TaskStatus:
        return self._status

    @status.setter
    def status(self, value: TaskStatus) -> None:
        self._status = value
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for(self, predicate: Callable[[], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or self.finished.is_set():
                return predicate()
            if not await wait_event(self._changed, left):
                return predicate()
        return True

    # ------------------------------------------------------------------ loop side

    def request_pause(self) -> None:
        self.pause_requested = True
        self._notify()

    async def wait_while_paused(self) -> None:
        """Park the read loop while a pause is requested (Druid's ``possiblyPause``)."""
        before = self.status
        self.status = TaskStatus.PAUSED
        while self.pause_requested and not self.stop_requested:
            await self._changed.wait()
        self.status = before if before != TaskStatus.PAUSED else TaskStatus.READING

    # ------------------------------------------------------------------ chat side

    def end_offsets(self) -> dict[PartitionId, int]:
        raise NotImplementedError

    async def save_sequences(self) -> None:
        """Write ``sequences.json`` (one writer at a time)."""
        raise NotImplementedError

    def on_end_offsets_set(self) -> None:
        """Hook: the supervisor answered a checkpoint request."""

    def offsets_json(self, offsets: dict[PartitionId, int]) -> dict[str, int]:
        return offsets_json(offsets)

    async def pause(self) -> tuple[int, Any]:
        if self.status not in (TaskStatus.READING, TaskStatus.PAUSED):
            return 409, (
                f"Can't pause, task is not in a pausable state (state: [{self.status.value}])"
            )
        async with self._pause_lock:
            self.request_pause()
            paused = await self._wait_for(lambda: self.status == TaskStatus.PAUSED, PAUSE_WAIT)
        if not paused:
            return 202, "Request accepted but task has not yet paused"
        return 200, self.offsets_json(self.current_offsets)

    async def resume(self) -> None:
        async with self._pause_lock:
            await self._resume_locked()

    async def _resume_locked(self) -> None:
        if self.status == TaskStatus.PAUSED or self.pause_requested:
            self.pause_requested = False
            self._notify()
            left = await self._wait_for(lambda: self.status != TaskStatus.PAUSED, RESUME_WAIT)
            if not left:
                raise RuntimeError("Task did not resume in time")

    async def set_end_offsets(self, body: Any, finish: bool) -> tuple[int, Any]:
        try:
            offsets = int_keys(body) if isinstance(body, dict) else None
        except ValueError as e:
            return 400, str(e)
        async with self._pause_lock:
            try:
                decision = decide_end_offsets(
                    self.sequences,
                    offsets,
                    finish,
                    paused=self.status == TaskStatus.PAUSED,
                    current=self.current_offsets,
                    base_name=self.spec.base_sequence_name,
                )
            except EndOffsetsError as e:
                return 400, str(e)
            if not decision.duplicate:
                await self.save_sequences()
            self.on_end_offsets_set()
            await self._resume_locked()
        assert offsets is not None
        return 200, self.offsets_json(offsets)

    async def stop(self, publish: bool) -> None:
        """Graceful stop; with ``publish`` the task publishes what it has read first."""
        self.publish_on_stop = self.publish_on_stop or publish
        self.stop_requested = True
        self.pause_requested = False
        self._notify()

    def stop_for_restart(self) -> None:
        """The peon is stopping: end the read loop, persist, and leave the task to be restored
        (unless a chat ``/stop`` already asked it to finish)."""
        if not self.stop_requested:
            self.restart_requested = True
        self.stop_requested = True
        self.pause_requested = False
        self.restart_event.set()
        self._notify()
