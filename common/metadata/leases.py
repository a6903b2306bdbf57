"""Leader-election leases: one row per lock name, compare-and-swap on an integer ``version``.

Every write adds one to ``version``. A writer passes the version it read; if someone wrote in
between, no row matches and the write reports False (a lost race, not an error). Creating a
lease that already exists is the same kind of loss. The decision of *what* to write (renew,
take over an expired lease) belongs to the leader-election code, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metadata.engine import dialect_insert
from common.metadata.schema import Tables


@dataclass(frozen=True)
class LeaseRow:
    """A lease: ``payload`` is the leader-election record JSON (may be empty)."""

    name: str
    payload: str
    version: int


async def read_lease(conn: AsyncConnection, t: Tables, name: str) -> LeaseRow | None:
    c = t.leases.c
    row = (await conn.execute(select(c.payload, c.version).where(c.name == name))).first()
    if row is None:
        return None
    return LeaseRow(name, bytes(row[0]).decode(), int(row[1]))


async def create_lease(conn: AsyncConnection, t: Tables, name: str, payload: str) -> bool:
    """Insert the lease at version 1; False if it already exists."""
    stmt = (
        dialect_insert(conn, t.leases)
        .values(name=name, payload=payload.encode(), version=1)
        .on_conflict_do_nothing(index_elements=[t.leases.c.name])
    )
    result = await conn.execute(stmt)
    return result.rowcount == 1


async def update_lease(
    conn: AsyncConnection, t: Tables, name: str, payload: str, expected_version: int
) -> bool:
    """Write ``payload`` if the stored version is still ``expected_version``; False otherwise."""
    c = t.leases.c
    result = await conn.execute(
        update(t.leases)
        .where(c.name == name, c.version == expected_version)
        .values(payload=payload.encode(), version=c.version + 1)
    )
    return result.rowcount == 1
