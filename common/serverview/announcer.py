"""The segments a data node serves, announced as a long-poll change history.

Druid's ``BatchDataSegmentAnnouncer`` over HTTP: ``announce`` adds ``load`` changes, ``unannounce``
adds ``drop`` changes, and ``counter=-1`` returns one ``load`` per served segment. Served by
historicals and peons at ``GET /druid-internal/v1/segments``.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter

from common.auth.declare import INTERNAL
from common.longpoll import ChangeHistory, add_longpoll_route
from common.segments.segment import DataSegment, SegmentId
from common.serverview.changes import SegmentChangeRequest

SEGMENTS_PATH = "/druid-internal/v1/segments"


class SegmentAnnouncer:
    def __init__(self, max_history: int = 1000) -> None:
        self.history: ChangeHistory[dict[str, object]] = ChangeHistory(max_history)
        self._served: dict[SegmentId, DataSegment] = {}

    @property
    def served(self) -> list[DataSegment]:
        return list(self._served.values())

    def is_served(self, segment_id: SegmentId) -> bool:
        return segment_id in self._served

    def get(self, segment_id: SegmentId) -> DataSegment | None:
        return self._served.get(segment_id)

    def announce(self, segments: Iterable[DataSegment]) -> None:
        new = [s for s in segments if s.id not in self._served]
        for s in new:
            self._served[s.id] = s
        if new:
            self.history.add(SegmentChangeRequest.load(s).to_json() for s in new)

    def unannounce(self, segments: Iterable[DataSegment]) -> None:
        gone = [self._served.pop(s.id) for s in segments if s.id in self._served]
        if gone:
            self.history.add(SegmentChangeRequest.drop(s).to_json() for s in gone)

    def snapshot(self) -> list[dict[str, object]]:
        return [SegmentChangeRequest.load(s).to_json() for s in self._served.values()]

    def close(self) -> None:
        """Release every parked request (the node is stopping)."""
        self.history.close()

    def router(self, host: str) -> APIRouter:
        router = APIRouter(tags=["segments"])
        add_longpoll_route(
            router, SEGMENTS_PATH, self.history, self.snapshot, host=host, dependencies=[INTERNAL]
        )
        return router
