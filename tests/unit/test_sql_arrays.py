"""Arrays, multi-value strings, array aggregates and UNNEST in SQL, over Druid's ``foo`` test
datasource (``test_sql_druid_foo``). Expected answers are Druid's own: CalciteArraysQueryTest
(ARRAY_AGG, ARRAY_TO_STRING, ARRAY_OFFSET_OF...), the quidem cases ``unnest.iq`` and
``testUnnestWithNotFiltersOnUnnestedColumn`` / ``testUnnestExtractionFn``, and the native plans
they print (expression aggregator shapes, ``unnest`` datasource)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from common.errors import PlanValidationError, ResourceLimitExceeded
from common.expr import parse_expression
from common.query import finalize, merge, parse_query, run_segment
from common.query.sql.results import write_result
from tests.unit.test_sql_druid_foo import SEGMENTS, sql


def rows(text: str, **context: Any) -> list[list[Any]]:
    return sql(text, **context).result.rows()


def test_array_agg_matches_druid() -> None:
    answer = sql(
        "SELECT ARRAY_AGG(dim1), ARRAY_AGG(DISTINCT dim1), ARRAY_AGG(DISTINCT dim1) "
        "FILTER(WHERE dim1 = 'shazbot') FROM foo WHERE dim1 is not null"
    )
    assert answer.result.rows() == [
        ['["","10.1","2","1","def","abc"]', '["","1","10.1","2","abc","def"]', None]
    ]
    assert answer.result.sql_types == ["ARRAY"] * 3
    assert answer.result.native_types == ["ARRAY<STRING>"] * 3
    a0 = answer.plan.native["aggregations"][0]
    assert a0 == {
        "type": "expression",
        "name": "a0",
        "fields": ["dim1"],
        "accumulatorIdentifier": "__acc",
        "initialValue": "ARRAY<STRING>[]",
        "initialCombineValue": "ARRAY<STRING>[]",
        "isNullUnlessAggregated": True,
        "shouldAggregateNullInputs": True,
        "shouldCombineAggregateNullInputs": False,
        "fold": 'array_append("__acc", "dim1")',
        "combine": 'array_concat("__acc", "a0")',
    }
    assert answer.plan.native["aggregations"][1]["fold"] == 'array_set_add("__acc", "dim1")'


def test_array_agg_multi_value_and_numbers() -> None:
    assert rows("SELECT ARRAY_AGG(dim3), ARRAY_AGG(DISTINCT dim3) FROM foo") == [
        ['["a","b","b","c","d","",null,null]', '[null,"","a","b","c","d"]']
    ]
    assert rows("SELECT ARRAY_AGG(m1), ARRAY_AGG(DISTINCT cnt, 128) FROM foo") == [
        ["[1.0,2.0,3.0,4.0,5.0,6.0]", "[1]"]
    ]
    assert rows("SELECT ARRAY_TO_STRING(ARRAY_AGG(DISTINCT dim1), ',') FROM foo") == [
        [",1,10.1,2,abc,def"]
    ]
    assert rows("SELECT ARRAY_TO_STRING(ARRAY_AGG(DISTINCT CONCAT(dim1, dim2)), ',') FROM foo") == [
        ["null,1a,2,a,defabc"]
    ]
    grouped = rows(
        "SELECT dim2, ARRAY_AGG(DISTINCT dim1) AS arr FROM foo WHERE dim1 IS NOT NULL "
        "GROUP BY 1 ORDER BY 1",
        sqlStringifyArrays=False,
    )
    assert grouped == [[None, ["10.1", "abc"]], ["", ["2"]], ["a", ["", "1"]], ["abc", ["def"]]]


def test_string_agg_and_array_concat_agg() -> None:
    answer = sql(
        "SELECT STRING_AGG(dim1, ','), STRING_AGG(DISTINCT dim1, ','), LISTAGG(dim3, ';'), "
        "ARRAY_CONCAT_AGG(MV_TO_ARRAY(dim3)), ARRAY_CONCAT_AGG(DISTINCT MV_TO_ARRAY(dim3)) "
        "FROM foo"
    )
    assert answer.result.rows() == [
        [
            ",10.1,2,1,def,abc",
            ",1,10.1,2,abc,def",
            "a;b;b;c;d;",
            '["a","b","b","c","d",""]',
            '["","a","b","c","d"]',
        ]
    ]
    assert answer.result.sql_types[:3] == ["VARCHAR"] * 3
    string_agg = answer.plan.native["aggregations"][0]
    assert string_agg["type"] == "filtered"
    assert string_agg["aggregator"]["finalize"] == (
        "if(array_length(o) == 0, null, array_to_string(o, ','))"
    )
    assert rows("SELECT STRING_AGG(dim1, ',') FROM foo WHERE dim1 = 'nope'") == [[None]]


def test_array_agg_refusals_and_limits() -> None:
    with pytest.raises(ResourceLimitExceeded, match="maxSizeBytes"):
        sql("SELECT ARRAY_AGG(dim1, 10) FROM foo")
    with pytest.raises(PlanValidationError, match="ARRAY_CONCAT_AGG needs an ARRAY"):
        sql("SELECT ARRAY_CONCAT_AGG(dim1) FROM foo")
    with pytest.raises(PlanValidationError, match="separator"):
        sql("SELECT STRING_AGG(dim1, dim2) FROM foo")
    with pytest.raises(PlanValidationError, match="only supported over a Druid datasource"):
        sql("SELECT ARRAY_AGG(x) FROM (SELECT dim1 AS x FROM foo) t")


def test_array_functions_over_multi_value_columns() -> None:
    # CalciteArraysQueryTest: testArrayOffsetOf, testArrayToString (SQL-compatible answers)
    assert rows(
        "SELECT ARRAY_OFFSET_OF(dim3, 'b'), SUM(cnt) FROM foo GROUP BY 1 ORDER BY 2 DESC"
    ) == [
        [None, 4],
        [0, 1],
        [1, 1],
    ]
    assert rows(
        "SELECT ARRAY_TO_STRING(dim3, ','), SUM(cnt) FROM foo GROUP BY 1 ORDER BY 2 DESC"
    ) == [
        [None, 2],
        ["", 1],
        ["a,b", 1],
        ["b,c", 1],
        ["d", 1],
    ]
    answer = sql(
        "SELECT MV_TO_ARRAY(dim3), ARRAY_LENGTH(dim3), MV_APPEND(dim3, 'x'), "
        "ARRAY_APPEND(dim3, 'x') FROM foo WHERE dim1 IN ('', '2')"
    )
    assert answer.result.rows() == [
        ['["a","b"]', 2, '["a","b","x"]', '["a","b","x"]'],
        ['["d"]', 1, '["d","x"]', '["d","x"]'],
    ]
    assert answer.result.sql_types == ["ARRAY", "BIGINT", "VARCHAR", "ARRAY"]
    vcs = answer.plan.native["virtualColumns"]
    assert vcs[0] == {
        "type": "expression",
        "name": "v0",
        "expression": 'mv_to_array("dim3")',
        "outputType": "ARRAY<STRING>",
    }
    assert rows("SELECT dim1 FROM foo WHERE ARRAY_CONTAINS(dim3, 'b')") == [[""], ["10.1"]]


def test_constant_arrays_at_the_broker() -> None:
    answer = sql(
        "SELECT ARRAY['a','b'], ARRAY[1, 2.5], MV_SLICE(STRING_TO_MV('a,b,c', ','), 1), "
        "STRING_TO_ARRAY('a,b', ','), ARRAY_CONCAT(ARRAY[1], ARRAY[2,3]), "
        "ARRAY_CONTAINS(ARRAY['a','b'], 'a'), SCALAR_IN_ARRAY('z', ARRAY['a','b']), "
        "ARRAY_ORDINAL(ARRAY[10, 20], 2), ARRAY_TO_MV(ARRAY['p','q'])"
    )
    assert answer.result.rows() == [
        [
            '["a","b"]',
            "[1.0,2.5]",
            '["b","c"]',
            '["a","b"]',
            "[1,2,3]",
            True,
            False,
            20,
            '["p","q"]',
        ]
    ]
    assert answer.result.native_types[:2] == ["ARRAY<STRING>", "ARRAY<DOUBLE>"]
    plain = rows("SELECT ARRAY[1, 2]", sqlStringifyArrays=False)
    assert plain == [[[1, 2]]]
    body = write_result(sql("SELECT ARRAY[1.0, 2]", sqlStringifyArrays="false").result, "array")
    assert body == b"[[[1.0,2.0]]]\n"


def test_multi_value_results_are_coerced_as_druid() -> None:
    # SqlResults.coerce: a VARCHAR holding several values is the JSON text of the list.
    assert rows("SELECT dim3 FROM foo") == [
        ['["a","b"]'],
        ['["b","c"]'],
        ["d"],
        [""],
        [None],
        [None],
    ]


def test_unnest_matches_druid_quidem() -> None:
    answer = sql("SELECT d3 FROM foo, UNNEST(MV_TO_ARRAY(dim3)) as unnested (d3) where d3 <> 'd'")
    assert sorted(r[0] for r in answer.result.rows()) == ["", "a", "b", "b", "c"]
    assert answer.plan.native["dataSource"] == {
        "type": "unnest",
        "base": {"type": "table", "name": "foo"},
        "virtualColumn": {
            "type": "expression",
            "name": "j0.unnest",
            "expression": 'mv_to_array("dim3")',
            "outputType": "ARRAY<STRING>",
        },
        "unnestFilter": None,
    }
    filtered = sql(
        "SELECT d3 FROM (select * from foo where dim2='a'), UNNEST(MV_TO_ARRAY(dim3)) "
        "as unnested (d3)"
    )
    assert sorted(r[0] for r in filtered.result.rows()) == ["", "a", "b"]
    assert filtered.plan.native["dataSource"]["base"]["type"] == "filter"
    extraction = rows(
        "SELECT substring(d3,1) FROM foo, UNNEST(MV_TO_ARRAY(dim3)) as unnested (d3) "
        "WHERE substring(d3,1) <> 'b'"
    )
    assert sorted(r[0] for r in extraction) == ["a", "c", "d"]


def test_unnest_grouped_and_constant() -> None:
    assert rows(
        "SELECT d3, COUNT(*) FROM foo CROSS JOIN UNNEST(MV_TO_ARRAY(dim3)) AS t(d3) "
        "GROUP BY d3 ORDER BY d3"
    ) == [["", 1], ["a", 1], ["b", 2], ["c", 1], ["d", 1]]
    assert rows(
        "SELECT dim1, t.x FROM foo CROSS JOIN UNNEST(ARRAY[m1, cnt]) AS t(x) WHERE dim1 = 'abc'"
    ) == [
        ["abc", 6.0],
        ["abc", 1.0],
    ]
    assert rows("SELECT * FROM UNNEST(ARRAY[1,2,3]) AS t(x)") == [[1], [2], [3]]
    assert rows("SELECT SUM(x) FROM UNNEST(ARRAY[1,2,3]) AS t(x)") == [[6]]
    with pytest.raises(PlanValidationError, match="UNNEST"):
        sql(
            "SELECT * FROM foo, UNNEST(MV_TO_ARRAY(dim3)) AS a(x), "
            "UNNEST(MV_TO_ARRAY(dim3)) AS b(y)"
        )


def test_refused_with_a_400() -> None:
    with pytest.raises(PlanValidationError, match="MV_FILTER_ONLY"):
        sql("SELECT MV_FILTER_ONLY(dim3, ARRAY['b']) FROM foo")
    with pytest.raises(PlanValidationError, match="GROUP BY an ARRAY"):
        sql("SELECT MV_TO_ARRAY(dim3), COUNT(*) FROM foo GROUP BY 1")


def _native(query: dict[str, Any]) -> list[dict[str, Any]]:
    q = parse_query(query)
    partials = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS]
    return finalize(q, merge(q, partials))


def test_native_expression_aggregator_refuses_other_folds() -> None:
    from common.errors import QueryParseError

    with pytest.raises(QueryParseError, match="fold"):
        parse_query(
            {
                "queryType": "timeseries",
                "dataSource": "foo",
                "intervals": ["2000/2002"],
                "aggregations": [
                    {
                        "type": "expression",
                        "name": "s",
                        "fields": ["m1"],
                        "initialValue": "0",
                        "fold": "__acc + m1",
                    }
                ],
            }
        )


def test_native_unnest_of_a_string_column_and_an_inline_base() -> None:
    result = _native(
        {
            "queryType": "groupBy",
            "dataSource": {
                "type": "unnest",
                "base": "foo",
                "virtualColumn": {"type": "expression", "name": "dim3", "expression": '"dim3"'},
                "unnestFilter": {"type": "in", "dimension": "dim3", "values": ["b", "c"]},
            },
            "intervals": ["2000/2002"],
            "granularity": "all",
            "dimensions": ["dim3"],
            "aggregations": [{"type": "count", "name": "c"}],
        }
    )
    assert [(r["event"]["dim3"], r["event"]["c"]) for r in result] == [("b", 2), ("c", 1)]


def test_mv_to_array_and_typed_empty_arrays() -> None:
    table = pa.table({"tags": pa.array([["a", "b"], None], pa.list_(pa.string()))})
    assert parse_expression('mv_to_array("tags")').evaluate_table(table).to_pylist() == [
        ["a", "b"],
        None,
    ]
    assert parse_expression("array_to_mv([1, 2])").evaluate({}) == ["1", "2"]
    assert parse_expression("ARRAY<LONG>[]").evaluate({}) == []
