"""SQL over lookups, answers as Druid's (CalciteLookupFunctionQueryTest, CalciteQueryTest's
lookup and INFORMATION_SCHEMA cases, CalciteJoinQueryTest's lookup joins) over Druid's ``foo``
and its test lookups ``lookyloo`` and ``lookyloo121``: ``LOOKUP(...)`` as a virtual column or an
extraction dimension, ``FROM lookup.<name>`` and ``JOIN lookup.<name>``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from common.errors import PlanValidationError
from common.expr.lookups import lookup_scope
from common.lookups.datasource import inline_lookups
from common.query import finalize, merge, parse_query, run_segment
from common.query.local import is_local, run_local
from common.query.sql.runner import SqlAnswer, SqlQuery, run_sql
from tests.unit.test_query_lookups import LOOKUPS
from tests.unit.test_sql_druid_foo import SEGMENTS, FooCatalog


def _maps(name: str) -> dict[str, Any] | None:
    found = LOOKUPS.lookup(name)
    return None if found is None else dict(found.mapping)


async def native(query: dict[str, Any]) -> list[dict[str, Any]]:
    """The broker's path: lookup datasources inlined, inline queries run locally."""
    q = parse_query(inline_lookups(query, _maps))
    if is_local(q):
        return finalize(q, run_local(q))
    partials = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS]
    return finalize(q, merge(q, partials))


def sql(text: str, **context: Any) -> SqlAnswer:
    req = SqlQuery(query=text, context=context)
    with lookup_scope(LOOKUPS):
        return asyncio.run(run_sql(req, FooCatalog(), native, sql_query_id="dummy"))


def rows(text: str, **context: Any) -> list[list[Any]]:
    return sql(text, **context).result.rows()


GROUPED = "SELECT LOOKUP(dim1, 'lookyloo'), COUNT(*) FROM foo WHERE {} GROUP BY 1"


def test_group_by_lookup_is_an_extraction_dimension() -> None:
    answer = sql("SELECT LOOKUP(dim1, 'lookyloo'), COUNT(*) FROM foo GROUP BY 1")
    assert answer.result.rows() == [[None, 5], ["xabc", 1]]
    assert answer.plan.native is not None
    dim = answer.plan.native["dimensions"][0]
    assert dim["type"] == "extraction" and dim["dimension"] == "dim1"
    assert dim["extractionFn"]["type"] == "registeredLookup"
    assert dim["extractionFn"]["lookup"] == "lookyloo"


def test_pull_up_lookup_results() -> None:
    # Druid's testPullUpLookup* answers (Druid pulls injective lookups up; the rows are these)
    assert rows("SELECT LOOKUP(dim1, 'lookyloo121'), COUNT(*) FROM druid.foo GROUP BY 1") == [
        ["x", 1],
        ["x1", 1],
        ["x10.1", 1],
        ["x2", 1],
        ["xabc", 1],
        ["xdef", 1],
    ]
    assert rows(
        "SELECT COUNT(*), LOOKUP(dim1, 'lookyloo'), LOOKUP(dim1, 'lookyloo121') "
        "FROM druid.foo GROUP BY 2, 3"
    ) == [
        [1, None, "x"],
        [1, None, "x1"],
        [1, None, "x10.1"],
        [1, None, "x2"],
        [1, None, "xdef"],
        [1, "xabc", "xabc"],
    ]
    assert rows(
        "SELECT LOOKUP(dim1, 'lookyloo121'), COUNT(*) FROM druid.foo "
        "WHERE LOOKUP(dim1, 'lookyloo121') IN ('xabc', 'xdef') GROUP BY 1"
    ) == [["xabc", 1], ["xdef", 1]]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("LOOKUP(dim1, 'lookyloo') = 'xabc'", [["xabc", 1]]),
        ("'xabc' = LOOKUP(dim1, 'lookyloo')", [["xabc", 1]]),
        ("LOOKUP(LOWER(dim1), 'lookyloo') = 'xabc'", [["xabc", 1]]),
        ("LOOKUP(dim1, 'lookyloo') = 'nonexistent'", []),
        ("LOOKUP(dim1, 'lookyloo') IN ('xabc', 'x6', 'nonexistent')", [["xabc", 1]]),
        ("LOOKUP(LOOKUP(dim1, 'lookyloo'), 'lookyloo-chain') = 'zabc'", [["xabc", 1]]),
        ("LOOKUP(dim1, 'lookyloo') IS NULL", [[None, 5]]),
        ("LOOKUP(dim1, 'lookyloo') NOT IN ('x6', 'nonexistent')", [["xabc", 1]]),
        (
            "LOOKUP(dim1, 'lookyloo') NOT IN ('x6', 'nonexistent') "
            "OR LOOKUP(dim1, 'lookyloo') IS NULL",
            [[None, 5], ["xabc", 1]],
        ),
        ("LOOKUP(dim1, 'lookyloo', 'xyzzy') NOT IN ('xabc', 'x6', 'nonexistent')", [[None, 5]]),
        ("LOOKUP(dim1, 'lookyloo121') NOT IN ('xabc', 'xdef', 'nonexistent')", [[None, 4]]),
        ("MV_CONTAINS(LOOKUP(dim1, 'lookyloo'), 'xabc')", [["xabc", 1]]),
    ],
)
def test_filters_on_lookup_match_druid(condition: str, expected: list[list[Any]]) -> None:
    # the filter-test shape of Druid's CalciteLookupFunctionQueryTest (its TIME_IN_INTERVAL
    # '2000/3000' as __time bounds: every foo row is inside)
    window = "__time >= TIMESTAMP '2000-01-01' AND __time < TIMESTAMP '3000-01-01'"
    assert rows(GROUPED.format(f"({condition}) AND {window}")) == expected


def test_lookup_in_select_lists_and_at_the_broker() -> None:
    assert rows("SELECT dim1, LOOKUP(dim1, 'lookyloo', 'NA') FROM foo WHERE dim1 > 'a'") == [
        ["def", "NA"],
        ["abc", "xabc"],
    ]
    assert rows("SELECT LOOKUP('abc', 'lookyloo'), LOOKUP(NULL, 'lookyloo', 'n')") == [
        ["xabc", "n"]
    ]
    # an outer query over a subquery is evaluated at the broker with the same lookups
    assert rows(
        "SELECT LOOKUP(d, 'lookyloo', 'm') AS l, COUNT(*) FROM (SELECT dim2 AS d FROM foo) "
        "GROUP BY 1 ORDER BY 1"
    ) == [["m", 3], ["xa", 2], ["xabc", 1]]


def test_select_from_the_lookup_schema() -> None:
    answer = sql("SELECT * FROM lookup.lookyloo")
    assert answer.plan.native is not None
    assert answer.plan.native["dataSource"] == {"type": "lookup", "lookup": "lookyloo"}
    assert sorted(answer.result.rows()) == sorted(
        [["a", "xa"], ["abc", "xabc"], ["nosuchkey", "mysteryvalue"], ["6", "x6"]]
    )
    assert rows("SELECT COUNT(*) FROM lookup.lookyloo") == [[4]]
    # Druid's testSelectStarFromLookup plan: a scan of the lookup datasource's k and v
    explained = sql("EXPLAIN PLAN FOR SELECT * FROM lookup.lookyloo").result.rows()[0]
    plan = json.loads(explained[0])[0]["query"]
    assert plan["queryType"] == "scan" and plan["columns"] == ["k", "v"]
    assert plan["dataSource"] == {"type": "lookup", "lookup": "lookyloo"}
    assert json.loads(explained[1]) == []
    assert rows("SELECT SUBSTRING(v, 1, 1), COUNT(*) FROM lookup.lookyloo GROUP BY 1") == [
        ["m", 1],
        ["x", 3],
    ]
    with pytest.raises(PlanValidationError, match="Object 'nope' not found within 'lookup'"):
        sql("SELECT * FROM lookup.nope")


def test_join_to_a_lookup() -> None:
    # CalciteJoinQueryTest's testFilterAndGroupByLookupUsingJoinOperator* (SQL-compatible)
    answer = sql(
        "SELECT lookyloo.v, COUNT(*) FROM foo LEFT JOIN lookup.lookyloo "
        "ON foo.dim2 = lookyloo.k WHERE lookyloo.v <> 'xa' OR lookyloo.v IS NULL "
        "GROUP BY lookyloo.v"
    )
    assert answer.result.rows() == [[None, 3], ["xabc", 1]]
    assert answer.plan.native is not None
    ds = answer.plan.native["dataSource"]
    assert ds["type"] == "join" and ds["right"] == {"type": "lookup", "lookup": "lookyloo"}
    assert rows(
        "SELECT lookyloo.k, COUNT(*) FROM foo LEFT JOIN lookup.lookyloo "
        "ON foo.dim2 = lookyloo.k WHERE lookyloo.v = 'xa' GROUP BY lookyloo.k"
    ) == [["a", 2]]
    assert rows(
        "SELECT l.v, COUNT(*) FROM foo INNER JOIN lookup.lookyloo AS l ON foo.dim2 = l.k GROUP BY 1"
    ) == [["xa", 2], ["xabc", 1]]
    with pytest.raises(PlanValidationError, match="not supported"):
        sql("SELECT lookyloo.v FROM lookup.lookyloo RIGHT JOIN foo ON foo.dim2 = lookyloo.k")


def test_information_schema_lists_lookup_tables() -> None:
    tables = rows(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, IS_JOINABLE, IS_BROADCAST "
        "FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE IN ('SYSTEM_TABLE', 'TABLE')"
    )
    schemas = [t[0] for t in tables]
    assert schemas.index("INFORMATION_SCHEMA") < schemas.index("lookup") < schemas.index("sys")
    assert [t for t in tables if t[0] == "lookup"] == [
        ["lookup", "lookyloo", "TABLE", "YES", "YES"],
        ["lookup", "lookyloo-chain", "TABLE", "YES", "YES"],
        ["lookup", "lookyloo121", "TABLE", "YES", "YES"],
    ]
    cols = rows(
        "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = 'lookup' AND TABLE_NAME = 'lookyloo'"
    )
    assert cols == [["k", "VARCHAR", "YES"], ["v", "VARCHAR", "YES"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT LOOKUP(dim1, 'nope') FROM foo", r"Lookup \[nope\] not found"),
        ("SELECT LOOKUP(dim1, dim2) FROM foo", "lookup name must be a string literal"),
        ("SELECT LOOKUP(dim1) FROM foo", "LOOKUP takes"),
        ("SELECT LOOKUP(dim1, 'lookyloo', dim2) FROM foo", "must be a literal"),
    ],
)
def test_bad_lookup_calls_are_400s(text: str, message: str) -> None:
    with pytest.raises(PlanValidationError, match=message):
        sql(text)


def _filter(text: str, **context: Any) -> tuple[Any, list[list[Any]]]:
    answer = sql(text, **context)
    assert answer.plan.native is not None
    return answer.plan.native.get("filter"), answer.result.rows()


REVERSIBLE = [
    "LOOKUP(dim1, 'lookyloo') = 'xabc'",
    "LOOKUP(dim1, 'lookyloo') IN ('xabc', 'x6', 'nonexistent')",
    "LOOKUP(dim1, 'lookyloo') = 'nonexistent'",
    "LOOKUP(LOWER(dim1), 'lookyloo') = 'xabc'",
    "LOOKUP(dim1, 'lookyloo', 'NA') = 'xabc' OR dim2 = 'a'",
    "LOOKUP(dim3, 'lookyloo') IN ('xa', 'x6')",  # multi-value: any value
]


@pytest.mark.parametrize("condition", REVERSIBLE)
def test_reverse_lookup_drops_the_lookup_and_keeps_the_answer(condition: str) -> None:
    flt, got = _filter(GROUPED.format(condition))
    assert "lookup" not in str(flt)
    assert got == rows(GROUPED.format(condition), sqlReverseLookup=False)


def test_reverse_lookup_plans_as_druid() -> None:
    # Druid's testFilterEquals / testFilterIn / testFilterEqualsAlwaysFalse filters
    flt, got = _filter(GROUPED.format("LOOKUP(dim1, 'lookyloo') = 'xabc'"))
    assert flt == {"type": "in", "dimension": "dim1", "values": ["abc"]} and got == [["xabc", 1]]
    flt, _ = _filter(GROUPED.format("LOOKUP(dim1, 'lookyloo') IN ('xabc', 'x6', 'nonexistent')"))
    assert flt == {"type": "in", "dimension": "dim1", "values": ["6", "abc"]}
    flt, got = _filter(GROUPED.format("LOOKUP(dim1, 'lookyloo') = 'nonexistent'"))
    assert flt == {"type": "false"} and got == []


@pytest.mark.parametrize(
    ("condition", "context"),
    [
        ("LOOKUP(dim1, 'lookyloo') <> 'xabc'", {}),  # not reversible (not injective)
        ("NOT (LOOKUP(dim1, 'lookyloo') = 'xabc')", {}),
        ("LOOKUP(dim1, 'lookyloo', 'xabc') = 'xabc'", {}),  # the replacement matches too
        ("LOOKUP(dim1, 'lookyloo') = 'xabc'", {"sqlReverseLookup": False}),
        ("LOOKUP(dim1, 'lookyloo') IN ('xabc', 'x6')", {"sqlReverseLookupThreshold": 1}),
    ],
)
def test_lookups_not_reversed_stay_lookups(condition: str, context: dict[str, Any]) -> None:
    answer = sql(GROUPED.format(condition), **context)
    assert answer.plan.native is not None
    assert "lookup(" in str(answer.plan.native.get("virtualColumns"))
