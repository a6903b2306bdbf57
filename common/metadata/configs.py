"""The ``druid_config`` table: named JSON payloads (``coordinator.config``, ``worker.config``)."""

from __future__ import annotations

from sqlalchemy import insert, select, update
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


async def compare_and_swap_config(
    conn: AsyncConnection, t: Tables, name: str, old: bytes | None, new: bytes
) -> bool:
    """Write ``new`` only if the stored payload is still ``old`` (None: the row must not exist).

    Druid's basic-security updaters do the same compare-and-swap on ``druid_config``.
    """
    if old is None:
        if await get_config(conn, t, name) is not None:
            return False
        await conn.execute(insert(t.config).values(name=name, payload=new))
        return True
    result = await conn.execute(
        update(t.config)
        .where(t.config.c.name == name, t.config.c.payload == old)
        .values(payload=new)
    )
    return bool(result.rowcount == 1)
