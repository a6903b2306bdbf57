"""``druid_tasklocks``: time-chunk locks held by active tasks, and Druid's lock-granting rule.

A row per (task, lock); ``lock_payload`` is Druid's ``TimeChunkLock`` JSON::

    {"type": "timeChunk", "granularity": "timeChunk", "lockType": "EXCLUSIVE", "groupId": "g",
     "dataSource": "ds", "interval": "2024-01-01T00:00:00.000Z/...", "version": "2024-...Z",
     "priority": 75, "revoked": false}

``decide_lock`` is Druid's ``TaskLockbox`` in miniature: a task that holds the interval keeps its
lock; tasks of the same group share a lock (its version); ``APPEND``/``SHARED`` locks of the same
type coexist on one interval (one version, so appended segments never overshadow each other); any
other overlap is a conflict and the request is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metadata.schema import Tables
from common.segments.intervals import Interval

LOCK_TYPES = ("EXCLUSIVE", "SHARED", "APPEND", "REPLACE")
#: Druid's default priority of realtime (streaming) tasks.
REALTIME_PRIORITY = 75


@dataclass(frozen=True)
class TaskLock:
    task_id: str
    group_id: str
    data_source: str
    interval: Interval
    version: str
    lock_type: str = "EXCLUSIVE"
    priority: int = REALTIME_PRIORITY

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "timeChunk",
            "granularity": "timeChunk",
            "lockType": self.lock_type,
            "groupId": self.group_id,
            "dataSource": self.data_source,
            "interval": str(self.interval),
            "version": self.version,
            "priority": self.priority,
            "revoked": False,
        }

    @classmethod
    def from_json(cls, task_id: str, obj: dict[str, Any]) -> TaskLock:
        return cls(
            task_id=task_id,
            group_id=str(obj["groupId"]),
            data_source=str(obj["dataSource"]),
            interval=Interval.parse(str(obj["interval"])),
            version=str(obj["version"]),
            lock_type=str(obj.get("lockType") or "EXCLUSIVE"),
            priority=int(obj.get("priority") or REALTIME_PRIORITY),
        )


async def serialize_datasource(conn: AsyncConnection, t: Tables, data_source: str) -> None:
    """Make lock and allocation decisions on ``data_source`` one at a time.

    SQLite write transactions are serial already; PostgreSQL's READ COMMITTED would let two
    allocations both see "no lock" and version one chunk twice, so they take a transaction
    advisory lock per (table base, datasource) first.
    """
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha1(f"kdruid-tasklocks:{t.base}:{data_source}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def decide_lock(
    existing: Iterable[TaskLock],
    *,
    task_id: str,
    group_id: str,
    data_source: str,
    interval: Interval,
    lock_type: str,
    new_version: str,
) -> tuple[TaskLock | None, bool]:
    """The lock to grant and whether it is a new row: ``(None, False)`` on a conflict."""
    overlapping = [
        lk for lk in existing if lk.data_source == data_source and lk.interval.overlaps(interval)
    ]
    for lk in overlapping:
        if lk.task_id == task_id and lk.interval == interval:
            return lk, False
    version: str | None = None
    for lk in overlapping:
        shareable = lk.group_id == group_id or (
            lk.lock_type == lock_type and lock_type in ("APPEND", "SHARED")
        )
        if lk.interval != interval or not shareable:
            return None, False
        version = lk.version
    lock = TaskLock(task_id, group_id, data_source, interval, version or new_version, lock_type)
    return lock, True


async def list_locks(
    conn: AsyncConnection, t: Tables, task_ids: Sequence[str] | None = None
) -> list[TaskLock]:
    c = t.tasklocks.c
    query = select(c.task_id, c.lock_payload)
    if task_ids is not None:
        query = query.where(c.task_id.in_(list(task_ids)))
    rows = (await conn.execute(query.order_by(c.id))).all()
    return [TaskLock.from_json(str(tid), orjson.loads(bytes(p))) for tid, p in rows]


async def add_lock(conn: AsyncConnection, t: Tables, lock: TaskLock) -> None:
    await conn.execute(
        t.tasklocks.insert().values(task_id=lock.task_id, lock_payload=orjson.dumps(lock.to_json()))
    )


async def remove_locks(
    conn: AsyncConnection, t: Tables, task_id: str, interval: Interval | None = None
) -> int:
    """Drop a task's locks (only those on ``interval`` when given); returns how many."""
    c = t.tasklocks.c
    if interval is None:
        result = await conn.execute(delete(t.tasklocks).where(c.task_id == task_id))
        return int(result.rowcount or 0)
    ids = [
        rid
        for rid, payload in (
            await conn.execute(select(c.id, c.lock_payload).where(c.task_id == task_id))
        ).all()
        if TaskLock.from_json(task_id, orjson.loads(bytes(payload))).interval == interval
    ]
    if not ids:
        return 0
    result = await conn.execute(delete(t.tasklocks).where(c.id.in_(ids)))
    return int(result.rowcount or 0)
