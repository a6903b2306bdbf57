"""Which segments a query reads and which server reads each: plain functions over data.

``segments_to_query`` is Druid's broker lookup: the query intervals (condensed, so overlapping
intervals never read a row twice) through the datasource's timeline, giving one descriptor per
visible chunk, its ``itvl`` clipped to the visible part. ``assign`` picks one server per segment
with Druid's default ``highestPriority`` tier selector and the ``random`` balancer within it, so
replicas share the load across queries, and groups the segments by server: one request each.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from common.errors import ResourceLimitExceeded
from common.query.specs import SegmentDescriptor
from common.segments.intervals import Interval, condense
from common.segments.segment import SegmentId
from common.segments.timeline import SegmentTimeline
from services.broker.view import ServerRef


@dataclass(frozen=True)
class SegmentUnit:
    """One segment to read: the descriptor sent to the data node, and the segment's id."""

    descriptor: SegmentDescriptor
    segment_id: SegmentId


def segments_to_query(
    timeline: SegmentTimeline | None, intervals: Sequence[Interval]
) -> list[SegmentUnit]:
    """The visible segments of ``intervals`` (tombstones and overshadowed versions excluded)."""
    if timeline is None:
        return []
    out: list[SegmentUnit] = []
    for itv in condense(intervals):
        for holder in timeline.lookup(itv, skip_objects_with_no_data=True):
            for chunk in holder.chunks:
                d = SegmentDescriptor(
                    itvl=holder.interval, ver=holder.version, part=chunk.partition_num
                )
                out.append(SegmentUnit(d, chunk.obj.id))
    return out


def pick_server(
    candidates: Sequence[ServerRef], rng: random.Random, exclude: Collection[str] = ()
) -> ServerRef | None:
    """Among the servers not excluded, a random one of the highest priority (None if none)."""
    usable = [c for c in candidates if c.name not in exclude]
    if not usable:
        return None
    top = max(c.priority for c in usable)
    return rng.choice([c for c in usable if c.priority == top])


def assign(
    units: Sequence[SegmentUnit],
    servers_of: Callable[[SegmentId], Sequence[ServerRef]],
    rng: random.Random,
    exclude: Mapping[SegmentDescriptor, Collection[str]] | None = None,
) -> tuple[dict[ServerRef, list[SegmentUnit]], list[SegmentUnit]]:
    """One server per unit, grouped by server; units no (non-excluded) server has come back
    second."""
    by_server: dict[ServerRef, list[SegmentUnit]] = {}
    unavailable: list[SegmentUnit] = []
    for unit in units:
        skip = exclude.get(unit.descriptor, ()) if exclude else ()
        server = pick_server(servers_of(unit.segment_id), rng, skip)
        if server is None:
            unavailable.append(unit)
        else:
            by_server.setdefault(server, []).append(unit)
    return by_server, unavailable


def scatter_gather_limit(configured: int | None, context_value: object) -> int | None:
    """The bytes of partials one query may hold: the context's ``maxScatterGatherBytes`` within
    the configured bound (None: unlimited). A context value above the bound is a bad query."""
    if context_value is None:
        return configured
    if isinstance(context_value, bool) or not isinstance(context_value, int) or context_value <= 0:
        raise ResourceLimitExceeded(
            f"maxScatterGatherBytes must be a positive integer, got [{context_value}]"
        )
    if configured is not None and context_value > configured:
        raise ResourceLimitExceeded(
            f"configured [maxScatterGatherBytes = {context_value}] is more than enforced limit "
            f"of [{configured}]."
        )
    return context_value


class ByteBudget:
    """Counts the bytes of partials received for one query; over the limit raises Druid's
    ``Resource limit exceeded`` so the broker stops reading instead of running out of memory."""

    def __init__(self, limit: int | None, query_id: str) -> None:
        self.limit = limit
        self.query_id = query_id
        self.used = 0

    def take(self, n: int, url: str) -> None:
        self.used += n
        if self.limit is not None and self.used > self.limit:
            raise ResourceLimitExceeded(
                f"Query[{self.query_id}] url[{url}] max scatter-gather bytes limit reached."
            )
