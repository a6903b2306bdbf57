"""``lookup(expr, 'name'[, replaceMissingValueWith])`` in the expression language, evaluated
against the lookups of the evaluation context (Druid's ``LookupExprMacro``; ``lookyloo`` is
Druid's test lookup)."""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest

from common.errors import InvalidInput
from common.expr import ExpressionError, parse_expression
from common.expr.lookups import MapLookup, StaticLookups, current_lookups, lookup_scope
from common.lookups.node import NodeLookups

LOOKYLOO = {"a": "xa", "abc": "xabc", "nosuchkey": "mysteryvalue", "6": "x6"}
LOOKUPS = StaticLookups({"lookyloo": LOOKYLOO, "nulls": {"k": None, "e": ""}})
DIM1 = ["", "10.1", "2", "1", "def", "abc", None]


def both(text: str, table: pa.Table) -> list[object]:
    """The vectorised answer, checked against the row-by-row one."""
    e = parse_expression(text)
    vector = e.evaluate_table(table).to_pylist()
    rows = [e.evaluate(r) for r in table.to_pylist()]
    assert vector == rows
    return vector


@pytest.mark.parametrize("encoded", [False, True])
def test_lookup_of_a_string_column(encoded: bool) -> None:
    col = pa.array(DIM1, pa.string())
    t = pa.table({"dim1": col.dictionary_encode() if encoded else col})
    with lookup_scope(LOOKUPS):
        assert both("lookup(dim1, 'lookyloo')", t) == [None] * 5 + ["xabc", None]
        # missing keys and null keys take the replacement, as COALESCE would
        assert both("lookup(dim1, 'lookyloo', 'NA')", t) == ["NA"] * 5 + ["xabc", "NA"]
        assert both("concat(lookup(dim1, 'lookyloo'), '!')", t)[5] == "xabc!"


def test_lookup_values_and_inputs() -> None:
    t = pa.table({"n": pa.array([6, 1, None], pa.int64()), "s": ["k", "e", "zz"]})
    with lookup_scope(LOOKUPS):
        assert both("lookup(n, 'lookyloo')", t) == ["x6", None, None]  # 6 is looked up as '6'
        assert both("lookup(n, 'lookyloo', '')", t) == ["x6", "", ""]  # '' is a value
        # a key mapped to null is missing; a key mapped to '' is found
        assert both("lookup(s, 'nulls', 'r')", t) == ["r", "", "r"]
        assert both("lookup('abc', 'lookyloo')", t) == ["xabc"] * 3
        assert both("lookup(null, 'lookyloo', 5)", t) == ["5"] * 3


def test_lookup_of_a_multi_value_column_maps_each_value() -> None:
    t = pa.table({"tags": pa.array([["a", "zz"], [], None, ["abc"]], pa.list_(pa.string()))})
    with lookup_scope(LOOKUPS):
        out = parse_expression("lookup(tags, 'lookyloo', 'm')").evaluate_table(t).to_pylist()
    assert out == [["xa", "m"], None, None, ["xabc"]]


def test_unknown_lookup_and_no_lookups_are_400s() -> None:
    t = pa.table({"dim1": ["a"]})
    e = parse_expression("lookup(dim1, 'nope')")
    with lookup_scope(LOOKUPS), pytest.raises(InvalidInput, match=r"Lookup \[nope\] not found"):
        e.evaluate_table(t)
    assert current_lookups() is None
    with pytest.raises(InvalidInput, match=r"Lookup \[lookyloo\] not found"):
        parse_expression("lookup(dim1, 'lookyloo')").evaluate_table(t)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lookup(dim1)", r"needs 2 to 3 arguments"),
        ("lookup(dim1, 'a', 'b', 'c')", r"needs 2 to 3 arguments"),
        ("lookup(dim1, dim2)", r"argument 2 of lookup\(\) must be a literal"),
        ("lookup(dim1, null)", r"second argument must be a registered lookup name"),
        ("lookup(dim1, 'lookyloo', dim2)", r"argument 3 of lookup\(\) must be a literal"),
    ],
)
def test_bad_calls_are_refused_when_parsed(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text)


def test_worker_threads_see_the_lookups_of_the_scope_that_started_them() -> None:
    t = pa.table({"dim1": ["abc", "a"]})
    e = parse_expression("lookup(dim1, 'lookyloo')")
    other = StaticLookups({"lookyloo": {"abc": "other"}})

    async def evaluate_in(provider: StaticLookups) -> list[object]:
        with lookup_scope(provider):
            result = await asyncio.to_thread(e.evaluate_table, t)
        return list(result.to_pylist())

    async def main() -> list[list[object]]:
        return list(await asyncio.gather(evaluate_in(LOOKUPS), evaluate_in(other)))

    assert asyncio.run(main()) == [["xabc", "xa"], ["other", None]]


def test_node_lookups_provide_the_tier_s_map_lookups() -> None:
    node = NodeLookups("__default", 30.0)
    container = {
        "version": "v1",
        "lookupExtractorFactory": {"type": "map", "map": {"US": "United States"}},
    }
    node.apply({"__default": {"country": container}, "other": {"x": container}})
    assert node.lookup_names() == ["country"]
    assert node.lookup("country") == MapLookup({"US": "United States"})
    assert node.lookup("x") is None
    first = node.lookup("country")
    node.apply({"__default": {"country": container}})
    assert node.lookup("country") is first  # unchanged lookups are not rebuilt
    injective = {
        "version": "v2",
        "lookupExtractorFactory": {"type": "map", "map": {"a": "b"}, "injective": True},
    }
    node.apply({"__default": {"country": injective}})
    found = node.lookup("country")
    assert found is not None and found.injective and found.apply("a") == "b"
    assert found.unapply("b") == ["a"] and found.unapply("zz") == []
