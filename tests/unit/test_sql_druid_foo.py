"""Druid's own SQL answers (its quidem cases ``simple.iq``, ``interval_arithmetic.iq``,
``notinvalues.iq`` and CalciteQueryTest's exact COUNT(DISTINCT)) over Druid's ``foo`` test
datasource rebuilt here: six rows in two segments, SQL-compatible nulls (``dim2`` is null in
two rows and ``''`` in one)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from common.query import finalize, merge, parse_query, run_segment
from common.query.sql.runner import SqlQuery, run_sql
from common.segments.intervals import Interval

FOO_SCHEMA = {
    "__time": "LONG",
    "cnt": "LONG",
    "dim1": "STRING",
    "dim2": "STRING",
    "dim3": "STRING",
    "m1": "FLOAT",
    "m2": "DOUBLE",
}
ROWS = [
    ("2000-01-01", "", "a", ["a", "b"], 1.0),
    ("2000-01-02", "10.1", None, ["b", "c"], 2.0),
    ("2000-01-03", "2", "", ["d"], 3.0),
    ("2001-01-01", "1", "a", [""], 4.0),
    ("2001-01-02", "def", "abc", None, 5.0),
    ("2001-01-03", "abc", None, None, 6.0),
]


def _millis(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def _segment(year: str) -> tuple[Interval, str, pa.Table]:
    rows = [r for r in ROWS if r[0].startswith(year)]
    table = pa.table(
        {
            "__time": pa.array([_millis(r[0]) for r in rows], pa.int64()).cast(
                pa.timestamp("ms", tz="UTC")
            ),
            "cnt": pa.array([1] * len(rows), pa.int64()),
            "dim1": pa.array([r[1] for r in rows], pa.string()),
            "dim2": pa.array([r[2] for r in rows], pa.string()),
            "dim3": pa.array([r[3] for r in rows], pa.list_(pa.string())),
            "m1": pa.array([r[4] for r in rows], pa.float32()),
            "m2": pa.array([r[4] for r in rows], pa.float64()),
        }
    )
    itv = Interval.parse(f"{year}-01-01/{int(year) + 1}-01-01")
    return itv, f"foo_{year}", table


SEGMENTS = [_segment("2000"), _segment("2001")]


async def native(query: dict[str, Any]) -> list[dict[str, Any]]:
    q = parse_query(query)
    partials = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS]
    return finalize(q, merge(q, partials))


class FooCatalog:
    async def datasources(self) -> list[str]:
        return ["foo"]

    async def columns(self, datasource: str) -> dict[str, str] | None:
        return dict(FOO_SCHEMA) if datasource == "foo" else None

    async def system_rows(self, table: str) -> list[dict[str, Any]]:
        return []


def sql(text: str, **context: Any) -> Any:
    req = SqlQuery(query=text, context=context)
    answer = asyncio.run(run_sql(req, FooCatalog(), native, sql_query_id="dummy"))
    return answer


def test_simple_iq_select_without_from() -> None:
    rs = sql("select 1+5").result
    assert (rs.names, rs.rows()) == (["EXPR$0"], [[6]])


INTERVALS = [
    ("DAY", "1999-12-30T00:00:00.000Z/2000-01-03T00:00:00.000Z", 2),
    ("WEEK", "1999-12-18T00:00:00.000Z/2000-01-15T00:00:00.000Z", 3),
    ("MONTH", "1999-11-01T00:00:00.000Z/2000-03-01T00:00:00.000Z", 3),
    ("QUARTER", "1999-07-01T00:00:00.000Z/2000-07-01T00:00:00.000Z", 3),
    ("YEAR", "1998-01-01T00:00:00.000Z/2002-01-01T00:00:00.000Z", 6),
]


@pytest.mark.parametrize(("unit", "interval", "n"), INTERVALS)
def test_interval_arithmetic_iq(unit: str, interval: str, n: int) -> None:
    answer = sql(
        f"SELECT __time FROM foo WHERE __time >= CURRENT_TIMESTAMP - INTERVAL '2' {unit} "
        f"AND __time < CURRENT_TIMESTAMP + INTERVAL '2' {unit} ORDER BY __time",
        sqlCurrentTimestamp="2000-01-01T00:00:00Z",
    )
    days = ["2000-01-01", "2000-01-02", "2000-01-03", "2001-01-01", "2001-01-02", "2001-01-03"]
    assert answer.result.rows() == [[f"{d}T00:00:00.000Z"] for d in days[:n]]
    assert answer.plan.native["intervals"]["intervals"] == [interval]
    assert answer.plan.native["order"] == "ascending"


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        (
            "SELECT cnt FROM foo WHERE cnt NOT IN (SELECT col FROM (VALUES(0), (999)) AS t(col))",
            [[1]] * 6,
        ),
        (
            "SELECT m2 FROM foo WHERE m2 NOT IN (SELECT col FROM (VALUES(0), (999)) AS t(col))",
            [[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]],
        ),
        (
            "SELECT cnt FROM foo WHERE cnt NOT IN "
            "(SELECT CAST(col AS BIGINT) FROM (VALUES(0.1), (999.1)) AS t(col))",
            [[1]] * 6,
        ),
        (
            "SELECT cnt FROM foo WHERE cnt NOT IN "
            "(SELECT col + 1 FROM (VALUES(1), (999)) AS t(col))",
            [[1]] * 6,
        ),
        (
            "SELECT cnt FROM foo WHERE cnt NOT IN "
            "(SELECT col FROM (VALUES (0), (999), (CAST(NULL AS BIGINT))) AS t(col))",
            [],
        ),
        (
            "SELECT cnt FROM foo WHERE cnt IN "
            "(SELECT col FROM (VALUES (1), (999), (CAST(NULL AS BIGINT))) AS t(col))",
            [[1]] * 6,
        ),
        (
            "SELECT cnt FROM foo WHERE cnt IN "
            "(SELECT col FROM (VALUES (0), (999), (CAST(NULL AS BIGINT))) AS t(col))",
            [],
        ),
    ],
)
def test_notinvalues_iq(text: str, rows: list[list[Any]]) -> None:
    assert sql(text).result.rows() == rows


def test_exact_count_distinct_counts_empty_string() -> None:
    # CalciteQueryTest: SQL-compatible null handling (Druid's default) counts '' but not null.
    exact = {"useApproximateCountDistinct": False}
    assert sql("SELECT COUNT(DISTINCT dim2) FROM druid.foo", **exact).result.rows() == [[3]]
    assert sql("SELECT COUNT(DISTINCT dim1) FROM foo", **exact).result.rows() == [[6]]
    rows = sql(
        "SELECT dim2, COUNT(DISTINCT dim1) AS c FROM foo GROUP BY dim2 ORDER BY dim2", **exact
    ).result.rows()
    assert rows == [[None, 2], ["", 1], ["a", 2], ["abc", 1]]
