"""The HTTP load queue: Druid's ordering and batching, statuses, retries, timeouts, stop."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from common.aio import TaskGroup, wait_until
from common.segments.segment import DataSegment
from services.coordinator.loadqueue import (
    Action,
    HttpLoadQueuePeon,
    SegmentHolder,
    next_batch,
)
from tests.unit.test_coordinator_planning import seg

BASE = "http://h1:8083"


def test_order_by_action_then_newest_interval_first() -> None:
    holders = [
        SegmentHolder(seg(1), Action.LOAD),
        SegmentHolder(seg(5), Action.MOVE_TO),
        SegmentHolder(seg(3), Action.REPLICATE),
        SegmentHolder(seg(2), Action.DROP),
        SegmentHolder(seg(9), Action.DROP),
    ]
    holders.append(SegmentHolder(seg(7), Action.LOAD))
    batch, expired = next_batch(holders, 10, now=0.0, load_timeout=900)
    assert [(h.action, h.segment.interval.start) for h in batch] == [
        (Action.DROP, seg(9).interval.start),
        (Action.DROP, seg(2).interval.start),
        (Action.LOAD, seg(7).interval.start),
        (Action.LOAD, seg(1).interval.start),
        (Action.REPLICATE, seg(3).interval.start),
        (Action.MOVE_TO, seg(5).interval.start),
    ]
    assert not expired
    assert len(next_batch(holders, 2, 0.0, 900)[0]) == 2


def test_sent_holders_time_out() -> None:
    old = SegmentHolder(seg(1), Action.LOAD, first_sent=0.0)
    fresh = SegmentHolder(seg(2), Action.LOAD, first_sent=950.0)
    unsent = SegmentHolder(seg(3), Action.LOAD)
    batch, expired = next_batch([old, fresh, unsent], 5, now=1000.0, load_timeout=900)
    assert expired == [old] and set(batch) == {fresh, unsent}


class FakeHistorical:
    """Answers changeRequests with scripted states; records what it was sent."""

    def __init__(self, capabilities: int | None = 2) -> None:
        self.capabilities = capabilities
        self.batches: list[list[dict]] = []
        self.params: list[dict] = []
        self.script: list[object] = []  # per POST: "204", int status, or {id: state}
        self.posted = asyncio.Event()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/loadCapabilities"):
            if self.capabilities is None:
                return httpx.Response(404)
            return httpx.Response(
                200, json={"numLoadingThreads": self.capabilities, "numTurboLoadingThreads": 4}
            )
        body = json.loads(request.content)
        self.batches.append(body)
        self.params.append(dict(request.url.params))
        self.posted.set()
        step = self.script.pop(0) if self.script else {}
        if step == "204":
            return httpx.Response(204)
        if isinstance(step, int):
            return httpx.Response(step, json={"error": "boom"})
        assert isinstance(step, dict)
        return httpx.Response(
            200,
            json=[
                {
                    "request": r,
                    "status": {
                        "state": step.get(r["identifier"], "SUCCESS"),
                        "failureCause": "disk full"
                        if step.get(r["identifier"]) == "FAILED"
                        else None,
                    },
                }
                for r in body
            ],
        )


@pytest.fixture
async def peon_env():
    hist = FakeHistorical()
    client = httpx.AsyncClient(transport=httpx.MockTransport(hist.handler))
    tasks = TaskGroup("test-peon")
    made: list[HttpLoadQueuePeon] = []

    def make(**kw) -> HttpLoadQueuePeon:
        peon = HttpLoadQueuePeon("h1", BASE, client, host_timeout=7.0, repeat_delay=0.05, **kw)
        made.append(peon)
        return peon

    yield hist, make, tasks
    for p in made:
        await p.stop()
    await tasks.close()
    await client.aclose()


async def test_batches_by_load_capabilities_and_completes_callbacks(peon_env) -> None:
    hist, make, tasks = peon_env
    peon = make()
    a, b, c, gone = seg(1), seg(2), seg(3), seg(4)
    results: dict[str, bool] = {}
    hist.script = [
        {c.identifier: "FAILED", gone.identifier: "SUCCESS"},
        {a.identifier: "PENDING", b.identifier: "SUCCESS"},
    ]
    for s in (a, c):
        peon.load(s, Action.LOAD, lambda ok, s=s: results.__setitem__(s.identifier, ok))
    peon.drop(gone, lambda ok: results.__setitem__("drop", ok))
    peon.load(b, Action.REPLICATE, lambda ok: results.__setitem__(b.identifier, ok))
    peon.start(tasks)
    await wait_until(lambda: len(results) == 4, within=5, what="all callbacks")
    first = hist.batches[0]
    assert [(r["action"], r["identifier"]) for r in first] == [
        ("drop", gone.identifier),
        ("load", c.identifier),
    ]
    assert hist.params[0] == {"timeout": "7000"}
    assert [[r["identifier"] for r in b] for b in hist.batches[1:]] == [
        [a.identifier, b.identifier],  # LOAD before REPLICATE
        [a.identifier],
    ]
    assert results == {"drop": True, a.identifier: True, b.identifier: True, c.identifier: False}
    assert peon.batch_size == 2
    assert not peon.segments_to_load and not peon.segments_to_drop
    assert set(peon.recent_loads) == {a.id, b.id} and set(peon.recent_drops) == {gone.id}
    peon.prune_recent({a.id: a, gone.id: gone})
    assert set(peon.recent_loads) == {b.id} and set(peon.recent_drops) == {gone.id}


async def test_pending_stays_queued_and_is_resent(peon_env) -> None:
    hist, make, tasks = peon_env
    peon = make(batch_size=1)
    s = seg(1)
    done = asyncio.Event()
    hist.script = [{s.identifier: "PENDING"}, "204", {s.identifier: "SUCCESS"}]
    peon.load(s, callback=lambda ok: done.set())
    peon.start(tasks)
    await asyncio.wait_for(done.wait(), 5)
    assert len(hist.batches) == 3
    assert all(b[0]["identifier"] == s.identifier for b in hist.batches)


async def test_error_waits_repeat_delay_then_retries_and_404_capabilities_means_one(
    peon_env,
) -> None:
    hist, make, tasks = peon_env
    hist.capabilities = None
    peon = make()
    a, b = seg(1), seg(2)
    ok: list[bool] = []
    hist.script = [500, {}, {}]
    peon.load(a, callback=ok.append)
    peon.load(b, callback=ok.append)
    peon.start(tasks)
    await wait_until(lambda: len(ok) == 2, within=5, what="retried loads")
    assert peon.batch_size == 1
    assert [len(b) for b in hist.batches] == [1, 1, 1]
    assert ok == [True, True]


async def test_new_request_wakes_idle_loop_and_cancel_and_stop_fail_callbacks(peon_env) -> None:
    _, make, tasks = peon_env
    peon = make()
    peon.start(tasks)
    await wait_until(lambda: peon.batch_size == 2, within=5, what="capabilities")
    got: list[bool] = []
    peon.load(seg(1), callback=got.append)
    await wait_until(lambda: got == [True], within=5, what="load after idle")
    # a queued (unsent) request can be cancelled; stop fails the rest
    await peon.stop()
    assert peon.cancel(seg(1).id) is False
    late: list[bool] = []
    peon.load(seg(2), callback=late.append)
    assert late == [False]


async def test_stop_fails_queued_and_cancel_unsent() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    peon = HttpLoadQueuePeon("h1", BASE, client, repeat_delay=60.0)
    got: list[tuple[str, bool]] = []
    peon.load(seg(1), callback=lambda ok: got.append(("a", ok)))
    peon.load(seg(2), callback=lambda ok: got.append(("b", ok)))
    peon.drop(seg(2))  # replaces the unsent load of the same segment
    assert got == [("b", False)]
    assert [s.identifier for s in peon.segments_to_drop] == [seg(2).identifier]
    assert peon.cancel(seg(1).id) is True
    peon.load(seg(3), callback=lambda ok: got.append(("c", ok)))
    assert peon.queue_json("simple") == {
        "segmentsToLoad": 1,
        "segmentsToDrop": 1,
        "segmentsToLoadSize": 100,
        "segmentsToDropSize": 100,
    }
    await peon.stop()
    assert got == [("b", False), ("a", False), ("c", False)]
    await client.aclose()


async def test_load_timeout_fails_request() -> None:
    now = [0.0]
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/loadCapabilities"):
            return httpx.Response(404)
        body = json.loads(request.content)
        now[0] += 1000.0  # each round trip "takes" 1000 s
        if len(body) and now[0] > 1500:
            await release.wait()
        return httpx.Response(
            200, json=[{"request": r, "status": {"state": "PENDING"}} for r in body]
        )

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    tasks = TaskGroup("t")
    peon = HttpLoadQueuePeon("h1", BASE, client, load_timeout=900.0, clock=lambda: now[0])
    got: list[bool] = []
    peon.load(seg(1), callback=got.append)
    peon.start(tasks)
    await wait_until(lambda: got == [False], within=5, what="timeout")
    await peon.stop()
    await tasks.close()
    await client.aclose()


def test_change_request_json_is_druids() -> None:
    s: DataSegment = seg(1)
    assert SegmentHolder(s, Action.MOVE_TO).change_request()["action"] == "load"
    assert SegmentHolder(s, Action.DROP).change_request() == {"action": "drop", **s.to_json()}
