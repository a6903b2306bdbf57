"""Metadata engine: driver errors translated; PostgreSQL's driver and dialect loaded when used."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table

from common.errors import MetadataStoreError
from common.metadata.engine import dialect_insert, driver_errors, translate_errors


def test_asyncpg_errors_are_translated_once_it_is_loaded() -> None:
    asyncpg = pytest.importorskip("asyncpg")
    errors = driver_errors()
    assert asyncpg.PostgresError in errors and asyncpg.InterfaceError in errors
    assert OSError in errors
    for exc in (asyncpg.InterfaceError("gone"), asyncpg.PostgresError("bad"), OSError("refused")):
        with pytest.raises(MetadataStoreError, match="metadata store: poll failed"):
            with translate_errors("poll"):
                raise exc
    with pytest.raises(KeyError):  # not a driver failure: left alone
        with translate_errors("poll"):
            raise KeyError("x")


def test_dialect_insert_per_backend() -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True))

    def conn(name: str) -> Any:
        return SimpleNamespace(dialect=SimpleNamespace(name=name))

    pg = dialect_insert(conn("postgresql"), table)
    lite = dialect_insert(conn("sqlite"), table)
    assert type(pg).__module__.startswith("sqlalchemy.dialects.postgresql")
    assert type(lite).__module__.startswith("sqlalchemy.dialects.sqlite")
    assert hasattr(pg, "on_conflict_do_nothing") and hasattr(lite, "on_conflict_do_nothing")
