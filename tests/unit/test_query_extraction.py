"""Druid's extraction functions (``common.query.extraction``) and the ``search``,
``columnComparison`` and ``arrayContainsElement`` filters, over Druid's ``foo`` test datasource
(``tests.unit.test_sql_druid_foo``). Answers worked out from Druid's extraction function sources
and tests (``processing/.../query/extraction``), SQL-compatible nulls."""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa
import pytest
from pydantic import TypeAdapter

from common.errors import InvalidInput, QueryParseError
from common.query import parse_query
from common.query.engine.dims import dimension_values
from common.query.extraction import ExtractionFn
from common.query.filters import ArrayContainsElementFilter
from common.query.specs import DimensionSpec
from tests.unit.test_sql_druid_foo import native

FN: TypeAdapter[Any] = TypeAdapter(ExtractionFn)


def fn(spec: dict[str, Any], values: list[Any], typ: pa.DataType | None = None) -> list[Any]:
    return list(FN.validate_python(spec).apply(pa.array(values, typ)).to_pylist())


def run(query: dict[str, Any]) -> list[dict[str, Any]]:
    return asyncio.run(native(query))


def group_by(dim: Any, flt: dict[str, Any] | None = None) -> list[list[Any]]:
    q: dict[str, Any] = {
        "queryType": "groupBy",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "dimensions": [dim],
        "aggregations": [{"type": "count", "name": "c"}],
    }
    if flt is not None:
        q["filter"] = flt
    return [[r["event"]["d"], r["event"]["c"]] for r in run(q)]


def count(flt: dict[str, Any]) -> int:
    q = {
        "queryType": "timeseries",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "filter": flt,
        "aggregations": [{"type": "count", "name": "c"}],
    }
    rows = run(q)
    return int(rows[0]["result"]["c"]) if rows else 0


def extraction(dimension: str, extraction_fn: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "extraction",
        "dimension": dimension,
        "outputName": "d",
        "extractionFn": extraction_fn,
    }


# --- the functions on their own ------------------------------------------------------------


def test_regex_groups_missing_values_and_nulls() -> None:
    values = ["foo1", "bar22", "baz", None, ""]
    assert fn({"type": "regex", "expr": "([a-z]+)(\\d+)"}, values) == [
        "foo",
        "bar",
        "baz",
        None,
        "",
    ]
    assert fn({"type": "regex", "expr": "[a-z]+(\\d+)", "index": 1}, values)[:2] == ["1", "22"]
    assert fn({"type": "regex", "expr": "\\d+", "index": 0}, values)[:2] == ["1", "22"]
    replaced = {
        "type": "regex",
        "expr": "\\d+",
        "index": 0,
        "replaceMissingValue": True,
        "replaceMissingValueWith": "none",
    }
    assert fn(replaced, values) == ["1", "22", "none", "none", "none"]
    # replaceMissingValue without a value: a missing match is null
    assert fn({**replaced, "replaceMissingValueWith": None}, values)[2:] == [None, None, None]
    # an optional group that did not take part is null
    assert fn({"type": "regex", "expr": "(a)?b"}, ["b", "ab"]) == [None, "a"]


def test_partial_search_query_substring_strlen() -> None:
    values = ["apple", "banana", None, "", "Cherry"]
    assert fn({"type": "partial", "expr": "an"}, values) == [None, "banana", None, None, None]
    contains = {"type": "searchQuery", "query": {"type": "contains", "value": "AN"}}
    assert fn(contains, values) == [None, "banana", None, None, None]
    sensitive = {"type": "contains", "value": "AN", "caseSensitive": True}
    assert fn({"type": "searchQuery", "query": sensitive}, values) == [None] * 5
    fragment = {"type": "fragment", "values": ["e", "r"]}
    assert fn({"type": "searchQuery", "query": fragment}, values) == [
        None,
        None,
        None,
        None,
        "Cherry",
    ]
    assert fn({"type": "substring", "index": 1, "length": 3}, values) == [
        "ppl",
        "ana",
        None,
        None,
        "her",
    ]
    assert fn({"type": "substring", "index": 5}, values) == [None, "a", None, None, "y"]
    # Druid's quirk: index 0 with length 0 has no end, so it is the whole value
    assert fn({"type": "substring", "index": 0, "length": 0}, ["abc"]) == ["abc"]
    assert fn({"type": "strlen"}, [*values, "😀"]) == ["5", "6", None, "0", "6", "2"]


def test_upper_lower_string_format() -> None:
    values = ["a B", None, ""]
    assert fn({"type": "upper"}, values) == ["A B", None, ""]
    assert fn({"type": "lower", "locale": "en"}, values) == ["a b", None, ""]
    assert fn({"type": "stringFormat", "format": "[%s]"}, values) == ["[a B]", "[null]", "[]"]
    fmt = {"type": "stringFormat", "format": "%-5s|%3S", "nullHandling": "emptyString"}
    assert fn({**fmt, "format": "%-4s|"}, values) == ["a B |", "    |", "    |"]
    assert fn({**fmt, "format": "%1$S%%"}, values) == ["A B%", "%", "%"]
    returns_null = {"type": "stringFormat", "format": "x%s", "nullHandling": "returnNull"}
    assert fn(returns_null, values) == ["xa B", None, "x"]


def test_bucket_numbers_and_strings() -> None:
    spec = {"type": "bucket", "size": 100, "offset": 0.5}
    assert fn(spec, ["1234.99", "1", "-1", "x", None]) == ["1200.5", "0.5", "-99.5", None, None]
    # Java's Double.parseDouble and String.valueOf(double): suffixes, NaN, and no long form
    # past Long.MAX_VALUE
    ten = {"type": "bucket", "size": 10}
    assert fn(ten, ["12.5f", " 7 ", "NaN", "1e21", "1_0", "-Infinity"]) == [
        "10",
        "0",
        "NaN",
        "1.0E21",
        None,
        "-Infinity",
    ]
    assert fn({"type": "bucket", "size": 3}, [1, 2, 3, 7, None], pa.int64()) == [
        "0",
        "0",
        "3",
        "6",
        None,
    ]
    assert fn({"type": "bucket"}, [1.5, -0.5]) == ["1", "-1"]


DAYS = [
    "2015-01-01T23:00:00Z",
    "2015-01-02T23:00:00Z",
    "2015-03-03T23:00:00Z",
    "2015-03-04T23:00:00Z",
    "2015-05-02T23:00:00Z",
    "2015-12-21T23:00:00Z",
]


def test_time_format_on_millis_and_strings() -> None:
    names = ["Thursday", "Friday", "Tuesday", "Wednesday", "Saturday", "Monday"]
    assert fn({"type": "timeFormat", "format": "EEEE"}, DAYS) == names
    montreal = {"type": "timeFormat", "format": "EEEE", "timeZone": "America/Montreal"}
    assert fn(montreal, DAYS) == names
    assert fn({"type": "timeFormat", "format": "EEEE", "timeZone": "Asia/Tokyo"}, DAYS)[0] == (
        "Friday"
    )
    millis = [0, 86_400_000 + 3_723_004, None]
    assert fn({"type": "timeFormat"}, millis, pa.int64()) == [
        "1970-01-01T00:00:00.000Z",
        "1970-01-02T01:02:03.004Z",
        None,
    ]
    assert fn({"type": "timeFormat", "granularity": "day", "asMillis": True}, millis) == [
        "0",
        "86400000",
        None,
    ]
    # asMillis reads digit strings as millis; without it a string is an ISO time
    as_millis = {"type": "timeFormat", "format": "yyyy-MM-dd HH", "asMillis": True}
    assert fn(as_millis, ["3600000", "2011-02-03T04:05:06Z"]) == [
        "1970-01-01 01",
        "2011-02-03 04",
    ]
    la = {"type": "timeFormat", "format": "yyyy-MM-dd", "timeZone": "America/Los_Angeles"}
    assert fn(la, [0], pa.int64()) == ["1969-12-31"]
    month = {"type": "timeFormat", "granularity": "month", "timeZone": "America/Los_Angeles"}
    # the granularity buckets in UTC (its own zone); timeZone only prints
    assert fn(month, ["2011-03-15T12:00:00Z"]) == ["2011-02-28T16:00:00.000-08:00"]


def test_time_reformats_and_keeps_what_does_not_parse() -> None:
    spec = {"type": "time", "timeFormat": "MM/dd/yyyy", "resultFormat": "yyyy-MM-dd"}
    assert fn(spec, ["01/12/2011", "nope", None]) == ["2011-01-12", "nope", None]
    # SimpleDateFormat (no joda) ignores text after the date; Joda needs all of it
    assert fn(spec, ["01/12/2011 10:00"]) == ["2011-01-12"]
    assert fn({**spec, "joda": True}, ["01/12/2011 10:00"]) == ["01/12/2011 10:00"]
    quarter = {"type": "time", "timeFormat": "yyyy-MM-dd", "resultFormat": "MMM yyyy"}
    assert fn({**quarter, "joda": True}, ["2011-03-04"]) == ["Mar 2011"]


def test_cascade_and_dictionary_input() -> None:
    spec = {
        "type": "cascade",
        "extractionFns": [
            {"type": "regex", "expr": "/([^/]+)/"},
            {"type": "upper"},
            {"type": "substring", "index": 0, "length": 2},
        ],
    }
    values = ["/druid/prod", "/abc/x", "plain", None]
    assert fn(spec, values) == ["DR", "AB", "PL", None]
    coded = pa.array(["b", "a", "b", None]).dictionary_encode()
    assert FN.validate_python({"type": "upper"}).apply(coded).to_pylist() == ["B", "A", "B", None]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "javascript", "function": "x"}, "JavaScript is disabled"),
        ({"type": "identityish"}, r"extractionFn type \[identityish\] is not supported"),
        ({"type": "regex", "expr": "(a)", "index": 2}, "must be between 0 and"),
        ({"type": "regex", "expr": "(a"}, "invalid regex"),
        ({"type": "timeFormat", "format": "EEEE", "locale": "is"}, r"locale \[is\]"),
        ({"type": "timeFormat", "asMillis": True, "timeZone": "UTC"}, "timeZone requires"),
        ({"type": "upper", "locale": "tr"}, r"locale \[tr\] is not supported"),
        ({"type": "stringFormat", "format": "%d"}, "only %s"),
        ({"type": "stringFormat", "format": "%s", "nullHandling": "x"}, "nullHandling"),
        ({"type": "searchQuery", "query": {"type": "all"}}, "search query spec type"),
        ({"type": "substring", "index": -1}, "index"),
    ],
)
def test_refused_functions(spec: dict[str, Any], message: str) -> None:
    q = {
        "queryType": "groupBy",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "dimensions": [extraction("dim1", spec)],
    }
    with pytest.raises(QueryParseError, match=message):
        parse_query(q)


# --- in queries ----------------------------------------------------------------------------
# foo: dim1 '', '10.1', '2', '1', 'def', 'abc'; dim2 'a', null, '', 'a', 'abc', null;
# dim3 [a,b], [b,c], [d], [''], null, null; m1 1..6; three days in 2000, three in 2001.


def test_group_by_extraction_dimensions() -> None:
    first = extraction("dim1", {"type": "substring", "index": 0, "length": 1})
    assert group_by(first) == [[None, 1], ["1", 2], ["2", 1], ["a", 1], ["d", 1]]
    digit = {
        "type": "regex",
        "expr": "^(\\d)",
        "replaceMissingValue": True,
        "replaceMissingValueWith": "none",
    }
    assert group_by(extraction("dim1", digit)) == [["1", 2], ["2", 1], ["none", 3]]
    assert group_by(extraction("m1", {"type": "bucket", "size": 3})) == [
        ["0", 2],
        ["3", 3],
        ["6", 1],
    ]
    assert group_by(extraction("dim3", {"type": "upper"})) == [
        [None, 2],
        ["", 1],
        ["A", 1],
        ["B", 2],
        ["C", 1],
        ["D", 1],
    ]


def test_group_by_time_extraction() -> None:
    year = extraction("__time", {"type": "timeFormat", "format": "yyyy"})
    assert group_by(year) == [["2000", 3], ["2001", 3]]
    local = {"type": "timeFormat", "format": "MM-dd", "timeZone": "America/Los_Angeles"}
    assert group_by(extraction("__time", local))[0] == ["01-01", 2]
    month = {"type": "timeFormat", "granularity": "month"}
    assert group_by(extraction("__time", month)) == [
        ["2000-01-01T00:00:00.000Z", 3],
        ["2001-01-01T00:00:00.000Z", 3],
    ]
    # other functions see __time as its epoch millis
    assert group_by(extraction("__time", {"type": "strlen"})) == [["12", 6]]


def test_top_n_with_an_extraction_dimension() -> None:
    q = {
        "queryType": "topN",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "dimension": extraction("m1", {"type": "bucket", "size": 3}),
        "metric": "c",
        "threshold": 2,
        "aggregations": [{"type": "count", "name": "c"}],
    }
    assert run(q)[0]["result"] == [{"d": "3", "c": 3}, {"d": "0", "c": 2}]


def test_filters_with_extraction_fns() -> None:
    year = {"type": "timeFormat", "format": "yyyy"}
    assert (
        count({"type": "selector", "dimension": "__time", "value": "2001", "extractionFn": year})
        == 3
    )
    strlen = {"type": "strlen"}
    bound = {
        "type": "bound",
        "dimension": "dim1",
        "lower": "2",
        "ordering": "numeric",
        "extractionFn": strlen,
    }
    assert count(bound) == 3  # lengths 0, 4, 1, 1, 3, 3
    first = {"type": "substring", "index": 0, "length": 1}
    assert (
        count({"type": "in", "dimension": "dim1", "values": ["1", "a"], "extractionFn": first}) == 3
    )
    assert (
        count(
            {
                "type": "like",
                "dimension": "dim2",
                "pattern": "A%",
                "extractionFn": {"type": "upper"},
            }
        )
        == 3
    )
    assert (
        count({"type": "regex", "dimension": "dim1", "pattern": "^[0-9]$", "extractionFn": strlen})
        == 6
    )
    # a null extracted value matches a null selector
    assert (
        count({"type": "selector", "dimension": "dim1", "value": None, "extractionFn": first}) == 1
    )


def test_search_filter() -> None:
    def search(query: dict[str, Any], dimension: str = "dim2", **extra: Any) -> int:
        return count({"type": "search", "dimension": dimension, "query": query, **extra})

    assert search({"type": "contains", "value": "A"}) == 3
    assert search({"type": "contains", "value": "A", "caseSensitive": True}) == 0
    assert search({"type": "insensitive_contains", "value": "BC"}) == 1
    assert search({"type": "fragment", "values": ["a", "c"]}) == 1
    assert search({"type": "contains"}) == 0  # Druid's contains without a value: no match
    assert search({"type": "regex", "pattern": "^d"}, "dim1") == 1
    assert search({"type": "contains", "value": "b"}, "dim3") == 2  # any value of a row
    upper = {"type": "upper"}
    assert (
        search({"type": "contains", "value": "A", "caseSensitive": True}, extractionFn=upper) == 3
    )
    # null rows are unknown: NOT keeps only the '' row
    assert (
        count(
            {
                "type": "not",
                "field": {
                    "type": "search",
                    "dimension": "dim2",
                    "query": {"type": "contains", "value": "a"},
                },
            }
        )
        == 1
    )


def test_column_comparison_filter() -> None:
    # dim2 vs dim3: 'a' is in [a,b]; null equals an absent multi-value row
    assert count({"type": "columnComparison", "dimensions": ["dim2", "dim3"]}) == 2
    # numbers compare as Java prints them: cnt 1 is '1', m1 1.0 is '1.0'
    assert count({"type": "columnComparison", "dimensions": ["cnt", "m1"]}) == 0
    digit = {"type": "partial", "expr": "^\\d$"}
    # a digit in dim1 ('2', '1') but never in dim2; every other row is null on both sides
    both = [extraction("dim1", digit), extraction("dim2", digit)]
    assert count({"type": "columnComparison", "dimensions": both}) == 4
    assert count({"type": "columnComparison", "dimensions": ["dim1", "dim1", "dim1"]}) == 6


def test_array_contains_element_filter() -> None:
    assert (
        count(
            {
                "type": "arrayContainsElement",
                "column": "dim3",
                "elementMatchValueType": "STRING",
                "elementMatchValue": "b",
            }
        )
        == 2
    )
    table = pa.table({"arr": pa.array([[1, 2], [3], None, [None]], pa.large_list(pa.int64()))})

    def evaluate(value: Any) -> list[Any]:
        flt = ArrayContainsElementFilter(
            type="arrayContainsElement",
            column="arr",
            elementMatchValueType="LONG",
            elementMatchValue=value,
        )
        return list(flt.evaluate(table).to_pylist())

    assert evaluate(2) == [True, False, None, False]
    assert evaluate(None) == [False, False, None, True]


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ({"type": "spatial", "dimension": "x", "bound": {}}, "spatial filters are not supported"),
        ({"type": "javascript", "dimension": "x", "function": "f"}, "JavaScript is disabled"),
        ({"type": "search", "dimension": "x", "query": {"type": "fragment"}}, "needs \\[values\\]"),
    ],
)
def test_refused_filters(flt: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryParseError, match=message):
        parse_query(
            {"queryType": "scan", "dataSource": "foo", "intervals": ["1000/3000"], "filter": flt}
        )


def test_specs_round_trip() -> None:
    q = {
        "queryType": "groupBy",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "dimensions": [
            extraction("__time", {"type": "timeFormat", "format": "yyyy", "granularity": "day"})
        ],
        "filter": {
            "type": "search",
            "dimension": "dim1",
            "query": {"type": "fragment", "values": ["a"]},
            "extractionFn": {"type": "cascade", "extractionFns": [{"type": "lower"}]},
        },
    }
    once = parse_query(q)
    assert parse_query(once.to_json()) == once


def test_a_bad_time_string_is_a_400() -> None:
    with pytest.raises(InvalidInput, match="invalid time"):
        fn({"type": "timeFormat"}, ["not a time"])


def test_top_n_on_time_and_a_dictionary_column() -> None:
    q = {
        "queryType": "topN",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "dimension": extraction("__time", {"type": "timeFormat", "format": "yyyy"}),
        "metric": {"type": "dimension", "ordering": "lexicographic"},
        "threshold": 5,
        "aggregations": [{"type": "count", "name": "c"}],
    }
    assert run(q)[0]["result"] == [{"d": "2000", "c": 3}, {"d": "2001", "c": 3}]
    table = pa.table(
        {"s": pa.chunked_array([pa.array(["x", "yy", "x", None]).dictionary_encode()])}
    )
    spec = DimensionSpec.model_validate(extraction("s", {"type": "strlen"}))
    assert dimension_values(table, spec).to_pylist() == ["1", "2", "1", None]


# --- the search query ----------------------------------------------------------------------


def search_query(**extra: Any) -> list[dict[str, Any]]:
    q = {
        "queryType": "search",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "searchDimensions": ["dim1", "dim2", "dim3"],
        **extra,
    }
    return run(q)


def test_search_query_counts_sorts_and_limits() -> None:
    contains_a = {"type": "insensitive_contains", "value": "A"}
    assert search_query(query=contains_a) == [
        {
            "timestamp": "2000-01-01T00:00:00.000Z",
            "result": [
                {"dimension": "dim2", "value": "a", "count": 2},
                {"dimension": "dim3", "value": "a", "count": 1},
                {"dimension": "dim1", "value": "abc", "count": 1},
                {"dimension": "dim2", "value": "abc", "count": 1},
            ],
        }
    ]
    by_year = search_query(
        query={"type": "fragment", "values": ["b"]},
        granularity="year",
        sort={"type": "strlen"},
        limit=2,
    )
    assert by_year == [
        {
            "timestamp": "2000-01-01T00:00:00.000Z",
            "result": [{"dimension": "dim3", "value": "b", "count": 2}],
        },
        {
            "timestamp": "2001-01-01T00:00:00.000Z",
            "result": [
                {"dimension": "dim1", "value": "abc", "count": 1},
                {"dimension": "dim2", "value": "abc", "count": 1},
            ],
        },
    ]
    # no query: every non-null value; an extraction dimension searches its extracted values
    upper = {
        "type": "extraction",
        "dimension": "dim2",
        "outputName": "u",
        "extractionFn": {"type": "upper"},
    }
    hits = search_query(
        searchDimensions=[upper], filter={"type": "selector", "dimension": "dim1", "value": "def"}
    )
    assert hits[0]["result"] == [{"dimension": "u", "value": "ABC", "count": 1}]


def test_search_query_answers_per_segment_as_druid() -> None:
    # A segment's hits are stamped with its interval's start, not bucketed row by row: with
    # granularity day, foo's two yearly segments give two buckets, not six.
    contains_a = {"type": "contains", "value": "a"}
    daily = search_query(query=contains_a, granularity="day", limit=1)
    assert daily == [
        {
            "timestamp": "2000-01-01T00:00:00.000Z",
            "result": [{"dimension": "dim2", "value": "a", "count": 1}],
        },
        {
            "timestamp": "2001-01-01T00:00:00.000Z",
            "result": [{"dimension": "dim2", "value": "a", "count": 1}],
        },
    ]
    # limit cuts each segment, and with granularity all the merged hits too
    merged = search_query(query=contains_a, limit=1)
    assert merged[0]["result"] == [{"dimension": "dim2", "value": "a", "count": 2}]
    # segments that answer with no hits still give a bucket; none asked gives nothing
    nothing = {"type": "contains", "value": "zzz"}
    assert search_query(query=nothing) == [{"timestamp": "2000-01-01T00:00:00.000Z", "result": []}]
    assert search_query(query=nothing, intervals=["1000/1001"]) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"searchDimensions": []}, "searchDimensions is required"),
        ({"sort": {"type": "numeric"}}, r"search sort \[numeric\] is not supported"),
        ({"query": {"type": "regex"}}, "needs a \\[pattern\\]"),
    ],
)
def test_search_query_refusals(extra: dict[str, Any], message: str) -> None:
    q = {
        "queryType": "search",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "searchDimensions": ["dim1"],
        **extra,
    }
    with pytest.raises(QueryParseError, match=message):
        parse_query(q)
    # the fixed query round-trips as the broker forwards it
    good = {**q, "searchDimensions": ["dim1"], "sort": "strlen"}
    good["query"] = {"type": "regex", "pattern": "a"}
    once = parse_query(good)
    assert parse_query(once.to_json()) == once


def test_a_null_row_of_a_dictionary_column_gets_the_functions_null_answer() -> None:
    coded = pa.array(["a", None, "b", None]).dictionary_encode()
    plain = pa.array(["a", None, "b", None])
    specs = [
        {"type": "stringFormat", "format": "<%s>"},
        {
            "type": "regex",
            "expr": "(x)",
            "replaceMissingValue": True,
            "replaceMissingValueWith": "-",
        },
        {"type": "cascade", "extractionFns": [{"type": "stringFormat", "format": "%s"}]},
        {"type": "lookup", "lookup": {"map": {"a": "A"}}, "replaceMissingValueWith": "?"},
    ]
    for spec in specs:
        extracted = FN.validate_python(spec)
        assert extracted.apply(coded).to_pylist() == extracted.apply(plain).to_pylist()
    assert fn(specs[0], ["a", None]) == ["<a>", "<null>"]
