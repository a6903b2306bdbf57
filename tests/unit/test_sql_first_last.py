"""EARLIEST / LATEST / EARLIEST_BY / LATEST_BY / ANY_VALUE planned onto the native first/last
aggregators, checked against Druid's answers over ``foo`` (CalciteQueryTest's
testEarliestAggregators / testLatestAggregators / testAnyAggregator) and against DuckDB's
``arg_min``/``arg_max`` on the same rows."""

from __future__ import annotations

import pytest

from common.errors import PlanValidationError, SqlParseError
from tests.unit.test_sql_druid_foo import sql
from tests.unit.test_sql_expressions import _duck


def test_earliest_matches_druid() -> None:
    answer = sql(
        "SELECT EARLIEST(cnt), EARLIEST(m1), EARLIEST(dim1, 10), EARLIEST(cnt + 1), "
        "EARLIEST(m1 + 1), EARLIEST(dim1 || CAST(cnt AS VARCHAR), 10) FROM druid.foo"
    )
    assert answer.result.rows() == [[1, 1.0, "", 2, 2.0, "1"]]
    native = answer.plan.native
    assert native["queryType"] == "timeseries"
    assert [v["expression"] for v in native["virtualColumns"]] == [
        '("cnt" + 1)',
        '("m1" + 1)',
        'concat("dim1",CAST("cnt", \'STRING\'))',
    ]
    assert native["aggregations"][:3] == [
        {"type": "longFirst", "name": "a0", "fieldName": "cnt"},
        {"type": "floatFirst", "name": "a1", "fieldName": "m1"},
        {"type": "stringFirst", "name": "a2", "fieldName": "dim1", "maxStringBytes": 10},
    ]
    assert native["aggregations"][5]["fieldName"] == "v2"


def test_latest_matches_druid() -> None:
    rows = sql(
        "SELECT LATEST(cnt), LATEST(m1), LATEST(dim1, 10), LATEST(cnt + 1), LATEST(m1 + 1), "
        "LATEST(dim1 || CAST(cnt AS VARCHAR), 10) FROM druid.foo"
    ).result.rows()
    assert rows == [[1, 6.0, "abc", 2, 7.0, "abc1"]]


def test_any_value_matches_druid() -> None:
    # Druid's testAnyAggregator answers the first row's values; kdruid plans *First.
    rows = sql(
        "SELECT ANY_VALUE(cnt), ANY_VALUE(m1), ANY_VALUE(m2), ANY_VALUE(cnt + 1), "
        "ANY_VALUE(m1 + 1), ANY_VALUE(dim1 || CAST(cnt AS VARCHAR)) FROM druid.foo"
    ).result.rows()
    assert rows == [[1, 1.0, 1.0, 2, 2.0, "1"]]


def test_by_variants_and_groups_match_duckdb() -> None:
    answer = sql(
        "SELECT dim2, LATEST_BY(dim1, MILLIS_TO_TIMESTAMP(-TIMESTAMP_TO_MILLIS(__time))) AS a, "
        "EARLIEST_BY(m1, __time) AS b, LATEST(m2) AS c, "
        "EARLIEST(UPPER(dim1)) FILTER (WHERE m1 > 1) AS d "
        "FROM foo GROUP BY dim2 ORDER BY dim2"
    )
    theirs = (
        _duck()
        .sql(
            "SELECT dim2, arg_min(dim1, __time), arg_min(m1, __time), arg_max(m2, __time), "
            "arg_min(UPPER(dim1), __time) FILTER (WHERE m1 > 1) FROM foo GROUP BY dim2 "
            "ORDER BY dim2 NULLS FIRST"
        )
        .fetchall()
    )
    assert answer.result.rows() == [list(r) for r in theirs]
    aggs = answer.plan.native["aggregations"]
    assert aggs[0]["type"] == "stringLast" and aggs[0]["timeColumn"] == "v0"
    assert aggs[1] == {
        "type": "floatFirst",
        "name": "a1",
        "fieldName": "m1",
        "timeColumn": "__time",
    }
    assert aggs[3]["type"] == "filtered"


def test_latest_of_time_is_a_timestamp() -> None:
    rs = sql("SELECT LATEST(__time), EARLIEST_BY(cnt, MILLIS_TO_TIMESTAMP(cnt)) FROM foo").result
    assert rs.rows() == [["2001-01-03T00:00:00.000Z", 1]]
    assert rs.sql_types[0] == "TIMESTAMP"


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("SELECT EARLIEST_BY(m1, cnt) FROM foo", "non-TIMESTAMP"),
        ("SELECT LATEST(cnt, 10) FROM foo", "strings only"),
        ("SELECT EARLIEST(dim1, dim2) FROM foo", "integer literal"),
        ("SELECT LATEST_BY(dim1) FROM foo", "LATEST_BY takes"),
    ],
)
def test_bad_first_last_is_refused(bad: str, words: str) -> None:
    with pytest.raises((PlanValidationError, SqlParseError), match=words):
        sql(bad)
