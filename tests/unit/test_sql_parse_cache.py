"""``parse_sql`` keeps its latest parses (``PARSE_CACHE_SIZE``), keyed on the SQL text and the
parameters: each caller gets its own copy of the tree, parameters that differ (1, 1.0, NaN,
null) give different statements, and failed parses are not kept."""

from __future__ import annotations

import math

import pytest
from sqlglot import exp

from common.errors import SqlParseError
from common.query.sql import parse
from common.query.sql.parse import PARSE_CACHE_SIZE, parse_sql

SQL = "SELECT page, COUNT(*) AS n FROM wiki WHERE added > ? GROUP BY page"


def _literal(sql_tree: exp.Expression) -> exp.Expression:
    where = sql_tree.args["where"]
    return where.this.expression


def test_the_same_text_gives_equal_trees_each_its_own() -> None:
    a = parse_sql("SELECT COUNT(*) FROM wiki")
    b = parse_sql("SELECT COUNT(*) FROM wiki")
    assert a == b and a.select is not b.select
    a.select.set("where", exp.Where(this=exp.false()))  # the planner may rewrite its tree
    c = parse_sql("SELECT COUNT(*) FROM wiki")
    assert c == b and c.select.args.get("where") is None
    assert parse_sql("EXPLAIN PLAN FOR SELECT COUNT(*) FROM wiki").explain
    assert not parse_sql("SELECT COUNT(*) FROM wiki").explain


@pytest.mark.parametrize(
    "value",
    [1, 1.0, 2, float("nan"), None, "1"],
    ids=["long", "double", "two", "nan", "null", "string"],
)
def test_parameters_are_part_of_the_key(value: object) -> None:
    typ = (
        "VARCHAR" if isinstance(value, str) else "DOUBLE" if isinstance(value, float) else "BIGINT"
    )
    got = _literal(parse_sql(SQL, [{"type": typ, "value": value}]).select)
    fresh = _literal(parse._parse(SQL, [{"type": typ, "value": value}]).select)
    assert got.sql() == fresh.sql()
    if isinstance(value, float) and math.isnan(value):
        assert "NULL" not in got.sql().upper()


def test_failed_parses_raise_every_time_and_are_not_kept() -> None:
    for _ in range(2):
        with pytest.raises(SqlParseError):
            parse_sql("SELECT FROM WHERE")
    assert not any(text == "SELECT FROM WHERE" for text, _ in parse._CACHE)
    with pytest.raises(SqlParseError, match="not bound"):
        parse_sql(SQL)  # the same text with no parameters: its own (failing) parse


def test_the_oldest_parses_go_first() -> None:
    parse._CACHE.clear()
    for i in range(PARSE_CACHE_SIZE + 10):
        parse_sql(f"SELECT {i} FROM wiki")
    assert len(parse._CACHE) == PARSE_CACHE_SIZE
    assert ("SELECT 0 FROM wiki", "") not in parse._CACHE
    assert (f"SELECT {PARSE_CACHE_SIZE + 9} FROM wiki", "") in parse._CACHE
