"""Druid's SQL test datasources rebuilt as in-memory segments, and the same rows in DuckDB.

The rows are those of Druid's ``TestDataBuilder`` (``CalciteTests.DATASOURCE1`` ``foo`` and
``DATASOURCE3`` ``numfoo``), with Druid's SQL-compatible null handling: an empty list (or a
missing value) is null, ``[""]`` is the empty string; ``dim3`` is a multi-value string column;
``numfoo``'s numeric dimensions ``d1``/``d2`` (DOUBLE), ``f1``/``f2`` (FLOAT) and ``l1``/``l2``
(LONG) are set only on its first three rows. ``cnt`` is the count metric (1 per row), ``m1``
a FLOAT and ``m2`` a DOUBLE metric. The hyperUnique metric ``unique_dim1`` is left out.

Each datasource is served as two segments, one per year (2000 and 2001), so every query is
merged across segments as in a cluster; Druid's answers do not depend on the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from common.segments.intervals import Interval
from common.segments.segment import DataSegment

VERSION = "2000-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class Column:
    name: str
    arrow: pa.DataType
    sql: str  # the SQL type Druid reports (INFORMATION_SCHEMA.COLUMNS)
    duckdb: str
    dimension: bool


FOO_COLUMNS = [
    Column("cnt", pa.int64(), "BIGINT", "BIGINT", False),
    Column("dim1", pa.string(), "VARCHAR", "VARCHAR", True),
    Column("dim2", pa.string(), "VARCHAR", "VARCHAR", True),
    Column("dim3", pa.list_(pa.string()), "VARCHAR", "VARCHAR[]", True),
    Column("m1", pa.float32(), "FLOAT", "FLOAT", False),
    Column("m2", pa.float64(), "DOUBLE", "DOUBLE", False),
]
NUMFOO_COLUMNS = [
    Column("cnt", pa.int64(), "BIGINT", "BIGINT", False),
    *(Column(f"dim{i}", pa.string(), "VARCHAR", "VARCHAR", True) for i in (1, 2)),
    Column("dim3", pa.list_(pa.string()), "VARCHAR", "VARCHAR[]", True),
    *(Column(f"dim{i}", pa.string(), "VARCHAR", "VARCHAR", True) for i in (4, 5, 6)),
    Column("d1", pa.float64(), "DOUBLE", "DOUBLE", True),
    Column("d2", pa.float64(), "DOUBLE", "DOUBLE", True),
    Column("f1", pa.float32(), "FLOAT", "FLOAT", True),
    Column("f2", pa.float32(), "FLOAT", "FLOAT", True),
    Column("l1", pa.int64(), "BIGINT", "BIGINT", True),
    Column("l2", pa.int64(), "BIGINT", "BIGINT", True),
    Column("m1", pa.float32(), "FLOAT", "FLOAT", False),
    Column("m2", pa.float64(), "DOUBLE", "DOUBLE", False),
]

_DIM3: list[list[str] | None] = [["a", "b"], ["b", "c"], ["d"], [""], None, None]
_FOO_ROWS: list[dict[str, Any]] = [
    {"__time": t, "cnt": 1, "dim1": d1, "dim2": d2, "dim3": d3, "m1": m, "m2": m}
    for t, d1, d2, d3, m in zip(
        ["2000-01-01", "2000-01-02", "2000-01-03", "2001-01-01", "2001-01-02", "2001-01-03"],
        ["", "10.1", "2", "1", "def", "abc"],
        ["a", None, "", "a", "abc", None],
        _DIM3,
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        strict=True,
    )
]
_NUMERIC: list[dict[str, Any]] = [
    {"d1": 1.0, "d2": None, "f1": 1.0, "f2": None, "l1": 7, "l2": None},
    {"d1": 1.7, "d2": 1.7, "f1": 0.1, "f2": 0.1, "l1": 325323, "l2": 325323},
    {"d1": 0.0, "d2": 0.0, "f1": 0.0, "f2": 0.0, "l1": 0, "l2": 0},
    *[dict.fromkeys(("d1", "d2", "f1", "f2", "l1", "l2")) for _ in range(3)],
]
_NUMFOO_ROWS: list[dict[str, Any]] = [
    {**foo, "dim4": d4, "dim5": d5, "dim6": d6, **num}
    for foo, d4, d5, d6, num in zip(
        _FOO_ROWS,
        ["a", "a", "a", "b", "b", "b"],
        ["aa", "ab", "ba", "ad", "aa", "ab"],
        ["1", "2", "3", "4", "5", "6"],
        _NUMERIC,
        strict=True,
    )
]

#: datasource -> (columns, rows); rows are in ``__time`` order, ``__time`` an ISO date.
DATASOURCES: dict[str, tuple[list[Column], list[dict[str, Any]]]] = {
    "foo": (FOO_COLUMNS, _FOO_ROWS),
    "numfoo": (NUMFOO_COLUMNS, _NUMFOO_ROWS),
}


def millis(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def segments() -> list[tuple[DataSegment, pa.Table]]:
    """Every datasource as one segment per year."""
    out = []
    for name, (columns, rows) in DATASOURCES.items():
        for year in ("2000", "2001"):
            part = [r for r in rows if r["__time"].startswith(year)]
            arrays = {"__time": pa.array([millis(r["__time"]) for r in part], pa.int64())}
            for c in columns:
                arrays[c.name] = pa.array([r[c.name] for r in part], c.arrow)
            arrays["__time"] = arrays["__time"].cast(pa.timestamp("ms", tz="UTC"))
            table = pa.table(arrays)
            seg = DataSegment(
                dataSource=name,
                interval=Interval.parse(f"{year}-01-01/{int(year) + 1}-01-01"),
                version=VERSION,
                dimensions=[c.name for c in columns if c.dimension],
                metrics=[c.name for c in columns if not c.dimension],
            )
            out.append((seg, table))
    return out


def duckdb_tables() -> dict[str, pa.Table]:
    """The same rows as Arrow tables for DuckDB: ``__time`` a TIMESTAMP, ``dim3`` a list."""
    out = {}
    for name, (columns, rows) in DATASOURCES.items():
        arrays = {
            "__time": pa.array(
                [datetime.fromisoformat(r["__time"]) for r in rows], pa.timestamp("ms")
            )
        }
        for c in columns:
            arrays[c.name] = pa.array([r[c.name] for r in rows], c.arrow)
        out[name] = pa.table(arrays)
    return out
