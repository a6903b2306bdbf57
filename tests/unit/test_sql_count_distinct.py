"""Exact COUNT(DISTINCT) (``useApproximateCountDistinct: false``): a groupBy over the group keys
and the counted column, counted at the broker. In Druid's default SQL-compatible null handling
``''`` is a value and null is not."""

from __future__ import annotations

import pytest

from common.errors import PlanValidationError
from common.query.sql.execute import native_base, post_process
from common.query.sql.parse import parse_sql
from common.query.sql.planner import plan_sql
from tests.unit.test_query_support import duck
from tests.unit.test_sql_queries import NOW, SCHEMA
from tests.unit.test_sql_time import run

EXACT = {"useApproximateCountDistinct": False}


@pytest.mark.parametrize(
    "text",
    [
        "SELECT COUNT(DISTINCT page) AS c FROM ds",
        "SELECT COUNT(DISTINCT country) AS c FROM ds WHERE added > 500",
        "SELECT country, COUNT(DISTINCT user) AS c FROM ds GROUP BY country ORDER BY country",
        "SELECT COUNT(DISTINCT country) AS c FROM ds WHERE page = 'none'",
    ],
)
def test_exact_count_distinct_matches_duckdb(text: str) -> None:
    rs = run(text, EXACT)
    want = duck().sql(
        text.replace("FROM ds", "FROM t") + (" NULLS FIRST" if "ORDER" in text else "")
    )
    assert rs.rows() == [list(r) for r in want.fetchall()]


def test_empty_string_is_a_value_and_null_is_not() -> None:
    plan = plan_sql(
        parse_sql("SELECT COUNT(DISTINCT country) FROM ds"), SCHEMA, now_ms=NOW, context=EXACT
    )
    assert plan.native is not None and plan.native["queryType"] == "groupBy"
    assert [d["dimension"] for d in plan.native["dimensions"]] == ["country"]
    rows = [
        {"timestamp": "2024-01-01T00:00:00.000Z", "event": {"a0:value": v}}
        for v in ("", "US", None)
    ]
    assert post_process(plan, native_base(plan, rows)).rows() == [[2]]


def test_other_shapes_are_refused_not_approximated() -> None:
    for text in (
        "SELECT COUNT(DISTINCT page), COUNT(*) FROM ds",
        "SELECT COUNT(DISTINCT page) FILTER (WHERE country = 'US') FROM ds",
        "SELECT FLOOR(__time TO DAY), COUNT(DISTINCT page) FROM ds GROUP BY 1",
    ):
        with pytest.raises(PlanValidationError, match="useApproximateCountDistinct"):
            run(text, EXACT)
    # The default stays Druid's approximate cardinality aggregator.
    plan = plan_sql(parse_sql("SELECT COUNT(DISTINCT page) FROM ds"), SCHEMA, now_ms=NOW)
    assert plan.native is not None and plan.native["aggregations"][0]["type"] == "cardinality"
