"""TopN and groupBy over several segments vs DuckDB: orderings, thresholds, multi-value
dimensions, output names/types, having and limitSpec."""

from __future__ import annotations

from typing import Any

import pytest
from test_query_support import base, duck, iso, run_query

AGGS = [
    {"type": "count", "name": "rows"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
]


def _topn_sql(
    dim_sql: str, order: str, threshold: int, where: str = "TRUE", from_: str = "t"
) -> list[tuple[Any, ...]]:
    return (
        duck()
        .execute(
            f"""
        SELECT epoch_ms(b) AS b, d, rows, added FROM (
          SELECT *, row_number() OVER (PARTITION BY b ORDER BY {order}) AS rk FROM (
            SELECT date_trunc('day', __time) AS b, {dim_sql} AS d, count(*) AS rows,
                   sum(added) AS added
            FROM {from_} WHERE {where} GROUP BY ALL))
        WHERE rk <= {threshold} ORDER BY b, rk
        """
        )
        .fetchall()
    )


def _flatten(result: list[dict[str, Any]], dim: str) -> list[tuple[Any, ...]]:
    out = []
    for bucket in result:
        for r in bucket["result"]:
            out.append((bucket["timestamp"], r[dim], r["rows"], r["added"]))
    return out


def _iso_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(iso(b), *rest) for b, *rest in rows]


@pytest.mark.parametrize(
    ("metric", "order"),
    [
        ("added", "added DESC NULLS LAST, d ASC NULLS FIRST"),
        ({"type": "numeric", "metric": "rows"}, "rows DESC, d ASC NULLS FIRST"),
        ({"type": "inverted", "metric": "added"}, "added ASC NULLS FIRST, d ASC NULLS FIRST"),
        ({"type": "dimension", "ordering": "lexicographic"}, "d ASC NULLS FIRST"),
        ({"type": "inverted", "metric": {"type": "dimension"}}, "d DESC NULLS LAST"),
    ],
)
def test_topn_orderings(metric: Any, order: str) -> None:
    q = base(
        "topN",
        granularity="day",
        dimension="page",
        metric=metric,
        threshold=3,
        aggregations=AGGS,
        filter={
            "type": "not",
            "field": {"type": "selector", "dimension": "country", "value": "US"},
        },
    )
    got = _flatten(run_query(q), "page")
    expected = _iso_rows(_topn_sql("page", order, 3, "country <> 'US'"))
    assert got == expected


def test_topn_dimension_numeric_ordering_previous_stop_and_output_name() -> None:
    q = base(
        "topN",
        granularity="all",
        intervals=["2024-01-01/2024-02-01"],
        dimension={"type": "default", "dimension": "page", "outputName": "p"},
        metric={"type": "dimension", "ordering": "lexicographic", "previousStop": "p30"},
        threshold=4,
        aggregations=AGGS,
    )
    [bucket] = run_query(q)
    # Druid stamps granularity all with the query interval clipped to the data: its first row.
    first = duck().execute("SELECT epoch_ms(min(__time)) FROM t WHERE __time >= '2024-01-01'")
    assert bucket["timestamp"] == iso(first.fetchone()[0])  # type: ignore[index]
    assert [r["p"] for r in bucket["result"]] == ["p31", "p32", "p33", "p34"]
    rows = (
        duck()
        .execute(
            "SELECT page, count(*), sum(added) FROM t WHERE __time >= '2024-01-01' AND "
            "__time < '2024-02-01' AND page > 'p30' GROUP BY page ORDER BY page LIMIT 4"
        )
        .fetchall()
    )
    assert [(r["p"], r["rows"], r["added"]) for r in bucket["result"]] == rows


def test_topn_on_multi_value_dimension_counts_each_value() -> None:
    q = base(
        "topN", granularity="day", dimension="tags", metric="rows", threshold=2, aggregations=AGGS
    )
    got = _flatten(run_query(q), "tags")
    from_ = (
        "(SELECT __time, added, unnest(CASE WHEN len(tags) > 0 THEN tags "
        "ELSE [NULL::VARCHAR] END) AS tags FROM t)"
    )
    expected = _iso_rows(_topn_sql("tags", "rows DESC, d ASC NULLS FIRST", 2, from_=from_))
    assert got == expected


def test_topn_with_post_aggregator_metric() -> None:
    q = base(
        "topN",
        granularity="all",
        dimension="country",
        threshold=2,
        aggregations=AGGS,
        metric="avg",
        postAggregations=[
            {
                "type": "arithmetic",
                "name": "avg",
                "fn": "/",
                "fields": [
                    {"type": "fieldAccess", "fieldName": "added"},
                    {"type": "fieldAccess", "fieldName": "rows"},
                ],
            }
        ],
    )
    [bucket] = run_query(q)
    rows = (
        duck()
        .execute(
            "SELECT country, sum(added) / count(*) AS avg FROM t GROUP BY country "
            "ORDER BY avg DESC LIMIT 2"
        )
        .fetchall()
    )
    assert [(r["country"], pytest.approx(r["avg"])) for r in bucket["result"]] == rows


def test_groupby_two_dimensions_by_day_default_order() -> None:
    q = base(
        "groupBy",
        granularity="day",
        intervals=["2024-02-10/2024-02-20"],
        dimensions=["country", {"type": "default", "dimension": "tags", "outputName": "tag"}],
        aggregations=AGGS,
    )
    got = [
        (
            r["timestamp"],
            r["event"]["country"],
            r["event"]["tag"],
            r["event"]["rows"],
            r["event"]["added"],
        )
        for r in run_query(q)
    ]
    rows = (
        duck()
        .execute(
            """
        SELECT epoch_ms(date_trunc('day', __time)), country, tag, count(*), sum(added)
        FROM (SELECT *, unnest(CASE WHEN len(tags) > 0 THEN tags ELSE [NULL::VARCHAR] END)
              AS tag FROM t)
        WHERE __time >= '2024-02-10' AND __time < '2024-02-20'
        GROUP BY ALL ORDER BY 1, 2 NULLS FIRST, 3 NULLS FIRST
        """
        )
        .fetchall()
    )
    assert got == _iso_rows(rows)
    assert all(r["version"] == "v1" for r in run_query(q))


def test_groupby_output_type_having_and_limit_spec() -> None:
    q = base(
        "groupBy",
        granularity="all",
        dimensions=[
            "country",
            {"type": "default", "dimension": "added", "outputName": "a", "outputType": "LONG"},
        ],
        aggregations=AGGS,
        filter={"type": "bound", "dimension": "added", "upper": "20", "ordering": "numeric"},
        having={
            "type": "and",
            "havingSpecs": [
                {"type": "greaterThan", "aggregation": "rows", "value": 1},
                {
                    "type": "not",
                    "havingSpec": {"type": "dimSelector", "dimension": "country", "value": "FR"},
                },
            ],
        },
        limitSpec={
            "type": "default",
            "limit": 7,
            "columns": [
                {"dimension": "rows", "direction": "descending"},
                {"dimension": "a", "direction": "ascending", "dimensionOrder": "numeric"},
                "country",
            ],
        },
    )
    result = run_query(q)
    assert {r["timestamp"] for r in result} == {"2023-12-01T00:00:00.000Z"}
    got = [(r["event"]["country"], r["event"]["a"], r["event"]["rows"]) for r in result]
    rows = (
        duck()
        .execute(
            "SELECT country, added, count(*) AS n FROM t WHERE added <= 20 GROUP BY ALL "
            "HAVING count(*) > 1 AND country IS DISTINCT FROM 'FR' "
            "ORDER BY n DESC, added ASC NULLS FIRST, country NULLS FIRST LIMIT 7"
        )
        .fetchall()
    )
    assert got == rows
    assert all(isinstance(r["event"]["a"], int) for r in result)


def test_groupby_having_filter_and_offset() -> None:
    q = base(
        "groupBy",
        granularity="all",
        dimensions=["page"],
        aggregations=AGGS,
        having={
            "type": "filter",
            "filter": {
                "type": "bound",
                "dimension": "added",
                "lower": "5000",
                "ordering": "numeric",
            },
        },
        limitSpec={"type": "default", "columns": ["page"], "offset": 2, "limit": 3},
    )
    got = [r["event"]["page"] for r in run_query(q)]
    rows = (
        duck()
        .execute(
            "SELECT page FROM t GROUP BY page HAVING sum(added) >= 5000 ORDER BY page "
            "LIMIT 3 OFFSET 2"
        )
        .fetchall()
    )
    assert got == [r[0] for r in rows]


def test_groupby_without_dimensions_and_empty() -> None:
    q = base("groupBy", granularity="month", aggregations=AGGS)
    got = [(r["timestamp"], r["event"]["rows"]) for r in run_query(q)]
    rows = (
        duck()
        .execute(
            "SELECT epoch_ms(date_trunc('month', __time)), count(*) FROM t GROUP BY 1 ORDER BY 1"
        )
        .fetchall()
    )
    assert got == _iso_rows(rows)
    q["intervals"] = ["2031-01-01/2031-02-01"]
    assert run_query(q) == []
