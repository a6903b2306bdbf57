"""The metadata tables as Druid's ``SQLMetadataConnector`` makes them, plus ``nodes``, ``leases``.

Names are ``<base>_<suffix>`` (``druid.metadata.storage.tables.base``, default ``druid``).

Identifiers are stored in lower case: Druid's DDL leaves ``druid_pendingSegments`` and
``dataSource`` unquoted, so PostgreSQL folds them to ``druid_pendingsegments`` / ``datasource``;
doing the same keeps the tables readable by Druid's own unquoted SQL (and SQLite ignores case).
Python code uses Druid's spelling through the column ``key`` (``tables.segments.c.dataSource``).

Payloads are binary (BLOB / bytea) holding JSON bytes; dates are VARCHAR ISO-8601 strings.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    false,
)

_PG_MAX_IDENTIFIER = 63


def _s(name: str, *, nullable: bool = False, length: int = 255) -> Column[str]:
    """A VARCHAR column; ``name`` in Druid's spelling is the key, lower case is the SQL name."""
    return Column(name.lower(), String(length), key=name, nullable=nullable)


def _payload(name: str = "payload", *, nullable: bool = False) -> Column[bytes]:
    return Column(name, LargeBinary, nullable=nullable)


def _serial() -> Column[int]:
    # BIGINT on PostgreSQL (BIGSERIAL); SQLite only auto-increments a plain INTEGER PRIMARY KEY.
    return Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


class Tables:
    """The SQLAlchemy ``Table`` objects of one table base, on their own ``MetaData``."""

    def __init__(self, base: str = "druid") -> None:
        if not base or not base.replace("_", "").isalnum():
            raise ValueError(f"table base must be letters, digits and '_', got {base!r}")
        self.base = base
        self.metadata = MetaData()
        n = self.name
        md = self.metadata

        self.segments = Table(
            n("segments"),
            md,
            _s("id"),
            _s("dataSource"),
            _s("created_date"),
            _s("start"),
            _s("end"),
            Column("partitioned", Boolean, nullable=False),
            _s("version"),
            Column("used", Boolean, nullable=False),
            _payload(),
            _s("used_status_last_updated"),
            _s("upgraded_from_segment_id", nullable=True),
            _s("schema_fingerprint", nullable=True),
            Column("num_rows", BigInteger, nullable=True),
        )
        self.segments.append_constraint(_pk(self.segments, "id"))
        _index(self.segments, "used", "used")
        _index(self.segments, "datasource_used_end_start", "dataSource", "used", "end", "start")

        self.pending_segments = Table(
            n("pendingSegments"),
            md,
            _s("id"),
            _s("dataSource"),
            _s("created_date"),
            _s("start"),
            _s("end"),
            _s("sequence_name"),
            _s("sequence_prev_id"),
            _s("sequence_name_prev_id_sha1"),
            _payload(),
            _s("upgraded_from_segment_id", nullable=True),
            _s("task_allocator_id", nullable=True),
            UniqueConstraint(
                "sequence_name_prev_id_sha1", name=f"uq_{n('pendingSegments')}_sha1".lower()
            ),
        )
        self.pending_segments.append_constraint(_pk(self.pending_segments, "id"))
        _index(self.pending_segments, "datasource_end", "dataSource", "end")
        _index(self.pending_segments, "datasource_sequence", "dataSource", "sequence_name")
        _index(
            self.pending_segments, "datasource_task_allocator_id", "dataSource", "task_allocator_id"
        )

        # Row key is the supervisor id (historically the datasource); see druid-internals 4.4.
        self.data_source = Table(
            n("dataSource"),
            md,
            _s("dataSource"),
            _s("created_date"),
            _payload("commit_metadata_payload"),
            _s("commit_metadata_sha1"),
        )
        self.data_source.append_constraint(_pk(self.data_source, "dataSource"))

        self.tasks = Table(
            n("tasks"),
            md,
            _s("id"),
            _s("created_date"),
            _s("datasource"),
            _payload(),
            _payload("status_payload"),
            Column("active", Boolean, nullable=False, default=False, server_default=false()),
            _s("type", nullable=True),
            _s("group_id", nullable=True),
        )
        self.tasks.append_constraint(_pk(self.tasks, "id"))
        _index(self.tasks, "active_created_date", "active", "created_date")
        _index(self.tasks, "datasource_active", "datasource", "active")

        self.tasklocks = Table(
            n("tasklocks"),
            md,
            _serial(),
            _s("task_id", nullable=True),
            _payload("lock_payload", nullable=True),
        )
        _index(self.tasklocks, "task_id", "task_id")

        # Append-only history; the latest row per spec_id wins.
        self.supervisors = Table(
            n("supervisors"),
            md,
            _serial(),
            _s("spec_id"),
            _s("created_date"),
            _payload(),
        )
        _index(self.supervisors, "spec_id", "spec_id")

        self.rules = Table(
            n("rules"),
            md,
            _s("id"),
            _s("dataSource"),
            _s("version"),
            _payload(),
        )
        self.rules.append_constraint(_pk(self.rules, "id"))
        _index(self.rules, "datasource", "dataSource")

        self.config = Table(n("config"), md, _s("name"), _payload())
        self.config.append_constraint(_pk(self.config, "name"))

        self.audit = Table(
            n("audit"),
            md,
            _serial(),
            _s("audit_key"),
            _s("type"),
            _s("author"),
            _s("comment", length=2048),
            _s("created_date"),
            _payload(),
        )
        _index(self.audit, "key_time", "audit_key", "created_date")
        _index(self.audit, "type_time", "type", "created_date")
        _index(self.audit, "audit_time", "created_date")

        # This project's: one row per announced node of the `metadata` discovery backend.
        self.nodes = Table(
            n("nodes"),
            md,
            _s("role"),
            _s("host_and_port"),
            Column("payload", LargeBinary, nullable=False),
            Column("last_heartbeat", Float(precision=53), nullable=False),
        )
        self.nodes.append_constraint(_pk(self.nodes, "role", "host_and_port"))

        # This project's: one row per leader-election lock, compare-and-swap on `version`.
        self.leases = Table(
            n("leases"),
            md,
            _s("name"),
            Column("payload", LargeBinary, nullable=False),
            Column("version", BigInteger, nullable=False),
        )
        self.leases.append_constraint(_pk(self.leases, "name"))

    def name(self, suffix: str) -> str:
        """The SQL name of a table: ``<base>_<suffix>``, lower-cased as PostgreSQL would."""
        return f"{self.base}_{suffix}".lower()

    def all(self) -> list[Table]:
        """Every table, in creation order."""
        return list(self.metadata.sorted_tables)


def _pk(table: Table, *keys: str) -> PrimaryKeyConstraint:
    return PrimaryKeyConstraint(*(table.c[k] for k in keys), name=f"pk_{table.name}")


def _index(table: Table, suffix: str, *keys: str) -> None:
    # Druid's index names: idx_<table>_<suffix>. PostgreSQL cuts names at 63 bytes, which could
    # make two long names collide, so a long one keeps a hash of the whole name instead.
    name = f"idx_{table.name}_{suffix}"
    if len(name) > _PG_MAX_IDENTIFIER:
        name = f"{name[: _PG_MAX_IDENTIFIER - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    Index(name, *(table.c[k] for k in keys))
