"""``common.aio.run_to_end``: clean-up that a cancellation does not cut short."""

from __future__ import annotations

import asyncio

import pytest

from common.aio import run_to_end


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
