"""Unused segments on their way out: what a kill task deletes and what the kill duty asks for.

* ``kill_candidates`` is Druid's ``retrieveUnusedSegmentsForInterval(dataSource, interval,
  versions, limit, maxUsedStatusLastUpdatedTime)``: unused segments whose interval the kill
  interval *contains*, of the given versions (all when None), last marked unused no later than
  ``max_used_status_last_updated`` (any time when None), oldest interval first, at most ``limit``.
* ``unused_intervals_for_kill`` is the ``SegmentsMetadataManager.getUnusedSegmentIntervals`` the
  coordinator's kill duty calls: intervals of unused segments starting at or after ``min_start``,
  ending at or before ``max_end``, marked unused no later than ``max_used_status_last_updated``,
  oldest first, at most ``limit``.
* ``nuke_segments`` deletes rows, but only of segments that are still unused: a segment marked
  used again after the kill task listed it is kept (Druid's ``SegmentNukeAction`` runs under the
  task's lock, which already keeps new versions out; this also keeps a re-enabled one).

Pure selection over ``SegmentRow``s; the two SQL functions are thin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import InvalidInput
from common.metadata.schema import Tables
from common.metadata.segments import SegmentRow, list_segments
from common.segments.intervals import Interval
from common.segments.isotime import parse_iso
from common.segments.segment import DataSegment


def _marked_unused_by(row: SegmentRow, max_used_status_last_updated: int | None) -> bool:
    if max_used_status_last_updated is None:
        return True
    try:
        stamp = parse_iso(row.used_status_last_updated)
    except (ValueError, InvalidInput):
        # Druid: rows without a stamp (from before the column existed) ignore the bound.
        return True
    return stamp <= max_used_status_last_updated


def _oldest_first(segment: DataSegment) -> tuple[int, int, str, int]:
    return (segment.interval.start, segment.interval.end, segment.version, segment.partition_num)


def kill_candidates(
    rows: Iterable[SegmentRow],
    interval: Interval,
    *,
    versions: Sequence[str] | None = None,
    limit: int | None = None,
    max_used_status_last_updated: int | None = None,
) -> list[DataSegment]:
    """The unused segments a kill task over ``interval`` deletes (times in epoch millis)."""
    chosen = [
        r.segment
        for r in rows
        if not r.used
        and interval.contains(r.segment.interval)
        and (versions is None or r.segment.version in versions)
        and _marked_unused_by(r, max_used_status_last_updated)
    ]
    chosen.sort(key=_oldest_first)
    return chosen if limit is None else chosen[:limit]


def unused_intervals_for_kill(
    rows: Iterable[SegmentRow],
    *,
    min_start: int | None,
    max_end: int,
    limit: int,
    max_used_status_last_updated: int,
) -> list[Interval]:
    """Intervals of unused segments the kill duty may kill, oldest first (one per segment)."""
    segments = sorted(
        (
            r.segment
            for r in rows
            if not r.used
            and (min_start is None or r.segment.interval.start >= min_start)
            and r.segment.interval.end <= max_end
            and _marked_unused_by(r, max_used_status_last_updated)
        ),
        key=_oldest_first,
    )
    return [s.interval for s in segments[:limit]]


def umbrella(intervals: Sequence[Interval]) -> Interval:
    """The smallest interval covering all of ``intervals`` (Druid's ``umbrellaInterval``)."""
    if not intervals:
        raise ValueError("umbrella of no intervals")
    return Interval(min(i.start for i in intervals), max(i.end for i in intervals))


async def unused_rows(conn: AsyncConnection, t: Tables, data_source: str) -> list[SegmentRow]:
    return await list_segments(conn, t, data_source, used=False)


async def nuke_segments(
    conn: AsyncConnection, t: Tables, data_source: str, segment_ids: Sequence[str]
) -> list[str]:
    """Delete the rows of those segments that are still unused; returns the deleted ids."""
    if not segment_ids:
        return []
    c = t.segments.c
    still_unused = [
        str(sid)
        for sid in (
            await conn.execute(
                select(c.id).where(
                    c.dataSource == data_source, c.used.is_(False), c.id.in_(list(segment_ids))
                )
            )
        )
        .scalars()
        .all()
    ]
    if still_unused:
        await conn.execute(delete(t.segments).where(c.id.in_(still_unused)))
    return still_unused
