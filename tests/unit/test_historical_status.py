"""The load queue's status cache and batch rules (Druid's SegmentLoadDropHandler.processBatch)."""

from __future__ import annotations

from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from common.serverview.changes import SegmentChangeRequest
from services.historical.status import (
    LoadingMode,
    State,
    StatusCache,
    StatusRef,
    admit,
    request_key,
    resolve,
)


def seg(day: int, version: str = "v1") -> DataSegment:
    iv = Interval.parse(f"2024-01-{day:02d}/2024-01-{day + 1:02d}")
    return DataSegment(dataSource="wiki", interval=iv, version=version)


def test_new_request_starts_and_is_pending() -> None:
    cache = StatusCache(10)
    key = request_key(SegmentChangeRequest.load(seg(1)))
    ref, start = admit(cache, key)
    assert start and ref.state is State.PENDING and key in cache


def test_pending_request_is_not_restarted() -> None:
    cache = StatusCache(10)
    key = request_key(SegmentChangeRequest.load(seg(1)))
    first, _ = admit(cache, key)
    again, start = admit(cache, key)
    assert not start and again is first


def test_success_is_returned_once_then_evicted() -> None:
    cache = StatusCache(10)
    key = request_key(SegmentChangeRequest.load(seg(1)))
    ref, _ = admit(cache, key)
    ref.succeed()
    seen, start = admit(cache, key)
    assert seen is ref and not start and key not in cache
    # The next identical request is new work (a reload after a drop, say).
    fresh, start = admit(cache, key)
    assert start and fresh is not ref


def test_failed_request_is_retried() -> None:
    cache = StatusCache(10)
    key = request_key(SegmentChangeRequest.load(seg(1)))
    ref, _ = admit(cache, key)
    ref.fail("boom")
    retry, start = admit(cache, key)
    assert start and retry is not ref and retry.state is State.PENDING


def test_load_and_drop_of_one_segment_are_different_requests() -> None:
    s = seg(1)
    assert request_key(SegmentChangeRequest.load(s)) != request_key(SegmentChangeRequest.drop(s))
    # Equality is by segment id, as Druid's: another loadSpec is the same request.
    moved = s.model_copy(update={"load_spec": {"type": "local", "path": "/x"}})
    assert request_key(SegmentChangeRequest.load(s)) == request_key(
        SegmentChangeRequest.load(moved)
    )


def test_cache_is_bounded_least_recently_used_first() -> None:
    cache = StatusCache(2)
    k1, k2, k3 = (request_key(SegmentChangeRequest.load(seg(d))) for d in (1, 2, 3))
    admit(cache, k1)
    admit(cache, k2)
    admit(cache, k1)  # touch k1: k2 is now the oldest
    admit(cache, k3)
    assert len(cache) == 2 and k1 in cache and k3 in cache and k2 not in cache


def test_resolve_reports_every_request_and_evicts_finished_ones() -> None:
    cache = StatusCache(10)
    reqs = [SegmentChangeRequest.load(seg(1)), SegmentChangeRequest.drop(seg(2))]
    refs = [admit(cache, request_key(r))[0] for r in reqs]
    refs[0].loading_mode = LoadingMode.NORMAL
    refs[1].fail("no such segment")
    body = resolve(cache, zip(reqs, refs, strict=True))
    assert body[0]["request"] == reqs[0].to_json()
    assert body[0]["status"] == {"state": "PENDING", "failureCause": None, "loadingMode": "NORMAL"}
    assert body[1]["status"] == {"state": "FAILED", "failureCause": "no such segment"}
    assert request_key(reqs[0]) in cache
    assert request_key(reqs[1]) not in cache


def test_resolve_keeps_a_newer_status_of_the_same_request() -> None:
    cache = StatusCache(10)
    req = SegmentChangeRequest.load(seg(1))
    old = StatusRef(State.FAILED, "x")
    newer, _ = admit(cache, request_key(req))
    resolve(cache, [(req, old)])
    assert cache.get(request_key(req)) is newer
