"""``druid_dataSource``: committed stream offsets, and the exactly-once publish (Druid 4.4).

``commit_segments_and_metadata`` is ``IndexerSQLMetadataStorageCoordinator
.commitSegmentsAndMetadata`` run inside the caller's transaction: read the row of the supervisor,
check the publish's start offsets against it (``decide_commit``, pure), compare-and-swap the row
on the SHA-1 of the bytes read, then insert the segments as used. Any failure leaves nothing
written (the caller's transaction is rolled back by raising, or nothing was written yet).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.ingest.metadata import DataSourceMetadata
from common.metadata.engine import dialect_insert
from common.metadata.schema import Tables
from common.metadata.segments import insert_segments
from common.segments.segment import DataSegment


@dataclass(frozen=True)
class PublishResult:
    """Druid's ``SegmentPublishResult``."""

    success: bool
    segments: list[DataSegment] = field(default_factory=list)
    error_msg: str | None = None
    retryable: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "segments": [s.to_json() for s in self.segments],
            "success": self.success,
            "errorMsg": self.error_msg,
            "retryable": self.retryable,
        }


def _dump(md: DataSourceMetadata) -> str:
    return orjson.dumps(md.to_json()).decode()


def decide_commit(
    old: DataSourceMetadata | None, start: DataSourceMetadata, end: DataSourceMetadata
) -> tuple[DataSourceMetadata | None, PublishResult | None]:
    """``(new value, None)`` when the publish may commit, else ``(None, failure)``."""
    if old is None:
        matches = start.is_valid_start()
        ahead = True
    else:
        matches = start.as_start().matches(old.as_start())
        ahead = start.as_start().is_ahead_of(old.as_start())
    if ahead and not matches:
        return None, PublishResult(
            False,
            error_msg=f"The new start metadata state[{_dump(start)}] is ahead of the last "
            f"committed end state[{_dump(old) if old else None}]. Try resetting the supervisor.",
            retryable=True,
        )
    if not matches:
        return None, PublishResult(
            False,
            error_msg=f"Inconsistency between stored metadata state[{_dump(old) if old else None}]"
            f" and target state[{_dump(start)}]. Try resetting the supervisor.",
        )
    return (end if old is None else old.plus(end)), None


def sha1_hex(payload: bytes) -> str:
    return hashlib.sha1(payload).hexdigest().upper()


async def read_row(
    conn: AsyncConnection, t: Tables, supervisor_id: str
) -> tuple[bytes, str] | None:
    c = t.data_source.c
    query = select(c.commit_metadata_payload, c.commit_metadata_sha1).where(
        c.dataSource == supervisor_id
    )
    row = (await conn.execute(query)).first()
    return None if row is None else (bytes(row[0]), str(row[1]))


async def get_metadata(
    conn: AsyncConnection, t: Tables, supervisor_id: str
) -> dict[str, Any] | None:
    row = await read_row(conn, t, supervisor_id)
    if row is None:
        return None
    value: dict[str, Any] = orjson.loads(row[0])
    return value


async def write_row(
    conn: AsyncConnection,
    t: Tables,
    supervisor_id: str,
    new: dict[str, Any],
    old_sha1: str | None,
    now: str,
) -> bool:
    """Insert (no old row) or compare-and-swap on ``old_sha1``; False when it lost the race."""
    payload = orjson.dumps(new)
    if old_sha1 is None:
        stmt = dialect_insert(conn, t.data_source).values(
            dataSource=supervisor_id,
            created_date=now,
            commit_metadata_payload=payload,
            commit_metadata_sha1=sha1_hex(payload),
        )
        result = await conn.execute(stmt.on_conflict_do_nothing())
    else:
        c = t.data_source.c
        result = await conn.execute(
            update(t.data_source)
            .where(c.dataSource == supervisor_id, c.commit_metadata_sha1 == old_sha1)
            .values(commit_metadata_payload=payload, commit_metadata_sha1=sha1_hex(payload))
        )
    return bool(result.rowcount)


async def commit_segments_and_metadata(
    conn: AsyncConnection,
    t: Tables,
    segments: Sequence[DataSegment],
    supervisor_id: str | None,
    start: DataSourceMetadata | None,
    end: DataSourceMetadata | None,
    now: str,
) -> PublishResult:
    """Druid's publish in the caller's transaction; on failure nothing has been written."""
    if (start is None) != (end is None):
        return PublishResult(False, error_msg="startMetadata and endMetadata must both be given")
    if start is not None and end is not None:
        if not supervisor_id:
            return PublishResult(False, error_msg="supervisorId is required with metadata")
        row = await read_row(conn, t, supervisor_id)
        old = None if row is None else DataSourceMetadata.from_json(orjson.loads(row[0]))
        new, failure = decide_commit(old, start, end)
        if failure is not None:
            if not failure.retryable and await _already_published(conn, t, segments, old, end):
                # A replica, or this task before it crashed, published exactly these segments
                # and offsets: the publish already happened (Druid's publisher checks the same).
                return PublishResult(True, segments=list(segments))
            return failure
        assert new is not None
        if not await write_row(
            conn, t, supervisor_id, new.to_json(), None if row is None else row[1], now
        ):
            return PublishResult(
                False,
                error_msg=f"Failed to update the metadata Store. The new start metadata "
                f"[{_dump(start)}] is ahead of last commited end state (compare-and-swap "
                "update failed).",
                retryable=True,
            )
    await insert_segments(conn, t, segments, now, used=True)
    return PublishResult(True, segments=list(segments))


async def _already_published(
    conn: AsyncConnection,
    t: Tables,
    segments: Sequence[DataSegment],
    stored: DataSourceMetadata | None,
    end: DataSourceMetadata,
) -> bool:
    """All ``segments`` are used in the store and the stored offsets already reach ``end``."""
    if not segments or stored is None or not stored.covers(end):
        return False
    c = t.segments.c
    ids = [s.identifier for s in segments]
    query = select(func.count()).where(c.id.in_(ids), c.used.is_(True))
    return int((await conn.execute(query)).scalar() or 0) == len(set(ids))


async def reset_metadata(
    conn: AsyncConnection,
    t: Tables,
    supervisor_id: str,
    partitions: dict[str, Any] | None,
    now: str,
) -> bool:
    """Delete the row (``None``) or overwrite the given partitions' offsets; True if it changed.

    ``partitions`` is a DataSourceMetadata JSON whose offsets replace the stored ones partition
    by partition (Druid's ``resetOffsets``); with no stored row it becomes the row.
    """
    if partitions is None:
        c = t.data_source.c
        result = await conn.execute(delete(t.data_source).where(c.dataSource == supervisor_id))
        return bool(result.rowcount)
    given = DataSourceMetadata.from_json(partitions).as_end()
    row = await read_row(conn, t, supervisor_id)
    if row is None:
        return await write_row(conn, t, supervisor_id, given.to_json(), None, now)
    old = DataSourceMetadata.from_json(orjson.loads(row[0]))
    return await write_row(conn, t, supervisor_id, old.plus(given).to_json(), row[1], now)
