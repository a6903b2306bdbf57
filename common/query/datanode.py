"""What a data node (historical, later a peon) does with a query the broker sends it.

The broker names the segments to read in a segments spec
(``{"type":"segments","segments":[{"itvl","ver","part"}]}``). For each descriptor the node finds
the segment it has open (``SegmentGetter``), runs the query over the descriptor's interval of it,
and merges the per-segment partials into one; descriptors it does not have are reported back as
``missingSegments`` so the broker can ask another replica.

A descriptor's ``itvl`` is the visible part of the segment in the broker's timeline, so it may be
narrower than the segment's own interval; ``segment_lookup`` resolves both cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from common.errors import InvalidInput, KdruidError
from common.query.engine import merge, run_segment
from common.query.models import Query
from common.query.specs import SegmentDescriptor
from common.segments.segment import DataSegment, SegmentId

#: Partials with at most this many rows in all are merged on the event loop, not in a thread.
INLINE_MERGE_ROWS = 1024

#: A historical runs a query on its event loop, not in worker threads, when the segments it
#: reads hold at most this many rows in all. A count over 1,000 rows takes ~0.15 ms of CPU,
#: while the hops to a worker thread and back cost ~0.5-1 ms on a busy 2-core machine; over
#: 2,000 rows the shapes of bench/query.py take 1-2.5 ms and the heaviest (a groupBy with eight
#: filtered aggregators) ~8 ms, the most this can hold up the node's other requests.
INLINE_QUERY_ROWS = 2_000

#: ``(dataSource, descriptor) -> (segment, its Arrow table)``, or None when not served here.
SegmentGetter = Callable[[str, SegmentDescriptor], tuple[DataSegment, pa.Table] | None]


def segment_lookup(
    list_segments: Callable[[], Iterable[DataSegment]],
    get_by_id: Callable[[SegmentId], tuple[DataSegment, pa.Table]],
) -> SegmentGetter:
    """A ``SegmentGetter`` over a registry of open segments.

    ``get_by_id`` may raise ``KdruidError`` (e.g. ``NotFound``) or ``KeyError`` for a segment it
    does not hold. The exact id is tried first; a descriptor whose interval is only part of the
    segment's falls back to a scan for the segment of that version and partition covering it.
    """

    def get(data_source: str, d: SegmentDescriptor) -> tuple[DataSegment, pa.Table] | None:
        try:
            return get_by_id(SegmentId(data_source, d.itvl, d.ver, d.part))
        except (KdruidError, KeyError):
            pass  # the scan below only when the exact id is not here
        candidates = [
            s.id
            for s in list_segments()
            if s.data_source == data_source
            and s.version == d.ver
            and s.partition_num == d.part
            and s.interval != d.itvl
            and s.interval.contains(d.itvl)
        ]
        for sid in candidates:
            try:
                return get_by_id(sid)
            except (KdruidError, KeyError):
                continue
        return None

    return get


def descriptor_json(d: SegmentDescriptor) -> dict[str, Any]:
    """Druid's JSON of a descriptor (as in ``missingSegments``)."""
    return {"itvl": str(d.itvl), "ver": d.ver, "part": d.part}


def requested_segments(query: Query) -> list[SegmentDescriptor]:
    """The descriptors of a data-node query; a query without a segments spec is refused."""
    segments = query.intervals.segments
    if segments is None:
        raise InvalidInput(
            "a data node answers only queries whose intervals is a segments spec "
            '({"type":"segments","segments":[{"itvl","ver","part"}]}); send queries to the broker'
        )
    return list(dict.fromkeys(segments))


def run_descriptor(
    query: Query, get_segment: SegmentGetter, d: SegmentDescriptor
) -> pa.Table | None:
    """The partial of ``query`` over one requested segment; None when it is not here."""
    return run_found(query, d, get_segment(query.dataSource, d))


def run_found(
    query: Query, d: SegmentDescriptor, found: tuple[DataSegment, pa.Table] | None
) -> pa.Table | None:
    """``run_descriptor`` once the segment is looked up (None: not here)."""
    if found is None:
        return None
    segment, table = found
    interval = d.itvl.intersection(segment.interval)
    if interval is None:
        return None
    return run_segment(query, table, interval=interval, segment_id=str(segment.id))


@dataclass
class NodeResult:
    partial: pa.Table
    missing: list[SegmentDescriptor]


async def run_on_node(
    query: Query, get_segment: SegmentGetter, limit: asyncio.Semaphore, *, inline_rows: int = 0
) -> NodeResult:
    """Run every requested segment in worker threads (at most ``limit`` at once, so the event
    loop stays free and cancellation skips segments not yet started), then merge them.

    With ``inline_rows`` (for a ``get_segment`` that only looks up open tables, as the
    historical's: a peon's builds its in-memory segments' tables, so it keeps 0), the segments
    are looked up first and, when they hold at most that many rows in all, the query runs right
    here on the event loop: for a small query the hops to and from worker threads cost more
    than the work (see ``INLINE_QUERY_ROWS``). Not for a join, unnest or filter datasource,
    whose cost is not bounded by the segment's rows."""
    descriptors = requested_segments(query)
    results: list[pa.Table | None]
    if inline_rows > 0 and getattr(query, "dataSourceSpec", None) is None:
        found = [get_segment(query.dataSource, d) for d in descriptors]
        if sum(f[1].num_rows for f in found if f is not None) <= inline_rows:
            results = [run_found(query, d, f) for d, f in zip(descriptors, found, strict=True)]
        else:

            async def run_one(d: SegmentDescriptor, f: Any) -> pa.Table | None:
                async with limit:
                    return await asyncio.to_thread(run_found, query, d, f)

            pairs = zip(descriptors, found, strict=True)
            results = list(await asyncio.gather(*(run_one(d, f) for d, f in pairs)))
    else:

        async def one(d: SegmentDescriptor) -> pa.Table | None:
            async with limit:
                return await asyncio.to_thread(run_descriptor, query, get_segment, d)

        results = list(await asyncio.gather(*(one(d) for d in descriptors)))
    partials = [p for p in results if p is not None]
    missing = [d for d, p in zip(descriptors, results, strict=True) if p is None]
    if sum(p.num_rows for p in partials) <= INLINE_MERGE_ROWS:
        partial = merge(query, partials)  # microseconds: cheaper than a hop to a worker thread
    else:
        partial = await asyncio.to_thread(merge, query, partials)
    return NodeResult(partial, missing)
