"""``druid_tasks``: every task the overlord accepted, its payload, status and ``active`` flag.

Druid's ``SQLMetadataStorageActionHandler``: a row per task id with the task JSON (``payload``)
and the last ``TaskStatus`` JSON (``status_payload``); ``active`` is true until the task completes.
On becoming leader the overlord reloads the active rows into its queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metadata.engine import dialect_insert
from common.metadata.schema import Tables


@dataclass(frozen=True)
class TaskRow:
    id: str
    created_date: str
    datasource: str
    payload: dict[str, Any]
    status: dict[str, Any]
    active: bool
    type: str | None
    group_id: str | None


def _row(r: Any) -> TaskRow:
    return TaskRow(
        id=str(r.id),
        created_date=str(r.created_date),
        datasource=str(r.datasource),
        payload=orjson.loads(bytes(r.payload)),
        status=orjson.loads(bytes(r.status_payload)),
        active=bool(r.active),
        type=r.type,
        group_id=r.group_id,
    )


async def insert_task(conn: AsyncConnection, t: Tables, row: TaskRow) -> bool:
    """Insert a new task; False when the id exists already (Druid's EntryExistsException)."""
    stmt = dialect_insert(conn, t.tasks).values(
        id=row.id,
        created_date=row.created_date,
        datasource=row.datasource,
        payload=orjson.dumps(row.payload),
        status_payload=orjson.dumps(row.status),
        active=row.active,
        type=row.type,
        group_id=row.group_id,
    )
    result = await conn.execute(stmt.on_conflict_do_nothing(index_elements=[t.tasks.c.id]))
    return bool(result.rowcount)


async def set_status(
    conn: AsyncConnection, t: Tables, task_id: str, status: dict[str, Any], active: bool
) -> bool:
    """Store a task's status; only an active row changes (a completed task stays completed)."""
    c = t.tasks.c
    stmt = (
        update(t.tasks)
        .where(c.id == task_id, c.active.is_(True))
        .values(status_payload=orjson.dumps(status), active=active)
    )
    result = await conn.execute(stmt)
    return bool(result.rowcount)


async def get_task(conn: AsyncConnection, t: Tables, task_id: str) -> TaskRow | None:
    row = (await conn.execute(select(t.tasks).where(t.tasks.c.id == task_id))).first()
    return None if row is None else _row(row)


async def get_tasks(conn: AsyncConnection, t: Tables, task_ids: Sequence[str]) -> list[TaskRow]:
    if not task_ids:
        return []
    query = select(t.tasks).where(t.tasks.c.id.in_(list(task_ids)))
    return [_row(r) for r in (await conn.execute(query)).all()]


async def list_tasks(
    conn: AsyncConnection,
    t: Tables,
    *,
    active: bool | None = None,
    datasource: str | None = None,
    task_type: str | None = None,
    created_after: str | None = None,
    limit: int | None = None,
) -> list[TaskRow]:
    """Tasks, newest first, filtered by ``active``, datasource, type and creation time."""
    c = t.tasks.c
    query = select(t.tasks)
    if active is not None:
        query = query.where(c.active.is_(active))
    if datasource is not None:
        query = query.where(c.datasource == datasource)
    if task_type is not None:
        query = query.where(c.type == task_type)
    if created_after is not None:
        query = query.where(c.created_date >= created_after)
    query = query.order_by(c.created_date.desc(), c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_row(r) for r in (await conn.execute(query)).all()]
