"""``common.aio``: clean-up that a cancellation does not cut short, and bounded waits that never
lose a cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

import pytest

from common import aio
from common.aio import bounded, run_to_end, wait_event


async def test_run_to_end_finishes_its_clean_up_through_repeated_cancels() -> None:
    done: list[str] = []
    started = asyncio.Event()

    async def clean_up() -> str:
        started.set()
        await asyncio.sleep(0.05)
        done.append("closed")
        return "ok"

    async def caller() -> str:
        return await run_to_end(clean_up())

    task = asyncio.create_task(caller())
    await started.wait()
    task.cancel()  # a shutdown
    await asyncio.sleep(0.01)
    task.cancel()  # and the node stopping
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == ["closed"]  # the clean-up was not cut short
    assert await run_to_end(clean_up()) == "ok"


async def _poll_loop(
    event: asyncio.Event, wait: Callable[[asyncio.Event], Awaitable[object]]
) -> int:
    """A background loop as the services write them: wait for a kick or a period, go round."""
    rounds = 0
    while rounds < 20:
        rounds += 1
        await wait(event)
        event.clear()
    return rounds


async def _cancel_as_the_event_is_set(
    wait: Callable[[asyncio.Event], Awaitable[object]],
) -> asyncio.Task[int]:
    event = asyncio.Event()
    task = asyncio.create_task(_poll_loop(event, wait))
    await asyncio.sleep(0.01)
    event.set()
    await asyncio.sleep(0)  # the event's waiter finishes; the loop has not resumed yet
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait({task}, timeout=5)
    return task


async def test_wait_event_keeps_a_cancellation_that_races_the_event() -> None:
    task = await _cancel_as_the_event_is_set(lambda e: wait_event(e, 0.05))
    assert task.cancelled()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio.wait_for was fixed in 3.12")
async def test_the_race_is_real_with_asyncio_wait_for() -> None:
    """What ``wait_event`` replaces: Python 3.11's ``wait_for`` drops that cancellation."""

    async def wait_for(event: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 0.05)

    task = await _cancel_as_the_event_is_set(wait_for)
    assert not task.cancelled() and task.result() == 20


async def test_wait_event_times_out_and_sees_a_set_event() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True
    assert await wait_event(event, None) is True


async def test_bounded_returns_the_result_or_times_out() -> None:
    assert await bounded(asyncio.sleep(0, "x"), 1) == "x"
    with pytest.raises(TimeoutError):
        await bounded(asyncio.sleep(1), 0.01)


async def test_cancel_and_wait_cancels_again_a_task_that_swallowed_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A task whose first cancellation is swallowed by code it awaits is cancelled again."""
    monkeypatch.setattr(aio, "RECANCEL_AFTER", 0.05)
    swallowed: list[int] = []

    async def swallows_once() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            swallowed.append(1)  # as a library's clean-up catching BaseException does
        await asyncio.sleep(10)

    task = asyncio.create_task(swallows_once(), name="stubborn")
    await asyncio.sleep(0)
    await asyncio.wait_for(aio.cancel_and_wait([task]), 5)
    assert swallowed == [1] and task.cancelled()
    assert "stubborn did not stop when cancelled" in caplog.text


async def test_cancel_and_wait_retrieves_failures() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await aio.cancel_and_wait([task, asyncio.create_task(asyncio.sleep(10))])
    assert isinstance(task.exception(), ValueError)


async def test_cancel_and_wait_raises_the_callers_cancellation_once_the_tasks_are_done() -> None:
    """A loop that stops a sub-task (the coordinator's duty loop stopping a departed
    historical's load queue) and is cancelled meanwhile must stop, not run on: the
    cancellation is raised to it once the sub-task has finished its clean-up."""
    cleaned: list[str] = []
    cycles: list[int] = []

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.05)  # its clean-up, which the wait does not cut short
            cleaned.append("sub")

    async def loop() -> None:
        while len(cycles) < 5:  # bounded, so that a swallowed cancellation fails, not hangs
            cycles.append(1)
            sub = asyncio.create_task(slow_to_stop())
            await asyncio.sleep(0)
            await aio.cancel_and_wait([sub])
            await asyncio.sleep(0.01)

    outer = asyncio.create_task(loop())
    await asyncio.sleep(0.005)  # inside the first cancel_and_wait
    outer.cancel()
    done, _ = await asyncio.wait([outer], timeout=2)
    assert done and outer.cancelled(), f"ran on for {len(cycles)} cycles after its cancel"
    assert cleaned == ["sub"] and cycles == [1]
