"""SQL expressions planned onto Druid native expressions: GROUP BY an expression, aggregates over
expressions and expression filters read ``expression`` virtual columns (``v0``, ``v1``...), as
Druid's SQL planner plans them. Answers over Druid's ``foo`` rows are checked against DuckDB
running the same SQL on the same rows (SQL-compatible nulls: ``dim2`` is null twice, ``''``
once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from common.errors import PlanValidationError
from tests.unit.test_sql_druid_foo import ROWS, _millis, sql


def _duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    foo = pa.table(
        {
            "__time": pa.array([_millis(r[0]) for r in ROWS], pa.int64()).cast(
                pa.timestamp("ms", tz="UTC")
            ),
            "cnt": pa.array([1] * len(ROWS), pa.int64()),
            "dim1": pa.array([r[1] for r in ROWS], pa.string()),
            "dim2": pa.array([r[2] for r in ROWS], pa.string()),
            "m1": pa.array([r[4] for r in ROWS], pa.float64()),
            "m2": pa.array([r[4] for r in ROWS], pa.float64()),
        }
    )
    con.register("foo", foo)
    return con


def _norm(v: Any) -> Any:
    if hasattr(v, "timestamp"):
        return int(v.timestamp() * 1000)
    if isinstance(v, float) and v.is_integer():
        return v
    return v


def _iso_millis(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _ours(rows: list[list[Any]]) -> list[list[Any]]:
    out = []
    for r in rows:
        out.append([_iso_millis(v) if isinstance(v, str) and v.endswith("Z") else v for v in r])
    return out


# (kdruid SQL, DuckDB SQL or None when identical)
CASES: list[tuple[str, str | None]] = [
    ("SELECT UPPER(dim1) AS u, COUNT(*) AS c FROM foo GROUP BY UPPER(dim1) ORDER BY u", None),
    (
        # Druid's substring() answers null past the end of the string ('' here).
        "SELECT SUBSTRING(dim1, 1, 1) AS s, SUM(m1) AS m FROM foo GROUP BY 1 ORDER BY s",
        "SELECT NULLIF(SUBSTRING(dim1, 1, 1), '') AS s, SUM(m1) AS m FROM foo GROUP BY 1 "
        "ORDER BY s NULLS FIRST",
    ),
    (
        "SELECT SUM(CASE WHEN dim1 = 'abc' THEN cnt ELSE 0 END) AS a, "
        "MIN(CASE WHEN dim2 = 'a' THEN m1 END) AS b, SUM(m1 * m2) AS c, "
        "MAX(m1 + cnt) AS d, COUNT(NULLIF(dim2, '')) AS e FROM foo",
        None,
    ),
    ("SELECT COUNT(*) FROM foo WHERE LOWER(dim1) = 'abc'", None),
    ("SELECT COUNT(*) FROM foo WHERE UPPER(dim2) IN ('A', 'ABC')", None),
    ("SELECT COUNT(*) FROM foo WHERE m1 > m2 - 1 AND m1 * 2 >= 6", None),
    (
        "SELECT COUNT(*) FROM foo WHERE CHAR_LENGTH(dim1) = 3",
        "SELECT COUNT(*) FROM foo WHERE LENGTH(dim1) = 3",
    ),
    ("SELECT COUNT(*) FROM foo WHERE dim1 || dim2 = 'abca' OR CONCAT(dim1, 'x') = 'defx'", None),
    (
        "SELECT COALESCE(dim2, 'none') AS d, COUNT(*) AS c FROM foo GROUP BY 1 ORDER BY d",
        None,
    ),
    (
        "SELECT CASE WHEN m1 > 3 THEN 'big' ELSE 'small' END AS k, SUM(cnt) AS c "
        "FROM foo GROUP BY 1 ORDER BY k",
        None,
    ),
    (
        "SELECT TRIM(BOTH 'a' FROM dim2) AS t, COUNT(*) AS c FROM foo "
        "WHERE dim2 IS NOT NULL GROUP BY 1 ORDER BY t",
        None,
    ),
    (
        "SELECT REPLACE(dim1, '1', 'one') AS r, STRPOS(dim1, 'b') AS p FROM foo "
        "WHERE STRPOS(dim1, 'b') > 0 GROUP BY 1, 2 ORDER BY r",
        None,
    ),
    (
        "SELECT REGEXP_EXTRACT(dim1, '^[a-z]+') AS r, COUNT(*) AS c FROM foo "
        "WHERE REGEXP_EXTRACT(dim1, '^[a-z]+') IS NOT NULL GROUP BY 1 ORDER BY r",
        "SELECT NULLIF(REGEXP_EXTRACT(dim1, '^[a-z]+'), '') AS r, COUNT(*) AS c FROM foo "
        "WHERE NULLIF(REGEXP_EXTRACT(dim1, '^[a-z]+'), '') IS NOT NULL GROUP BY 1 ORDER BY r",
    ),
    ("SELECT COUNT(*) FROM foo WHERE LOWER(dim1) LIKE 'a%'", None),
    (
        "SELECT CAST(m1 AS BIGINT) % 2 AS k, SUM(POWER(m1, 2)) AS s, MAX(ABS(m1 - 4)) AS a "
        "FROM foo GROUP BY 1 ORDER BY k",
        None,
    ),
    (
        "SELECT TIME_EXTRACT(__time, 'YEAR') AS y, COUNT(*) AS c FROM foo GROUP BY 1 ORDER BY y",
        "SELECT EXTRACT(YEAR FROM __time) AS y, COUNT(*) AS c FROM foo GROUP BY 1 ORDER BY y",
    ),
    (
        "SELECT EXTRACT(DAY FROM __time) AS d, SUM(cnt) FILTER (WHERE LOWER(dim1) <> 'abc') AS c "
        "FROM foo GROUP BY 1 ORDER BY d",
        None,
    ),
    (
        "SELECT COUNT(*) FROM foo WHERE TIME_FLOOR(__time, 'P1M') = TIMESTAMP '2000-01-01'",
        "SELECT COUNT(*) FROM foo WHERE DATE_TRUNC('month', __time) = TIMESTAMPTZ '2000-01-01'",
    ),
    (
        "SELECT TIMESTAMP_TO_MILLIS(TIME_SHIFT(__time, 'P1D', 1)) AS t, COUNT(*) AS c "
        "FROM foo WHERE TIME_FORMAT(__time, 'yyyy') = '2001' GROUP BY 1 ORDER BY t",
        "SELECT epoch_ms(__time + INTERVAL 1 DAY) AS t, COUNT(*) AS c FROM foo "
        "WHERE strftime(__time, '%Y') = '2001' GROUP BY 1 ORDER BY t",
    ),
    (
        # Joda's yyyy reads '1' and '2' as years.
        "SELECT COUNT(*) FROM foo WHERE TIME_PARSE(dim1, 'yyyy') IS NULL",
        "SELECT COUNT(*) FROM foo WHERE NOT regexp_matches(coalesce(dim1, ''), '^[0-9]{1,4}$')",
    ),
    (
        "SELECT MILLIS_TO_TIMESTAMP(TIMESTAMP_TO_MILLIS(__time) + 1000) AS t FROM foo "
        "WHERE cnt + 0 = 1 AND m1 < 2",
        "SELECT __time + INTERVAL 1 SECOND AS t FROM foo WHERE m1 < 2",
    ),
]


@pytest.mark.parametrize(("text", "duck_text"), CASES)
def test_expressions_match_duckdb(text: str, duck_text: str | None) -> None:
    ours = _ours(sql(text).result.rows())
    theirs = [[_norm(v) for v in row] for row in _duck().sql(duck_text or text).fetchall()]
    assert ours == theirs


def test_group_by_expression_is_a_virtual_column_dimension() -> None:
    answer = sql("SELECT LOWER(dim1) AS l, SUM(m1 * 2) AS s FROM foo GROUP BY 1")
    native = answer.plan.native
    assert native["virtualColumns"] == [
        {"type": "expression", "name": "v0", "expression": 'lower("dim1")', "outputType": "STRING"},
        {"type": "expression", "name": "v1", "expression": '("m1" * 2)', "outputType": "DOUBLE"},
    ]
    assert native["dimensions"][0]["dimension"] == "v0"
    assert native["aggregations"] == [{"type": "doubleSum", "name": "a0", "fieldName": "v1"}]


def test_filters_on_expressions() -> None:
    native = sql("SELECT COUNT(*) FROM foo WHERE LOWER(dim1) = 'abc'").plan.native
    assert native["virtualColumns"][0]["expression"] == 'lower("dim1")'
    assert native["filter"] == {
        "type": "equals",
        "column": "v0",
        "matchValueType": "STRING",
        "matchValue": "abc",
    }
    native = sql("SELECT COUNT(*) FROM foo WHERE m1 > m2 - 1").plan.native
    assert native["filter"] == {"type": "expression", "expression": '("m1" > ("m2" - 1))'}
    assert "virtualColumns" not in native


def test_explain_shows_virtual_columns() -> None:
    rows = sql("EXPLAIN PLAN FOR SELECT UPPER(dim1), COUNT(*) FROM foo GROUP BY 1").result.rows()
    assert '"virtualColumns"' in rows[0][0] and 'upper(\\"dim1\\")' in rows[0][0]


def test_druid_time_floor_expression_group_key_is_a_timestamp() -> None:
    # A second time floor is a LONG virtual column reported as TIMESTAMP.
    rs = sql(
        "SELECT FLOOR(__time TO YEAR) AS y, TIME_FLOOR(__time, 'P1M') AS m, COUNT(*) AS c "
        "FROM foo GROUP BY 1, 2 ORDER BY 1, 2"
    ).result
    assert rs.sql_types[:2] == ["TIMESTAMP", "TIMESTAMP"]
    assert rs.rows() == [
        ["2000-01-01T00:00:00.000Z", "2000-01-01T00:00:00.000Z", 3],
        ["2001-01-01T00:00:00.000Z", "2001-01-01T00:00:00.000Z", 3],
    ]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("SELECT COUNT(*) FROM foo WHERE SOUNDEX(dim1) = 'x'", "SOUNDEX"),
        ("SELECT SUM(UPPER(dim1)) FROM foo", "STRING expression"),
        ("SELECT APPROX_COUNT_DISTINCT(UPPER(dim1)) FROM foo", "expression"),
        ("SELECT SUM(m1 + dim1) FROM foo", "numbers"),
    ],
)
def test_untranslatable_expressions_are_refused(bad: str, words: str) -> None:
    with pytest.raises(PlanValidationError, match=words):
        sql(bad)


def test_multi_value_functions() -> None:
    # foo's dim3: ['a','b'], ['b','c'], ['d'], [''], null, null (Druid's test rows)
    rows = sql("SELECT MV_LENGTH(dim3) AS l, COUNT(*) AS c FROM foo GROUP BY 1 ORDER BY 1").result
    assert rows.rows() == [[None, 2], [1, 2], [2, 2]]
    assert sql("SELECT COUNT(*) FROM foo WHERE MV_CONTAINS(dim3, 'b')").result.rows() == [[2]]
    both = sql(
        "SELECT SUM(MV_LENGTH(dim3)) AS s, "
        "COUNT(*) FILTER (WHERE MV_OVERLAP(dim3, ARRAY['a', 'd'])) AS o FROM foo"
    )
    assert both.result.rows() == [[6, 2]]
    rs = sql(
        "SELECT MV_TO_STRING(dim3, '|') AS s, MV_OFFSET(dim3, 1) AS o, COUNT(*) AS c "
        "FROM foo GROUP BY 1, 2 ORDER BY 1"
    ).result
    assert rs.rows() == [
        [None, None, 2],
        ["", None, 1],
        ["a|b", "b", 1],
        ["b|c", "c", 1],
        ["d", None, 1],
    ]
    with pytest.raises(PlanValidationError, match="MV_FILTER_NONE"):
        sql("SELECT MV_FILTER_NONE(dim3, ARRAY['a']) FROM foo")


SCAN_CASES = [
    (
        "SELECT __time, STRPOS(dim1, 'b') AS p, REPLACE(dim1, '1', 'x') AS r, POWER(m1, 2) AS w, "
        "LN(m1) AS l, TIME_EXTRACT(__time, 'DAY') AS d, UPPER(dim1) || '-' || dim2 AS c FROM foo",
        "SELECT __time, STRPOS(dim1, 'b'), REPLACE(dim1, '1', 'x'), POWER(m1, 2), LN(m1), "
        "EXTRACT(DAY FROM __time), UPPER(dim1) || '-' || dim2 FROM foo",
    ),
    (
        "SELECT __time, TIME_SHIFT(__time, 'P1M', -1) AS s FROM foo WHERE m1 > 3",
        "SELECT __time, __time - INTERVAL 1 MONTH FROM foo WHERE m1 > 3",
    ),
]


@pytest.mark.parametrize(("text", "duck_text"), SCAN_CASES)
def test_scan_select_expressions_are_virtual_columns(text: str, duck_text: str) -> None:
    answer = sql(text + " ORDER BY __time")
    assert answer.plan.native["virtualColumns"]
    assert all(
        v["name"] in answer.plan.native["columns"] for v in answer.plan.native["virtualColumns"]
    )
    theirs = [[_norm(v) for v in r] for r in _duck().sql(duck_text + " ORDER BY __time").fetchall()]
    assert _ours(answer.result.rows()) == theirs
