"""Load and drop segments on the coordinator's request: Druid's ``SegmentLoadDropHandler``.

* ``bootstrap()`` opens what the cache already holds (no download) and announces it.
* ``process_batch()`` is ``POST /druid-internal/v1/segments/changeRequests``: statuses come from
  the status cache (``status.py``); new work starts as tasks; the call returns at once if a request
  of the batch is done, else when any load or drop finishes, or ``None`` at the timeout (204).
* A load runs under a semaphore of ``numLoadingThreads`` (``TURBO``: its own pool), with the
  blocking steps (download, Parquet -> IPC, mapping) in threads so the event loop keeps answering.
* A drop unannounces at once and closes and deletes the segment ``dropSegmentDelayMillis`` later,
  unless a load of the same segment comes first. Pending drops run at once on close, so a restart
  does not serve again what was dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from common.aio import TaskGroup, wait_event
from common.errors import KdruidError
from common.segments.format import MappedSegment, open_segment
from common.segments.segment import DataSegment, SegmentId
from common.serverview.announcer import SegmentAnnouncer
from common.serverview.changes import SegmentChangeRequest
from services.historical.cache import CachedSegment, SegmentCache
from services.historical.registry import SegmentRegistry
from services.historical.status import (
    LoadingMode,
    StatusCache,
    StatusRef,
    admit,
    request_key,
    resolve,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoaderConfig:
    num_loading_threads: int = 1
    num_turbo_loading_threads: int = 1
    drop_segment_delay_s: float = 30.0
    status_queue_max_size: int = 100


class SegmentLoadDropHandler:
    def __init__(
        self,
        cache: SegmentCache,
        announcer: SegmentAnnouncer,
        registry: SegmentRegistry,
        tasks: TaskGroup,
        config: LoaderConfig,
    ) -> None:
        self.cache = cache
        self.announcer = announcer
        self.registry = registry
        self.tasks = tasks
        self.config = config
        self.statuses = StatusCache(config.status_queue_max_size)
        self._pools = {
            LoadingMode.NORMAL: asyncio.Semaphore(max(1, config.num_loading_threads)),
            LoadingMode.TURBO: asyncio.Semaphore(max(1, config.num_turbo_loading_threads)),
        }
        self._completed = asyncio.Event()
        self._pending_drops: dict[SegmentId, asyncio.Task[None]] = {}
        self._deleting: dict[SegmentId, asyncio.Future[None]] = {}
        self._closed = False
        self.cache_initialized = False
        #: Loads currently past the semaphore (for metrics and tests of the bound).
        self.loading = 0

    # ---- start-up --------------------------------------------------------------------------

    async def bootstrap(self) -> list[DataSegment]:
        """Open and announce every complete segment in the cache, without downloading."""
        entries = await asyncio.to_thread(self.cache.scan)
        opened: list[DataSegment] = []
        for entry in entries:
            mapped = await self._open(entry)
            if mapped is not None:
                self.registry.add(entry.segment, mapped)
                opened.append(entry.segment)
        self.announcer.announce(opened)
        self.cache_initialized = True
        log.info("segment cache: %d segments loaded from disk", len(opened))
        return opened

    async def _open(self, entry: CachedSegment) -> MappedSegment | None:
        try:
            return await asyncio.to_thread(open_segment, entry.file)
        except KdruidError as exc:
            log.warning("removing unreadable cached segment %s: %s", entry.segment.id, exc)
            await asyncio.to_thread(self.cache.remove, entry.segment.id)
            return None

    # ---- the load queue --------------------------------------------------------------------

    async def process_batch(
        self,
        requests: Sequence[SegmentChangeRequest],
        timeout_s: float,
        mode: LoadingMode = LoadingMode.NORMAL,
    ) -> list[dict[str, object]] | None:
        """Statuses of the batch once one is done; ``None`` if none finished within the timeout."""
        # Taken before any await: a load finishing right after admission must wake this batch.
        completed = self._completed
        batch = [(r, self._admit(r, mode)) for r in requests]
        if not any(ref.done for _, ref in batch) and not self._closed:
            if not await wait_event(completed, timeout_s):
                return None
        return resolve(self.statuses, batch)

    def _admit(self, request: SegmentChangeRequest, mode: LoadingMode) -> StatusRef:
        ref, start = admit(self.statuses, request_key(request))
        if not start:
            return ref
        segment = request.segment
        if request.action == "load" and segment is not None:
            ref.loading_mode = mode
            self._cancel_pending_drop(segment.id)
            self.tasks.start(self._load(segment, ref, mode), f"load {segment.id}")
        elif request.action == "drop" and segment is not None:
            self.tasks.start(self._drop(segment, ref), f"drop {segment.id}")
        else:  # noop: nothing to do
            ref.succeed()
        return ref

    def _finish(self) -> None:
        """Wake every waiting batch (Druid's ``resolveWaitingFutures``)."""
        self._completed.set()
        self._completed = asyncio.Event()

    async def _load(self, segment: DataSegment, ref: StatusRef, mode: LoadingMode) -> None:
        try:
            if segment.id not in self.registry:
                async with self._pools[mode]:
                    self.loading += 1
                    try:
                        await self._load_files(segment)
                    finally:
                        self.loading -= 1
            self.announcer.announce([segment])
            ref.succeed()
        except KdruidError as exc:
            log.warning("failed to load segment %s: %s", segment.id, exc.message)
            ref.fail(exc.message)
        except Exception as exc:
            log.exception("failed to load segment %s", segment.id)
            ref.fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._finish()

    async def _load_files(self, segment: DataSegment) -> None:
        deleting = self._deleting.get(segment.id)
        if deleting is not None:  # a delayed drop is deleting the files: let it finish first
            await asyncio.shield(deleting)
        entry = await asyncio.to_thread(self.cache.load, segment)
        try:
            mapped = await asyncio.to_thread(open_segment, entry.file)
        except BaseException:
            await asyncio.to_thread(self.cache.remove, segment.id)
            raise
        self.registry.add(segment, mapped)

    async def _drop(self, segment: DataSegment, ref: StatusRef) -> None:
        try:
            self.announcer.unannounce([segment])
            held = segment.id in self.registry or self.cache.cached(segment) is not None
            if held and segment.id not in self._pending_drops:
                self._pending_drops[segment.id] = self.tasks.start(
                    self._delayed_delete(segment.id), f"delete {segment.id}"
                )
            ref.succeed()
        except Exception as exc:
            log.exception("failed to drop segment %s", segment.id)
            ref.fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._finish()

    async def _delayed_delete(self, segment_id: SegmentId) -> None:
        await asyncio.sleep(self.config.drop_segment_delay_s)
        await self._delete(segment_id)

    async def _delete(self, segment_id: SegmentId) -> None:
        if self._pending_drops.pop(segment_id, None) is None:
            return
        self.registry.remove(segment_id)
        future = asyncio.ensure_future(asyncio.to_thread(self.cache.remove, segment_id))
        self._deleting[segment_id] = future
        try:
            await asyncio.shield(future)
        finally:
            if self._deleting.get(segment_id) is future:
                del self._deleting[segment_id]

    def _cancel_pending_drop(self, segment_id: SegmentId) -> None:
        task = self._pending_drops.pop(segment_id, None)
        if task is not None:
            task.cancel()

    # ---- lifecycle -------------------------------------------------------------------------

    def release_waiters(self) -> None:
        """Answer every waiting batch now (the node is stopping)."""
        self._closed = True
        self._finish()

    async def close(self) -> None:
        """Run pending drops now, then close every mapping."""
        self.release_waiters()
        for segment_id, task in list(self._pending_drops.items()):
            task.cancel()
            await self._delete(segment_id)
        for future in list(self._deleting.values()):
            await asyncio.shield(future)
        self.registry.close()

    @property
    def pending_drops(self) -> int:
        return len(self._pending_drops)
