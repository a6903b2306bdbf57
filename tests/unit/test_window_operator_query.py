"""The native ``windowOperator`` query over Druid's ``foo`` rows: the operator plans of Druid's
window tests (``sql/src/test/resources/calcite/tests/window/*.sqlTest``) and their expected rows,
validation errors, and EXPLAIN of SQL window queries showing the same native query."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from common.errors import QueryParseError
from common.query import parse_query
from common.query.local import subquery_of, window_result
from tests.unit.test_sql_druid_foo import native, sql

ETERNITY = ["-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"]

# FLOOR(__time TO DAY) d0, SUM(cnt) a0, grouped (simpleSum.sqlTest's inner query)
BY_DAY = {
    "queryType": "groupBy",
    "dataSource": "foo",
    "intervals": ETERNITY,
    "granularity": "all",
    "virtualColumns": [
        {
            "type": "expression",
            "name": "v0",
            "expression": "timestamp_floor(\"__time\",'P1D',null,'UTC')",
            "outputType": "LONG",
        }
    ],
    "dimensions": [
        {"type": "default", "dimension": "v0", "outputName": "d0", "outputType": "LONG"}
    ],
    "aggregations": [{"type": "longSum", "name": "a0", "fieldName": "cnt"}],
}
# dim2 grouped, WHERE dim2 IS NULL OR LENGTH(dim2) > 0 (lead_lag.sqlTest's inner query)
BY_DIM2 = {
    "queryType": "groupBy",
    "dataSource": "foo",
    "intervals": ETERNITY,
    "granularity": "all",
    "filter": {
        "type": "or",
        "fields": [
            {"type": "null", "column": "dim2"},
            {"type": "expression", "expression": '(strlen("dim2") > 0)'},
        ],
    },
    "dimensions": [{"type": "default", "dimension": "dim2", "outputName": "d0"}],
}
SCAN = {
    "queryType": "scan",
    "dataSource": "foo",
    "intervals": ETERNITY,
    "columns": ["dim1", "dim2", "m1"],
    "resultFormat": "compactedList",
}


def window(inner: dict[str, Any], ops: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "queryType": "windowOperator",
        "dataSource": {"type": "query", "query": inner},
        "intervals": ETERNITY,
        "operatorDefinition": ops,
        "leafOperators": [],
        "context": {},
        **extra,
    }


def run(query: dict[str, Any]) -> list[list[Any]]:
    q = parse_query(query)
    inner = subquery_of(q)
    rows = asyncio.run(native(inner.to_json())) if inner is not None else None
    out = window_result(q, rows)
    assert len(out) <= 1
    return out[0]["events"] if out else []


def test_simple_sum_running_total() -> None:
    """simpleSum.sqlTest: SUM(SUM(cnt)) OVER (ORDER BY FLOOR(__time TO DAY))."""
    ops = [
        {"type": "naivePartition", "partitionColumns": []},
        {
            "type": "window",
            "processor": {
                "type": "framedAgg",
                "frame": {
                    "peerType": "RANGE",
                    "lowUnbounded": True,
                    "lowOffset": 0,
                    "uppUnbounded": False,
                    "uppOffset": 0,
                    "orderBy": [{"column": "d0", "direction": "ASC"}],
                },
                "aggregations": [{"type": "longSum", "name": "w0", "fieldName": "a0"}],
            },
        },
    ]
    sig = [{"name": n, "type": "LONG"} for n in ("d0", "a0", "w0")]
    assert run(window(BY_DAY, ops, outputSignature=sig)) == [
        [946684800000, 1, 1],
        [946771200000, 1, 2],
        [946857600000, 1, 3],
        [978307200000, 1, 4],
        [978393600000, 1, 5],
        [978480000000, 1, 6],
    ]


def test_lead_lag_offset() -> None:
    """lead_lag.sqlTest: LAG(dim2, 1) OVER () is the ``offset`` processor at -1."""
    ops = [
        {"type": "naivePartition", "partitionColumns": []},
        {
            "type": "window",
            "processor": {
                "type": "offset",
                "inputColumn": "d0",
                "outputColumn": "w0",
                "offset": -1,
            },
        },
    ]
    assert run(window(BY_DIM2, ops, rowSignature=[{"name": "d0"}, {"name": "w0"}])) == [
        [None, None],
        ["a", None],
        ["abc", "a"],
    ]


def test_rankings_partitioned_and_sorted() -> None:
    """naiveSort then naivePartition, ranking processors composed over each partition."""
    ops = [
        {
            "type": "naiveSort",
            "columns": [
                {"column": "dim2", "direction": "ASC"},
                {"column": "m1", "direction": "DESC"},
            ],
        },
        {"type": "naivePartition", "partitionColumns": ["dim2"]},
        {
            "type": "window",
            "processor": {
                "type": "composing",
                "processors": [
                    {"type": "rowNumber", "outputColumn": "rn"},
                    {"type": "rank", "group": ["m1"], "outputColumn": "rk", "asPercent": False},
                    {"type": "rank", "group": ["m1"], "outputColumn": "pr", "asPercent": True},
                    {"type": "denseRank", "group": ["m1"], "outputColumn": "dr"},
                    {"type": "cumeDist", "group": ["m1"], "outputColumn": "cd"},
                    {"type": "percentile", "outputColumn": "nt", "numBuckets": 2},
                ],
            },
        },
    ]
    sig = [{"name": n} for n in ("dim2", "m1", "rn", "rk", "pr", "dr", "cd", "nt")]
    assert run(window(SCAN, ops, outputSignature=sig)) == [
        [None, 6.0, 1, 1, 0.0, 1, 0.5, 1],
        [None, 2.0, 2, 2, 1.0, 2, 1.0, 2],
        ["", 3.0, 1, 1, 0.0, 1, 1.0, 1],
        ["a", 4.0, 1, 1, 0.0, 1, 0.5, 1],
        ["a", 1.0, 2, 2, 1.0, 2, 1.0, 2],
        ["abc", 5.0, 1, 1, 0.0, 1, 1.0, 1],
    ]


def _frame(peer: str, low: int | None, upp: int | None, order: list[str]) -> dict[str, Any]:
    return {
        "peerType": peer,
        "lowUnbounded": low is None,
        "lowOffset": low or 0,
        "uppUnbounded": upp is None,
        "uppOffset": upp or 0,
        "orderBy": [{"column": c, "direction": "ASC"} for c in order],
    }


def test_framed_aggregations_rows_and_range_groups() -> None:
    """ROWS offsets count rows; RANGE offsets count peer groups (wikipediaFramedAggregations)."""
    inner = {**SCAN, "columns": ["cnt", "m1", "m2"]}
    ops = [
        {"type": "naiveSort", "columns": [{"column": "m1", "direction": "ASC"}]},
        {"type": "naivePartition", "partitionColumns": []},
        {
            "type": "window",
            "processor": {
                "type": "framedAgg",
                "frame": _frame("ROWS", -1, 1, []),
                "aggregations": [
                    {"type": "doubleSum", "name": "s", "fieldName": "m2"},
                    {"type": "count", "name": "c"},
                    {"type": "doubleMax", "name": "mx", "fieldName": "m2"},
                ],
            },
        },
        {
            "type": "window",
            "processor": {
                "type": "framedAgg",
                "frame": _frame("RANGE", 0, None, ["cnt"]),
                "aggregations": [{"type": "longSum", "name": "g", "fieldName": "cnt"}],
            },
        },
        {
            "type": "window",
            "processor": {"type": "first", "inputColumn": "m2", "outputColumn": "f"},
        },
        {
            "type": "window",
            "processor": {
                "type": "last",
                "inputColumn": "m2",
                "outputColumn": "l",
                "frame": _frame("ROWS", None, 0, []),
            },
        },
    ]
    sig = [{"name": n} for n in ("m2", "s", "c", "mx", "g", "f", "l")]
    assert run(window(inner, ops, outputSignature=sig)) == [
        [1.0, 3.0, 2, 2.0, 6, 1.0, 1.0],
        [2.0, 6.0, 3, 3.0, 6, 1.0, 2.0],
        [3.0, 9.0, 3, 4.0, 6, 1.0, 3.0],
        [4.0, 12.0, 3, 5.0, 6, 1.0, 4.0],
        [5.0, 15.0, 3, 6.0, 6, 1.0, 5.0],
        [6.0, 11.0, 2, 6.0, 6, 1.0, 6.0],
    ]


def test_inline_datasource() -> None:
    q = {
        "queryType": "windowOperator",
        "dataSource": {
            "type": "inline",
            "columnNames": ["k", "v"],
            "columnTypes": ["STRING", "LONG"],
            "rows": [["x", 1], ["x", 2], ["y", 5]],
        },
        "operatorDefinition": [
            {"type": "naivePartition", "partitionColumns": ["k"]},
            {
                "type": "window",
                "processor": {
                    "type": "offset",
                    "inputColumn": "v",
                    "outputColumn": "n",
                    "offset": 1,
                },
            },
        ],
    }
    assert run(q) == [["x", 1, 2], ["x", 2, None], ["y", 5, None]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"operatorDefinition": [{"type": "glueingPartition"}]},
            "operator type [glueingPartition]",
        ),
        (
            {"operatorDefinition": [{"type": "window", "processor": {"type": "lag"}}]},
            "processor type [lag]",
        ),
        (
            {
                "operatorDefinition": [
                    {
                        "type": "window",
                        "processor": {
                            "type": "framedAgg",
                            "frame": _frame("ROWS", None, None, []),
                            "aggregations": [{"type": "thetaSketch", "name": "x"}],
                        },
                    }
                ]
            },
            "aggregation type [thetaSketch]",
        ),
        ({"dataSource": "foo"}, "query or inline data source"),
        ({"leafOperators": [{"type": "scan"}]}, "leafOperators"),
    ],
)
def test_refused_with_the_unknown_name(change: dict[str, Any], message: str) -> None:
    q = {**window(SCAN, [{"type": "naivePartition", "partitionColumns": []}]), **change}
    with pytest.raises(QueryParseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_query(q)


def test_unknown_column_refused() -> None:
    q = window(SCAN, [{"type": "naivePartition", "partitionColumns": ["nope"]}])
    with pytest.raises(QueryParseError, match="nope"):
        run(q)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT FLOOR(__time TO DAY) t, SUM(cnt) c, "
        "SUM(SUM(cnt)) OVER (ORDER BY FLOOR(__time TO DAY)) cc FROM foo GROUP BY 1",
        "SELECT dim2, LAG(dim2, 1) OVER () AS l FROM foo "
        "WHERE dim2 IS NULL OR CHAR_LENGTH(dim2) > 0 GROUP BY dim2",
        "SELECT dim1, m1, RANK() OVER (PARTITION BY dim2 ORDER BY m1 DESC) r, "
        "COUNT(dim2) OVER (ORDER BY m1 ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) c, "
        "MIN(dim1) OVER (PARTITION BY dim2) mn, AVG(m2) OVER () a FROM foo",
    ],
)
def test_explain_shows_the_native_query_and_it_answers_as_sql(text: str) -> None:
    plan = orjson.loads(sql(f"EXPLAIN PLAN FOR {text}").result.rows()[0][0])[0]
    query = plan["query"]
    assert query["queryType"] == "windowOperator"
    assert query["dataSource"]["type"] == "query"
    names = [s["name"] for s in plan["signature"]]
    rows = [dict(zip(names, r, strict=True)) for r in run(query)]
    got = [[row[m["queryColumn"]] for m in plan["columnMappings"]] for row in rows]
    want = sql(text).result.rows()

    def norm(rs: list[list[Any]]) -> list[list[Any]]:
        return [
            [v if not isinstance(v, str) or not v.endswith("Z") else v[:10] for v in r] for r in rs
        ]

    # __time: epoch millis natively, ISO text in SQL
    from datetime import UTC, datetime

    def day(v: Any) -> Any:
        if isinstance(v, int) and v > 10**11:
            return datetime.fromtimestamp(v / 1000, UTC).strftime("%Y-%m-%d")
        return v

    assert [[day(v) for v in r] for r in got] == norm(want)
