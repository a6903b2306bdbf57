"""Join and inline datasources over several segments, compared with DuckDB on the same rows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from test_query_support import base, duck, run_query

from common.errors import QueryParseError
from common.query import finalize, parse_query
from common.query.local import run_local

COUNTRY_NAMES = {
    "type": "inline",
    "columnNames": ["code", "name", "pop"],
    "columnTypes": ["string", "string", "long"],
    "rows": [["US", "United States", 331], ["FR", "France", 68], ["XX", "Nowhere", 0]],
}


def _join(right: dict[str, Any], condition: str, join_type: str = "LEFT") -> dict[str, Any]:
    return {
        "type": "join",
        "left": "ds",
        "right": right,
        "rightPrefix": "r.",
        "condition": condition,
        "joinType": join_type,
    }


def _duck_with(name: str, spec: dict[str, Any]) -> Any:
    con = duck()
    cols = {c: [row[i] for row in spec["rows"]] for i, c in enumerate(spec["columnNames"])}
    con.register(name, pa.table(cols))
    return con


@pytest.mark.parametrize("join_type", ["LEFT", "INNER"])
def test_groupby_over_a_join_with_an_expression_key(join_type: str) -> None:
    q = base(
        "groupBy",
        granularity="all",
        dataSource=_join(COUNTRY_NAMES, 'upper(lower(country)) == "r.code"', join_type),
        virtualColumns=[
            {"type": "expression", "name": "cn", "expression": "nvl(\"r.name\", 'other')"}
        ],
        dimensions=["cn"],
        aggregations=[
            {"type": "count", "name": "rows"},
            {"type": "longSum", "name": "pop", "fieldName": "r.pop"},
        ],
    )
    got = [(r["event"]["cn"], r["event"]["rows"], r["event"]["pop"]) for r in run_query(q)]
    kind = "LEFT" if join_type == "LEFT" else "INNER"
    want = (
        _duck_with("r", COUNTRY_NAMES)
        .execute(
            f"""
            SELECT coalesce(r.name, 'other') AS cn, count(*), sum(r.pop)
            FROM t {kind} JOIN r ON t.country = r.code GROUP BY 1 ORDER BY 1
            """
        )
        .fetchall()
    )
    assert got == want


def test_duplicate_right_keys_multiply_rows_and_two_equalities() -> None:
    right = {
        "type": "inline",
        "columnNames": ["c", "p", "tag"],
        "rows": [["US", "p01", "x"], ["US", "p01", "y"], ["FR", "p02", "z"], [None, "p03", "n"]],
    }
    q = base(
        "groupBy",
        granularity="all",
        dataSource=_join(right, 'country == "r.c" && "r.p" == page', "INNER"),
        dimensions=["r.tag"],
        aggregations=[{"type": "count", "name": "rows"}],
    )
    got = [(r["event"]["r.tag"], r["event"]["rows"]) for r in run_query(q)]
    want = (
        _duck_with("r", right)
        .execute(
            """
            SELECT r.tag, count(*) FROM t JOIN r ON t.country = r.c AND t.page = r.p
            GROUP BY 1 ORDER BY 1
            """
        )
        .fetchall()
    )
    assert got == want and got  # null keys matched nothing, duplicates doubled US/p01 rows


def test_left_columns_with_the_prefix_are_shadowed() -> None:
    right = {**COUNTRY_NAMES, "columnNames": ["code", "name", "pop"]}
    q = base(
        "groupBy",
        granularity="all",
        dataSource={**_join(right, 'country == "pacode"'), "rightPrefix": "pa"},
        dimensions=["page", "paname"],
        aggregations=[{"type": "count", "name": "rows"}],
    )
    # 'page' starts with the prefix: it is shadowed (the right side has no column 'ge').
    got = [(r["event"]["page"], r["event"]["paname"], r["event"]["rows"]) for r in run_query(q)]
    want = (
        _duck_with("r", right)
        .execute(
            """SELECT NULL, r.name, count(*) FROM t LEFT JOIN r ON t.country = r.code
               GROUP BY 2 ORDER BY 2 NULLS FIRST"""
        )
        .fetchall()
    )
    assert got == want


def test_inline_datasource_runs_on_its_rows() -> None:
    q = parse_query(
        {
            "queryType": "timeseries",
            "dataSource": {
                "type": "inline",
                "columnNames": ["__time", "v"],
                "columnTypes": ["long", "double"],
                "rows": [[0, 1.5], [86_400_000, 2.5], [90_000_000, None]],
            },
            "intervals": ["1970-01-01/1970-01-03"],
            "granularity": "day",
            "aggregations": [
                {"type": "doubleSum", "name": "s", "fieldName": "v"},
                {"type": "count", "name": "n"},
            ],
        }
    )
    assert finalize(q, run_local(q)) == [
        {"timestamp": "1970-01-01T00:00:00.000Z", "result": {"s": 1.5, "n": 1}},
        {"timestamp": "1970-01-02T00:00:00.000Z", "result": {"s": 2.5, "n": 2}},
    ]


def test_inline_string_column_takes_strings_nulls_and_other_values_as_text() -> None:
    spec = {
        "type": "inline",
        "columnNames": ["s", "t"],
        "columnTypes": ["string", "string"],
        "rows": [["a", 1], [None, 2.5], ["c", True]],
    }
    q = parse_query(base("timeseries", dataSource=spec))
    table = q.dataSourceSpec.table()  # type: ignore[union-attr]
    assert table["s"].to_pylist() == ["a", None, "c"]
    assert table["t"].to_pylist() == ["1", "2.5", "True"]


@pytest.mark.parametrize(
    ("ds", "needle"),
    [
        ({"type": "lookup", "lookup": "x"}, "resolved by the broker"),
        ({"type": "query", "query": {}}, "queryType"),
        (_join({"type": "table", "name": "other"}, 'a == "r.a"'), "only inline"),
        (_join(COUNTRY_NAMES, 'country == "r.nope"'), "no column [nope]"),
        (_join(COUNTRY_NAMES, 'country > "r.code"'), "equalities"),
        (_join(COUNTRY_NAMES, '"r.code" == "r.name"'), "equalities"),
        (_join(COUNTRY_NAMES, 'country == "r.code"', "FULL"), "joinType [FULL]"),
        ({**_join(COUNTRY_NAMES, 'country == "r.code"'), "rightPrefix": "__"}, "rightPrefix"),
        (
            {"type": "inline", "columnNames": ["a"], "columnTypes": ["long"], "rows": [["x"]]},
            "column [a]",
        ),
        ({"type": "inline", "columnNames": ["a", "b"], "rows": [[1]]}, "row 0 has 1 values"),
        (
            {"type": "inline", "columnNames": ["a", "b"], "rows": [[1, 2], [3], [4, 5]]},
            "row 1 has 1 values",
        ),
        ({"type": "inline", "columnNames": ["a"], "rows": [[1], "x"]}, "row 1 is not a list"),
    ],
)
def test_unbuilt_or_bad_datasources_are_400s(ds: dict[str, Any], needle: str) -> None:
    with pytest.raises(QueryParseError) as info:
        parse_query(base("timeseries", dataSource=ds))
    assert needle in info.value.message


def test_query_datasource_runs_the_outer_query_on_the_inner_results() -> None:
    from common.errors import ResourceLimitExceeded
    from common.query.local import results_table, run_on_rows, subquery_of

    inner = base(
        "groupBy",
        granularity="day",
        dimensions=["country"],
        aggregations=[{"type": "longSum", "name": "added", "fieldName": "added"}],
    )
    outer = parse_query(
        {
            "queryType": "groupBy",
            "dataSource": {"type": "query", "query": inner},
            "intervals": ["2024-01-01/2024-02-01"],
            "granularity": "all",
            "dimensions": ["country"],
            "aggregations": [
                {"type": "count", "name": "days"},
                {"type": "longMax", "name": "best", "fieldName": "added"},
            ],
            "context": {"queryId": "outer-1"},
        }
    )
    sub = subquery_of(outer)
    assert sub is not None and sub.query_id == "outer-1"
    table = results_table(sub, run_query(sub), 100_000)
    got = [
        (r["event"]["country"], r["event"]["days"], r["event"]["best"])
        for r in finalize(outer, run_on_rows(outer, table))
    ]
    want = (
        duck()
        .execute(
            """
            SELECT country, count(*), max(s) FROM (
              SELECT date_trunc('day', __time) AS d, country, sum(added) AS s FROM t GROUP BY 1, 2)
            WHERE d >= '2024-01-01' AND d < '2024-02-01' GROUP BY 1 ORDER BY 1 NULLS FIRST
            """
        )
        .fetchall()
    )
    assert got == want
    with pytest.raises(ResourceLimitExceeded, match=r"beyond maximum\[10\]"):
        results_table(sub, run_query(sub), 10)


def test_query_datasource_inner_must_be_a_row_query() -> None:
    with pytest.raises(QueryParseError) as info:
        parse_query(
            base(
                "timeseries",
                dataSource={"type": "query", "query": base("timeBoundary")},
            )
        )
    assert "cannot be a datasource" in info.value.message


def test_repeated_right_values_group_as_one_value() -> None:
    # Several keys share a label: grouping on the joined label must give one group per label.
    right = {
        "type": "inline",
        "columnNames": ["p", "label"],
        "rows": [[f"p{i:02d}", f"L{i % 3}"] for i in range(40)],
    }
    q = base(
        "groupBy",
        granularity="all",
        dataSource=_join(right, 'page == "r.p"'),
        virtualColumns=[
            {"type": "expression", "name": "half", "expression": "substring(page, 0, 2)"}
        ],
        dimensions=["r.label", "half"],
        aggregations=[{"type": "count", "name": "rows"}],
    )
    got = [(r["event"]["r.label"], r["event"]["half"], r["event"]["rows"]) for r in run_query(q)]
    want = (
        _duck_with("r", right)
        .execute(
            """SELECT r.label, substr(page, 1, 2), count(*) FROM t LEFT JOIN r ON t.page = r.p
               GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2"""
        )
        .fetchall()
    )
    assert got == want and len(got) == 12


def test_right_columns_nothing_reads_are_not_built_and_answers_stay() -> None:
    from test_query_support import SEGMENT_TABLES

    from common.query.prepare import prepare_segment

    def query(join_type: str, **kw: Any) -> Any:
        return parse_query(
            base(
                "groupBy",
                granularity="all",
                dataSource=_join(COUNTRY_NAMES, 'country == "r.code"', join_type),
                **kw,
            )
        )

    by_name = {"dimensions": ["r.name"], "aggregations": [{"type": "count", "name": "n"}]}
    by_filter = {
        "dimensions": ["r.name"],
        "filter": {"type": "range", "column": "r.pop", "matchValueType": "LONG", "lower": 1},
        "aggregations": [{"type": "count", "name": "n"}],
    }
    table = SEGMENT_TABLES[0][2]
    for join_type in ("LEFT", "INNER"):
        prepared = prepare_segment(query(join_type, **by_name), table)
        assert [c for c in prepared.column_names if c.startswith("r.")] == ["r.name"]
        prepared = prepare_segment(query(join_type, **by_filter), table)
        assert [c for c in prepared.column_names if c.startswith("r.")] == ["r.name", "r.pop"]
        # a scan returns every column: nothing is left out
        scan = parse_query(base("scan", dataSource=_join(COUNTRY_NAMES, 'country == "r.code"')))
        prepared = prepare_segment(scan, table)
        assert [c for c in prepared.column_names if c.startswith("r.")] == [
            "r.code",
            "r.name",
            "r.pop",
        ]
        got = sorted(
            (r["event"]["r.name"] or "", r["event"]["n"])
            for r in run_query(query(join_type, **by_filter))
        )
        con = _duck_with("r", COUNTRY_NAMES)
        kind = "LEFT" if join_type == "LEFT" else "INNER"
        want = sorted(
            (name or "", n)
            for name, n in con.execute(
                f"SELECT r.name, count(*) FROM t {kind} JOIN r ON t.country = r.code "
                "WHERE r.pop >= 1 GROUP BY 1"
            ).fetchall()
        )
        assert got == want
