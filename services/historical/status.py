"""The load queue's bookkeeping: change statuses and the status cache (pure, no I/O).

Druid's ``SegmentLoadDropHandler.processBatch`` (druid-internals 3.2): every request of a batch is
looked up in a cache of statuses sized ``statusQueueMaxSize``. No entry or FAILED: the work starts
and PENDING is recorded. SUCCESS: it is returned and evicted. A batch answers at once when one of
its requests is done; when it answers, every finished status is evicted (the coordinator has it).

A status is a shared, mutable ``StatusRef``: the running load updates the same object the cache
and the waiting batches hold, so a status evicted from the cache still reaches its batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from common.segments.segment import SegmentId
from common.serverview.changes import SegmentChangeRequest


class State(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    PENDING = "PENDING"


class LoadingMode(StrEnum):
    NORMAL = "NORMAL"
    TURBO = "TURBO"


@dataclass
class StatusRef:
    """``SegmentChangeStatus`` behind Druid's ``AtomicReference``."""

    state: State = State.PENDING
    failure_cause: str | None = None
    loading_mode: LoadingMode | None = None

    @property
    def done(self) -> bool:
        return self.state is not State.PENDING

    def succeed(self) -> None:
        self.state, self.failure_cause = State.SUCCESS, None

    def fail(self, cause: str) -> None:
        self.state, self.failure_cause = State.FAILED, cause

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state.value, "failureCause": self.failure_cause}
        if self.loading_mode is not None:
            out["loadingMode"] = self.loading_mode.value
        return out


#: Druid keys statuses by the request, whose equality is (action, segment id).
RequestKey = tuple[str, SegmentId | None]


def request_key(request: SegmentChangeRequest) -> RequestKey:
    return (request.action, request.segment.id if request.segment is not None else None)


class StatusCache:
    """A size-bounded LRU of request statuses (Guava's ``maximumSize`` cache)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max(1, max_size)
        self._entries: OrderedDict[RequestKey, StatusRef] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: RequestKey) -> bool:
        return key in self._entries

    def get(self, key: RequestKey) -> StatusRef | None:
        ref = self._entries.get(key)
        if ref is not None:
            self._entries.move_to_end(key)
        return ref

    def put(self, key: RequestKey, ref: StatusRef) -> None:
        self._entries[key] = ref
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def invalidate(self, key: RequestKey) -> None:
        self._entries.pop(key, None)


def admit(cache: StatusCache, key: RequestKey) -> tuple[StatusRef, bool]:
    """``processRequest``: the request's status, and whether its work must start now."""
    ref = cache.get(key)
    if ref is None or ref.state is State.FAILED:
        ref = StatusRef()
        cache.put(key, ref)
        return ref, True
    if ref.state is State.SUCCESS:
        cache.invalidate(key)
    return ref, False


def resolve(
    cache: StatusCache, batch: Iterable[tuple[SegmentChangeRequest, StatusRef]]
) -> list[dict[str, Any]]:
    """The batch's response body; finished statuses leave the cache, as Druid's ``resolve``."""
    out = []
    for request, ref in batch:
        if ref.done:
            key = request_key(request)
            if cache.get(key) is ref:
                cache.invalidate(key)
        out.append({"request": request.to_json(), "status": ref.to_json()})
    return out
