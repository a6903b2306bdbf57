"""Supervisor specs (``druid_supervisors``), kept as Druid's ``SQLMetadataSupervisorManager`` does.

The table is an append-only history: every create, update, suspend, resume and terminate inserts a
row ``(spec_id, created_date, payload)``; the row with the greatest serial ``id`` per ``spec_id``
is in force. ``terminate`` appends a ``NoopSupervisorSpec`` tombstone, so the history survives the
supervisor. History entries are Druid's ``VersionedSupervisorSpec`` JSON ``{"spec", "version"}``
with ``version`` = the row's ``created_date``.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metadata.schema import Tables


async def insert_spec(
    conn: AsyncConnection, t: Tables, spec_id: str, payload: dict[str, Any], created_date: str
) -> None:
    await conn.execute(
        t.supervisors.insert().values(
            spec_id=spec_id, created_date=created_date, payload=orjson.dumps(payload)
        )
    )


async def latest_specs(conn: AsyncConnection, t: Tables) -> dict[str, dict[str, Any]]:
    """The spec in force per supervisor id (tombstones included; callers skip them)."""
    c = t.supervisors.c
    latest = select(func.max(c.id).label("id")).group_by(c.spec_id).subquery()
    query = select(c.spec_id, c.payload).join(latest, c.id == latest.c.id)
    rows = (await conn.execute(query)).all()
    return {str(spec_id): orjson.loads(bytes(payload)) for spec_id, payload in rows}


async def spec_history(
    conn: AsyncConnection, t: Tables, spec_id: str | None = None, count: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """``VersionedSupervisorSpec`` entries per supervisor id, newest first; at most ``count``
    per id."""
    c = t.supervisors.c
    query = select(c.spec_id, c.created_date, c.payload)
    if spec_id is not None:
        query = query.where(c.spec_id == spec_id)
    rows = (await conn.execute(query.order_by(c.id.desc()))).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for sid, created, payload in rows:
        entries = out.setdefault(str(sid), [])
        if count is None or len(entries) < count:
            entries.append({"spec": orjson.loads(bytes(payload)), "version": str(created)})
    return out
