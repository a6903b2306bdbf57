"""Where ``__time`` and time buckets follow Druid exactly: aggregators read the rows' own time
(not their bucket), timeseries fills buckets only across the segment's data (Druid's
``CursorGranularizer``), and the ``all`` timestamps of timeseries, topN and groupBy."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from common.query import finalize, from_ipc, merge, parse_query, run_segment, to_ipc
from common.segments.intervals import Interval
from common.segments.isotime import parse_iso

HOUR = Interval.parse("2026-12-04T00:00:00Z/2026-12-04T01:00:00Z")
NEXT_HOUR = Interval.parse("2026-12-04T01:00:00Z/2026-12-04T02:00:00Z")
T1 = parse_iso("2026-12-04T00:36:20.788Z")
T2 = parse_iso("2026-12-04T00:38:32.864Z")
T3 = parse_iso("2026-12-04T01:05:00.001Z")
TS = pa.timestamp("ms", tz="UTC")


def segment(times: list[int], channels: list[str]) -> pa.Table:
    return pa.table(
        {
            "__time": pa.array(times, pa.int64()).cast(TS),
            "channel": pa.array(channels).dictionary_encode(),
            "added": pa.array(range(1, len(times) + 1), pa.int64()),
        }
    )


ONE = [(segment([T1, T2], ["#en", "#fr"]), HOUR)]
TWO = [*ONE, (segment([T3], ["#en"]), NEXT_HOUR)]

TIME_AGGS = [
    {"type": "longMin", "name": "first", "fieldName": "__time"},
    {"type": "longMax", "name": "last", "fieldName": "__time"},
    {"type": "doubleMin", "name": "firstD", "fieldName": "__time"},
    {"type": "doubleMax", "name": "lastD", "fieldName": "__time"},
    {
        "type": "filtered",
        "filter": {
            "type": "interval",
            "dimension": "__time",
            "intervals": ["2000/2026-12-04T00:37"],
        },
        "aggregator": {"type": "count", "name": "before37"},
    },
    {"type": "count", "name": "rows"},
]


def run(body: dict[str, Any], segments: list[tuple[pa.Table, Interval]]) -> list[dict[str, Any]]:
    """Each segment on its own node, shipped to the broker as IPC, merged and finalized."""
    q = parse_query({"dataSource": "wiki", "intervals": ["2000/2100"], **body})
    nodes = [
        to_ipc(merge(q, [run_segment(q, t, interval=itv, segment_id=f"s{i}")]))
        for i, (t, itv) in enumerate(segments)
    ]
    return finalize(q, merge(q, [from_ipc(n) for n in nodes]))


def test_timeseries_aggregates_the_rows_time_not_the_bucket() -> None:
    [row] = run({"queryType": "timeseries", "granularity": "hour", "aggregations": TIME_AGGS}, ONE)
    assert row["timestamp"] == "2026-12-04T00:00:00.000Z"
    assert row["result"] == {
        "first": T1,
        "last": T2,
        "firstD": float(T1),
        "lastD": float(T2),
        "before37": 1,
        "rows": 2,
    }


@pytest.mark.parametrize("granularity", ["all", "hour", "minute"])
def test_topn_and_groupby_aggregate_the_rows_time(granularity: str) -> None:
    topn = run(
        {
            "queryType": "topN",
            "granularity": granularity,
            "dimension": "channel",
            "metric": "rows",
            "threshold": 5,
            "aggregations": TIME_AGGS,
        },
        TWO,
    )
    en = [r for bucket in topn for r in bucket["result"] if r["channel"] == "#en"]
    groupby = run(
        {
            "queryType": "groupBy",
            "granularity": granularity,
            "dimensions": ["channel"],
            "aggregations": TIME_AGGS,
        },
        TWO,
    )
    en_gb = [r["event"] for r in groupby if r["event"]["channel"] == "#en"]
    for rows in (en, en_gb):
        firsts = sorted(r["first"] for r in rows)
        lasts = sorted(r["last"] for r in rows)
        if granularity == "all":
            assert (firsts, lasts) == ([T1], [T3])
        else:
            assert (firsts, lasts) == ([T1, T3], [T1, T3])
        assert sum(r["before37"] for r in rows) == 1


def test_timeseries_fills_buckets_only_across_the_segments_data() -> None:
    # Druid clips the query interval to [first row, end of the last row's bucket): not every
    # minute of the segment's hour, and not the future.
    body = {"queryType": "timeseries", "granularity": "minute", "aggregations": TIME_AGGS[-1:]}
    assert [(r["timestamp"], r["result"]["rows"]) for r in run(body, ONE)] == [
        ("2026-12-04T00:36:00.000Z", 1),
        ("2026-12-04T00:37:00.000Z", 0),
        ("2026-12-04T00:38:00.000Z", 1),
    ]
    # The filter does not narrow the data interval (Druid's time boundary is the segment's).
    only_fr = {**body, "filter": {"type": "selector", "dimension": "channel", "value": "#fr"}}
    assert [r["result"]["rows"] for r in run(only_fr, ONE)] == [0, 0, 1]
    skip = {**body, "context": {"skipEmptyBuckets": True}}
    assert [r["timestamp"][11:16] for r in run(skip, ONE)] == ["00:36", "00:38"]
    # Across two segments the gap between them is not filled either.
    stamps = [r["timestamp"][11:16] for r in run(body, TWO)]
    assert stamps == ["00:36", "00:37", "00:38", "01:05"]


def test_granularity_all_timestamps_follow_druid() -> None:
    ts = {"queryType": "timeseries", "granularity": "all", "aggregations": TIME_AGGS[-1:]}
    # Timeseries and topN: the query interval clipped to the data (the first row's time) ...
    assert run(ts, ONE)[0]["timestamp"] == "2026-12-04T00:36:20.788Z"
    assert run(ts, TWO)[0] == {"timestamp": "2026-12-04T00:36:20.788Z", "result": {"rows": 3}}
    # ... or the query interval's start when it begins after the first row.
    later = {**ts, "intervals": ["2026-12-04T00:37/2100"]}
    assert run(later, ONE)[0] == {"timestamp": "2026-12-04T00:37:00.000Z", "result": {"rows": 1}}
    nothing = {**ts, "filter": {"type": "selector", "dimension": "channel", "value": "#de"}}
    assert run(nothing, ONE) == [{"timestamp": "2026-12-04T00:36:20.788Z", "result": {"rows": 0}}]
    topn = {
        "queryType": "topN",
        "granularity": "all",
        "dimension": "channel",
        "metric": "rows",
        "threshold": 1,
        "aggregations": TIME_AGGS[-1:],
    }
    assert [r["timestamp"] for r in run(topn, TWO)] == ["2026-12-04T00:36:20.788Z"]
    # groupBy: Druid's universal timestamp, the start of the first (condensed) interval.
    gb = {
        "queryType": "groupBy",
        "granularity": "all",
        "dimensions": ["channel"],
        "aggregations": TIME_AGGS[-1:],
        "intervals": ["2026-12-04T01:00/2100", "2000/2026-12-04T01:00"],
    }
    assert {r["timestamp"] for r in run(gb, TWO)} == {"2000-01-01T00:00:00.000Z"}


def test_timeseries_all_over_no_data_answers_druids_null_row() -> None:
    ts = {
        "queryType": "timeseries",
        "granularity": "all",
        "intervals": ["2030/2031"],
        "aggregations": [*TIME_AGGS[-1:], {"type": "longSum", "name": "added", "fieldName": "x"}],
    }
    assert run(ts, ONE) == [
        {"timestamp": "2030-01-01T00:00:00.000Z", "result": {"rows": 0, "added": None}}
    ]


def test_topn_answers_every_bucket_of_the_data_even_empty() -> None:
    # Druid's TopNQueryEngine maps every bucket of the clipped interval to a result, an empty
    # list when no row matches in it.
    topn = {
        "queryType": "topN",
        "granularity": "minute",
        "dimension": "channel",
        "metric": "rows",
        "threshold": 5,
        "aggregations": TIME_AGGS[-1:],
    }
    got = [(r["timestamp"][11:16], [e["channel"] for e in r["result"]]) for r in run(topn, ONE)]
    assert got == [("00:36", ["#en"]), ("00:37", []), ("00:38", ["#fr"])]
    nothing = {
        **topn,
        "granularity": "all",
        "filter": {"type": "selector", "dimension": "channel", "value": "#de"},
    }
    assert run(nothing, TWO) == [{"timestamp": "2026-12-04T00:36:20.788Z", "result": []}]
    assert run({**topn, "intervals": ["2030/2031"]}, ONE) == []


def test_groupby_without_dimensions_answers_druids_summary_row() -> None:
    gb = {
        "queryType": "groupBy",
        "granularity": "all",
        "intervals": ["2030/2031"],
        "dimensions": [],
        "aggregations": [*TIME_AGGS[-1:], {"type": "longSum", "name": "added", "fieldName": "x"}],
    }
    summary = {"version": "v1", "timestamp": "2030-01-01T00:00:00.000Z"}
    assert run(gb, ONE) == [{**summary, "event": {"rows": 0, "added": None}}]
    assert run({**gb, "dimensions": ["channel"]}, ONE) == []
    assert run({**gb, "granularity": "hour"}, ONE) == []
    assert run({**gb, "limitSpec": {"type": "default", "offset": 1}}, ONE) == []
    having = {"type": "greaterThan", "aggregation": "rows", "value": 0}
    assert run({**gb, "having": having}, ONE) == []
