"""Test-wide rules: every async test must leave no asyncio task running behind it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest


@pytest.fixture
async def _no_leftover_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    # Tasks that are finishing their own cancellation get a few loop turns to do so.
    for _ in range(20):
        leftover = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
        if not leftover:
            return
        await asyncio.sleep(0.01)
    names = ", ".join(sorted(f"{t.get_name()} ({_where(t)})" for t in leftover))
    for t in leftover:
        t.cancel()
    pytest.fail(f"test left asyncio tasks running: {names}")


def _where(task: asyncio.Task[object]) -> str:
    """The coroutine a task runs and where it waits now: enough to find who started it."""
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    at = f" at {frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else ""
    return f"{getattr(coro, '__qualname__', coro)}{at}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and inspect.iscoroutinefunction(fn) and isinstance(item, pytest.Function):
            item.fixturenames.insert(0, "_no_leftover_tasks")
