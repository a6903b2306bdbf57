"""Timeseries over several segments vs DuckDB/pyarrow on the concatenated rows: granularities
(time zones, origins, durations), empty buckets, nulls, descending/limit, and every filter type."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_query_support import FULL, SEGMENT_TABLES, base, duck, iso, run_query

AGGS = [
    {"type": "count", "name": "rows"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
    {"type": "longMin", "name": "minAdded", "fieldName": "added"},
    {"type": "doubleMax", "name": "maxDelta", "fieldName": "delta"},
]

SQL_AGGS = (
    "count(*) AS rows, sum(added) AS added, sum(delta) AS delta, "
    "min(added) AS minAdded, max(delta) AS maxDelta"
)


def _close(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual.keys() == expected.keys()
    for k, v in expected.items():
        if isinstance(v, float):
            assert actual[k] == pytest.approx(v, rel=1e-9, abs=1e-6), k
        else:
            assert actual[k] == v, k


def _expected_by_bucket(buckets: Any) -> dict[int, dict[str, Any]]:
    con = duck()
    con.register("b", pa.table({"bucket": buckets}))
    rows = con.execute(
        f"SELECT b.bucket, {SQL_AGGS} FROM (SELECT *, row_number() OVER () - 1 AS i FROM t) t "
        "JOIN (SELECT bucket, row_number() OVER () - 1 AS i FROM b) b USING (i) "
        "GROUP BY b.bucket ORDER BY b.bucket"
    ).fetchall()
    keys = ["rows", "added", "delta", "minAdded", "maxDelta"]
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}


def _floor(unit: str, tz: str = "UTC", multiple: int = 1) -> Any:
    ts = FULL["__time"].cast(pa.timestamp("ms", tz=tz))
    floored = pc.floor_temporal(ts, multiple=multiple, unit=unit, week_starts_monday=True)
    return floored.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())


@pytest.mark.parametrize(
    ("granularity", "unit", "multiple"),
    [
        ("hour", "hour", 1),
        ("day", "day", 1),
        ("week", "week", 1),
        ("month", "month", 1),
        ("quarter", "quarter", 1),
        ("year", "year", 1),
        ("six_hour", "hour", 6),
        ("fifteen_minute", "minute", 15),
    ],
)
def test_simple_granularities_match_pyarrow_floor(
    granularity: str, unit: str, multiple: int
) -> None:
    q = base(
        "timeseries", granularity=granularity, aggregations=AGGS, context={"skipEmptyBuckets": True}
    )
    result = run_query(q)
    expected = _expected_by_bucket(_floor(unit, multiple=multiple))
    assert [r["timestamp"] for r in result] == [iso(b) for b in expected]
    for r, e in zip(result, expected.values(), strict=True):
        _close(r["result"], e)


def test_period_granularity_with_time_zone_buckets_and_prints_local_time() -> None:
    gran = {"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"}
    q = base("timeseries", granularity=gran, aggregations=AGGS, context={"skipEmptyBuckets": True})
    result = run_query(q)
    expected = _expected_by_bucket(_floor("day", tz="America/Los_Angeles"))
    assert len(result) == len(expected)
    for r, (bucket, e) in zip(result, expected.items(), strict=True):
        # Local midnight, printed with the zone's offset (-08:00, or -07:00 after the DST change).
        local = pa.scalar(bucket, pa.timestamp("ms", tz="UTC")).cast(
            pa.timestamp("ms", tz="America/Los_Angeles")
        )
        offset = "-07:00" if local.as_py().utcoffset().total_seconds() == -7 * 3600 else "-08:00"
        assert r["timestamp"] == local.as_py().strftime("%Y-%m-%dT%H:%M:%S.000") + offset
        _close(r["result"], e)


def test_period_with_origin_and_duration_granularity() -> None:
    origin = "2024-01-01T03:00:00Z"
    for gran in (
        {"type": "period", "period": "PT6H", "origin": origin},
        {"type": "duration", "duration": 6 * 3600 * 1000, "origin": origin},
    ):
        q = base(
            "timeseries", granularity=gran, aggregations=AGGS, context={"skipEmptyBuckets": True}
        )
        result = run_query(q)
        t = FULL["__time"].cast(pa.int64()).to_numpy()
        o, d = 1704078000000, 6 * 3600 * 1000
        buckets = pa.array((t - o) // d * d + o)
        expected = _expected_by_bucket(buckets)
        assert [r["timestamp"] for r in result] == [iso(b) for b in expected]
        for r, e in zip(result, expected.values(), strict=True):
            _close(r["result"], e)


def test_empty_buckets_are_zero_filled_inside_segments_unless_skipped() -> None:
    q = base(
        "timeseries", intervals=["2024-01-14/2024-01-19"], granularity="hour", aggregations=AGGS
    )
    filled = run_query(q)
    assert len(filled) == 5 * 24  # every hour of the query interval lies inside a segment
    expected = _expected_by_bucket(_floor("hour"))
    for r in filled:
        bucket = int(np.datetime64(r["timestamp"][:-1], "ms").astype(np.int64))
        if bucket in expected:
            _close(r["result"], expected[bucket])
        else:
            assert r["result"] == {
                "rows": 0,
                "added": None,
                "delta": None,
                "minAdded": None,
                "maxDelta": None,
            }
    empty = [r for r in filled if r["result"]["rows"] == 0]
    assert len(empty) >= 48  # the gap in the data
    q["context"] = {"skipEmptyBuckets": True}
    skipped = run_query(q)
    assert [r for r in filled if r["result"]["rows"]] == skipped


def test_buckets_outside_every_segment_are_not_filled() -> None:
    q = base(
        "timeseries", intervals=["2024-03-12/2024-04-03"], granularity="day", aggregations=AGGS
    )
    # The last segment runs to 2024-04-01 but its rows stop on 2024-03-14: as Druid clips the
    # query interval to the segment's data, the days after its last row are not filled.
    assert [r["timestamp"] for r in run_query(q)] == [
        "2024-03-12T00:00:00.000Z",
        "2024-03-13T00:00:00.000Z",
        "2024-03-14T00:00:00.000Z",
    ]


def test_granularity_all_descending_and_limit() -> None:
    q = base(
        "timeseries", intervals=["2024-01-10/2024-02-10"], granularity="all", aggregations=AGGS
    )
    [row] = run_query(q)
    e = (
        duck()
        .execute(f"SELECT {SQL_AGGS} FROM t WHERE __time >= '2024-01-10' AND __time < '2024-02-10'")
        .fetchone()
    )
    assert row["timestamp"] == "2024-01-10T00:00:00.000Z"
    _close(
        row["result"], dict(zip(["rows", "added", "delta", "minAdded", "maxDelta"], e, strict=True))
    )
    q = base(
        "timeseries",
        granularity="day",
        aggregations=AGGS,
        descending=True,
        limit=3,
        context={"skipEmptyBuckets": True},
    )
    result = run_query(q)
    assert [r["timestamp"] for r in result] == [
        "2024-03-14T00:00:00.000Z",
        "2024-03-13T00:00:00.000Z",
        "2024-03-12T00:00:00.000Z",
    ]


def test_filter_matching_nothing_gives_zero_count_bucket() -> None:
    q = base(
        "timeseries",
        granularity="all",
        aggregations=AGGS,
        filter={"type": "selector", "dimension": "country", "value": "nowhere"},
    )
    [row] = run_query(q)
    assert row["result"]["rows"] == 0 and row["result"]["added"] is None


def test_no_rows_gives_druids_null_row_for_granularity_all() -> None:
    # Druid's getNullTimeseriesResultValue: granularity all answers one row even when nothing
    # matched, stamped with the first interval's start; other granularities answer nothing.
    q = base("timeseries", intervals=["2030-01-01/2030-02-01"], aggregations=AGGS)
    assert run_query(q) == [
        {
            "timestamp": "2030-01-01T00:00:00.000Z",
            "result": {"rows": 0, "added": None, "delta": None, "minAdded": None, "maxDelta": None},
        }
    ]
    assert run_query({**q, "context": {"skipEmptyBuckets": True}}) == []
    assert run_query({**q, "granularity": "day"}) == []


MV_ANY = "len(list_filter(tags, lambda x: {})) > 0"
MV_NONE = "len(tags) > 0 AND len(list_filter(tags, lambda x: {})) = 0"

FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"type": "selector", "dimension": "country", "value": "US"}, "country = 'US'"),
    ({"type": "selector", "dimension": "country", "value": None}, "country IS NULL"),
    (
        {"type": "equals", "column": "country", "matchValueType": "STRING", "matchValue": "FR"},
        "country = 'FR'",
    ),
    (
        {"type": "equals", "column": "added", "matchValueType": "LONG", "matchValue": 500},
        "added = 500",
    ),
    ({"type": "in", "dimension": "country", "values": ["US", "JP"]}, "country IN ('US', 'JP')"),
    (
        {"type": "in", "dimension": "country", "values": ["US", None]},
        "country = 'US' OR country IS NULL",
    ),
    (
        {"type": "bound", "dimension": "page", "lower": "p10", "upper": "p20", "upperStrict": True},
        "page >= 'p10' AND page < 'p20'",
    ),
    (
        {
            "type": "bound",
            "dimension": "added",
            "lower": "100",
            "lowerStrict": True,
            "ordering": "numeric",
        },
        "added > 100",
    ),
    (
        {"type": "bound", "dimension": "page", "lower": "p5", "ordering": "lexicographic"},
        "page >= 'p5'",
    ),
    (
        {
            "type": "range",
            "column": "delta",
            "matchValueType": "DOUBLE",
            "lower": -10.5,
            "upper": 20,
            "upperOpen": True,
        },
        "delta >= -10.5 AND delta < 20",
    ),
    (
        {
            "type": "range",
            "column": "country",
            "matchValueType": "STRING",
            "lower": "DE",
            "lowerOpen": True,
        },
        "country > 'DE'",
    ),
    ({"type": "like", "dimension": "page", "pattern": "p1%"}, "page LIKE 'p1%'"),
    ({"type": "like", "dimension": "page", "pattern": "p_5"}, "page LIKE 'p_5'"),
    ({"type": "regex", "dimension": "page", "pattern": "[37]$"}, "regexp_matches(page, '[37]$')"),
    ({"type": "null", "column": "added"}, "added IS NULL"),
    (
        {"type": "not", "field": {"type": "selector", "dimension": "country", "value": "US"}},
        "NOT (country = 'US')",
    ),
    ({"type": "not", "field": {"type": "null", "column": "country"}}, "country IS NOT NULL"),
    (
        {
            "type": "and",
            "fields": [
                {"type": "selector", "dimension": "country", "value": "US"},
                {"type": "bound", "dimension": "added", "lower": "0", "ordering": "numeric"},
            ],
        },
        "country = 'US' AND added >= 0",
    ),
    (
        {
            "type": "or",
            "fields": [
                {"type": "selector", "dimension": "country", "value": "FR"},
                {"type": "like", "dimension": "page", "pattern": "%9"},
            ],
        },
        "country = 'FR' OR page LIKE '%9'",
    ),
    (
        {
            "type": "not",
            "field": {
                "type": "or",
                "fields": [
                    {"type": "selector", "dimension": "country", "value": "FR"},
                    {"type": "null", "column": "delta"},
                ],
            },
        },
        "NOT (country = 'FR' OR delta IS NULL)",
    ),
    (
        {
            "type": "interval",
            "dimension": "__time",
            "intervals": ["2024-01-01/2024-01-08", "2024-02-20T12:00/2024-03-02"],
        },
        "(__time >= '2024-01-01' AND __time < '2024-01-08') OR "
        "(__time >= '2024-02-20 12:00' AND __time < '2024-03-02')",
    ),
    ({"type": "selector", "dimension": "tags", "value": "a"}, MV_ANY.format("x = 'a'")),
    ({"type": "in", "dimension": "tags", "values": ["b", "d"]}, MV_ANY.format("x IN ('b', 'd')")),
    (
        {"type": "not", "field": {"type": "selector", "dimension": "tags", "value": "a"}},
        MV_NONE.format("x = 'a'"),
    ),
    ({"type": "null", "column": "tags"}, "tags IS NULL OR len(tags) = 0"),
    ({"type": "selector", "dimension": "missing_column", "value": None}, "TRUE"),
    ({"type": "selector", "dimension": "missing_column", "value": "x"}, "FALSE"),
]


@pytest.mark.parametrize(("flt", "where"), FILTERS, ids=[w for _, w in FILTERS])
def test_filter_matches_duckdb(flt: dict[str, Any], where: str) -> None:
    q = base("timeseries", granularity="all", aggregations=AGGS, filter=flt)
    [row] = run_query(q)
    e = duck().execute(f"SELECT {SQL_AGGS} FROM t WHERE {where}").fetchone()
    assert e is not None
    expected = dict(zip(["rows", "added", "delta", "minAdded", "maxDelta"], e, strict=True))
    _close(row["result"], expected)


def test_dictionary_filter_evaluates_each_chunk() -> None:
    # A segment whose dictionary differs per record batch still filters correctly.
    _, _, seg = SEGMENT_TABLES[1]
    halves = [seg.slice(0, 100), seg.slice(100)]
    chunked = pa.concat_tables(
        [
            h.set_column(
                1, "country", h["country"].combine_chunks().cast(pa.string()).dictionary_encode()
            )
            for h in halves
        ]
    )
    from common.query.filters import SelectorFilter, filter_mask

    mask = filter_mask(SelectorFilter(type="selector", dimension="country", value="US"), chunked)
    assert pc.sum(mask).as_py() == pc.sum(pc.equal(seg["country"].cast(pa.string()), "US")).as_py()
