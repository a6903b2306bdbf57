"""The broker's server view (Druid's ``BrokerServerView``): one timeline per datasource of the
segments data nodes serve, and which servers serve each segment.

Fed by the inventory view's callbacks (historicals, and peons with serverType
``indexer-executor``). A segment enters the timeline when its first server announces it and leaves
when the last one drops it. When a server goes away (it left discovery) its segments stay in the
timeline with no server: queries then report them as ``missingSegments`` rather than silently
answering without them, until another server loads them (or something newer overshadows them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from common.segments.segment import DataSegment, SegmentId
from common.segments.timeline import SegmentTimeline
from common.serverview.inventory import DruidServer


@dataclass(frozen=True)
class ServerRef:
    """What segment selection needs to know about a server."""

    name: str
    url: str
    tier: str
    priority: int
    server_type: str


def server_ref(server: DruidServer) -> ServerRef:
    return ServerRef(server.name, server.url, server.tier, server.priority, server.server_type)


class BrokerServerView:
    """Implements the inventory's ``SegmentCallback``."""

    def __init__(self, server_is_live: Callable[[DruidServer], bool] = lambda _: True) -> None:
        self._server_is_live = server_is_live
        self.timelines: dict[str, SegmentTimeline] = {}
        self._servers: dict[SegmentId, dict[str, ServerRef]] = {}
        self._segments: dict[SegmentId, DataSegment] = {}
        self.initialized = False

    # ---- reads
    def timeline(self, data_source: str) -> SegmentTimeline | None:
        return self.timelines.get(data_source)

    def servers_of(self, segment_id: SegmentId) -> list[ServerRef]:
        return list(self._servers.get(segment_id, {}).values())

    def data_sources(self) -> list[str]:
        return sorted(ds for ds, t in self.timelines.items() if not t.is_empty())

    # ---- inventory callbacks
    def segment_added(self, server: DruidServer, segment: DataSegment) -> None:
        sid = segment.id
        servers = self._servers.setdefault(sid, {})
        servers[server.name] = server_ref(server)
        if sid not in self._segments:
            self._segments[sid] = segment
            self.timelines.setdefault(segment.data_source, SegmentTimeline()).add_segment(segment)

    def segment_removed(self, server: DruidServer, segment: DataSegment) -> None:
        sid = segment.id
        servers = self._servers.get(sid)
        if servers is None:
            return
        servers.pop(server.name, None)
        if servers or not self._server_is_live(server):
            return  # still served, or lost with its server: kept to be reported missing
        self._forget(sid)

    def server_removed(self, server: DruidServer) -> None:
        """Segments already went through ``segment_removed``; nothing else to do."""

    def segment_view_initialized(self) -> None:
        self.initialized = True

    def _forget(self, sid: SegmentId) -> None:
        del self._servers[sid]
        segment = self._segments.pop(sid)
        timeline = self.timelines.get(segment.data_source)
        if timeline is not None:
            timeline.remove_segment(segment)
            if timeline.is_empty():
                del self.timelines[segment.data_source]
