"""Async building blocks every role uses: an owned task group, backoff, and deadlines.

* ``TaskGroup`` owns background coroutines (dask's ``_async_taskgroup``, kopf's ``aiotasks``): each
  task has a name, a failure is logged the moment it happens, new work is refused after ``close()``,
  and ``close()`` cancels and awaits everything.
* ``Backoff`` is the one retry policy: full-jitter exponential backoff (AWS architecture blog), with
  an optional overall deadline.
* ``Deadline`` turns a timeout into "time left" for a sequence of awaits.
* ``wait_event`` and ``bounded`` bound a wait in time without Python 3.11's ``asyncio.wait_for``,
  which can lose a cancellation (banned by the lint configuration).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class TaskGroupClosed(RuntimeError):
    """New work was offered to a task group that is closing or closed."""


class TaskGroup:
    """Named background tasks with one owner.

    Unlike ``asyncio.TaskGroup`` a failing task does not cancel its siblings: a role's background
    loops are independent, and one failing must be logged, not take the others down.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run ``coro`` as a task owned by this group."""
        if self._closed:
            coro.close()
            raise TaskGroupClosed(f"task group {self.name!r} is closed; refused {name!r}")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    async def close(self) -> None:
        """Refuse new work, cancel every task and wait for all of them to finish."""
        self._closed = True
        await cancel_and_wait(list(self._tasks))

    async def __aenter__(self) -> TaskGroup:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def run_to_end(aw: Awaitable[T]) -> T:
    """Await ``aw`` to its end even when the caller is cancelled meanwhile, once or again
    (clean-up that must not be cut short: closing a Kafka consumer half-way leaves its
    connection open); the caller's cancellation is raised once ``aw`` has finished."""
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():  # ``aw`` itself was cancelled: that is its outcome
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


async def wait_event(event: asyncio.Event, within: float | None) -> bool:
    """Wait up to ``within`` seconds (``None``: for ever) for ``event``; True if it is set.

    Not ``asyncio.wait_for(event.wait(), ...)``: on Python 3.11 that swallows a cancellation
    arriving as the event is set (CPython gh-86296), and a loop waiting on it then never stops
    (seen as a peon's handoff watcher that ``close()`` awaited for ever)."""
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def bounded(aw: Awaitable[T], within: float | None) -> T:
    """``aw``'s result, or ``TimeoutError`` after ``within`` seconds (``None``: no bound); the
    ``asyncio.wait_for`` of this code base, which keeps a cancellation that races completion."""
    async with asyncio.timeout(within):
        return await aw


#: Seconds a cancelled task gets to finish before ``cancel_and_wait`` cancels it again.
RECANCEL_AFTER = 1.0


async def cancel_and_wait(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until each has really finished (exceptions are not re-raised).

    A task still running ``RECANCEL_AFTER`` seconds after its cancellation is cancelled again
    (and named in a warning): code it awaited swallowed the cancellation, and waiting on would
    hang the close for ever.

    The caller's own cancellation does not cut the wait short, and is raised once every task
    has finished: swallowing it made the caller run on after it was cancelled (a coordinator's
    duty loop, cancelled while it stopped a departed historical's load queue, ran two more
    cycles past its leader term, and the close that cancelled it waited on it). A caller with
    steps that must still run when it is cancelled puts them in a ``finally``."""
    for task in tasks:
        task.cancel()
    pending = {t for t in tasks if not t.done()}
    cancelled = False
    while pending:
        try:
            _, pending = await asyncio.wait(pending, timeout=RECANCEL_AFTER)
        except asyncio.CancelledError:
            cancelled = True
            continue
        for task in pending:
            log.warning("task %s did not stop when cancelled; cancelling it again", task.get_name())
            task.cancel()
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved
    if cancelled:
        raise asyncio.CancelledError


@dataclass
class Backoff:
    """Full-jitter exponential backoff: sleep ``uniform(0, min(cap, base * 2**attempt))``.

    ``deadline`` (monotonic seconds) bounds the whole retry sequence: ``next_delay`` returns
    ``None`` once it has passed, and never a delay that would end after it.
    """

    base: float = 1.0
    cap: float = 120.0
    deadline: float | None = None
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        if self.deadline is not None and now >= self.deadline:
            return None
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        delay = self.rng.uniform(0, ceiling)
        if self.deadline is not None:
            delay = min(delay, self.deadline - now)
        return delay

    def reset(self) -> None:
        self.attempt = 0

    async def sleep(self) -> bool:
        """Sleep for the next delay; False when the deadline has passed (stop retrying)."""
        delay = self.next_delay()
        if delay is None:
            return False
        await asyncio.sleep(delay)
        return True


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    base: float = 0.2,
    cap: float = 5.0,
    what: str = "operation",
) -> T:
    """Call ``fn`` up to ``attempts`` times with full-jitter backoff between failures."""
    backoff = Backoff(base=base, cap=cap)
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except retry_on as exc:
            if attempt == attempts:
                raise
            log.info("%s failed (attempt %d/%d): %s", what, attempt, attempts, exc)
            await backoff.sleep()
    raise AssertionError("unreachable")


class Deadline:
    """A point in monotonic time; ``remaining()`` is what is left of it (never negative)."""

    def __init__(self, seconds: float | None) -> None:
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    within: float,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` until it is true; ``TimeoutError`` naming ``what`` after ``within`` s."""
    deadline = Deadline(within)
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if deadline.expired:
            raise TimeoutError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)
