"""The async engine of the metadata store: driver set-up, transactions, schema, error translation.

SQLite (aiosqlite) is shared by several processes in the quickstart, so every connection runs in
WAL mode (readers never block the writer) with a busy timeout, and a write transaction starts with
``BEGIN IMMEDIATE``: it takes the write lock up front and waits for it under the busy timeout,
instead of failing with "database is locked" when a read transaction tries to upgrade later.
SQLAlchemy emits BEGIN itself (the recipe in its SQLite docs) so that this choice is ours.

PostgreSQL (asyncpg) needs none of that; schema creation takes a transaction-scoped advisory lock
so that roles starting together do not race on ``CREATE TABLE``.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from common.aio import retry
from common.errors import MetadataStoreError
from common.metadata.schema import Tables
from common.metadata.uri import ConnectTarget

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PgInsert

log = logging.getLogger(__name__)

# How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# asyncpg's connect timeout, seconds: a down server fails start-up promptly, not after 60 s.
PG_CONNECT_TIMEOUT = 10.0
# Set on a connection to make its next BEGIN a write transaction (BEGIN IMMEDIATE on SQLite).
_WRITE = "kdruid_write"

_BASE_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    OSError,  # refused / unreachable / timed out connects; TimeoutError is an OSError
    sqlite3.Error,
)


def driver_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a driver failure may surface as. asyncpg's are among them once asyncpg is
    loaded (SQLAlchemy's PostgreSQL dialect imports it when an engine is made): a process on
    SQLite never imports it (~30 ms and ~3 MB at start-up), and none of its errors can exist
    before it is."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return _BASE_DRIVER_ERRORS
    return (*_BASE_DRIVER_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError)


def make_engine(target: ConnectTarget) -> AsyncEngine:
    """An engine for ``target``; SQLite: creates the parent directory of the database file."""
    if target.dialect == "sqlite":
        assert target.sqlite_path is not None
        target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            target.url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    return create_async_engine(
        target.url,
        pool_pre_ping=True,  # a restarted PostgreSQL leaves dead pooled connections behind
        connect_args={"timeout": PG_CONNECT_TIMEOUT},
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not emit its own BEGIN: _sqlite_on_begin does, choosing the kind.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, much faster
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    async with engine.connect() as conn:
        await conn.execution_options(**{_WRITE: True})
        async with conn.begin():
            yield conn


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads (one consistent snapshot per statement block on both backends)."""
    async with engine.connect() as conn:
        yield conn


@contextmanager
def translate_errors(operation: str, **context: Any) -> Iterator[None]:
    """Re-raise a driver failure as ``MetadataStoreError`` naming the operation and its context."""
    try:
        yield
    except driver_errors() as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = detail[0] if detail else ""
        raise MetadataStoreError(
            f"metadata store: {operation} failed: {type(exc).__name__}: {first}",
            operation=operation,
            **context,
        ) from exc


def dialect_insert(conn: AsyncConnection, table: Table) -> PgInsert | SqliteInsert:
    """An INSERT that supports ``on_conflict_do_*`` on either backend."""
    if conn.dialect.name == "postgresql":
        # Imported here: SQLAlchemy's PostgreSQL dialect package (with its asyncpg dialect) costs
        # ~100 ms at start-up, and a SQLite-backed process never needs it.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    return sqlite.insert(table)


def _advisory_key(base: str) -> int:
    """A stable signed 64-bit lock id per table base."""
    digest = hashlib.sha1(f"kdruid-schema:{base}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def ensure_schema(
    engine: AsyncEngine,
    tables: Tables,
    seed: Callable[[AsyncConnection], Awaitable[object]],
    *,
    attempts: int = 5,
) -> None:
    """Create the missing tables and indexes, then run ``seed``, all in one write transaction.

    Concurrent starters are serialised (SQLite's write lock, a PostgreSQL advisory lock); a
    creator that does not take the lock (another version, Druid itself) can still win a
    ``CREATE TABLE`` race, so a failed attempt is retried and re-checks what exists.
    """

    async def attempt() -> None:
        async with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _advisory_key(tables.base)}
                )
            await conn.run_sync(tables.metadata.create_all, checkfirst=True)
            await seed(conn)

    await retry(
        attempt,
        attempts=attempts,
        # "already exists" surfaces as any of these, depending on driver and catalog table.
        retry_on=(IntegrityError, OperationalError, ProgrammingError),
        base=0.05,
        cap=1.0,
        what=f"creating the metadata tables {tables.base}_*",
    )
