"""Turn ``druid.metadata.storage.connector.connectURI`` into an async SQLAlchemy URL.

Pure: no file system, no sockets. Accepted forms:

- SQLite: a plain path (relative or absolute), ``sqlite:///path``, ``sqlite+aiosqlite:///path``,
  ``jdbc:sqlite:path``.
- PostgreSQL: ``jdbc:postgresql://host:port/db`` (Druid's form; user and password come from
  ``connector.user`` / ``connector.password`` or the JDBC query), ``postgresql://user@host:port/db``,
  ``postgres://...``, ``postgresql+asyncpg://...``.

Anything else, or a URI of the other backend's kind, is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from common.errors import ConfigError

URI_KEY = "druid.metadata.storage.connector.connectURI"
TYPE_KEY = "druid.metadata.storage.type"

Dialect = Literal["sqlite", "postgresql"]

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):")
# JDBC query parameters that have an asyncpg equivalent; the rest would be silently ignored, so
# they are refused instead.
_JDBC_SSL = {"ssl", "sslmode"}


@dataclass(frozen=True)
class ConnectTarget:
    """Where the store lives: the async URL, and for SQLite the database file."""

    dialect: Dialect
    url: URL
    sqlite_path: Path | None = None

    def describe(self) -> str:
        """The URL with any password hidden, for logs and error messages."""
        return self.url.render_as_string(hide_password=True)


def parse_connect_uri(
    dialect: str, uri: str, user: str | None = None, password: str | None = None
) -> ConnectTarget:
    """Parse ``uri`` for ``dialect`` ("sqlite" or "postgresql")."""
    uri = uri.strip()
    if not uri:
        raise _bad(uri, "it is empty")
    if dialect == "sqlite":
        return _parse_sqlite(uri)
    if dialect == "postgresql":
        return _parse_postgresql(uri, user, password)
    raise ConfigError(f"{TYPE_KEY}: unknown metadata store type {dialect!r} (sqlite|postgresql)")


def _bad(uri: str, why: str) -> ConfigError:
    return ConfigError(f"{URI_KEY}: cannot use {_redact(uri)!r}: {why}", key=URI_KEY)


def _redact(uri: str) -> str:
    # user:secret@host -> user:***@host, and password=... in a query string.
    uri = re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", uri)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", uri)


def _scheme(uri: str) -> str | None:
    m = _SCHEME.match(uri)
    # A Windows drive letter ("C:/x") is a path, not a scheme.
    if m is None or len(m.group("scheme")) == 1:
        return None
    return m.group("scheme").lower()


def _parse_sqlite(uri: str) -> ConnectTarget:
    scheme = _scheme(uri)
    if scheme is None:
        path = uri
    elif scheme == "jdbc":
        rest = uri[len("jdbc:") :]
        if not rest.lower().startswith("sqlite:"):
            raise _bad(uri, f"{TYPE_KEY}=sqlite needs a SQLite path or URL, not a JDBC {rest!r}")
        path = rest[len("sqlite:") :]
    elif scheme in ("sqlite", "sqlite+aiosqlite"):
        try:
            database = make_url(uri).database
        except ArgumentError as exc:
            raise _bad(uri, str(exc)) from None
        path = database or ""
    else:
        raise _bad(uri, f"{TYPE_KEY}=sqlite needs a file path or a sqlite:/// URL")
    if not path or path == ":memory:" or path.startswith("file:"):
        # Every role process opens the same file; a private in-memory database would look like
        # an empty cluster to everyone else.
        raise _bad(uri, "SQLite needs a database file path")
    return ConnectTarget(
        "sqlite", URL.create("sqlite+aiosqlite", database=path), sqlite_path=Path(path)
    )


def _parse_postgresql(uri: str, user: str | None, password: str | None) -> ConnectTarget:
    scheme = _scheme(uri)
    if scheme == "jdbc":
        rest = uri[len("jdbc:") :]
        if not rest.lower().startswith("postgresql:"):
            raise _bad(uri, f"{TYPE_KEY}=postgresql needs jdbc:postgresql://host:port/db")
        return _from_parts(uri, rest, user, password, jdbc=True)
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return _from_parts(uri, uri, user, password, jdbc=False)
    if scheme is not None and scheme.startswith("postgresql+"):
        raise _bad(uri, "only the asyncpg driver is supported (postgresql+asyncpg://)")
    raise _bad(uri, f"{TYPE_KEY}=postgresql needs jdbc:postgresql://host:port/db or postgresql://")


def _from_parts(
    uri: str, url: str, user: str | None, password: str | None, *, jdbc: bool
) -> ConnectTarget:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad(uri, str(exc)) from None
    if not parts.hostname:
        raise _bad(uri, "no host")
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise _bad(uri, "expected exactly one database name after the host, as /db")
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if jdbc and name == "user":
            user = user or value
        elif jdbc and name == "password":
            password = password or value
        elif name in _JDBC_SSL:
            query["ssl"] = value
        else:
            raise _bad(uri, f"unsupported query parameter {name!r}")
    # A user or password in the URL itself wins over the connector.* settings.
    url_user = unquote(parts.username) if parts.username else None
    url_password = unquote(parts.password) if parts.password is not None else None
    return ConnectTarget(
        "postgresql",
        URL.create(
            "postgresql+asyncpg",
            username=url_user or user,
            password=url_password if url_password is not None else password,
            host=parts.hostname,
            port=port,
            database=database,
            query=query,
        ),
    )
