"""SQL ``MV_FILTER_ONLY``/``MV_FILTER_NONE``/``MV_FILTER_REGEX``/``MV_FILTER_PREFIX``, ``GROUP BY``
an ARRAY and ``COUNT`` of an ARRAY, over Druid's ``foo`` (``test_sql_druid_foo``). Expected
answers and native plans are Druid's: CalciteMultiValueStringQueryTest (testMultiValueListFilter,
...Deny, ...Composed, ...ComposedNested, ...ComposedNested2Input, testFilterOnMultiValueListFilter*,
testMultiValueToArrayGroupAsArray*) and CalciteArraysQueryTest (testArrayGroupAsArrayWithFunction),
SQL-compatible null handling."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import PlanValidationError
from tests.unit.test_sql_druid_foo import sql

DIM3 = {"type": "default", "dimension": "dim3", "outputName": "dim3", "outputType": "STRING"}


def mv_filtered(name: str, values: list[Any], allow: bool = True) -> dict[str, Any]:
    return {
        "type": "mv-filtered",
        "name": name,
        "delegate": DIM3,
        "values": values,
        "isAllowList": allow,
    }


def rows(text: str, **context: Any) -> list[list[Any]]:
    return sql(text, **context).result.rows()


def test_mv_filter_only_and_none_group_as_druid() -> None:
    answer = sql(
        "SELECT MV_FILTER_ONLY(dim3, ARRAY['b']), SUM(cnt) FROM foo GROUP BY 1 ORDER BY 2 DESC"
    )
    assert answer.result.rows() == [[None, 4], ["b", 2]]
    native = answer.plan.native
    assert native["virtualColumns"] == [mv_filtered("v0", ["b"])]
    assert native["dimensions"] == [
        {"type": "default", "dimension": "v0", "outputName": "d0", "outputType": "STRING"}
    ]
    assert rows(
        "SELECT MV_FILTER_NONE(dim3, ARRAY['b']), SUM(cnt) FROM foo GROUP BY 1 ORDER BY 2 DESC"
    ) == [
        [None, 2],
        ["", 1],
        ["a", 1],
        ["c", 1],
        ["d", 1],
    ]


def test_mv_filter_composed_in_expressions() -> None:
    composed = sql(
        "SELECT MV_LENGTH(MV_FILTER_ONLY(dim3, ARRAY['b'])), SUM(cnt) FROM foo "
        "GROUP BY 1 ORDER BY 2 DESC"
    )
    assert composed.result.rows() == [[None, 4], [1, 2]]
    assert composed.plan.native["virtualColumns"] == [
        {
            "type": "expression",
            "name": "v0",
            "expression": 'array_length("v1")',
            "outputType": "LONG",
        },
        mv_filtered("v1", ["b"]),
    ]
    assert rows(
        "SELECT MV_LENGTH(MV_FILTER_NONE(dim3, ARRAY['b'])), SUM(cnt) FROM foo "
        "GROUP BY 1 ORDER BY 2 DESC"
    ) == [[1, 4], [None, 2]]
    assert rows(
        "SELECT MV_LENGTH(MV_FILTER_ONLY(dim3, ARRAY['b'])), MV_LENGTH(dim3), SUM(cnt) FROM foo "
        "GROUP BY 1,2 ORDER BY 3 DESC"
    ) == [[None, None, 2], [None, 1, 2], [1, 2, 2]]
    # one input: Druid's deferred selector gives the rows with no value left no value at all
    nested = sql(
        "SELECT COALESCE(MV_FILTER_ONLY(dim3, ARRAY['b']), 'no b'), SUM(cnt) FROM foo "
        "GROUP BY 1 ORDER BY 2 DESC"
    )
    assert nested.result.rows() == [[None, 4], ["b", 2]]
    assert nested.plan.native["virtualColumns"][0]["expression"] == "nvl(\"v1\",'no b')"
    # two inputs: those rows are mapped as [null], so dim1 fills them in
    assert rows(
        "SELECT COALESCE(MV_FILTER_ONLY(dim3, ARRAY['b']), dim1), SUM(cnt) FROM foo "
        "GROUP BY 1 ORDER BY 2 DESC"
    ) == [["b", 2], ["1", 1], ["2", 1], ["abc", 1], ["def", 1]]


def test_filters_on_mv_filter() -> None:
    match = sql(
        "SELECT dim3, SUM(cnt) FROM foo WHERE MV_FILTER_ONLY(dim3, ARRAY['b']) = 'b' "
        "GROUP BY 1 ORDER BY 2 DESC"
    )
    assert match.result.rows() == [["b", 2], ["a", 1], ["c", 1]]
    assert match.plan.native["filter"] == {
        "type": "equals",
        "column": "v0",
        "matchValueType": "STRING",
        "matchValue": "b",
    }
    assert rows(
        "SELECT dim3, SUM(cnt) FROM foo WHERE MV_FILTER_ONLY(dim3, ARRAY['b']) LIKE 'b%' "
        "GROUP BY 1 ORDER BY 2 DESC"
    ) == [["b", 2], ["a", 1], ["c", 1]]
    assert (
        rows(
            "SELECT dim3, SUM(cnt) FROM foo WHERE MV_FILTER_ONLY(dim3, ARRAY['b']) = 'a' GROUP BY 1"
        )
        == []
    )


def test_mv_filter_select_list_regex_prefix_and_expression_forms() -> None:
    scan = sql(
        "SELECT MV_FILTER_ONLY(dim3, ARRAY['b', 'c']), MV_FILTER_REGEX(dim3, '[ab]'), "
        "MV_FILTER_PREFIX(dim3, 'c') FROM foo WHERE dim1 IN ('', '10.1', '2')"
    )
    assert scan.result.rows() == [
        ["b", '["a","b"]', None],
        ['["b","c"]', "b", "c"],
        [None, None, None],
    ]
    assert [vc["type"] for vc in scan.plan.native["virtualColumns"]] == [
        "mv-filtered",
        "mv-regex-filtered",
        "mv-prefix-filtered",
    ]
    assert scan.plan.native["virtualColumns"][1]["pattern"] == "[ab]"
    assert scan.plan.native["virtualColumns"][2]["prefix"] == "c"
    # of an expression of one string column: that expression is lifted into its own virtual
    # column, the filtered column's delegate (Druid's toFilterDelegate); the regex matches in full
    lifted = sql(
        "SELECT MV_FILTER_ONLY(CONCAT(dim3, 'x'), ARRAY['bx']), MV_FILTER_REGEX(CONCAT(dim3, 'x'), "
        "'a'), MV_FILTER_REGEX(CONCAT(dim3, 'x'), 'ax') FROM foo WHERE dim1 IN ('', '10.1')"
    )
    assert lifted.result.rows() == [["bx", None, "ax"], ["bx", None, None]]
    vcs = lifted.plan.native["virtualColumns"]
    assert vcs[0] == {
        "type": "expression",
        "name": "v0",
        "expression": "concat(\"dim3\",'x')",
        "outputType": "STRING",
    }
    assert vcs[1]["delegate"] == {
        "type": "default",
        "dimension": "v0",
        "outputName": "v0",
        "outputType": "STRING",
    }
    # of anything else (two columns, an array result): Druid's filter((x) -> ...) expressions
    expr = sql(
        "SELECT MV_FILTER_ONLY(CONCAT(dim3, dim2), ARRAY['ba']), MV_FILTER_NONE(MV_APPEND(dim3, "
        "'x'), ARRAY['x']), MV_FILTER_REGEX(MV_APPEND(dim3, 'x'), 'a'), MV_FILTER_PREFIX("
        "CONCAT(dim3, dim2), 'a') FROM foo WHERE dim1 IN ('', '10.1')"
    )
    assert expr.result.rows() == [
        ["ba", '["a","b"]', "a", "aa"],
        [None, '["b","c"]', None, None],
    ]
    assert [vc["expression"] for vc in expr.plan.native["virtualColumns"]] == [
        'filter((x) -> array_contains(array(\'ba\'), x), concat("dim3","dim2"))',
        "filter((x) -> !array_contains(array('x'), x), array_append(\"dim3\",'x'))",
        "filter((x) -> regexp_like(x, 'a'), array_append(\"dim3\",'x'))",
        'filter((x) -> substring(x, 0, 1) == \'a\', concat("dim3","dim2"))',
    ]


def test_mv_filter_refusals() -> None:
    with pytest.raises(PlanValidationError, match="non-empty array literal"):
        sql("SELECT MV_FILTER_ONLY(dim3, ARRAY[]) FROM foo")
    with pytest.raises(PlanValidationError, match="must be a string literal"):
        sql("SELECT MV_FILTER_REGEX(dim3, dim1) FROM foo")
    with pytest.raises(PlanValidationError, match="Invalid number of arguments"):
        sql("SELECT MV_FILTER_PREFIX(dim3) FROM foo")


def test_group_by_arrays() -> None:
    answer = sql(
        "SELECT MV_TO_ARRAY(dim3), SUM(cnt) FROM foo GROUP BY 1 ORDER BY 2 DESC",
        sqlStringifyArrays=False,
    )
    assert answer.result.rows() == [
        [None, 2],
        [[""], 1],
        [["a", "b"], 1],
        [["b", "c"], 1],
        [["d"], 1],
    ]
    native = answer.plan.native
    assert native["queryType"] == "groupBy"
    assert native["dimensions"] == [
        {"type": "default", "dimension": "v0", "outputName": "d0", "outputType": "ARRAY<STRING>"}
    ]
    assert native["virtualColumns"][0]["outputType"] == "ARRAY<STRING>"
    # not a topN, even with ORDER BY an aggregate and LIMIT
    limited = sql(
        "SELECT MV_TO_ARRAY(dim1), SUM(cnt) FROM foo GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        sqlStringifyArrays=False,
    )
    assert limited.plan.query_type == "groupBy"
    assert limited.result.rows() == [[[v], 1] for v in ["", "1", "10.1", "2", "abc", "def"]]
    assert rows(
        "SELECT ARRAY[ARRAY_ORDINAL(dim3, 2)], SUM(cnt) FROM foo GROUP BY 1 ORDER BY 2 DESC",
        sqlStringifyArrays=False,
    ) == [[[None], 4], [["b"], 1], [["c"], 1]]
    # stringified by default; ordered by the array itself (natural order)
    ordered = sql("SELECT ARRAY[cnt, m1], COUNT(*) FROM foo GROUP BY 1 ORDER BY 1 DESC LIMIT 2")
    assert ordered.result.rows() == [["[1.0,6.0]", 1], ["[1.0,5.0]", 1]]
    assert ordered.plan.native["limitSpec"]["columns"][0]["dimensionOrder"] == "natural"
    # an ARRAY key used in the select list at the broker, and HAVING over the groups
    assert rows(
        "SELECT ARRAY_TO_STRING(MV_TO_ARRAY(dim3), '|') AS s, COUNT(*) FROM foo "
        "GROUP BY MV_TO_ARRAY(dim3) HAVING COUNT(*) > 0 ORDER BY MV_TO_ARRAY(dim3) DESC"
    ) == [["d", 1], ["b|c", 1], ["a|b", 1], ["", 1], [None, 2]]


def test_count_of_an_array() -> None:
    answer = sql(
        "SELECT COUNT(MV_TO_ARRAY(dim3)), COUNT(ARRAY_SLICE(MV_TO_ARRAY(dim3), 1)) FROM foo"
    )
    # an empty array is not null (ARRAY_SLICE of the one-value rows)
    assert answer.result.rows() == [[4, 4]]
    assert answer.plan.native["aggregations"][0] == {
        "type": "filtered",
        "name": "a0",
        "filter": {"type": "not", "field": {"type": "null", "column": "v0"}},
        "aggregator": {"type": "count", "name": "a0"},
    }
    with pytest.raises(PlanValidationError, match="Cannot apply 'MAX'"):
        sql("SELECT MAX(ARRAY[cnt]) FROM foo")


def test_an_empty_array_is_not_null() -> None:
    # An ARRAY keeps [] (a multi-value VARCHAR row with no value reads as null)
    assert rows("SELECT ARRAY_SLICE(MV_TO_ARRAY(dim3), 1) FROM foo") == [
        ['["b"]'],
        ['["c"]'],
        ["[]"],
        ["[]"],
        [None],
        [None],
    ]
    assert rows(
        "SELECT ARRAY_LENGTH(a) FROM (SELECT ARRAY_SLICE(MV_TO_ARRAY(dim3), 1) AS a FROM foo)"
    ) == [[1], [1], [0], [0], [None], [None]]


def test_array_equality_filter() -> None:
    # Druid's EqualityFilter with an ARRAY matchValueType: the whole array must be equal
    answer = sql("SELECT dim1 FROM foo WHERE MV_TO_ARRAY(dim3) = ARRAY['a','b']")
    assert answer.result.rows() == [[""]]
    assert answer.plan.native["filter"] == {
        "type": "equals",
        "column": "v0",
        "matchValueType": "ARRAY<STRING>",
        "matchValue": ["a", "b"],
    }
    assert rows("SELECT dim1 FROM foo WHERE MV_TO_ARRAY(dim3) <> ARRAY['a','b']") == [
        ["10.1"],
        ["2"],
        ["1"],
    ]
    assert rows("SELECT dim1 FROM foo WHERE ARRAY[cnt, m1] = ARRAY[1, 4.0]") == [["1"]]
    with pytest.raises(PlanValidationError, match="Only = of an ARRAY"):
        sql("SELECT dim1 FROM foo WHERE MV_TO_ARRAY(dim3) > ARRAY['a']")


def test_coalesce_of_multi_value_and_of_arrays() -> None:
    # testMultiValueStringOverlapFilterCoalesceNvl (SQL-compatible): nvl over the mapped values
    # of dim3 (its null rows mapped as [null], so 'other'), and nvl of two arrays
    answer = sql(
        "SELECT COALESCE(dim3, 'other') FROM foo WHERE MV_OVERLAP(COALESCE(MV_TO_ARRAY(dim3), "
        "ARRAY['other']), ARRAY['a', 'b', 'other']) LIMIT 5"
    )
    assert answer.result.rows() == [['["a","b"]'], ['["b","c"]'], ["other"], ["other"]]
    assert answer.plan.native["virtualColumns"][0]["expression"] == "nvl(\"dim3\",'other')"
    assert answer.plan.native["filter"]["expression"] == (
        "array_overlap(nvl(mv_to_array(\"dim3\"),array('other')),array('a','b','other'))"
    )


def test_mv_filter_of_a_lookup_has_an_extraction_delegate() -> None:
    # testMultiValuedFilterOnlyWhenLookupPullsInDuplicates: [b, c] looks up to [null, null], a
    # value grouped twice
    from tests.unit.test_sql_lookups import sql as lookup_sql

    answer = lookup_sql(
        "SELECT MV_FILTER_ONLY(LOOKUP(dim3, 'lookyloo'), ARRAY[null]), COUNT(1) FROM foo GROUP BY 1"
    )
    assert answer.result.rows() == [[None, 7]]
    assert answer.plan.native["virtualColumns"] == [
        {
            "type": "mv-filtered",
            "name": "v0",
            "delegate": {
                "type": "extraction",
                "dimension": "dim3",
                "outputName": "dim3",
                "outputType": "STRING",
                "extractionFn": {
                    "type": "registeredLookup",
                    "lookup": "lookyloo",
                    "retainMissingValue": False,
                    "optimize": False,
                },
            },
            "values": [None],
            "isAllowList": True,
        }
    ]
