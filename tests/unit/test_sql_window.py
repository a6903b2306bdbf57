"""Window functions computed at the broker on the native result (as Druid runs its window
operators after the native query), checked against DuckDB on Druid's ``foo`` rows."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import PlanValidationError
from tests.unit.test_sql_druid_foo import sql
from tests.unit.test_sql_expressions import _duck, _iso_millis


def _norm(rows: list[Any], ordered: bool) -> list[list[Any]]:
    out = [
        [
            _iso_millis(v)
            if isinstance(v, str) and v.endswith("Z")
            else v
            if not hasattr(v, "timestamp")
            else int(v.timestamp() * 1000)
            for v in r
        ]
        for r in rows
    ]
    if not ordered:
        out.sort(key=lambda r: [(v is not None, v) for v in r])
    return out


# (SQL, rows are ordered by the query)
CASES = [
    (
        "SELECT dim1, m1, ROW_NUMBER() OVER (PARTITION BY dim2 ORDER BY m1 DESC) AS r, "
        "SUM(m1) OVER (PARTITION BY dim2 ORDER BY m1) AS s FROM foo",
        False,
    ),
    (
        "SELECT dim2, COUNT(*) AS c, RANK() OVER (ORDER BY COUNT(*) DESC) AS r, "
        "DENSE_RANK() OVER (ORDER BY COUNT(*) DESC) AS d FROM foo GROUP BY dim2 "
        "ORDER BY r, dim2 NULLS FIRST LIMIT 3",
        True,
    ),
    (
        "SELECT __time, LAG(dim1) OVER (ORDER BY __time) AS p, "
        "LEAD(m1, 2) OVER (ORDER BY __time) AS n FROM foo",
        False,
    ),
    (
        "SELECT m1, SUM(m2) OVER (ORDER BY m1 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
        "AS a, COUNT(*) OVER (ORDER BY cnt) AS b, MAX(m1) OVER (PARTITION BY cnt) AS c, "
        "MIN(dim1) OVER (PARTITION BY dim2) AS d, COUNT(dim2) OVER () AS e FROM foo",
        False,
    ),
    (
        "SELECT dim2, SUM(m1) AS s, SUM(SUM(m1)) OVER (ORDER BY SUM(m1)) AS running "
        "FROM foo WHERE m1 > 1 GROUP BY dim2 ORDER BY s DESC",
        True,
    ),
    (
        "SELECT m1, PERCENT_RANK() OVER (PARTITION BY cnt ORDER BY dim2 NULLS FIRST) AS p, "
        "CUME_DIST() OVER (ORDER BY dim2 NULLS FIRST) AS c, NTILE(4) OVER (ORDER BY m1 DESC) AS t, "
        "NTILE(7) OVER (ORDER BY m1) AS u FROM foo",
        False,
    ),
    (
        "SELECT m1, FIRST_VALUE(dim2) OVER (ORDER BY m1 ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING) "
        "AS f, LAST_VALUE(dim1) OVER (ORDER BY m1) AS l, SUM(m2) OVER (ORDER BY m1 ROWS BETWEEN 2 "
        "PRECEDING AND 1 PRECEDING) AS s, MIN(m1) OVER (ORDER BY m1 ROWS BETWEEN CURRENT ROW AND "
        "UNBOUNDED FOLLOWING) AS mn, COUNT(dim2) OVER (ORDER BY dim2 NULLS FIRST RANGE BETWEEN "
        "CURRENT ROW AND UNBOUNDED FOLLOWING) AS c, AVG(m1) OVER (ORDER BY m1 ROWS BETWEEN "
        "3 FOLLOWING AND UNBOUNDED FOLLOWING) AS a FROM foo",
        False,
    ),
    (
        "SELECT dim2, COUNT(*) AS n, COUNT(*) OVER w AS c, SUM(COUNT(*)) OVER () - COUNT(*) AS r "
        "FROM foo GROUP BY dim2 WINDOW w AS (ORDER BY dim2 NULLS FIRST ROWS 1 PRECEDING)",
        False,
    ),
]


@pytest.mark.parametrize(("text", "ordered"), CASES)
def test_windows_match_duckdb(text: str, ordered: bool) -> None:
    ours = _norm(sql(text).result.rows(), ordered)
    theirs = _norm([list(r) for r in _duck().sql(text).fetchall()], ordered)
    assert ours == theirs


def test_window_types() -> None:
    rs = sql(
        "SELECT ROW_NUMBER() OVER (ORDER BY m1) AS r, AVG(cnt) OVER () AS a, "
        "AVG(m1) OVER () AS b, LAG(__time) OVER (ORDER BY __time) AS t FROM foo"
    ).result
    assert rs.sql_types == ["BIGINT", "BIGINT", "DOUBLE", "TIMESTAMP"]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("SELECT m1 FROM foo WHERE ROW_NUMBER() OVER (ORDER BY m1) > 1", "not supported"),
        ("SELECT SUM(ROW_NUMBER() OVER ()) OVER () FROM foo", "inside a window"),
        ("SELECT NTILE(0) OVER (ORDER BY m1) FROM foo", "positive integer"),
        (
            "SELECT SUM(m1) OVER (ORDER BY m1 RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM foo",
            "RANGE takes UNBOUNDED and CURRENT ROW",
        ),
        (
            "SELECT RANK() OVER (ORDER BY m1 ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM foo",
            "not allowed with RANK",
        ),
        ("SELECT RANK() OVER w FROM foo", "not defined"),
        ("SELECT LAG(m1, 1, 0) OVER (ORDER BY m1) FROM foo", "default value"),
        ("SELECT RANK() OVER (PARTITION BY dim2) FROM foo", "ORDER BY"),
        ("SELECT dim1, ROW_NUMBER() OVER (ORDER BY m1) FROM foo ORDER BY m2", "select item"),
    ],
)
def test_unsupported_windows_are_refused(bad: str, words: str) -> None:
    with pytest.raises(PlanValidationError, match=words):
        sql(bad)
