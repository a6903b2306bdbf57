"""Native queries over arrays and multi-value strings: the filtered multi-value virtual columns
(``mv-filtered``, ``mv-regex-filtered``, ``mv-prefix-filtered``) and groupBy on ARRAY
dimensions, over Druid's ``foo`` rows in two segments (``test_sql_druid_foo``). Expected answers
are Druid's (CalciteMultiValueStringQueryTest's ListFilteredVirtualColumn plans,
CalciteArraysQueryTest's array grouping)."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import QueryParseError
from common.query import finalize, merge, parse_query, run_segment
from tests.unit.test_sql_druid_foo import SEGMENTS

DIM3 = {"type": "default", "dimension": "dim3", "outputName": "dim3", "outputType": "STRING"}


def native(query: dict[str, Any]) -> list[dict[str, Any]]:
    q = parse_query(query)
    partials = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS]
    return finalize(q, merge(q, partials))


def grouped(vc: dict[str, Any], output_type: str = "STRING", **extra: Any) -> list[Any]:
    rows = native(
        {
            "queryType": "groupBy",
            "dataSource": "foo",
            "intervals": ["2000/2002"],
            "granularity": "all",
            "virtualColumns": [vc],
            "dimensions": [
                {
                    "type": "default",
                    "dimension": "v0",
                    "outputName": "d0",
                    "outputType": output_type,
                }
            ],
            "aggregations": [{"type": "longSum", "name": "a0", "fieldName": "cnt"}],
            **extra,
        }
    )
    return [[r["event"]["d0"], r["event"]["a0"]] for r in rows]


def test_mv_filtered_allow_and_deny_lists() -> None:
    # testMultiValueListFilter / testMultiValueListFilterDeny (SQL-compatible answers)
    allow = {"type": "mv-filtered", "name": "v0", "delegate": DIM3, "values": ["b"]}
    assert grouped({**allow, "isAllowList": True}) == [[None, 4], ["b", 2]]
    assert grouped({**allow, "isAllowList": False}) == [
        [None, 2],
        ["", 1],
        ["a", 1],
        ["c", 1],
        ["d", 1],
    ]
    # a null in the list keeps the null rows' [null]
    with_null = {**allow, "values": [None, "a"], "isAllowList": True}
    assert grouped(with_null) == [[None, 5], ["a", 1]]


def test_mv_filtered_rows_read_as_null_by_expressions() -> None:
    # testMultiValueListFilterComposed: array_length of a row with no values left is null
    rows = native(
        {
            "queryType": "groupBy",
            "dataSource": "foo",
            "intervals": ["2000/2002"],
            "granularity": "all",
            "virtualColumns": [
                {"type": "expression", "name": "v0", "expression": 'array_length("v1")'},
                {"type": "mv-filtered", "name": "v1", "delegate": DIM3, "values": ["b"]},
            ],
            "dimensions": [{"type": "default", "dimension": "v0", "outputType": "LONG"}],
            "aggregations": [{"type": "longSum", "name": "a0", "fieldName": "cnt"}],
        }
    )
    assert [[r["event"]["v0"], r["event"]["a0"]] for r in rows] == [[None, 4], [1, 2]]


def test_regex_and_prefix_filtered_columns() -> None:
    # RegexFilteredDimensionSpec: the pattern must match a whole value (Pattern.matches)
    regex = {"type": "mv-regex-filtered", "name": "v0", "delegate": DIM3, "pattern": "[ab]"}
    assert grouped(regex) == [[None, 4], ["a", 1], ["b", 2]]
    assert grouped({**regex, "pattern": "a.*|c"}) == [[None, 4], ["a", 1], ["c", 1]]
    prefix = {"type": "mv-prefix-filtered", "name": "v0", "delegate": DIM3, "prefix": "d"}
    assert grouped(prefix) == [[None, 5], ["d", 1]]


def test_filtered_column_of_a_single_value_dimension_and_as_a_filter() -> None:
    dim1 = {"type": "default", "dimension": "dim1", "outputType": "STRING"}
    vc = {"type": "mv-filtered", "name": "v0", "delegate": dim1, "values": ["abc", "def"]}
    assert grouped(vc) == [[None, 4], ["abc", 1], ["def", 1]]
    rows = native(
        {
            "queryType": "scan",
            "dataSource": "foo",
            "intervals": ["2000/2002"],
            "virtualColumns": [
                {"type": "mv-filtered", "name": "v0", "delegate": DIM3, "values": ["b"]}
            ],
            "filter": {
                "type": "equals",
                "column": "v0",
                "matchValueType": "STRING",
                "matchValue": "b",
            },
            "columns": ["dim1", "dim3"],
            "resultFormat": "compactedList",
        }
    )
    assert [e for batch in rows for e in batch["events"]] == [
        ["", ["a", "b"]],
        ["10.1", ["b", "c"]],
    ]


@pytest.mark.parametrize(
    ("vc", "message"),
    [
        (
            {"type": "mv-regex-filtered", "name": "v0", "delegate": DIM3, "pattern": "("},
            "invalid regular expression",
        ),
        (
            {
                "type": "mv-filtered",
                "name": "v0",
                "delegate": {**DIM3, "outputType": "LONG"},
                "values": ["1"],
            },
            "delegate must be a STRING",
        ),
        ({"type": "mv-prefix-filtered", "name": "v0", "delegate": DIM3}, "prefix"),
    ],
)
def test_bad_filtered_columns_are_400s(vc: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryParseError, match=message):
        grouped(vc)


def test_group_by_whole_arrays() -> None:
    # testMultiValueToArrayGroupAsArrayWithMultiValueDimension (ties: arrays in Druid's order)
    mv = {
        "type": "expression",
        "name": "v0",
        "expression": 'mv_to_array("dim3")',
        "outputType": "ARRAY<STRING>",
    }
    by_sum = {
        "limitSpec": {
            "type": "default",
            "columns": [
                {"dimension": "a0", "direction": "descending", "dimensionOrder": "numeric"}
            ],
        }
    }
    assert grouped(mv, "ARRAY<STRING>", **by_sum) == [
        [None, 2],
        [[""], 1],
        [["a", "b"], 1],
        [["b", "c"], 1],
        [["d"], 1],
    ]
    # testArrayGroupAsArrayWithFunction: array(array_ordinal("dim3", 2))
    fn = {**mv, "expression": 'array(array_ordinal("dim3",2))'}
    assert grouped(fn, "ARRAY<STRING>", **by_sum) == [[[None], 4], [["b"], 1], [["c"], 1]]
    # numbers, ordered as arrays (descending, natural), across both segments
    longs = {**mv, "expression": 'array("cnt", strlen("dim1"))', "outputType": "ARRAY<LONG>"}
    natural = {
        "limitSpec": {
            "type": "default",
            "columns": [
                {"dimension": "d0", "direction": "descending", "dimensionOrder": "natural"}
            ],
        }
    }
    assert grouped(longs, "ARRAY<LONG>", **natural) == [
        [[1, 4], 1],
        [[1, 3], 2],
        [[1, 1], 2],
        [[1, 0], 1],
    ]
    doubles = {**mv, "expression": 'array("m1")', "outputType": "ARRAY<DOUBLE>"}
    assert grouped(doubles, "ARRAY<DOUBLE>")[:2] == [[[1.0], 1], [[2.0], 1]]


def test_null_filter_on_an_array_column_tests_the_whole_array() -> None:
    rows = native(
        {
            "queryType": "timeseries",
            "dataSource": "foo",
            "intervals": ["2000/2002"],
            "granularity": "all",
            "virtualColumns": [
                {
                    "type": "expression",
                    "name": "v0",
                    "expression": 'array_slice(mv_to_array("dim3"), 1)',
                    "outputType": "ARRAY<STRING>",
                }
            ],
            "aggregations": [
                {
                    "type": "filtered",
                    "name": "a0",
                    "filter": {"type": "not", "field": {"type": "null", "column": "v0"}},
                    "aggregator": {"type": "count", "name": "a0"},
                }
            ],
        }
    )
    # [a,b]->[b], [b,c]->[c], [d]->[], [""]->[]: four arrays (two empty), two nulls
    assert rows[0]["result"]["a0"] == 4


def test_top_n_refuses_array_dimensions() -> None:
    with pytest.raises(QueryParseError, match="topN dimension outputType"):
        parse_query(
            {
                "queryType": "topN",
                "dataSource": "foo",
                "intervals": ["2000/2002"],
                "dimension": {"type": "default", "dimension": "v0", "outputType": "ARRAY<STRING>"},
                "metric": "a0",
                "threshold": 3,
                "aggregations": [{"type": "count", "name": "a0"}],
            }
        )


def test_equals_filter_on_an_array_matches_whole_arrays() -> None:
    rows = native(
        {
            "queryType": "scan",
            "dataSource": "foo",
            "intervals": ["2000/2002"],
            "virtualColumns": [
                {
                    "type": "expression",
                    "name": "v0",
                    "expression": 'array("cnt", "m1")',
                    "outputType": "ARRAY<LONG>",
                }
            ],
            "filter": {
                "type": "equals",
                "column": "v0",
                "matchValueType": "ARRAY<LONG>",
                "matchValue": [1, 2],
            },
            "columns": ["dim1"],
            "resultFormat": "compactedList",
        }
    )
    assert [e for batch in rows for e in batch["events"]] == [["10.1"]]
    with pytest.raises(QueryParseError, match="does not fit matchValueType"):
        parse_query(
            {
                "queryType": "scan",
                "dataSource": "foo",
                "intervals": ["2000/2002"],
                "filter": {
                    "type": "equals",
                    "column": "v0",
                    "matchValueType": "ARRAY<LONG>",
                    "matchValue": 1,
                },
            }
        )
