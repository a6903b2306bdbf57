"""ChangeRequestSyncer against scripted answers: requests, listener calls, backoff, health."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from pydantic import BaseModel, TypeAdapter

from common.aio import Backoff
from common.longpoll import ChangeRequestSyncer, Counter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class MaxRandom(random.Random):
    """Full jitter always picking the ceiling, so delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Item(BaseModel):
    action: str
    id: str


ITEMS = TypeAdapter(Item)


def body(counter: int | None, hash_: int | None, requests: list[Any] | None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "resetCounter": False,
        "resetCause": None,
        "counter": None if counter is None else {"counter": counter, "hash": hash_},
        "requests": requests,
    }
    doc.update(extra)
    return orjson.dumps(doc)


RESET = body(None, None, None, resetCounter=True, resetCause="counter > last counter")


class Script:
    """A MockTransport handler answering from a list and recording the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def params(self, i: int) -> dict[str, str]:
        return dict(self.requests[i].url.params)


def make(
    script: Script,
    clock: Clock,
    *,
    items: TypeAdapter[Item] | Callable[[Any], Any] = ITEMS,
    full: list[list[Any]] | None = None,
    delta: list[list[Any]] | None = None,
    full_sync: Callable[[list[Any]], None] | None = None,
    on_health_change: Callable[[bool], None] | None = None,
) -> ChangeRequestSyncer[Any]:
    full = [] if full is None else full
    delta = [] if delta is None else delta
    return ChangeRequestSyncer(
        "http://node:8083/",
        "/druid-internal/v1/segments",
        items=items,
        full_sync=full_sync or full.append,
        delta_sync=delta.append,
        server_timeout=10.0,
        client=httpx.AsyncClient(transport=httpx.MockTransport(script)),
        now=clock,
        backoff=Backoff(base=1.0, cap=120.0, rng=MaxRandom()),
        on_health_change=on_health_change,
    )


LOAD = {"action": "load", "id": "s1"}
DROP = {"action": "drop", "id": "s1"}


async def test_full_sync_then_delta_then_idle() -> None:
    script = Script(
        httpx.Response(200, content=body(3, 77, [LOAD])),
        httpx.Response(200, content=body(4, 78, [DROP])),
        httpx.Response(204),
    )
    clock, full, delta = Clock(), [], []
    s = make(script, clock, full=full, delta=delta)

    assert await s.sync_once() == 0.0
    assert script.params(0) == {"counter": "-1", "timeout": "10000"}
    assert str(script.requests[0].url).startswith("http://node:8083/druid-internal/v1/segments?")
    assert script.requests[0].extensions["timeout"]["read"] == 15.0
    assert full == [[Item(action="load", id="s1")]] and delta == []
    assert s.counter == Counter(counter=3, hash=77)
    assert s.initialized.is_set()

    assert await s.sync_once() == 0.0
    assert script.params(1) == {"counter": "3", "hash": "77", "timeout": "10000"}
    assert delta == [[Item(action="drop", id="s1")]]
    assert s.counter == Counter(counter=4, hash=78)

    clock.t += 10
    assert await s.sync_once() == 0.0
    assert script.params(2)["counter"] == "4"
    assert len(full) == 1 and len(delta) == 1
    assert s.counter == Counter(counter=4, hash=78)
    assert s.debug_info()["millisSinceLastSuccess"] == 0
    await s._http().aclose()


async def test_reset_drops_counter_and_next_request_is_full_sync() -> None:
    script = Script(
        httpx.Response(200, content=body(3, 77, [LOAD])),
        httpx.Response(200, content=RESET),
        httpx.Response(200, content=body(1, 5, [DROP])),
    )
    full: list[list[Any]] = []
    s = make(script, Clock(), items=dict, full=full)
    await s.sync_once()
    assert await s.sync_once() == 0.0
    assert s.counter is None
    assert s.consecutive_failures == 0
    await s.sync_once()
    assert script.params(2) == {"counter": "-1", "timeout": "10000"}
    assert full == [[LOAD], [DROP]]
    assert s.counter == Counter(counter=1, hash=5)
    await s._http().aclose()


async def test_reset_answering_a_full_sync_is_a_failure() -> None:
    s = make(Script(httpx.Response(200, content=RESET)), Clock(), items=dict)
    assert await s.sync_once() == 1.0
    assert s.consecutive_failures == 1 and not s.initialized.is_set()
    await s._http().aclose()


async def test_failures_back_off_exponentially_capped_and_recover() -> None:
    answers: list[httpx.Response | Exception] = [httpx.Response(500, content=b"boom")] * 4
    answers += [httpx.ConnectError("refused")] * 6
    answers += [httpx.Response(200, content=body(1, 1, []))]
    script = Script(*answers)
    clock = Clock()
    s = make(script, clock, items=dict)
    delays = []
    for _ in range(10):
        delays.append(await s.sync_once())
        clock.t += 1
    assert delays == [1, 2, 4, 8, 16, 32, 64, 120, 120, 120]
    assert s.consecutive_failures == 10
    assert s.unstable_time == 10.0
    assert not s.is_synced_successfully
    assert s.debug_info()["consecutiveFailedAttemptCount"] == 10

    assert await s.sync_once() == 0.0
    assert s.consecutive_failures == 0 and s.unstable_time == 0.0
    assert s.is_synced_successfully
    # backoff starts over after a recovery
    s.handle_response(None, 503, b"")
    assert s._backoff.attempt == 1
    await s._http().aclose()


async def test_default_backoff_is_full_jitter_below_cap() -> None:
    s = make(Script(), Clock(), items=dict)
    s._backoff = Backoff(base=1.0, cap=120.0, rng=random.Random(7))
    delays = [s.handle_response(None, 500, b"") for _ in range(12)]
    assert all(0 <= d <= min(120, 2**i) for i, d in enumerate(delays))
    assert len(set(delays)) == len(delays)
    await s._http().aclose()


async def test_bad_bodies_and_listener_errors_are_failures_that_keep_the_counter() -> None:
    def boom(items: list[Any]) -> None:
        raise RuntimeError("listener bug")

    script = Script(
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, content=body(None, None, None)),
        httpx.Response(200, content=body(2, 2, [{"action": 1}])),
        httpx.Response(200, content=body(2, 2, [LOAD])),
    )
    s = make(script, Clock(), full_sync=boom)
    for expected in (1, 2, 3, 4):
        assert await s.sync_once() > 0
        assert s.consecutive_failures == expected
    assert s.counter is None and not s.initialized.is_set()
    # the next attempt is still a full sync
    assert all(script.params(i)["counter"] == "-1" for i in range(4))
    await s._http().aclose()


async def test_health_figures_follow_the_clock() -> None:
    clock = Clock()
    script = Script(httpx.Response(200, content=body(1, 1, [])))
    s = make(script, clock, items=dict)
    assert not s.is_synced_successfully
    assert s.debug_info() == {
        "millisSinceLastRequest": None,
        "millisSinceLastSuccess": None,
        "consecutiveFailedAttemptCount": 0,
        "syncScheduled": False,
    }
    await s.sync_once()
    window = 3 * (10 + 5)
    clock.t += window
    assert s.is_synced_successfully
    assert s.debug_info()["millisSinceLastSuccess"] == window * 1000
    clock.t += 0.5
    assert not s.is_synced_successfully
    assert not s.needs_reset
    clock.t += 120
    assert s.needs_reset
    await s._http().aclose()


async def test_health_changes_are_reported_on_transitions_only() -> None:
    script = Script(
        httpx.Response(401, content=b"Unauthorized"),
        httpx.Response(401, content=b"Unauthorized"),
        httpx.Response(200, content=body(1, 1, [])),  # an empty first sync: no listener call
        httpx.Response(204),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        httpx.Response(204),  # recovered with nothing new
    )
    seen: list[bool] = []
    full: list[list[Any]] = []
    s = make(script, Clock(), items=dict, full=full, on_health_change=seen.append)
    for _ in range(7):
        await s.sync_once()
    assert full == [[]]
    assert seen == [True, False, True]
    await s._http().aclose()


async def test_server_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ChangeRequestSyncer(
            "http://x", "/p", items=dict, full_sync=print, delta_sync=print, server_timeout=0
        )
