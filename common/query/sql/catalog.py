"""INFORMATION_SCHEMA and ``sys`` tables, with Druid's columns, built from a ``Catalog``.

The broker implements ``Catalog`` (datasources and their columns from segmentMetadata, servers
from its inventory, segments from the coordinator, tasks and supervisors from the overlord);
this module only turns what it returns into Arrow tables the SQL planner and post-processing
read like any other table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pyarrow as pa

from common.query.sql.where import TIME

_L, _S = "LONG", "STRING"

#: "SCHEMA.TABLE" -> ordered {column: native type}, as Druid's system schemas.
SYSTEM_TABLES: dict[str, dict[str, str]] = {
    "INFORMATION_SCHEMA.SCHEMATA": dict.fromkeys(
        [
            "CATALOG_NAME",
            "SCHEMA_NAME",
            "SCHEMA_OWNER",
            "DEFAULT_CHARACTER_SET_CATALOG",
            "DEFAULT_CHARACTER_SET_SCHEMA",
            "DEFAULT_CHARACTER_SET_NAME",
            "SQL_PATH",
        ],
        _S,
    ),
    "INFORMATION_SCHEMA.TABLES": dict.fromkeys(
        [
            "TABLE_CATALOG",
            "TABLE_SCHEMA",
            "TABLE_NAME",
            "TABLE_TYPE",
            "IS_JOINABLE",
            "IS_BROADCAST",
        ],
        _S,
    ),
    "INFORMATION_SCHEMA.COLUMNS": {
        "TABLE_CATALOG": _S,
        "TABLE_SCHEMA": _S,
        "TABLE_NAME": _S,
        "COLUMN_NAME": _S,
        "ORDINAL_POSITION": _L,
        "COLUMN_DEFAULT": _S,
        "IS_NULLABLE": _S,
        "DATA_TYPE": _S,
        "CHARACTER_MAXIMUM_LENGTH": _L,
        "CHARACTER_OCTET_LENGTH": _L,
        "NUMERIC_PRECISION": _L,
        "NUMERIC_PRECISION_RADIX": _L,
        "NUMERIC_SCALE": _L,
        "DATETIME_PRECISION": _L,
        "CHARACTER_SET_NAME": _S,
        "COLLATION_NAME": _S,
        "JDBC_TYPE": _L,
    },
    "SYS.SEGMENTS": {
        "segment_id": _S,
        "datasource": _S,
        "start": _S,
        "end": _S,
        "size": _L,
        "version": _S,
        "partition_num": _L,
        "num_replicas": _L,
        "num_rows": _L,
        "is_active": _L,
        "is_published": _L,
        "is_available": _L,
        "is_realtime": _L,
        "is_overshadowed": _L,
        "shard_spec": _S,
        "dimensions": _S,
        "metrics": _S,
        "last_compaction_state": _S,
        "replication_factor": _L,
    },
    "SYS.SERVERS": {
        "server": _S,
        "host": _S,
        "plaintext_port": _L,
        "tls_port": _L,
        "server_type": _S,
        "tier": _S,
        "curr_size": _L,
        "max_size": _L,
        "is_leader": _L,
        "start_time": _S,
    },
    "SYS.SERVER_SEGMENTS": {"server": _S, "segment_id": _S},
    "SYS.TASKS": {
        "task_id": _S,
        "group_id": _S,
        "type": _S,
        "datasource": _S,
        "created_time": _S,
        "queue_insertion_time": _S,
        "status": _S,
        "runner_status": _S,
        "duration": _L,
        "location": _S,
        "host": _S,
        "plaintext_port": _L,
        "tls_port": _L,
        "error_msg": _S,
    },
    "SYS.SUPERVISORS": {
        "supervisor_id": _S,
        "state": _S,
        "detailed_state": _S,
        "healthy": _L,
        "type": _S,
        "source": _S,
        "suspended": _L,
        "spec": _S,
    },
}

_LOOKUP_COLUMNS = {"k": "STRING", "v": "STRING"}
_SQL_TYPES = {"LONG": "BIGINT", "DOUBLE": "DOUBLE", "FLOAT": "FLOAT", "STRING": "VARCHAR"}
_JDBC = {"BIGINT": -5, "DOUBLE": 8, "FLOAT": 6, "VARCHAR": 12, "TIMESTAMP": 93, "OTHER": 1111}


class Catalog(Protocol):
    """What the SQL layer needs from the cluster; the broker implements it."""

    async def datasources(self) -> list[str]:
        """Datasources with at least one queryable segment, sorted."""
        ...

    async def columns(self, datasource: str) -> dict[str, str] | None:
        """``{column: native type}`` (``__time`` first, then by name), None if unknown."""
        ...

    async def system_rows(self, table: str) -> list[dict[str, Any]]:
        """Rows of ``SYS.SEGMENTS``, ``SYS.SERVERS``, ``SYS.SERVER_SEGMENTS``,
        ``SYS.TASKS`` or ``SYS.SUPERVISORS`` keyed by Druid's column names."""
        ...


def sql_type(native: str, column: str) -> str:
    if column == TIME:
        return "TIMESTAMP"
    return _SQL_TYPES.get(native, "OTHER")


def to_table(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    cols = SYSTEM_TABLES[table]
    arrow = {"LONG": pa.int64(), "STRING": pa.string()}
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], arrow[typ]) for name, typ in cols.items()}
    )


def information_schema(
    table: str, schemas: Mapping[str, Mapping[str, str]], lookups: Sequence[str] = ()
) -> pa.Table:
    """``INFORMATION_SCHEMA.*`` over the datasources' columns (``druid`` schema), the lookups
    the broker has loaded (``lookup`` schema: joinable, broadcast tables of ``k`` and ``v``, as
    Druid's ``LookupSchema``) and ``sys``."""
    all_tables: list[tuple[str, str, Mapping[str, str]]] = [
        ("druid", ds, cols) for ds, cols in sorted(schemas.items())
    ]
    for key, sys_cols in SYSTEM_TABLES.items():
        if key == "SYS.SEGMENTS":  # Druid lists the schemas in name order
            all_tables.extend(("lookup", name, _LOOKUP_COLUMNS) for name in sorted(lookups))
        schema, name = key.split(".")
        all_tables.append(
            (
                schema if schema == "INFORMATION_SCHEMA" else "sys",
                name.lower() if schema == "SYS" else name,
                sys_cols,
            )
        )
    rows: list[dict[str, Any]] = []
    if table == "INFORMATION_SCHEMA.SCHEMATA":
        for s in ("INFORMATION_SCHEMA", "druid", "lookup", "sys", "view"):
            rows.append({"CATALOG_NAME": "druid", "SCHEMA_NAME": s, "SCHEMA_OWNER": None})
    elif table == "INFORMATION_SCHEMA.TABLES":
        for schema, name, _ in all_tables:
            kind = "TABLE" if schema in ("druid", "lookup") else "SYSTEM_TABLE"
            joinable = "YES" if schema == "lookup" else "NO"
            rows.append(
                {
                    "TABLE_CATALOG": "druid",
                    "TABLE_SCHEMA": schema,
                    "TABLE_NAME": name,
                    "TABLE_TYPE": kind,
                    "IS_JOINABLE": joinable,
                    "IS_BROADCAST": joinable,
                }
            )
    elif table == "INFORMATION_SCHEMA.COLUMNS":
        for schema, name, cols in all_tables:
            for pos, (col, native) in enumerate(cols.items(), start=1):
                st = sql_type(native, col) if schema == "druid" else _SQL_TYPES.get(native, "OTHER")
                rows.append(
                    {
                        "TABLE_CATALOG": "druid",
                        "TABLE_SCHEMA": schema,
                        "TABLE_NAME": name,
                        "COLUMN_NAME": col,
                        "ORDINAL_POSITION": pos,
                        "IS_NULLABLE": "NO" if col == TIME else "YES",
                        "DATA_TYPE": st,
                        "NUMERIC_PRECISION_RADIX": 10
                        if st in ("BIGINT", "DOUBLE", "FLOAT")
                        else None,
                        "JDBC_TYPE": _JDBC.get(st, 1111),
                    }
                )
    return to_table(table, rows)
