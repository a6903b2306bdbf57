"""Every aggregator and post-aggregator, grouped by a dimension over several segments, against
DuckDB on the concatenated rows (sketches against exact distinct counts)."""

from __future__ import annotations

from typing import Any

import pytest
from test_query_support import base, duck, run_query


def _by_country(aggs: list[dict[str, Any]], post: list[dict[str, Any]] | None = None) -> Any:
    q = base(
        "groupBy",
        granularity="all",
        dimensions=["country"],
        aggregations=aggs,
        postAggregations=post or [],
    )
    return {r["event"]["country"]: r["event"] for r in run_query(q)}


def _sql_by_country(expr: str) -> dict[Any, Any]:
    rows = duck().execute(f"SELECT country, {expr} FROM t GROUP BY country").fetchall()
    return {r[0]: r[1] for r in rows}


@pytest.mark.parametrize(
    ("agg", "sql"),
    [
        ({"type": "count", "name": "x"}, "count(*)"),
        ({"type": "longSum", "name": "x", "fieldName": "added"}, "sum(added)"),
        ({"type": "doubleSum", "name": "x", "fieldName": "delta"}, "sum(delta)"),
        ({"type": "floatSum", "name": "x", "fieldName": "delta"}, "sum(delta)"),
        ({"type": "longMin", "name": "x", "fieldName": "added"}, "min(added)"),
        ({"type": "longMax", "name": "x", "fieldName": "added"}, "max(added)"),
        ({"type": "doubleMin", "name": "x", "fieldName": "delta"}, "min(delta)"),
        ({"type": "doubleMax", "name": "x", "fieldName": "delta"}, "max(delta)"),
        ({"type": "longSum", "name": "x", "fieldName": "delta"}, "sum(trunc(delta)::BIGINT)"),
        ({"type": "longSum", "name": "x", "fieldName": "no_such_column"}, "NULL"),
        (
            {
                "type": "filtered",
                "filter": {"type": "selector", "dimension": "page", "value": "p01"},
                "aggregator": {"type": "count", "name": "x"},
            },
            "count(*) FILTER (WHERE page = 'p01')",
        ),
        (
            {
                "type": "filtered",
                "filter": {"type": "like", "dimension": "page", "pattern": "p2%"},
                "aggregator": {"type": "longSum", "name": "x", "fieldName": "added"},
            },
            "sum(added) FILTER (WHERE page LIKE 'p2%')",
        ),
    ],
)
def test_numeric_aggregators(agg: dict[str, Any], sql: str) -> None:
    got = _by_country([agg])
    expected = _sql_by_country(sql)
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        if isinstance(v, float):
            assert got[k]["x"] == pytest.approx(v, rel=1e-9)
        else:
            assert got[k]["x"] == v


@pytest.mark.parametrize(
    ("agg", "sql", "tolerance"),
    [
        ({"type": "thetaSketch", "name": "x", "fieldName": "user"}, "count(DISTINCT user)", 0),
        (
            {"type": "thetaSketch", "name": "x", "fieldName": "user_theta"},
            "count(DISTINCT user)",
            0,
        ),
        (
            {"type": "HLLSketchBuild", "name": "x", "fieldName": "user"},
            "count(DISTINCT user)",
            0.02,
        ),
        (
            {"type": "HLLSketchMerge", "name": "x", "fieldName": "user_hll"},
            "count(DISTINCT user)",
            0.02,
        ),
        ({"type": "hyperUnique", "name": "x", "fieldName": "user"}, "count(DISTINCT user)", 0.03),
        ({"type": "cardinality", "name": "x", "fields": ["page"]}, "count(DISTINCT page)", 0.02),
        (
            {"type": "cardinality", "name": "x", "fields": ["page", "tags"]},
            "(SELECT count(DISTINCT v) FROM (SELECT page AS v FROM t t2 WHERE t2.country IS "
            "NOT DISTINCT FROM t.country UNION ALL SELECT unnest(tags) FROM t t3 "
            "WHERE t3.country IS NOT DISTINCT FROM t.country))",
            0.02,
        ),
        (
            {"type": "cardinality", "name": "x", "fields": ["page", "user"], "byRow": True},
            "count(DISTINCT (page, user))",
            # lgK 11, unions estimated from the registers (no HIP: see sketches.union_blobs):
            # relative standard error about 2.3%
            0.05,
        ),
    ],
)
def test_sketch_aggregators(agg: dict[str, Any], sql: str, tolerance: float) -> None:
    got = _by_country([agg])
    if "SELECT" in sql:
        expected = {
            r[0]: r[1]
            for r in duck().execute(f"SELECT country, {sql} FROM t GROUP BY country").fetchall()
        }
    else:
        expected = _sql_by_country(sql)
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k]["x"] == pytest.approx(v, rel=tolerance, abs=tolerance and 1)


def test_sketch_rounding_and_unfinalized_theta() -> None:
    got = _by_country([{"type": "HLLSketchBuild", "name": "x", "fieldName": "user", "round": True}])
    assert all(isinstance(e["x"], int) for e in got.values())


def test_post_aggregators() -> None:
    aggs = [
        {"type": "count", "name": "rows"},
        {"type": "longSum", "name": "added", "fieldName": "added"},
        {
            "type": "filtered",
            "filter": {"type": "selector", "dimension": "page", "value": "p00"},
            "aggregator": {"type": "count", "name": "p00"},
        },
        {"type": "thetaSketch", "name": "users", "fieldName": "user"},
        {"type": "hyperUnique", "name": "husers", "fieldName": "user"},
    ]
    field = {"type": "fieldAccess", "fieldName": "added"}
    post = [
        {
            "type": "arithmetic",
            "name": "avg",
            "fn": "/",
            "fields": [field, {"type": "fieldAccess", "fieldName": "rows"}],
        },
        {
            "type": "arithmetic",
            "name": "zeroDiv",
            "fn": "/",
            "fields": [field, {"type": "constant", "name": "z", "value": 0}],
        },
        {
            "type": "arithmetic",
            "name": "quot",
            "fn": "quotient",
            "fields": [field, {"type": "constant", "name": "c", "value": 4}],
        },
        {
            "type": "arithmetic",
            "name": "combo",
            "fn": "-",
            "fields": [
                {
                    "type": "arithmetic",
                    "fn": "*",
                    "fields": [field, {"type": "constant", "value": 2}],
                },
                {"type": "fieldAccess", "fieldName": "p00"},
            ],
        },
        {
            "type": "arithmetic",
            "name": "perUser",
            "fn": "/",
            "fields": [
                {"type": "finalizingFieldAccess", "fieldName": "users"},
                {"type": "fieldAccess", "fieldName": "avg"},
            ],
        },
        {
            "type": "thetaSketchEstimate",
            "name": "usersEst",
            "field": {"type": "fieldAccess", "fieldName": "users"},
        },
        {"type": "hyperUniqueCardinality", "name": "husersEst", "fieldName": "husers"},
    ]
    got = _by_country(aggs, post)
    rows = (
        duck()
        .execute(
            "SELECT country, count(*), sum(added), count(*) FILTER (WHERE page = 'p00'), "
            "count(DISTINCT user) FROM t GROUP BY country"
        )
        .fetchall()
    )
    for country, n, added, p00, users in rows:
        e = got[country]
        assert e["avg"] == pytest.approx(added / n)
        assert e["zeroDiv"] == 0.0
        assert e["quot"] == pytest.approx(added / 4)
        assert e["combo"] == pytest.approx(added * 2 - p00)
        assert e["users"] == users and e["usersEst"] == users
        assert e["perUser"] == pytest.approx(users / (added / n))
        assert e["husersEst"] == pytest.approx(e["husers"])
        assert list(e) == [
            "country",
            "rows",
            "added",
            "p00",
            "users",
            "husers",
            "avg",
            "zeroDiv",
            "quot",
            "combo",
            "perUser",
            "usersEst",
            "husersEst",
        ]


def test_arithmetic_with_null_operand_is_null() -> None:
    q = base(
        "timeseries",
        intervals=["2024-01-15/2024-01-16"],
        granularity="all",
        aggregations=[{"type": "longSum", "name": "s", "fieldName": "added"}],
        postAggregations=[
            {
                "type": "arithmetic",
                "name": "d",
                "fn": "/",
                "fields": [
                    {"type": "fieldAccess", "fieldName": "s"},
                    {"type": "constant", "value": 0},
                ],
            }
        ],
    )
    [row] = run_query(q)  # the data gap: no rows, so the sum is null
    assert row["result"] == {"s": None, "d": None}
