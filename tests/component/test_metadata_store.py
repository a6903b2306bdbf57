"""The metadata store against real databases: SQLite in tmp_path and the local PostgreSQL.

PostgreSQL tests use a table base unique to the test (``t_<uuid8>``) and drop their tables
afterwards, so concurrent runs do not collide. When the server is unreachable they fail under
CI (``CI=true``) and skip locally.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from common.config import MetadataStorageSettings
from common.errors import ConfigError, MetadataStoreError
from common.metadata import DEFAULT_RULES, LeaseRow, MetadataStore, NodeRow

PG_URI = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1.0):
            return True
    except OSError:
        return False


def _require_pg() -> None:
    if _pg_reachable():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable (CI=true: required)")
    pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable (set CI=true to make this fail)")


def _settings(backend: str, tmp_path: Path) -> MetadataStorageSettings:
    if backend == "sqlite":
        return MetadataStorageSettings.model_validate(
            {"type": "sqlite", "connect_uri": str(tmp_path / "deep" / "dir" / "metadata.db")}
        )
    return MetadataStorageSettings.model_validate(
        {"type": "postgresql", "connect_uri": PG_URI, "tables_base": f"t_{uuid.uuid4().hex[:8]}"}
    )


async def _drop_all(store: MetadataStore) -> None:
    async with store.transaction("drop test tables") as conn:
        await conn.run_sync(store.tables.metadata.drop_all)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStorageSettings:
    if request.param == "postgresql":
        _require_pg()
    return _settings(request.param, tmp_path)


@pytest.fixture
async def store(settings: MetadataStorageSettings) -> AsyncIterator[MetadataStore]:
    s = await MetadataStore.connect(settings)
    try:
        yield s
    finally:
        if s.dialect == "postgresql":
            await _drop_all(s)
        await s.close()


async def _count_default_rule_rows(store: MetadataStore) -> int:
    c = store.tables.rules.c
    async with store.reading() as conn:
        query = select(func.count()).where(c.dataSource == "_default")
        return int((await conn.execute(query)).scalar_one())


# --- schema


async def test_sqlite_creates_parent_dir_and_uses_wal(tmp_path: Path) -> None:
    store = await MetadataStore.connect(_settings("sqlite", tmp_path))
    try:
        assert (tmp_path / "deep" / "dir" / "metadata.db").is_file()
        async with store.reading() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert mode == "wal"
        assert busy is not None and int(busy) >= 1000
    finally:
        await store.close()


async def test_connect_twice_is_idempotent(settings: MetadataStorageSettings) -> None:
    first = await MetadataStore.connect(settings)
    try:
        await first.set_config("k", b"1")
        second = await MetadataStore.connect(settings)
        try:
            assert second.dialect == settings.type
            assert await second.get_config("k") == b"1"  # nothing was re-created
            assert await _count_default_rule_rows(second) == 1
        finally:
            await second.close()
    finally:
        if first.dialect == "postgresql":
            await _drop_all(first)
        await first.close()


async def test_concurrent_connects_create_the_schema_once(
    settings: MetadataStorageSettings,
) -> None:
    stores = await asyncio.gather(*(MetadataStore.connect(settings) for _ in range(4)))
    try:
        assert await _count_default_rule_rows(stores[0]) == 1
        for s in stores:
            assert (await s.get_rules())["_default"] == DEFAULT_RULES
    finally:
        if stores[0].dialect == "postgresql":
            await _drop_all(stores[0])
        for s in stores:
            await s.close()


async def test_every_table_exists(store: MetadataStore) -> None:
    def table_names(sync_conn: object) -> set[str]:
        from sqlalchemy import inspect

        return set(inspect(sync_conn).get_table_names())

    async with store.reading() as conn:
        names = await conn.run_sync(table_names)
    base = store.tables.base
    for suffix in (
        "segments",
        "pendingsegments",
        "datasource",
        "tasks",
        "tasklocks",
        "supervisors",
        "rules",
        "config",
        "audit",
        "nodes",
        "leases",
    ):
        assert f"{base}_{suffix}" in names


# --- nodes


async def test_node_upsert_list_delete(store: MetadataStore) -> None:
    await store.upsert_node("broker", "10.0.0.1:8082", '{"v":1}', 100.0)
    await store.upsert_node("historical", "10.0.0.2:8083", "{}", 100.5)
    await store.upsert_node("broker", "10.0.0.1:8082", '{"v":2}', 101.25)  # heartbeat

    assert await store.list_nodes("broker") == [
        NodeRow("broker", "10.0.0.1:8082", '{"v":2}', 101.25)
    ]
    assert [n.role for n in await store.list_nodes()] == ["broker", "historical"]

    await store.delete_node("broker", "10.0.0.1:8082")
    await store.delete_node("broker", "10.0.0.1:8082")  # deleting twice is fine
    assert await store.list_nodes("broker") == []
    assert len(await store.list_nodes()) == 1


# --- leases


async def test_lease_create_race_has_one_winner(store: MetadataStore) -> None:
    results = await asyncio.gather(*(store.create_lease("coordinator", f"p{i}") for i in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    lease = await store.read_lease("coordinator")
    assert lease is not None
    assert lease.version == 1
    assert lease.payload == f"p{results.index(True)}"


async def test_lease_update_is_compare_and_swap(store: MetadataStore) -> None:
    assert await store.read_lease("overlord") is None
    assert await store.update_lease("overlord", "x", 0) is False  # no row at all
    assert await store.create_lease("overlord", "")
    assert await store.read_lease("overlord") == LeaseRow("overlord", "", 1)

    assert await store.update_lease("overlord", "a", 1)
    assert await store.read_lease("overlord") == LeaseRow("overlord", "a", 2)
    assert await store.update_lease("overlord", "b", 1) is False  # stale version
    assert await store.read_lease("overlord") == LeaseRow("overlord", "a", 2)
    assert await store.update_lease("overlord", "b", 2)
    assert await store.read_lease("overlord") == LeaseRow("overlord", "b", 3)


async def test_concurrent_updates_with_the_same_version_have_one_winner(
    store: MetadataStore,
) -> None:
    assert await store.create_lease("l", "")
    results = await asyncio.gather(*(store.update_lease("l", f"w{i}", 1) for i in range(5)))
    assert results.count(True) == 1
    assert await store.read_lease("l") == LeaseRow("l", f"w{results.index(True)}", 2)


# --- config


async def test_config_get_set(store: MetadataStore) -> None:
    assert await store.get_config("coordinator.config") is None
    await store.set_config("coordinator.config", b'{"maxSegmentsToMove":5}')
    await store.set_config("coordinator.config", b'{"maxSegmentsToMove":7}')
    assert await store.get_config("coordinator.config") == b'{"maxSegmentsToMove":7}'
    assert await store.get_config("worker.config") is None


# --- rules and audit


async def test_default_rule_is_seeded(store: MetadataStore) -> None:
    assert await store.get_rules() == {"_default": DEFAULT_RULES}
    c = store.tables.rules.c
    async with store.reading() as conn:
        row = (await conn.execute(select(c.id, c.version))).one()
    assert row.id == f"_default_{row.version}"
    assert row.version.endswith("Z")


async def test_set_rules_keeps_history_and_audit(store: MetadataStore) -> None:
    first = [{"type": "loadForever", "tieredReplicants": {"hot": 1}}]
    second = [{"type": "dropForever"}]
    await store.set_rules("wikipedia", first, author="alice", comment="initial")
    await store.set_rules("wikipedia", second, author="bob", comment="drop it")
    await store.set_rules("koalas", second)

    rules = await store.get_rules()
    assert rules == {"_default": DEFAULT_RULES, "wikipedia": second, "koalas": second}

    history = await store.rules_history("wikipedia")
    assert [h["auditInfo"]["author"] for h in history] == ["bob", "alice"]
    assert history[0]["key"] == "wikipedia"
    assert history[0]["type"] == "rules"
    assert history[0]["auditInfo"]["comment"] == "drop it"
    assert history[0]["payload"] == '[{"type":"dropForever"}]'
    assert history[0]["auditTime"] > history[1]["auditTime"]

    assert len(await store.rules_history()) == 3
    assert [h["key"] for h in await store.rules_history(count=1)] == ["koalas"]

    c = store.tables.audit.c
    async with store.reading() as conn:
        rows = (
            await conn.execute(select(c.audit_key, c.type, c.author, c.comment).order_by(c.id))
        ).all()
    assert [tuple(r) for r in rows] == [
        ("wikipedia", "rules", "alice", "initial"),
        ("wikipedia", "rules", "bob", "drop it"),
        ("koalas", "rules", "", ""),
    ]


async def test_rules_set_in_a_burst_all_get_distinct_versions(store: MetadataStore) -> None:
    for i in range(5):
        await store.set_rules("ds", [{"type": "loadForever", "tieredReplicants": {"t": i}}])
    assert (await store.get_rules())["ds"] == [
        {"type": "loadForever", "tieredReplicants": {"t": 4}}
    ]
    assert len(await store.rules_history("ds")) == 5


async def test_transaction_rolls_back_on_error(store: MetadataStore) -> None:
    t = store.tables
    with pytest.raises(RuntimeError):
        async with store.transaction("test") as conn:
            await conn.execute(t.config.insert().values(name="x", payload=b"1"))
            raise RuntimeError("abort")
    assert await store.get_config("x") is None


# --- errors


async def test_driver_errors_become_metadata_store_errors(store: MetadataStore) -> None:
    t = store.tables
    await store.set_config("dup", b"1")
    with pytest.raises(MetadataStoreError) as err:
        async with store.transaction("insert duplicate config") as conn:
            await conn.execute(t.config.insert().values(name="dup", payload=b"2"))
    assert "insert duplicate config" in str(err.value)
    assert err.value.__cause__ is not None


@pytest.mark.postgres
async def test_unreachable_postgresql_is_a_metadata_store_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = MetadataStorageSettings.model_validate(
        {"type": "postgresql", "connect_uri": f"jdbc:postgresql://127.0.0.1:{port}/test"}
    )
    with pytest.raises(MetadataStoreError, match="creating the metadata tables"):
        await MetadataStore.connect(settings)


async def test_sqlite_path_that_cannot_be_created_is_a_metadata_store_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("not a directory")
    settings = MetadataStorageSettings.model_validate(
        {"type": "sqlite", "connect_uri": str(tmp_path / "file" / "sub" / "m.db")}
    )
    with pytest.raises(MetadataStoreError):
        await MetadataStore.connect(settings)


async def test_mismatched_uri_is_a_config_error(tmp_path: Path) -> None:
    settings = MetadataStorageSettings.model_validate(
        {"type": "postgresql", "connect_uri": str(tmp_path / "m.db")}
    )
    with pytest.raises(ConfigError, match=r"druid\.metadata\.storage\.connector\.connectURI"):
        await MetadataStore.connect(settings)


async def test_bad_table_base_is_a_config_error(tmp_path: Path) -> None:
    settings = MetadataStorageSettings.model_validate(
        {"type": "sqlite", "connect_uri": str(tmp_path / "m.db"), "tables_base": "a-b"}
    )
    with pytest.raises(ConfigError, match=r"druid\.metadata\.storage\.tables\.base"):
        await MetadataStore.connect(settings)
