"""Server side of HTTP long polling: Druid's ``ChangeRequestHistory`` and its snapshot.

A role that publishes state (a historical's served segments, a peon's tasks) appends every change
to a ``ChangeHistory``. Each change gets ``counter = last + 1`` and a ``hash`` taken from the wall
clock at add time, so a client's ``(counter, hash)`` from before a restart no longer matches.
``get_since`` answers a client's counter with Druid's rules (druid-internals 3.1): the changes
after it, a reset with a cause, or -- when the client is up to date -- it parks until the next
``add`` or the timeout.

A parked request is one future (``park``) and the timer of its timeout, nothing else: no task, no
coroutine of the history's. ``add`` resolves every parked future in one pass with its answer. The
answer to a given counter is computed once per generation and shared by every request that asks
with that counter (they are all parked on the same one), so waking N watchers builds and
serialises one snapshot, not N. Not thread-safe: call ``add`` from the event loop
(``loop.call_soon_threadsafe`` from a worker thread).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from common.errors import InvalidInput, ServiceUnavailable
from common.jsonresp import dumps

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_MAX_SIZE = 1000
SHUTTING_DOWN = "Server is shutting down."

_last_hash = 0


def _next_hash() -> int:
    """Wall-clock nanoseconds, strictly increasing within the process.

    Druid uses ``currentTimeMillis``; two histories in one process (a test "restarting" a server)
    could then hand out equal hashes within one millisecond and a stale client would not be reset.
    """
    global _last_hash
    _last_hash = max(time.time_ns(), _last_hash + 1)
    return _last_hash


class Counter(BaseModel):
    """Druid's ``ChangeRequestHistory.Counter``: a position in a history and its epoch."""

    model_config = ConfigDict(frozen=True)

    counter: int
    hash: int

    def __str__(self) -> str:
        # Druid's Counter.toString, which its reset causes embed.
        return f"Counter{{counter={self.counter}, hash={self.hash}}}"


ZERO = Counter(counter=0, hash=0)


class ChangeRequestsSnapshot(BaseModel, Generic[T]):
    """The long-poll response body, serialised exactly as Druid's ``ChangeRequestsSnapshot``."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    reset_counter: bool = Field(alias="resetCounter")
    reset_cause: str | None = Field(default=None, alias="resetCause")
    counter: Counter | None = None
    requests: list[T] | None = None
    _encoded: bytes | None = PrivateAttr(default=None)

    @classmethod
    def success(cls, counter: Counter, requests: list[T]) -> ChangeRequestsSnapshot[T]:
        return cls(reset_counter=False, counter=counter, requests=requests)

    @classmethod
    def fail(cls, cause: str) -> ChangeRequestsSnapshot[T]:
        return cls(reset_counter=True, reset_cause=cause)

    def to_json(self) -> dict[str, Any]:
        """Druid's JSON (``resetCounter``, ``resetCause``, ``counter``, ``requests``) as data."""
        return self.model_dump(mode="json", by_alias=True)

    def encoded(self) -> bytes:
        """``to_json()`` as JSON bytes, rendered once: a snapshot is shared by every request
        parked at the same counter (``ChangeHistory``), so a change reaching 1,000 watchers is
        serialised once, not 1,000 times. Treat a snapshot as immutable once handed out."""
        # Straight from pydantic's private dict: ``self._encoded`` goes through
        # ``BaseModel.__getattr__`` (about 4 us, 50 times this), once per answered request.
        private = self.__pydantic_private__
        assert private is not None
        body: bytes | None = private["_encoded"]
        if body is None:
            body = private["_encoded"] = dumps(self.to_json())
        return body


#: A parked request (``ChangeHistory.park``): resolves with the answer, or ``None`` on timeout.
Waiter = asyncio.Future[ChangeRequestsSnapshot[T] | None]

#: Called with a parked request's answer in the pass that answers them all (``ChangeHistory.park``).
Deliver = Callable[[ChangeRequestsSnapshot[T]], None]


class _Park:
    """Returned by ``_evaluate`` when the client is up to date and must wait."""


_PARK = _Park()


class ChangeHistory(Generic[T]):
    """A bounded history of changes that clients long-poll with ``(counter, hash)``."""

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.max_size = max_size
        self._entries: deque[tuple[T, Counter]] = deque(maxlen=max_size)
        # Counter 0 carries this history's own epoch, not Druid's ZERO hash: a server restarted
        # with no change yet must not look identical to its previous life, or a client holding
        # (0, 0) would be parked instead of reset, and never learn the server had restarted.
        self._origin = Counter(counter=0, hash=_next_hash())
        self._last = self._origin
        #: Parked requests: their future -> (counter, hash, timer of their timeout, deliver).
        self._waiters: dict[Waiter[T], tuple[int, int, asyncio.TimerHandle, Deliver[T] | None]] = {}
        self._closed = False
        #: Successful answers of the current generation by the counter asked with (its hash was
        #: checked before caching); cleared by ``add``.
        self._answers: dict[int, ChangeRequestsSnapshot[T]] = {}

    @property
    def last_counter(self) -> Counter:
        return self._last

    @property
    def parked(self) -> int:
        """Requests parked (``park``, ``get_since``) right now."""
        return len(self._waiters)

    @property
    def closed(self) -> bool:
        return self._closed

    def add(self, changes: Iterable[T]) -> Counter:
        """Append ``changes`` (a counter each), wake parked requests, return the last counter."""
        added = False
        for change in changes:
            self._last = Counter(counter=self._last.counter + 1, hash=_next_hash())
            self._entries.append((change, self._last))
            added = True
        if added:
            self._wake()
        return self._last

    def snapshot(self, current_items: Callable[[], Iterable[T]]) -> ChangeRequestsSnapshot[T]:
        """The answer to ``counter=-1``: every current item, with the current counter.

        ``current_items`` is synchronous on purpose: nothing can run between reading the owner's
        state and reading the counter, so the pair is consistent.
        """
        self._check_open()
        return ChangeRequestsSnapshot.success(self._last, list(current_items()))

    def poll(self, counter: int, hash: int) -> ChangeRequestsSnapshot[T] | None:
        """``get_since`` without waiting: ``None`` when the client is already up to date."""
        if counter < 0:
            raise InvalidInput(f"counter[{counter}] must be >= 0")
        self._check_open()
        result = self._evaluate(counter, hash)
        return None if isinstance(result, _Park) else result

    async def get_since(
        self,
        counter: int,
        hash: int,
        # The protocol's own parameter: running out of it is an answer (204), not an error.
        timeout: float,  # noqa: ASYNC109
    ) -> ChangeRequestsSnapshot[T] | None:
        """The changes after ``(counter, hash)``, a reset, or ``None`` when ``timeout`` s passed.

        Raises ``InvalidInput`` (400) for a negative counter and ``ServiceUnavailable`` (503) once
        the history is closed, including for requests parked at that moment.
        """
        waiter = self.park(counter, hash, timeout)
        try:
            return await waiter
        finally:
            self.leave(waiter)

    def park(
        self, counter: int, hash: int, timeout: float, deliver: Deliver[T] | None = None
    ) -> Waiter[T]:
        """``get_since`` as a bare future, for a caller that waits on something else as well (the
        endpoint also watches its connection) and should not need a task for it.

        The future is already done when there is an answer now; otherwise it resolves with the
        answer at the next change, with ``None`` after ``timeout`` s, or with ``ServiceUnavailable``
        at ``close``. The caller may resolve or cancel it itself to stop waiting, and must then
        call ``leave``; calling ``leave`` in any case is harmless. Raises as ``poll``.

        ``deliver``, when given, is called with the answer to a change just before the future
        resolves, in the pass of ``add`` that answers every parked request: the endpoint writes
        its response there, so a change's responses all go out in one run of writes instead of
        one per resumed request, each after the previous request's wrap-up (docs/long-polling.md).
        It must not block and should not raise (an exception is logged and the future still
        resolves). It is not called for a timeout, at ``close``, or for an answer ready at once.
        """
        result = self.poll(counter, hash)
        loop = asyncio.get_running_loop()
        waiter: Waiter[T] = loop.create_future()
        if result is not None:
            waiter.set_result(result)
            return waiter
        timer = loop.call_later(timeout, self._expire, waiter)
        self._waiters[waiter] = (counter, hash, timer, deliver)
        return waiter

    def leave(self, waiter: Waiter[T]) -> None:
        """Forget a parked future (its caller stopped waiting) and its timeout's timer."""
        entry = self._waiters.pop(waiter, None)
        if entry is not None:
            entry[2].cancel()

    def close(self) -> None:
        """Release every parked request with "Server is shutting down." and refuse new ones."""
        self._closed = True
        self._wake()

    def _expire(self, waiter: Waiter[T]) -> None:
        self._waiters.pop(waiter, None)
        if not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        """Answer every parked request, in one pass (the answers are shared per counter)."""
        self._answers.clear()
        waiters, self._waiters = self._waiters, {}
        # Parked requests nearly all ask with the same (counter, hash): evaluated once for all.
        evaluated: dict[tuple[int, int], ChangeRequestsSnapshot[T] | _Park] = {}
        for waiter, entry in waiters.items():
            if waiter.done():  # resolved by its caller, who has not called ``leave`` yet
                entry[2].cancel()
            elif self._closed:
                entry[2].cancel()
                waiter.set_exception(ServiceUnavailable(SHUTTING_DOWN))
            else:
                asked = (entry[0], entry[1])
                result = evaluated.get(asked)
                if result is None:
                    result = evaluated[asked] = self._evaluate(entry[0], entry[1])
                if isinstance(result, _Park):  # still up to date (cannot happen after an add)
                    self._waiters[waiter] = entry
                else:
                    entry[2].cancel()
                    deliver = entry[3]
                    if deliver is not None:
                        try:
                            deliver(result)
                        except Exception:  # one watcher's failure must not hold the others
                            log.exception("delivering a long-poll answer failed")
                    waiter.set_result(result)

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceUnavailable(SHUTTING_DOWN)

    def _evaluate(self, counter: int, hash: int) -> ChangeRequestsSnapshot[T] | _Park:
        """Druid's ``getRequestsSinceWithoutWait``: the reset rules, in Druid's order."""
        last = self._last
        if counter == last.counter and hash == last.hash:
            return _PARK
        cached = self._answers.get(counter)
        if cached is not None and cached.counter is not None and self._hash_at(counter) == hash:
            return cached
        given = Counter(counter=counter, hash=hash)
        if counter == last.counter:
            return ChangeRequestsSnapshot.fail(f"counter[{given}] failed to match with [{last}]")
        if counter > last.counter:
            return ChangeRequestsSnapshot.fail(f"counter[{given}] > last counter[{last}]")
        if last.counter - counter >= self.max_size:
            # ">=": the entry at ``counter`` itself is needed to check the hash.
            return ChangeRequestsSnapshot.fail(
                "can't serve request, not enough history is kept. "
                f"given counter [{given}] and current last counter [{last}]"
            )
        expected = self._at(counter)
        if expected.hash != hash:
            return ChangeRequestsSnapshot.fail(
                f"counter[{given}] failed to match with [{expected}]"
            )
        # Counters are contiguous, so the entry for ``counter`` sits at a computable index.
        start = counter - (last.counter - len(self._entries) + 1) + 1
        changes = [change for change, _ in itertools.islice(self._entries, start, None)]
        answer = ChangeRequestsSnapshot.success(last, changes)
        self._answers[counter] = answer
        return answer

    def _at(self, counter: int) -> Counter:
        """The counter entry ``counter`` (0 < it <= last, within the kept history)."""
        if counter == 0:
            return self._origin
        first = self._last.counter - len(self._entries) + 1
        return self._entries[counter - first][1]

    def _hash_at(self, counter: int) -> int | None:
        """The hash at ``counter`` when it is still in the kept history, else ``None``."""
        last = self._last.counter
        if counter < 0 or counter >= last or last - counter >= self.max_size:
            return None
        return self._at(counter).hash
