"""Retention rules (``druid_rules``) and their audit trail (``druid_audit``), as Druid keeps them.

Each change appends a row ``id=<ds>_<version>`` where ``version`` is the ISO time of the change;
the row with the greatest version per datasource is in force (Druid's ``SQLMetadataRuleManager``).
The ``_default`` datasource is seeded once with two replicas in ``_default_tier``.
Every change also appends an audit row whose payload is Druid's ``AuditEntry`` JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metadata.schema import Tables

DEFAULT_DATASOURCE = "_default"
DEFAULT_RULES: list[dict[str, Any]] = [
    {"type": "loadForever", "tieredReplicants": {"_default_tier": 2}}
]
AUDIT_TYPE_RULES = "rules"


def iso_millis(when: datetime) -> str:
    """Druid's timestamp text: ``2024-05-01T12:00:00.000Z`` (sorts as it compares)."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def next_version(now: datetime, latest: str | None) -> str:
    """The version for a new rules row: ``now``, but always after ``latest``.

    Two changes in the same millisecond (or a clock that stepped back) would otherwise get the
    same id, or a version that does not win.
    """
    candidate = iso_millis(now)
    if latest is None or candidate > latest:
        return candidate
    parsed = datetime.strptime(latest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return iso_millis(parsed + timedelta(milliseconds=1))


def audit_entry(
    key: str, type_: str, author: str, comment: str, payload: str, when: str
) -> dict[str, Any]:
    """Druid's ``AuditEntry`` JSON."""
    return {
        "key": key,
        "type": type_,
        "auditInfo": {"author": author, "comment": comment, "ip": ""},
        "payload": payload,
        "auditTime": when,
    }


async def _latest_version(conn: AsyncConnection, t: Tables, data_source: str) -> str | None:
    c = t.rules.c
    query = select(func.max(c.version)).where(c.dataSource == data_source)
    value = (await conn.execute(query)).scalar()
    return None if value is None else str(value)


async def seed_default_rules(conn: AsyncConnection, t: Tables, now: datetime) -> bool:
    """Insert the ``_default`` rules unless the datasource has a row; True if it inserted.

    Call inside a write transaction so concurrent starters cannot both insert.
    """
    if await _latest_version(conn, t, DEFAULT_DATASOURCE) is not None:
        return False
    version = iso_millis(now)
    await conn.execute(
        t.rules.insert().values(
            id=f"{DEFAULT_DATASOURCE}_{version}",
            dataSource=DEFAULT_DATASOURCE,
            version=version,
            payload=orjson.dumps(DEFAULT_RULES),
        )
    )
    return True


async def get_rules(conn: AsyncConnection, t: Tables) -> dict[str, list[dict[str, Any]]]:
    """The rules in force: the latest version per datasource."""
    c = t.rules.c
    latest = (
        select(c.dataSource.label("ds"), func.max(c.version).label("v"))
        .group_by(c.dataSource)
        .subquery()
    )
    query = select(c.dataSource, c.payload).join(
        latest, (c.dataSource == latest.c.ds) & (c.version == latest.c.v)
    )
    rows = (await conn.execute(query)).all()
    return {str(ds): orjson.loads(bytes(payload)) for ds, payload in rows}


async def set_rules(
    conn: AsyncConnection,
    t: Tables,
    data_source: str,
    rules: list[dict[str, Any]],
    author: str,
    comment: str,
    now: datetime,
) -> str:
    """Append a rules version and its audit row; returns the version. One write transaction."""
    version = next_version(now, await _latest_version(conn, t, data_source))
    payload = orjson.dumps(rules)
    await conn.execute(
        t.rules.insert().values(
            id=f"{data_source}_{version}", dataSource=data_source, version=version, payload=payload
        )
    )
    entry = audit_entry(data_source, AUDIT_TYPE_RULES, author, comment, payload.decode(), version)
    await conn.execute(
        t.audit.insert().values(
            audit_key=data_source,
            type=AUDIT_TYPE_RULES,
            author=author,
            comment=comment[:2048],
            created_date=version,
            payload=orjson.dumps(entry),
        )
    )
    return version


async def rules_history(
    conn: AsyncConnection, t: Tables, data_source: str | None = None, count: int | None = None
) -> list[dict[str, Any]]:
    """Audit entries of rule changes, newest first; one datasource or all; at most ``count``."""
    c = t.audit.c
    query = select(c.payload).where(c.type == AUDIT_TYPE_RULES)
    if data_source is not None:
        query = query.where(c.audit_key == data_source)
    query = query.order_by(c.created_date.desc(), c.id.desc())
    if count is not None:
        query = query.limit(count)
    return [orjson.loads(bytes(r[0])) for r in (await conn.execute(query)).all()]
