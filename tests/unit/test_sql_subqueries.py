"""Subqueries, CTEs and UNION ALL: the inner queries run as native queries, their results are
materialised at the broker within maxSubqueryRows, and the outer part runs on Arrow. Every
answer is checked against DuckDB running the same SQL on the same rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.errors import PlanValidationError, ResourceLimitExceeded
from common.query.sql.runner import SqlQuery, run_sql
from tests.unit.test_query_support import duck, iso, ms, run_query
from tests.unit.test_sql_queries import NOW
from tests.unit.test_sql_time import Catalog, run


def duck_rows(text: str) -> list[list[Any]]:
    out = []
    for row in duck().sql(text.replace("FROM ds", "FROM t")).fetchall():
        out.append([iso(ms(v)) if hasattr(v, "timestamp") else v for v in row])
    return out


CASES = [
    # derived tables
    "SELECT COUNT(*) AS n, SUM(c) AS s FROM (SELECT page, COUNT(*) AS c FROM ds GROUP BY page) "
    "WHERE c > 70",
    "SELECT t.page, t.c FROM (SELECT page, COUNT(*) AS c FROM ds WHERE country = 'US' "
    "GROUP BY page) AS t WHERE t.c >= 30 ORDER BY t.c DESC, t.page LIMIT 5",
    "SELECT MAX(__time) AS m, COUNT(*) AS n FROM (SELECT __time FROM ds WHERE country = 'FR')",
    "SELECT country, AVG(c) AS a FROM (SELECT country, page, SUM(added) AS c FROM ds "
    "GROUP BY country, page) GROUP BY country ORDER BY country NULLS FIRST",
    # two levels
    "SELECT COUNT(*) FROM (SELECT c FROM (SELECT page, COUNT(*) AS c FROM ds GROUP BY page) "
    "WHERE c > 60) WHERE c < 90",
    # CTEs, one referring to another
    "WITH top AS (SELECT page, COUNT(*) AS c FROM ds GROUP BY page ORDER BY c DESC, page "
    "LIMIT 3) SELECT page, c FROM top ORDER BY page",
    "WITH a AS (SELECT page, COUNT(*) AS c FROM ds GROUP BY page), b AS (SELECT * FROM a "
    "WHERE c > 80) SELECT COUNT(*) AS n FROM b",
    # IN (SELECT ...), NOT IN with nulls in the subquery, scalar subqueries
    "SELECT COUNT(*) FROM ds WHERE page IN (SELECT page FROM ds GROUP BY page "
    "ORDER BY COUNT(*) DESC LIMIT 2)",
    "SELECT COUNT(*) FROM ds WHERE country IN (SELECT country FROM ds WHERE added > 990)",
    "SELECT COUNT(*) FROM ds WHERE country NOT IN (SELECT country FROM ds WHERE added > 990)",
    "SELECT COUNT(*) FROM ds WHERE country NOT IN (SELECT country FROM ds WHERE country = 'US')",
    "SELECT COUNT(*) FROM ds WHERE page IN (SELECT page FROM ds WHERE page = 'none')",
    "SELECT COUNT(*) FROM ds WHERE added > (SELECT AVG(added) FROM ds)",
    # MAX(__time) over a derived table (taken at the broker) and straight from the native query
    "SELECT page, COUNT(*) AS c FROM ds WHERE __time >= (SELECT MAX(__time) FROM (SELECT "
    "__time FROM ds WHERE country = 'DE')) GROUP BY page ORDER BY page",
    "SELECT page, COUNT(*) AS c FROM ds WHERE __time >= (SELECT MAX(__time) FROM ds "
    "WHERE country = 'DE') GROUP BY page ORDER BY page",
    # UNION ALL, at the top and in FROM
    "SELECT page AS x FROM ds WHERE page = 'p01' AND added > 900 "
    "UNION ALL SELECT country FROM ds WHERE country = 'JP' AND added > 980",
    "SELECT x, COUNT(*) AS n FROM (SELECT page AS x FROM ds WHERE page < 'p03' "
    "UNION ALL SELECT country FROM ds WHERE country = 'US') GROUP BY x ORDER BY x",
    "SELECT COUNT(*) AS n FROM ds WHERE country = 'US' UNION ALL "
    "SELECT SUM(added) FROM ds UNION ALL SELECT 7 ORDER BY 1 DESC LIMIT 2",
]


# The outer query over a derived table: aggregates over expressions, FILTER, GROUP BY
# expressions and time floors, computed at the broker. (Druid SQL, DuckDB SQL)
OUTER_EXPRESSIONS = [
    (
        "SELECT SUM(CASE WHEN c > 70 THEN 1 ELSE 0 END) AS big, MAX(c * 2) AS m, "
        "COUNT(*) FILTER (WHERE c < 60) AS small, COUNT(1) AS n "
        "FROM (SELECT page, COUNT(*) AS c FROM ds GROUP BY page)",
        None,
    ),
    (
        "SELECT UPPER(SUBSTRING(page, 1, 2)) AS p, COUNT(*) AS n, SUM(c) FILTER (WHERE c > 70) "
        "AS s FROM (SELECT page, COUNT(*) AS c FROM ds GROUP BY page) GROUP BY 1 ORDER BY 1",
        None,
    ),
    (
        "SELECT FLOOR(__time TO MONTH) AS m, COUNT(*) AS n FROM (SELECT __time FROM ds "
        "WHERE country = 'US') GROUP BY 1 ORDER BY 1",
        "SELECT date_trunc('month', __time) AS m, COUNT(*) AS n FROM (SELECT __time FROM ds "
        "WHERE country = 'US') GROUP BY 1 ORDER BY 1",
    ),
    (
        "SELECT COUNT(DISTINCT c) FILTER (WHERE c > 70) AS d, "
        "AVG(c) FILTER (WHERE c > 1000) AS none "
        "FROM (SELECT page, COUNT(*) AS c FROM ds GROUP BY page)",
        None,
    ),
]


@pytest.mark.parametrize(("text", "duck_text"), OUTER_EXPRESSIONS)
def test_outer_expressions_match_duckdb(text: str, duck_text: str | None) -> None:
    assert run(text, {}).rows() == duck_rows(duck_text or text)


def test_count_of_a_constant_is_count_star() -> None:
    rs = run("SELECT COUNT(1) AS a, COUNT('x') AS b, COUNT(*) AS c FROM ds", {})
    (n,) = duck_rows("SELECT COUNT(*) FROM ds")[0]
    assert rs.rows() == [[n, n, n]]


@pytest.mark.parametrize("text", CASES)
def test_subqueries_match_duckdb(text: str) -> None:
    got = run(text, {}).rows()
    want = duck_rows(text)
    if "ORDER BY" not in text.split(")")[-1]:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert got == want


def test_inner_queries_are_native_and_bounded_by_max_subquery_rows() -> None:
    seen: list[dict[str, Any]] = []

    async def native(query: dict[str, Any]) -> list[dict[str, Any]]:
        seen.append(query)
        return run_query(query)

    text = "SELECT COUNT(*) AS n FROM (SELECT page, COUNT(*) AS c FROM ds GROUP BY page)"

    def ask(context: dict[str, Any], default: int = 100_000) -> Any:
        req = SqlQuery(query=text, context=context)
        coro = run_sql(
            req, Catalog(), native, sql_query_id="q", now_ms=NOW, max_subquery_rows=default
        )
        return asyncio.run(coro).result

    assert ask({}).rows() == [[40]]
    assert [q["queryType"] for q in seen] == ["groupBy"]
    assert ask({"maxSubqueryRows": 40}).rows() == [[40]]
    with pytest.raises(ResourceLimitExceeded) as info:
        ask({"maxSubqueryRows": 39})
    assert info.value.message.startswith(
        "Cannot issue the query, subqueries generated results beyond maximum[39] rows."
    )
    assert info.value.to_druid_json()["error"] == "Resource limit exceeded"
    with pytest.raises(ResourceLimitExceeded):
        ask({}, default=10)  # druid.server.http.maxSubqueryRows
    assert ask({"maxSubqueryRows": 100}, default=10).rows() == [[40]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT page FROM ds UNION SELECT country FROM ds", "only UNION ALL"),
        ("SELECT page FROM ds INTERSECT SELECT country FROM ds", "only UNION ALL"),
        ("SELECT COUNT(*) FROM ds WHERE EXISTS (SELECT 1 FROM ds)", "EXISTS"),
        ("SELECT page FROM ds UNION ALL SELECT page, country FROM ds", "columns"),
        ("SELECT page FROM ds UNION ALL SELECT added FROM ds", "incompatible types"),
        ("SELECT COUNT(*) FROM ds WHERE added > (SELECT added FROM ds)", "rows"),
        ("SELECT COUNT(*) FROM ds WHERE page IN (SELECT page, country FROM ds)", "one column"),
        ("EXPLAIN PLAN FOR SELECT COUNT(*) FROM (SELECT page FROM ds)", "EXPLAIN"),
        # correlated: the inner query does not know the outer columns
        (
            "SELECT page FROM ds AS o "
            "WHERE added > (SELECT AVG(added) FROM ds WHERE page = o.page)",
            "Correlated",
        ),
    ],
)
def test_unsupported_shapes_are_400s(text: str, message: str) -> None:
    with pytest.raises(PlanValidationError, match=message):
        run(text, {})
