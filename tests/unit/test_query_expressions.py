"""Expressions in native queries: virtual columns in every query type (as dimensions, filter
inputs and aggregator inputs), the expression filter, expression aggregators and the expression
post-aggregator, over several segments and compared with DuckDB on the same rows."""

from __future__ import annotations

from typing import Any

import pytest
from test_query_support import base, duck, iso, run_query

UPPER_COUNTRY = {
    "type": "expression",
    "name": "uc",
    "expression": "upper(country)",
    "outputType": "STRING",
}
DOUBLED = {"type": "expression", "name": "added2", "expression": "added * 2", "outputType": "LONG"}


def _fetch(sql: str) -> list[tuple[Any, ...]]:
    return duck().execute(sql).fetchall()


def test_groupby_on_virtual_columns_and_expression_aggregators() -> None:
    q = base(
        "groupBy",
        granularity="all",
        virtualColumns=[UPPER_COUNTRY, DOUBLED],
        dimensions=["uc"],
        aggregations=[
            {"type": "longSum", "name": "a2", "fieldName": "added2"},
            {"type": "longSum", "name": "a1", "expression": "added + 1"},
            {"type": "doubleMax", "name": "dmax", "expression": "delta * 10"},
        ],
        postAggregations=[
            {"type": "expression", "name": "ratio", "expression": "a2 / 2 - a1"},
            {"type": "expression", "name": "label", "expression": "concat(uc, ':', a1)"},
        ],
    )
    got = [
        (e["uc"], e["a2"], e["a1"], e["dmax"], e["ratio"], e["label"])
        for e in (r["event"] for r in run_query(q))
    ]
    want = _fetch(
        """
        SELECT uc, a2, a1, dmax, a2 // 2 - a1, uc || ':' || a1 FROM (
          SELECT upper(country) AS uc, sum(added * 2) AS a2, sum(added + 1) AS a1,
                 max(delta * 10) AS dmax
          FROM t GROUP BY 1) ORDER BY uc NULLS FIRST
        """
    )
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[:3] == w[:3]
        assert g[3] == pytest.approx(w[3])
        assert g[4] == w[4]
        assert g[5] == w[5]


def test_timeseries_with_expression_filter_and_virtual_aggregator_input() -> None:
    q = base(
        "timeseries",
        granularity="month",
        virtualColumns=[DOUBLED],
        filter={"type": "expression", "expression": "added > 100 && country == 'US'"},
        aggregations=[
            {"type": "count", "name": "rows"},
            {"type": "longSum", "name": "a2", "fieldName": "added2"},
        ],
    )
    got = [(r["timestamp"], r["result"]["rows"], r["result"]["a2"]) for r in run_query(q)]
    want = _fetch(
        """
        SELECT epoch_ms(date_trunc('month', __time)), count(*), sum(added * 2) FROM t
        WHERE added > 100 AND country = 'US' GROUP BY 1 ORDER BY 1
        """
    )
    assert got == [(iso(b), c, s) for b, c, s in want]


def test_expression_filter_unknown_is_not_kept_under_not() -> None:
    # SQL three-valued logic: NOT (null > 100) is unknown, so rows with null 'added' stay out.
    q = base(
        "timeseries",
        filter={"type": "not", "field": {"type": "expression", "expression": "added > 100"}},
        aggregations=[{"type": "count", "name": "rows"}],
    )
    got = run_query(q)[0]["result"]["rows"]
    assert got == _fetch("SELECT count(*) FROM t WHERE NOT (added > 100)")[0][0]
    assert got < _fetch("SELECT count(*) FROM t WHERE (added > 100) IS NOT TRUE")[0][0]


def test_topn_on_a_virtual_column_dimension() -> None:
    q = base(
        "topN",
        granularity="all",
        virtualColumns=[
            {
                "type": "expression",
                "name": "pc",
                "expression": "concat(page, '-', nvl(country, 'none'))",
                "outputType": "STRING",
            }
        ],
        dimension="pc",
        metric="added",
        threshold=5,
        aggregations=[{"type": "longSum", "name": "added", "fieldName": "added"}],
    )
    got = [(r["pc"], r["added"]) for r in run_query(q)[0]["result"]]
    want = _fetch(
        """
        SELECT page || '-' || coalesce(country, 'none') AS pc, sum(added) AS s FROM t
        GROUP BY 1 ORDER BY s DESC NULLS LAST, pc LIMIT 5
        """
    )
    assert got == want


def test_groupby_on_a_time_expression_and_a_chained_virtual_column() -> None:
    q = base(
        "groupBy",
        granularity="all",
        virtualColumns=[
            {
                "type": "expression",
                "name": "week",
                "expression": "timestamp_floor(__time, 'P1W')",
                "outputType": "LONG",
            },
            {
                "type": "expression",
                "name": "wk_text",
                "expression": "timestamp_format(week, 'yyyy-MM-dd')",
            },
        ],
        dimensions=["wk_text"],
        aggregations=[{"type": "count", "name": "rows"}],
    )
    got = [(r["event"]["wk_text"], r["event"]["rows"]) for r in run_query(q)]
    want = _fetch(
        """
        SELECT strftime(date_trunc('week', __time), '%Y-%m-%d'), count(*) FROM t
        GROUP BY 1 ORDER BY 1
        """
    )
    assert got == want


def test_scan_returns_virtual_columns() -> None:
    q = base(
        "scan",
        intervals=["2024-02-10/2024-02-11"],
        virtualColumns=[UPPER_COUNTRY, DOUBLED],
        columns=["__time", "uc", "added2"],
        order="ascending",
    )
    got = [(e["uc"], e["added2"]) for batch in run_query(q) for e in batch["events"]]
    want = _fetch(
        """
        SELECT upper(country), added * 2 FROM t
        WHERE __time >= '2024-02-10' AND __time < '2024-02-11' ORDER BY __time
        """
    )
    assert sorted(got, key=repr) == sorted(want, key=repr)


def test_virtual_column_over_a_multi_value_column_is_multi_value() -> None:
    # upper(tags) maps over the values; grouping on it explodes them as on the column itself.
    q = base(
        "groupBy",
        granularity="all",
        virtualColumns=[
            {
                "type": "expression",
                "name": "ut",
                "expression": "upper(tags)",
                "outputType": "STRING",
            }
        ],
        filter={"type": "expression", "expression": "tags == 'b'"},
        dimensions=["ut"],
        aggregations=[{"type": "count", "name": "rows"}],
    )
    got = [(r["event"]["ut"], r["event"]["rows"]) for r in run_query(q)]
    want = _fetch(
        """
        SELECT upper(tag), count(*) FROM (SELECT unnest(tags) AS tag FROM t
        WHERE list_contains(tags, 'b')) GROUP BY 1 ORDER BY 1
        """
    )
    assert got == want


def test_two_multi_value_columns_as_scalars_are_a_cartesian_map() -> None:
    # Druid rewrites concat(tags, '-', tags2) to cartesian_map((tags, tags2) -> ..., tags, tags2)
    # (tags2, a multi-value virtual column, read as a scalar too); grouping explodes the result.
    q = base(
        "groupBy",
        granularity="all",
        virtualColumns=[
            {"type": "expression", "name": "v", "expression": "concat(tags, '-', tags2)"},
            {"type": "expression", "name": "tags2", "expression": "array_append(tags, 'z')"},
        ],
        filter={"type": "not", "field": {"type": "null", "column": "tags"}},
        dimensions=["v"],
        aggregations=[{"type": "count", "name": "rows"}],
    )
    got = [(r["event"]["v"], r["event"]["rows"]) for r in run_query(q)]
    want = _fetch(
        """
        SELECT a || '-' || b, count(*) FROM t
        CROSS JOIN UNNEST(t.tags) AS x(a) CROSS JOIN UNNEST(list_append(t.tags, 'z')) AS y(b)
        GROUP BY 1 ORDER BY 1
        """
    )
    assert got == want and len(got) > 4


FIRST_LAST = [
    {"type": "longFirst", "name": "lf", "fieldName": "added"},
    {"type": "longLast", "name": "ll", "fieldName": "added"},
    {"type": "doubleFirst", "name": "df", "fieldName": "delta"},
    {"type": "floatLast", "name": "dl", "fieldName": "delta"},
    {"type": "stringFirst", "name": "sf", "fieldName": "page"},
    {"type": "stringLast", "name": "sl", "fieldName": "user", "maxStringBytes": 2},
]

# DuckDB's arg_min/arg_max skip null values; Druid's first/last keep the null of the chosen row,
# so the expected values are taken from the row with the min/max time (times are unique here).
_FIRST_LAST_SQL = """
    WITH ranked AS (
      SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY __time) AS up,
                row_number() OVER (PARTITION BY {key} ORDER BY __time DESC) AS down
      FROM t {where})
    SELECT {key},
      max(CASE WHEN up = 1 THEN added END), max(CASE WHEN down = 1 THEN added END),
      max(CASE WHEN up = 1 THEN delta END), max(CASE WHEN down = 1 THEN delta END),
      max(CASE WHEN up = 1 THEN page END), max(CASE WHEN down = 1 THEN left(user, 2) END)
    FROM ranked GROUP BY {key} ORDER BY {key} NULLS FIRST
"""


def test_first_last_by_country_across_segments() -> None:
    q = base("groupBy", granularity="all", dimensions=["country"], aggregations=FIRST_LAST)
    got = [
        tuple(r["event"][k] for k in ("country", "lf", "ll", "df", "dl", "sf", "sl"))
        for r in run_query(q)
    ]
    want = _fetch(_FIRST_LAST_SQL.format(key="country", where=""))
    assert got == want


def test_first_last_in_timeseries_buckets_and_an_empty_bucket() -> None:
    q = base(
        "timeseries",
        granularity="day",
        intervals=["2024-01-14/2024-01-18"],  # 01-15 and 01-16 have no rows (the dataset's gap)
        aggregations=FIRST_LAST,
    )
    got = {r["timestamp"]: r["result"] for r in run_query(q)}
    assert got[iso(1705276800000)] == {k["name"]: None for k in FIRST_LAST}
    assert got[iso(1705363200000)] == {k["name"]: None for k in FIRST_LAST}
    want = _fetch(
        _FIRST_LAST_SQL.format(
            key="date_trunc('day', __time)",
            where="WHERE __time >= '2024-01-14' AND __time < '2024-01-18'",
        )
    )
    for day, *vals in want:
        res = got[iso(int(day.timestamp() * 1000))]
        assert tuple(res[a["name"]] for a in FIRST_LAST) == tuple(vals)


def test_first_of_a_null_value_is_null_not_the_next_value() -> None:
    # The earliest row of the whole dataset with a null 'added' decides, as Druid does.
    row = _fetch("SELECT __time FROM t WHERE added IS NULL ORDER BY __time LIMIT 1")[0][0]
    start = iso(int(row.timestamp() * 1000))
    q = base(
        "timeseries",
        intervals=[f"{start}/2024-04-01"],
        aggregations=[{"type": "longFirst", "name": "lf", "fieldName": "added"}],
    )
    assert run_query(q)[0]["result"]["lf"] is None


def test_virtual_columns_over_segments_of_many_record_batches() -> None:
    # Memory-mapped segments arrive as 64k-row batches; the answers must not depend on that.
    import pyarrow as pa
    from test_query_support import SEGMENT_TABLES

    from common.query import finalize, merge, parse_query, run_segment

    q = parse_query(
        base(
            "groupBy",
            granularity="all",
            virtualColumns=[
                DOUBLED,
                {
                    "type": "expression",
                    "name": "d",
                    "expression": "delta / 3",
                    "outputType": "LONG",
                },
                {"type": "expression", "name": "s", "expression": "concat(page, added)"},
            ],
            filter={"type": "expression", "expression": "added2 > 100"},
            dimensions=[{"type": "default", "dimension": "d", "outputType": "LONG"}],
            aggregations=[
                {"type": "longSum", "name": "a", "fieldName": "added2"},
                {"type": "count", "name": "n"},
                {"type": "doubleSum", "name": "x", "expression": "delta * 2"},
                {"type": "longMax", "name": "slen", "expression": "strlen(s)"},
            ],
        )
    )

    def run(tables: list[Any]) -> list[dict[str, Any]]:
        parts = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in tables]
        return finalize(q, merge(q, parts))

    batched = [
        (i, s, pa.Table.from_batches(t.to_batches(max_chunksize=97))) for i, s, t in SEGMENT_TABLES
    ]
    assert batched[1][2].column("added").num_chunks > 1
    assert run(batched) == run(SEGMENT_TABLES)
