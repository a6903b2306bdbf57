"""The chat-facing state machine of a streaming task: status, pause/resume, end offsets, stop.

Druid's ``SeekableStreamIndexTaskRunner`` chat handlers (druid-internals 4.1, 4.3): ``pause`` is
only allowed while READING or PAUSED (409 otherwise), waits up to 2 s for the read loop to park
(200 with the current offsets) or answers 202; ``resume`` releases the loop and waits up to 5 s
for it to leave PAUSED; ``set_end_offsets`` applies the rules of
``common.ingest.sequences.decide_end_offsets`` under the pause lock, persists the sequences and
resumes. The read loop calls ``wait_while_paused`` at the top of each iteration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

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
    current_offsets: dict[int, int]
    spec: KafkaTaskSpec

    def __init__(self) -> None:
        self._status = TaskStatus.NOT_STARTED
        self.ingestion_state = "NOT_STARTED"
        self.pause_requested = False
        self.stop_requested = False
        self.publish_on_stop = False
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
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
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

    def end_offsets(self) -> dict[int, int]:
        raise NotImplementedError

    def persist_sequences(self) -> None:
        raise NotImplementedError

    def on_end_offsets_set(self) -> None:
        """Hook: the supervisor answered a checkpoint request."""

    def offsets_json(self, offsets: dict[int, int]) -> dict[str, int]:
        return {str(p): o for p, o in sorted(offsets.items())}

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
                await asyncio.to_thread(self.persist_sequences)
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
