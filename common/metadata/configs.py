"""The ``druid_config`` table: named JSON payloads (``coordinator.config``, ``worker.config``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metadata.engine import dialect_insert
from common.metadata.schema import Tables


async def get_config(conn: AsyncConnection, t: Tables, name: str) -> bytes | None:
    query = select(t.config.c.payload).where(t.config.c.name == name)
    value = (await conn.execute(query)).scalar()
    return None if value is None else bytes(value)


async def set_config(conn: AsyncConnection, t: Tables, name: str, payload: bytes) -> None:
    stmt = dialect_insert(conn, t.config).values(name=name, payload=payload)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.config.c.name], set_={"payload": stmt.excluded.payload}
        )
    )
