"""BIT_AND / BIT_OR / BIT_XOR over Druid's ``foo`` (``test_sql_druid_foo``, two segments, so
partials merge): Druid's plan (BitwiseSqlAggregator: a not-null ``filtered`` ``expression``
aggregator folding ``bitwiseAnd("__acc", x)`` from ``0``) and its answers, and the native
numeric fold's null handling (ExpressionLambdaAggregatorFactory)."""

from __future__ import annotations

from functools import reduce
from typing import Any

import pytest

from common.errors import QueryParseError
from common.query import finalize, merge, parse_query, run_segment
from tests.unit.test_sql_druid_foo import ROWS, SEGMENTS, sql

M1 = [int(r[4]) for r in ROWS]  # 1.0 .. 6.0


def test_bitwise_aggregates_plan_and_answer_as_druid() -> None:
    answer = sql("SELECT BIT_AND(cnt), BIT_OR(m1), BIT_XOR(m1), BIT_OR(cnt + 2) FROM foo")
    # Druid folds from 0: BIT_AND of any aggregated row is 0.
    or_m1 = reduce(lambda a, b: a | b, M1)
    xor_m1 = reduce(lambda a, b: a ^ b, M1)
    assert answer.result.rows() == [[0, or_m1, xor_m1, 3]]
    assert answer.result.sql_types[:3] == ["BIGINT"] * 3
    a0 = answer.plan.native["aggregations"][0]
    assert a0 == {
        "type": "filtered",
        "name": "a0",
        "filter": {"type": "not", "field": {"type": "null", "column": "cnt"}},
        "aggregator": {
            "type": "expression",
            "name": "a0",
            "fields": ["cnt"],
            "initialValue": "0",
            "shouldAggregateNullInputs": False,
            "shouldCombineAggregateNullInputs": False,
            "fold": 'bitwiseAnd("__acc", "cnt")',
        },
    }
    assert answer.plan.native["aggregations"][3]["aggregator"]["fields"] == ["v0"]


def test_bitwise_per_group_and_empty_groups_are_null() -> None:
    got = sql(
        "SELECT dim2, BIT_XOR(m1), BIT_OR(m1) FILTER(WHERE dim1 = 'nonexistent') "
        "FROM foo GROUP BY dim2"
    ).result.rows()
    want: dict[Any, int] = {}
    for r in ROWS:
        want[r[2]] = want.get(r[2], 0) ^ int(r[4])
    assert {row[0]: row[1] for row in got} == want
    assert all(row[2] is None for row in got)


def _fold(**kw: Any) -> dict[str, Any]:
    return {
        "type": "expression",
        "name": "x",
        "fields": ["m1"],
        "initialValue": "0",
        "fold": 'bitwiseOr("__acc", "m1")',
        **kw,
    }


def _native(aggs: list[dict[str, Any]], flt: dict[str, Any] | None = None) -> dict[str, Any]:
    query: dict[str, Any] = {
        "queryType": "timeseries",
        "dataSource": "foo",
        "intervals": ["2000/2002"],
        "granularity": "all",
        "aggregations": aggs,
    }
    if flt is not None:
        query["filter"] = flt
    q = parse_query(query)
    partials = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS]
    rows = finalize(q, merge(q, partials))
    return dict(rows[0]["result"])


def test_native_numeric_fold_initial_value_and_null_handling() -> None:
    none = {"type": "selector", "dimension": "dim1", "value": "nonexistent"}
    assert _native([_fold(initialValue="8")]) == {"x": 8 | reduce(lambda a, b: a | b, M1)}
    assert _native([_fold(initialValue="-1", fold='bitwiseAnd("__acc", "m1")')]) == {
        "x": reduce(lambda a, b: a & b, M1)
    }
    assert _native([_fold()], none) == {"x": None}
    assert _native([_fold(isNullUnlessAggregated=False, initialValue="5")], none) == {"x": 5}


def test_native_numeric_fold_refuses_other_shapes() -> None:
    with pytest.raises(QueryParseError, match="LONG literal"):
        parse_query(
            {
                "queryType": "timeseries",
                "dataSource": "foo",
                "intervals": ["2000/2002"],
                "aggregations": [_fold(initialValue="0.5")],
            }
        )
    with pytest.raises(QueryParseError, match="combine"):
        parse_query(
            {
                "queryType": "timeseries",
                "dataSource": "foo",
                "intervals": ["2000/2002"],
                "aggregations": [_fold(combine='bitwiseXor("__acc", "x")')],
            }
        )


def _group_by(**kw: Any) -> list[dict[str, Any]]:
    q = parse_query(
        {
            "queryType": "groupBy",
            "dataSource": "foo",
            "intervals": ["2000/2002"],
            "granularity": "all",
            "dimensions": ["dim2", "dim1"],
            "aggregations": [
                {"type": "count", "name": "c"},
                {"type": "grouping", "name": "g", "groups": ["dim2", "dim1"]},
            ],
            **kw,
        }
    )
    partials = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS]
    return [r["event"] for r in finalize(q, merge(q, partials))]


def test_native_subtotals_spec_and_grouping_aggregator() -> None:
    got = _group_by(subtotalsSpec=[["dim2"], [], ["dim2", "dim1"]])
    counts: dict[Any, int] = {}
    for r in ROWS:
        counts[r[2]] = counts.get(r[2], 0) + 1
    by_dim2 = sorted(counts.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
    # dim1 not grouped: bit 0 (the last group) set; nothing grouped: both bits.
    first = [{"dim2": k, "dim1": None, "c": n, "g": 1} for k, n in by_dim2]
    assert got[: len(first)] == first
    assert got[len(first)] == {"dim2": None, "dim1": None, "c": len(ROWS), "g": 3}
    rest = got[len(first) + 1 :]
    assert len(rest) == len({(r[2], r[1]) for r in ROWS})
    assert {row["g"] for row in rest} == {0}
    assert sum(row["c"] for row in rest) == len(ROWS)
    # Without subtotals the grouping aggregator is 0; a limit applies to each subtotal.
    assert {row["g"] for row in _group_by()} == {0}
    limited = _group_by(
        subtotalsSpec=[["dim2"], []],
        limitSpec={"type": "default", "limit": 1, "columns": ["dim1"]},
    )
    assert limited == [first[0], {"dim2": None, "dim1": None, "c": len(ROWS), "g": 3}]


def test_native_subtotals_spec_names_dimensions() -> None:
    with pytest.raises(QueryParseError, match="not a dimension"):
        _group_by(subtotalsSpec=[["dim3"]])
