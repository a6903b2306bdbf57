"""``druid_pendingSegments`` and segment allocation (Druid's ``SegmentAllocateAction``, 4.5).

``choose_allocation`` is the pure decision: the time chunk and version a row at ``row_interval``
goes to (the chunk of visible used or pending segments overlapping it, else the preferred
segment granularity's bucket with the lock's version) and the next partition number after the
highest used or pending one of that chunk. ``sequence_name_prev_id_sha1`` is Druid's idempotency
key (``PendingSegmentRecord``): the same sequence name and previous segment id (or interval, when
the lineage check is skipped) and version give back the same pending segment.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import CompareAndSwapFailed
from common.metadata import locks as locks_sql
from common.metadata import segments as segments_sql
from common.metadata.engine import dialect_insert
from common.metadata.schema import Tables
from common.segments.intervals import Interval
from common.segments.isotime import format_iso
from common.segments.segment import DataSegment, SegmentIdWithShardSpec


def sequence_name_prev_id_sha1(
    sequence_name: str,
    previous_segment_id: str | None,
    interval: Interval,
    version: str,
    skip_lineage_check: bool,
) -> str:
    """Druid's ``sequence_name_prev_id_sha1``: upper-case hex SHA-1 (Guava longs are LE)."""
    h = hashlib.sha1()
    h.update(sequence_name.encode())
    h.update(b"\xff")
    if skip_lineage_check:
        h.update(struct.pack("<qq", interval.start, interval.end))
    else:
        h.update((previous_segment_id or "").encode())
    h.update(b"\xff")
    h.update(version.encode())
    return h.hexdigest().upper()


@dataclass(frozen=True)
class Chunk:
    interval: Interval
    version: str | None  # None: a new chunk, versioned by the lock


def choose_chunk(
    row_interval: Interval,
    preferred: Interval,
    used: Iterable[DataSegment],
    pending: Iterable[SegmentIdWithShardSpec],
) -> Chunk | None:
    """The chunk a row goes to; ``None`` when existing data overlaps it without containing it."""
    existing = [(s.interval, s.version) for s in used if s.interval.overlaps(row_interval)]
    if not existing:
        existing = [(p.interval, p.version) for p in pending if p.interval.overlaps(row_interval)]
    if not existing:
        return Chunk(preferred, None)
    interval, version = max(existing, key=lambda iv: (iv[1], iv[0]))
    if not interval.contains(row_interval):
        return None
    return Chunk(interval, version)


def next_partition(
    chunk_interval: Interval,
    version: str,
    used: Iterable[DataSegment],
    pending: Iterable[SegmentIdWithShardSpec],
) -> tuple[int, int]:
    """``(partitionNum, corePartitions)`` of the next segment of the chunk."""
    top = -1
    core = 0
    for s in used:
        if s.interval == chunk_interval and s.version == version:
            top = max(top, s.partition_num)
            core = max(core, s.shard_spec.core_partitions)
    for p in pending:
        if p.interval == chunk_interval and p.version == version:
            top = max(top, p.partition_num)
    return top + 1, core


async def find_pending(
    conn: AsyncConnection,
    t: Tables,
    data_source: str,
    sequence_name: str,
    previous_segment_id: str | None,
    interval: Interval | None,
) -> SegmentIdWithShardSpec | None:
    """An earlier allocation for the same sequence and previous id (or interval when skipping)."""
    c = t.pending_segments.c
    query = select(c.payload).where(c.dataSource == data_source, c.sequence_name == sequence_name)
    if interval is not None:
        query = query.where(
            and_(c.start == format_iso(interval.start), c.end == format_iso(interval.end))
        )
    else:
        query = query.where(c.sequence_prev_id == (previous_segment_id or ""))
    rows = (await conn.execute(query)).scalars().all()
    found = [SegmentIdWithShardSpec.from_json(orjson.loads(bytes(p))) for p in rows]
    return max(found, key=lambda p: (p.version, p.partition_num)) if found else None


async def list_pending(
    conn: AsyncConnection, t: Tables, data_source: str, interval: Interval | None = None
) -> list[SegmentIdWithShardSpec]:
    c = t.pending_segments.c
    rows = (await conn.execute(select(c.payload).where(c.dataSource == data_source))).scalars()
    result = [SegmentIdWithShardSpec.from_json(orjson.loads(bytes(p))) for p in rows.all()]
    if interval is not None:
        result = [p for p in result if p.interval.overlaps(interval)]
    return result


async def insert_pending(
    conn: AsyncConnection,
    t: Tables,
    segment: SegmentIdWithShardSpec,
    *,
    sequence_name: str,
    previous_segment_id: str | None,
    sha1: str,
    task_allocator_id: str | None,
    now: str,
) -> bool:
    """Insert a pending segment; False when its id or sha1 was taken meanwhile."""
    stmt = dialect_insert(conn, t.pending_segments).values(
        id=segment.id,
        dataSource=segment.data_source,
        created_date=now,
        start=format_iso(segment.interval.start),
        end=format_iso(segment.interval.end),
        sequence_name=sequence_name,
        sequence_prev_id=previous_segment_id or "",
        sequence_name_prev_id_sha1=sha1,
        payload=orjson.dumps(segment.to_json()),
        task_allocator_id=task_allocator_id,
    )
    result = await conn.execute(stmt.on_conflict_do_nothing())
    return bool(result.rowcount)


async def delete_pending(
    conn: AsyncConnection, t: Tables, data_source: str, interval: Interval | None = None
) -> int:
    """Delete a datasource's pending segments overlapping ``interval`` (all when None)."""
    c = t.pending_segments.c
    ids = [p.id for p in await list_pending(conn, t, data_source, interval)]
    if not ids:
        return 0
    result = await conn.execute(delete(t.pending_segments).where(c.id.in_(ids)))
    return int(result.rowcount or 0)


async def delete_pending_of_finished_allocator(
    conn: AsyncConnection, t: Tables, data_source: str, allocator_id: str
) -> int:
    """Druid's ``deletePendingSegmentsForTaskAllocatorId`` once the allocator's tasks are done:
    delete ``data_source``'s pending segments allocated by task group ``allocator_id`` unless a
    task of that group is still active. Serialised with allocations of the datasource, so a task
    of the group submitted meanwhile either is seen active or allocates afterwards."""
    await locks_sql.serialize_datasource(conn, t, data_source)
    tc = t.tasks.c
    still_active = await conn.execute(
        select(tc.id)
        .where(tc.active.is_(True), tc.datasource == data_source, tc.group_id == allocator_id)
        .limit(1)
    )
    if still_active.first() is not None:
        return 0
    c = t.pending_segments.c
    result = await conn.execute(
        delete(t.pending_segments).where(
            c.dataSource == data_source, c.task_allocator_id == allocator_id
        )
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class AllocateRequest:
    """What ``segmentAllocate`` asks for, with the time chunks already computed."""

    task_id: str
    group_id: str
    data_source: str
    row_interval: Interval
    preferred_interval: Interval
    sequence_name: str
    previous_segment_id: str | None
    skip_lineage_check: bool
    lock_type: str


async def allocate_segment(
    conn: AsyncConnection, t: Tables, req: AllocateRequest, now: str
) -> SegmentIdWithShardSpec | None:
    """Allocate (or find again) the pending segment of a row; None when it cannot be done.

    Takes the time-chunk lock implicitly (its version is ``now`` for a fresh chunk). Raises
    ``CompareAndSwapFailed`` when a concurrent allocation took the id first: retry the
    transaction.
    """
    await locks_sql.serialize_datasource(conn, t, req.data_source)
    used = [
        r.segment
        for r in await segments_sql.list_segments(
            conn, t, req.data_source, used=True, interval=req.row_interval
        )
    ]
    pending = await list_pending(conn, t, req.data_source, req.row_interval)
    chunk = choose_chunk(req.row_interval, req.preferred_interval, used, pending)
    if chunk is None:
        return None
    if req.skip_lineage_check:
        found = await find_pending(
            conn, t, req.data_source, req.sequence_name, None, chunk.interval
        )
    else:
        found = await find_pending(
            conn, t, req.data_source, req.sequence_name, req.previous_segment_id, None
        )
        if found is not None and not found.interval.contains(req.row_interval):
            return None
    interval = found.interval if found is not None else chunk.interval
    lock, fresh = locks_sql.decide_lock(
        await locks_sql.list_locks(conn, t),
        task_id=req.task_id,
        group_id=req.group_id,
        data_source=req.data_source,
        interval=interval,
        lock_type=req.lock_type,
        new_version=now,
    )
    if lock is None:
        return None
    if fresh:
        await locks_sql.add_lock(conn, t, lock)
    if found is not None:
        return found
    version = chunk.version or lock.version
    partition, core = next_partition(chunk.interval, version, used, pending)
    segment = SegmentIdWithShardSpec(req.data_source, chunk.interval, version, partition, core)
    sha1 = sequence_name_prev_id_sha1(
        req.sequence_name,
        req.previous_segment_id,
        chunk.interval,
        version,
        req.skip_lineage_check,
    )
    if not await insert_pending(
        conn,
        t,
        segment,
        sequence_name=req.sequence_name,
        previous_segment_id=req.previous_segment_id,
        sha1=sha1,
        task_allocator_id=req.group_id,
        now=now,
    ):
        raise CompareAndSwapFailed(f"pending segment {segment.id} was allocated concurrently")
    return segment
