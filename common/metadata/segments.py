"""``druid_segments``: published segments and their ``used`` flag, as Druid keeps them.

A row per segment: ``id`` (the segment id), ``dataSource``, ISO ``start``/``end``, ``version``,
``used``, ``payload`` (the DataSegment JSON) and ``used_status_last_updated`` (ISO time of the
last flip). Interval filters are applied to parsed intervals, not to the ISO strings, so that
Druid's far-past/far-future instants (``ETERNITY``) compare correctly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metadata.engine import dialect_insert
from common.metadata.schema import Tables
from common.segments.intervals import Interval
from common.segments.isotime import format_iso
from common.segments.segment import DataSegment, NoneShardSpec


@dataclass(frozen=True)
class SegmentRow:
    segment: DataSegment
    used: bool
    used_status_last_updated: str
    created_date: str = ""


def segment_values(segment: DataSegment, used: bool, now: str) -> dict[str, object]:
    return {
        "id": segment.identifier,
        "dataSource": segment.data_source,
        "created_date": now,
        "start": format_iso(segment.interval.start),
        "end": format_iso(segment.interval.end),
        "partitioned": not isinstance(segment.shard_spec, NoneShardSpec),
        "version": segment.version,
        "used": used,
        "payload": orjson.dumps(segment.to_json()),
        "used_status_last_updated": now,
    }


async def insert_segments(
    conn: AsyncConnection, t: Tables, segments: Iterable[DataSegment], now: str, used: bool = True
) -> int:
    """Insert segments (ids already present are left as they are); returns how many were new."""
    rows = [segment_values(s, used, now) for s in segments]
    if not rows:
        return 0
    existing = set(
        (
            await conn.execute(
                select(t.segments.c.id).where(t.segments.c.id.in_([r["id"] for r in rows]))
            )
        )
        .scalars()
        .all()
    )
    fresh = [r for r in rows if r["id"] not in existing]
    if fresh:
        stmt = dialect_insert(conn, t.segments).values(fresh)
        await conn.execute(stmt.on_conflict_do_nothing(index_elements=[t.segments.c.id]))
    return len(fresh)


async def list_segments(
    conn: AsyncConnection,
    t: Tables,
    data_source: str | None = None,
    used: bool | None = True,
    interval: Interval | None = None,
) -> list[SegmentRow]:
    """Segments of one datasource (or all), by ``used`` (None = both), overlapping ``interval``."""
    c = t.segments.c
    query = select(c.payload, c.used, c.used_status_last_updated, c.created_date)
    if data_source is not None:
        query = query.where(c.dataSource == data_source)
    if used is not None:
        query = query.where(c.used == used)
    result = []
    for payload, is_used, stamp, created in (await conn.execute(query)).all():
        segment = DataSegment.from_json(bytes(payload))
        if interval is None or segment.interval.overlaps(interval):
            result.append(SegmentRow(segment, bool(is_used), str(stamp), str(created)))
    return result


async def get_segment(conn: AsyncConnection, t: Tables, segment_id: str) -> SegmentRow | None:
    c = t.segments.c
    query = select(c.payload, c.used, c.used_status_last_updated, c.created_date).where(
        c.id == segment_id
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return SegmentRow(DataSegment.from_json(bytes(row[0])), bool(row[1]), str(row[2]), str(row[3]))


async def set_used(
    conn: AsyncConnection,
    t: Tables,
    data_source: str,
    used: bool,
    now: str,
    *,
    segment_ids: Sequence[str] | None = None,
    interval: Interval | None = None,
    versions: Sequence[str] | None = None,
) -> int:
    """Flip ``used`` for segments named by id, or contained in ``interval`` (optionally only of
    ``versions``), as Druid's markUsed/markUnused; returns how many changed."""
    c = t.segments.c
    query = select(c.id, c.payload).where(c.dataSource == data_source, c.used == (not used))
    if segment_ids is not None:
        query = query.where(c.id.in_(list(segment_ids)))
    if versions:
        query = query.where(c.version.in_(list(versions)))
    ids = []
    for sid, payload in (await conn.execute(query)).all():
        if interval is not None:
            seg_interval = DataSegment.from_json(bytes(payload)).interval
            if not interval.contains(seg_interval):
                continue
        ids.append(sid)
    if not ids:
        return 0
    stmt = update(t.segments).where(c.id.in_(ids)).values(used=used, used_status_last_updated=now)
    result = await conn.execute(stmt)
    return int(result.rowcount or 0)


async def change_stamp(conn: AsyncConnection, t: Tables) -> tuple[int, str]:
    """A cheap fingerprint of the used-segment set: (number used, latest used-status change)."""
    c = t.segments.c
    count = (await conn.execute(select(func.count()).where(c.used.is_(True)))).scalar() or 0
    latest = (await conn.execute(select(func.max(c.used_status_last_updated)))).scalar()
    return int(count), str(latest or "")


async def data_source_names(
    conn: AsyncConnection, t: Tables, include_unused: bool = False
) -> list[str]:
    c = t.segments.c
    query = select(c.dataSource).distinct()
    if not include_unused:
        query = query.where(c.used.is_(True))
    return sorted(str(v) for v in (await conn.execute(query)).scalars().all())
