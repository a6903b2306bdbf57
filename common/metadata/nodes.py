"""Node rows of the ``metadata`` discovery backend: one row per announced node, with a heartbeat.

A node upserts its row every heartbeat period; watchers list the rows and treat a row whose
``last_heartbeat`` is older than the node TTL as gone (that decision is the caller's).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metadata.engine import dialect_insert
from common.metadata.schema import Tables


@dataclass(frozen=True)
class NodeRow:
    """One announced node: ``payload`` is the DiscoveryDruidNode JSON text."""

    role: str
    host_and_port: str
    payload: str
    heartbeat: float


async def upsert_node(
    conn: AsyncConnection, t: Tables, role: str, host_and_port: str, payload: str, heartbeat: float
) -> None:
    values = {
        "role": role,
        "host_and_port": host_and_port,
        "payload": payload.encode(),
        "last_heartbeat": heartbeat,
    }
    stmt = dialect_insert(conn, t.nodes).values(values)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.nodes.c.role, t.nodes.c.host_and_port],
            set_={"payload": stmt.excluded.payload, "last_heartbeat": stmt.excluded.last_heartbeat},
        )
    )


async def delete_node(conn: AsyncConnection, t: Tables, role: str, host_and_port: str) -> None:
    c = t.nodes.c
    await conn.execute(delete(t.nodes).where(c.role == role, c.host_and_port == host_and_port))


async def list_nodes(conn: AsyncConnection, t: Tables, role: str | None = None) -> list[NodeRow]:
    c = t.nodes.c
    query = select(c.role, c.host_and_port, c.payload, c.last_heartbeat).order_by(
        c.role, c.host_and_port
    )
    if role is not None:
        query = query.where(c.role == role)
    rows = (await conn.execute(query)).all()
    return [NodeRow(r[0], r[1], bytes(r[2]).decode(), float(r[3])) for r in rows]
