"""Native lookups over Druid's ``foo`` test datasource: the ``lookup`` dimension spec, the
``extraction`` dimension spec and filter ``extractionFn`` with ``registeredLookup`` / inline
``lookup`` functions, and ``lookup()`` in virtual columns; Druid's test lookups ``lookyloo``
and ``lookyloo121``. Answers as Druid's CalciteLookupFunctionQueryTest (SQL-compatible nulls)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.errors import InvalidInput, QueryParseError
from common.expr.lookups import MapLookup, StaticLookups, lookup_scope
from common.query import parse_query
from tests.unit.test_sql_druid_foo import native

LOOKYLOO = {"a": "xa", "abc": "xabc", "nosuchkey": "mysteryvalue", "6": "x6"}
LOOKYLOO121 = {"": "x", "1": "x1", "10.1": "x10.1", "2": "x2", "abc": "xabc", "def": "xdef"}
LOOKUPS = StaticLookups(
    {
        "lookyloo": LOOKYLOO,
        "lookyloo121": MapLookup(LOOKYLOO121, injective=True),
        "lookyloo-chain": {"xa": "za", "xabc": "zabc"},
    }
)
REGISTERED = {"type": "registeredLookup", "lookup": "lookyloo"}


def run(query: dict[str, Any]) -> list[dict[str, Any]]:
    with lookup_scope(LOOKUPS):
        return asyncio.run(native(query))


def group_by(*dims: Any, flt: dict[str, Any] | None = None, **extra: Any) -> list[Any]:
    q: dict[str, Any] = {
        "queryType": "groupBy",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "dimensions": list(dims),
        "aggregations": [{"type": "count", "name": "a0"}],
        **extra,
    }
    if flt is not None:
        q["filter"] = flt
    rows = [r["event"] for r in run(q)]
    names = [d if isinstance(d, str) else d["outputName"] for d in dims]
    return [[r[n] for n in names] + [r["a0"]] for r in rows]


def test_group_by_a_registered_lookup_extraction() -> None:
    dim = {
        "type": "extraction",
        "dimension": "dim1",
        "outputName": "d0",
        "extractionFn": REGISTERED,
    }
    assert group_by(dim) == [[None, 5], ["xabc", 1]]


def test_lookup_dimension_spec_registered_and_inline() -> None:
    by_name = {"type": "lookup", "dimension": "dim1", "outputName": "d0", "name": "lookyloo121"}
    assert group_by(by_name) == [
        ["x", 1],
        ["x1", 1],
        ["x10.1", 1],
        ["x2", 1],
        ["xabc", 1],
        ["xdef", 1],
    ]
    inline = {
        "type": "lookup",
        "dimension": "dim2",
        "outputName": "d0",
        "lookup": {"type": "map", "map": {"a": "A", "": "empty"}},
        "replaceMissingValueWith": "other",
    }
    # dim2: a, null, '', a, abc, null -> null keys are missing too (SQL-compatible)
    assert group_by(inline) == [["A", 2], ["empty", 1], ["other", 3]]
    retain = {**inline, "replaceMissingValueWith": None, "retainMissingValue": True}
    assert group_by(retain) == [[None, 2], ["A", 2], ["abc", 1], ["empty", 1]]


def test_multi_value_dimension_is_looked_up_value_by_value() -> None:
    dim = {
        "type": "extraction",
        "dimension": "dim3",
        "outputName": "d0",
        "extractionFn": {"type": "lookup", "lookup": {"type": "map", "map": {"a": "A", "b": "B"}}},
    }
    # dim3: [a,b], [b,c], [d], [""], null, null: c, d, "" and the two nulls are missing
    assert group_by(dim) == [[None, 5], ["A", 1], ["B", 2]]


def test_filters_with_a_lookup_extraction_fn() -> None:
    dim = {"type": "default", "dimension": "dim1", "outputName": "d0"}
    selector = {
        "type": "selector",
        "dimension": "dim1",
        "value": "xabc",
        "extractionFn": REGISTERED,
    }
    assert group_by(dim, flt=selector) == [["abc", 1]]
    is_null = {"type": "selector", "dimension": "dim1", "value": None, "extractionFn": REGISTERED}
    assert len(group_by(dim, flt=is_null)) == 5
    in_filter = {
        "type": "in",
        "dimension": "dim1",
        "values": ["xabc", "x6", "nonexistent"],
        "extractionFn": REGISTERED,
    }
    assert group_by(dim, flt=in_filter) == [["abc", 1]]
    mv = {
        "type": "in",
        "dimension": "dim3",
        "values": ["B"],
        "extractionFn": {"type": "lookup", "lookup": {"type": "map", "map": {"b": "B"}}},
    }
    assert group_by(dim, flt=mv) == [["", 1], ["10.1", 1]]


def test_lookup_expression_in_a_virtual_column_and_a_topn() -> None:
    vc = {
        "type": "expression",
        "name": "v0",
        "expression": "lookup(lookup(\"dim1\",'lookyloo'),'lookyloo-chain','none')",
        "outputType": "STRING",
    }
    assert group_by("v0", virtualColumns=[vc]) == [["none", 5], ["zabc", 1]]
    topn = run(
        {
            "queryType": "topN",
            "dataSource": "foo",
            "intervals": ["1000/3000"],
            "granularity": "all",
            "dimension": {"type": "lookup", "dimension": "dim2", "name": "lookyloo"},
            "metric": "c",
            "threshold": 2,
            "aggregations": [{"type": "count", "name": "c"}],
        }
    )
    assert topn[0]["result"] == [{"dim2": None, "c": 3}, {"dim2": "xa", "c": 2}]


def test_an_unknown_registered_lookup_is_a_400() -> None:
    dim = {"type": "lookup", "dimension": "dim1", "outputName": "d0", "name": "nope"}
    with pytest.raises(InvalidInput, match=r"Lookup \[nope\] not found"):
        group_by(dim)


@pytest.mark.parametrize(
    ("dim", "message"),
    [
        (
            {"type": "extraction", "dimension": "dim1", "extractionFn": {"type": "javascript"}},
            r"extractionFn type \[javascript\] is not supported",
        ),
        ({"type": "extraction", "dimension": "dim1"}, "needs an extractionFn"),
        ({"type": "lookup", "dimension": "dim1"}, "exactly one of"),
        (
            {
                "type": "lookup",
                "dimension": "dim1",
                "name": "l",
                "retainMissingValue": True,
                "replaceMissingValueWith": "x",
            },
            r"Cannot specify a \[replaceMissingValueWith\] and set \[retainMissingValue\]",
        ),
        (
            {"type": "lookup", "dimension": "d", "lookup": {"type": "cachedNamespace"}},
            r"inline lookup type \[cachedNamespace\] is not supported",
        ),
    ],
)
def test_unsupported_specs_are_refused(dim: dict[str, Any], message: str) -> None:
    q = {
        "queryType": "groupBy",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "dimensions": [dim],
    }
    with pytest.raises(QueryParseError, match=message):
        parse_query(q)


def test_extraction_fn_refused_where_druid_has_none_and_specs_round_trip() -> None:
    q: dict[str, Any] = {
        "queryType": "scan",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "filter": {"type": "null", "column": "dim1", "extractionFn": REGISTERED},
    }
    with pytest.raises(QueryParseError, match=r"extractionFn is not supported in \[null\]"):
        parse_query(q)
    g = {
        "queryType": "groupBy",
        "dataSource": "foo",
        "intervals": ["1000/3000"],
        "granularity": "all",
        "dimensions": [
            {
                "type": "lookup",
                "dimension": "dim1",
                "outputName": "d0",
                "name": "lookyloo",
                "replaceMissingValueWith": "NA",
            }
        ],
        "filter": {
            "type": "selector",
            "dimension": "dim2",
            "value": "xa",
            "extractionFn": REGISTERED,
        },
    }
    # what the broker sends the data nodes parses back to the same query
    once = parse_query(g)
    assert parse_query(once.to_json()) == once
    assert once.to_json()["dimensions"][0]["name"] == "lookyloo"
    assert once.to_json()["filter"]["extractionFn"]["lookup"] == "lookyloo"
