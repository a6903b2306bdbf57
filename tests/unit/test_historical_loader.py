"""SegmentLoadDropHandler: batches, idempotency, parallelism, delayed drops, failures."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from common.aio import TaskGroup, wait_until
from common.config import SegmentCacheLocation
from common.errors import NotFound
from common.segments.deep_storage import DeepStorage
from common.segments.format import write_parquet
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from common.serverview.announcer import SegmentAnnouncer
from common.serverview.changes import SegmentChangeRequest as Req
from services.historical.cache import SegmentCache
from services.historical.loader import LoaderConfig, SegmentLoadDropHandler
from services.historical.registry import SegmentRegistry

DAY_MS = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start


class GatedStorage(DeepStorage):
    """Local deep storage whose pulls wait for ``gate`` and are counted."""

    def __init__(self, directory: str) -> None:
        super().__init__("local", storage_directory=directory)
        self.gate = threading.Event()
        self.gate.set()
        self.pulls = 0
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def pull(self, load_spec: dict[str, Any], dest_path: Any) -> int:
        with self._lock:
            self.pulls += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if not self.gate.wait(10):
                raise TimeoutError("gate never opened")
            return super().pull(load_spec, dest_path)
        finally:
            with self._lock:
                self.active -= 1


def make_segment(tmp: Path, storage: DeepStorage, day: int, rows: int = 20) -> DataSegment:
    iv = Interval(T0 + day * DAY_MS, T0 + (day + 1) * DAY_MS)
    table = pa.table(
        {
            "__time": pa.array([iv.start + i for i in range(rows)], pa.int64()),
            "page": [f"p{i % 3}" for i in range(rows)],
            "added": pa.array(range(rows), pa.int64()),
        }
    )
    src = tmp / f"src-{day}.parquet"
    write_parquet(table, src, iv)
    seg = DataSegment(dataSource="wiki", interval=iv, version="v1")
    return storage.push(seg, src)


@dataclass
class Harness:
    tmp: Path
    storage: GatedStorage
    handler: SegmentLoadDropHandler
    announcer: SegmentAnnouncer
    registry: SegmentRegistry

    def segment(self, day: int) -> DataSegment:
        return make_segment(self.tmp, self.storage, day)


async def open_harness(tmp: Path, tasks: TaskGroup, **config: Any) -> Harness:
    storage = GatedStorage(str(tmp / "deep"))
    cache = SegmentCache([SegmentCacheLocation(path=str(tmp / "cache"), max_size=10**8)], storage)
    announcer, registry = SegmentAnnouncer(), SegmentRegistry()
    handler = SegmentLoadDropHandler(cache, announcer, registry, tasks, LoaderConfig(**config))
    await handler.bootstrap()
    return Harness(tmp, storage, handler, announcer, registry)


@pytest.fixture
async def tasks() -> AsyncIterator[TaskGroup]:
    group = TaskGroup("test")
    yield group
    await group.close()


def states(body: list[dict[str, Any]] | None) -> list[str]:
    assert body is not None
    return [r["status"]["state"] for r in body]


async def test_batch_answers_when_one_load_finishes(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks, num_loading_threads=1)
    a, b = h.segment(0), h.segment(1)
    body = await h.handler.process_batch([Req.load(a), Req.load(b)], timeout_s=10)
    # One loader thread: the first load finished, the second is still pending or just started.
    assert states(body)[0] == "SUCCESS" and states(body)[1] == "PENDING"
    assert body is not None and body[0]["request"] == Req.load(a).to_json()
    assert h.announcer.is_served(a.id)
    body = await h.handler.process_batch([Req.load(b)], timeout_s=10)
    assert states(body) == ["SUCCESS"]
    assert {s.id for s in h.announcer.served} == {a.id, b.id}
    _, table = h.registry.get_segment(b.id)
    assert table.num_rows == 20
    await h.handler.close()


async def test_timeout_with_nothing_done_is_none(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks)
    seg = h.segment(0)
    h.storage.gate.clear()
    assert await h.handler.process_batch([Req.load(seg)], timeout_s=0.05) is None
    # Idempotent: asking again does not start a second download.
    assert await h.handler.process_batch([Req.load(seg)], timeout_s=0.05) is None
    assert h.storage.pulls == 1
    h.storage.gate.set()
    body = await h.handler.process_batch([Req.load(seg)], timeout_s=10)
    assert states(body) == ["SUCCESS"]
    assert h.storage.pulls == 1
    await h.handler.close()


async def test_success_is_evicted_once_reported(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks)
    seg = h.segment(0)
    assert states(await h.handler.process_batch([Req.load(seg)], timeout_s=10)) == ["SUCCESS"]
    assert len(h.handler.statuses) == 0
    # A repeated load is new work, answered at once since the segment is served already.
    assert states(await h.handler.process_batch([Req.load(seg)], timeout_s=10)) == ["SUCCESS"]
    assert h.storage.pulls == 1
    await h.handler.close()


async def test_status_cache_is_bounded(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks, status_queue_max_size=2)
    segs = [h.segment(d) for d in range(3)]
    h.storage.gate.clear()
    assert await h.handler.process_batch([Req.load(s) for s in segs], timeout_s=0.05) is None
    assert len(h.handler.statuses) == 2
    h.storage.gate.set()
    await wait_until(lambda: len(h.announcer.served) == 3, within=10, what="three loads")
    await h.handler.close()


async def test_parallel_loads_are_bounded(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks, num_loading_threads=2)
    segs = [h.segment(d) for d in range(6)]
    h.storage.gate.clear()
    assert await h.handler.process_batch([Req.load(s) for s in segs], timeout_s=0.05) is None
    await wait_until(lambda: h.storage.active == 2, within=5, what="two pulls in flight")
    assert h.handler.loading == 2
    h.storage.gate.set()
    await wait_until(lambda: len(h.announcer.served) == 6, within=10, what="six loads")
    assert h.storage.peak == 2
    await h.handler.close()


async def test_drop_unannounces_now_and_deletes_later(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks, drop_segment_delay_s=0.05)
    seg = h.segment(0)
    await h.handler.process_batch([Req.load(seg)], timeout_s=10)
    entry = h.handler.cache.cached(seg)
    assert entry is not None
    assert states(await h.handler.process_batch([Req.drop(seg)], timeout_s=10)) == ["SUCCESS"]
    assert not h.announcer.is_served(seg.id)
    await wait_until(lambda: not entry.path.exists(), within=5, what="files deleted")
    with pytest.raises(NotFound):
        h.registry.get_segment(seg.id)
    # Drop then reload downloads it again.
    assert states(await h.handler.process_batch([Req.load(seg)], timeout_s=10)) == ["SUCCESS"]
    assert h.storage.pulls == 2 and h.announcer.is_served(seg.id)
    await h.handler.close()


async def test_load_cancels_a_pending_drop(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks, drop_segment_delay_s=60)
    seg = h.segment(0)
    await h.handler.process_batch([Req.load(seg)], timeout_s=10)
    await h.handler.process_batch([Req.drop(seg)], timeout_s=10)
    assert h.handler.pending_drops == 1
    h.registry.get_segment(seg.id)  # queries still find it during the delay
    assert states(await h.handler.process_batch([Req.load(seg)], timeout_s=10)) == ["SUCCESS"]
    assert h.handler.pending_drops == 0 and h.announcer.is_served(seg.id)
    assert h.storage.pulls == 1
    await h.handler.close()


async def test_close_runs_pending_drops(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks, drop_segment_delay_s=60)
    seg = h.segment(0)
    await h.handler.process_batch([Req.load(seg)], timeout_s=10)
    entry = h.handler.cache.cached(seg)
    assert entry is not None
    await h.handler.process_batch([Req.drop(seg)], timeout_s=10)
    await h.handler.close()
    assert not entry.path.exists() and len(h.registry) == 0


async def test_failures_are_reported_and_retried(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks)
    seg = h.segment(0)
    os.unlink(seg.load_spec["path"])
    bad_spec = h.segment(1).model_copy(update={"load_spec": {"type": "hdfs"}})
    for req, cause in ((Req.load(seg), "not found"), (Req.load(bad_spec), "loadSpec")):
        body = await h.handler.process_batch([req], timeout_s=10)
        assert body is not None and states(body) == ["FAILED"]
        assert cause in body[0]["status"]["failureCause"]
    assert h.announcer.served == [] and len(h.handler.statuses) == 0
    # A failed request is retried when the coordinator asks again, and can then succeed.
    make_segment(tmp_path, h.storage, 0)
    assert states(await h.handler.process_batch([Req.load(seg)], timeout_s=10)) == ["SUCCESS"]
    await h.handler.close()


async def test_noop_is_done_at_once(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks)
    body = await h.handler.process_batch([Req("noop")], timeout_s=10)
    assert body == [
        {"request": {"action": "noop"}, "status": {"state": "SUCCESS", "failureCause": None}}
    ]
    await h.handler.close()


async def test_release_waiters_answers_parked_batches(tmp_path: Path, tasks: TaskGroup) -> None:
    h = await open_harness(tmp_path, tasks)
    seg = h.segment(0)
    h.storage.gate.clear()
    parked = asyncio.create_task(h.handler.process_batch([Req.load(seg)], timeout_s=30))
    await wait_until(lambda: h.storage.pulls == 1, within=5, what="the pull")
    h.handler.release_waiters()
    assert states(await parked) == ["PENDING"]
    h.storage.gate.set()
    await h.handler.close()


async def test_bootstrap_serves_the_cache_without_downloading(
    tmp_path: Path, tasks: TaskGroup
) -> None:
    h = await open_harness(tmp_path, tasks)
    segs = [h.segment(d) for d in range(2)]
    await h.handler.process_batch([Req.load(s) for s in segs], timeout_s=10)
    await wait_until(lambda: len(h.announcer.served) == 2, within=10, what="loads")
    await h.handler.close()
    for s in segs:
        os.unlink(s.load_spec["path"])
    again = await open_harness(tmp_path, tasks)
    assert again.handler.cache_initialized
    assert {s.id for s in again.announcer.served} == {s.id for s in segs}
    assert again.storage.pulls == 0
    assert again.registry.get_segment(segs[0].id)[1].num_rows == 20
    await again.handler.close()
