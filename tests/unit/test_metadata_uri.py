"""Pure parts of the metadata store: connectURI parsing, rule versions, table and index names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.metadata import URI_KEY, Tables, parse_connect_uri
from common.metadata.rules import iso_millis, next_version


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("var/druid/metadata.db", "var/druid/metadata.db"),
        ("/data/meta.db", "/data/meta.db"),
        ("sqlite:///rel/meta.db", "rel/meta.db"),
        ("sqlite:////abs/meta.db", "/abs/meta.db"),
        ("sqlite+aiosqlite:////abs/meta.db", "/abs/meta.db"),
        ("jdbc:sqlite:/abs/meta.db", "/abs/meta.db"),
        ("jdbc:sqlite:rel/meta.db", "rel/meta.db"),
    ],
)
def test_sqlite_forms(uri: str, path: str) -> None:
    target = parse_connect_uri("sqlite", uri)
    assert target.dialect == "sqlite"
    assert target.sqlite_path == Path(path)
    assert target.url.drivername == "sqlite+aiosqlite"
    assert target.url.database == path


@pytest.mark.parametrize(
    ("uri", "user", "password", "expected"),
    [
        (
            "jdbc:postgresql://db.example:5433/druid",
            "druid",
            "diurd",
            ("druid", "diurd", "db.example", 5433, "druid"),
        ),
        ("jdbc:postgresql://db/druid", None, None, (None, None, "db", None, "druid")),
        (
            "jdbc:postgresql://db:5432/druid?user=u&password=p",
            None,
            None,
            ("u", "p", "db", 5432, "druid"),
        ),
        (
            "postgresql://postgres@127.0.0.1:5432/test",
            None,
            None,
            ("postgres", None, "127.0.0.1", 5432, "test"),
        ),
        ("postgres://a:b@h/d", None, None, ("a", "b", "h", None, "d")),
        ("postgresql+asyncpg://a:b%40c@h:1/d", "x", "y", ("a", "b@c", "h", 1, "d")),
        ("postgresql://h:1/d", "fromsettings", "pw", ("fromsettings", "pw", "h", 1, "d")),
    ],
)
def test_postgresql_forms(
    uri: str, user: str | None, password: str | None, expected: tuple[object, ...]
) -> None:
    target = parse_connect_uri("postgresql", uri, user, password)
    url = target.url
    assert target.dialect == "postgresql"
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port, url.database) == expected
    assert target.sqlite_path is None


def test_jdbc_sslmode_maps_to_asyncpg_ssl() -> None:
    url = parse_connect_uri("postgresql", "jdbc:postgresql://h/d?sslmode=require").url
    assert url.query == {"ssl": "require"}


def test_describe_hides_the_password() -> None:
    target = parse_connect_uri("postgresql", "postgresql://u:secret@h/d")
    assert "secret" not in target.describe()


@pytest.mark.parametrize(
    ("dialect", "uri"),
    [
        ("postgresql", "var/druid/metadata.db"),
        ("postgresql", "sqlite:///x.db"),
        ("postgresql", "jdbc:sqlite:x.db"),
        ("postgresql", "jdbc:postgresql://:5432/db"),
        ("postgresql", "jdbc:postgresql://h:5432/"),
        ("postgresql", "jdbc:postgresql://h:notaport/db"),
        ("postgresql", "postgresql://h/a/b"),
        ("postgresql", "postgresql+psycopg2://h/d"),
        ("postgresql", "mysql://h/d"),
        ("postgresql", "jdbc:postgresql://h/d?loginTimeout=3"),
        ("sqlite", "jdbc:postgresql://h:5432/db"),
        ("sqlite", "postgresql://h/d"),
        ("sqlite", "jdbc:mysql://h/d"),
        ("sqlite", "sqlite://"),
        ("sqlite", "sqlite:///:memory:"),
        ("sqlite", ":memory:"),
        ("sqlite", ""),
        ("sqlite", "   "),
    ],
)
def test_bad_or_mismatched_uri_names_the_key(dialect: str, uri: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_connect_uri(dialect, uri)
    assert URI_KEY in str(err.value)
    assert URI_KEY == "druid.metadata.storage.connector.connectURI"


def test_error_message_hides_the_password() -> None:
    with pytest.raises(ConfigError) as err:
        parse_connect_uri("postgresql", "postgresql://u:secret@h/a/b")
    assert "secret" not in str(err.value)


def test_unknown_type_names_the_type_key() -> None:
    with pytest.raises(ConfigError, match=r"druid\.metadata\.storage\.type"):
        parse_connect_uri("mysql", "jdbc:mysql://h/d")


def test_iso_millis_is_druids_format() -> None:
    when = datetime(2024, 5, 1, 12, 0, 3, 45_678, tzinfo=UTC)
    assert iso_millis(when) == "2024-05-01T12:00:03.045Z"


def test_next_version_is_now_when_newer() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert next_version(now, None) == "2024-05-01T12:00:00.000Z"
    assert next_version(now, "2024-04-30T00:00:00.000Z") == "2024-05-01T12:00:00.000Z"


def test_next_version_always_moves_forward() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    # Same millisecond, and a clock that stepped back: both still beat the stored version.
    assert next_version(now, "2024-05-01T12:00:00.000Z") == "2024-05-01T12:00:00.001Z"
    assert next_version(now, "2024-05-02T00:00:00.999Z") == "2024-05-02T00:00:01.000Z"


def test_table_names_follow_the_base() -> None:
    t = Tables("druid")
    names = {tb.name for tb in t.all()}
    assert names == {
        "druid_segments",
        "druid_pendingsegments",
        "druid_datasource",
        "druid_tasks",
        "druid_tasklocks",
        "druid_supervisors",
        "druid_rules",
        "druid_config",
        "druid_audit",
        "druid_nodes",
        "druid_leases",
    }
    # Druid's spelling works as the Python key.
    assert t.segments.c.dataSource.name == "datasource"
    assert t.pending_segments.c.sequence_name_prev_id_sha1.name == "sequence_name_prev_id_sha1"


def test_index_names_fit_postgresql_and_stay_distinct() -> None:
    t = Tables("a_rather_long_table_base_name")
    names = [ix.name for tb in t.all() for ix in tb.indexes]
    assert all(name is not None and len(name) <= 63 for name in names)
    assert len(set(names)) == len(names)
    assert "idx_druid_segments_datasource_used_end_start" in {
        ix.name for ix in Tables("druid").segments.indexes
    }


@pytest.mark.parametrize("base", ["", "dru-id", "drop table;"])
def test_bad_table_base_is_refused(base: str) -> None:
    with pytest.raises(ValueError, match="table base"):
        Tables(base)
