"""A peon before handoff (sinks of hydrants: persisted ones memory-mapped, plus the in-memory
index) and a historical after it (the pushed segment, converted to the cache's Arrow IPC file and
mapped) answer every query type the same, over segments whose schemas differ (discovered
dimensions: a plain string in one hour and multi-value in the next, long in one and double in the
other, a column only one hour has), with ``__time`` aggregators and minute buckets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from common.ingest.appenderator import Appenderator, PersistLimits, Sink
from common.ingest.parser import InputRow
from common.ingest.spec import parse_data_schema
from common.query import finalize, from_ipc, merge, parse_query, run_segment, to_ipc
from common.segments.format import open_segment, parquet_to_ipc, write_parquet
from common.segments.intervals import Interval
from common.segments.isotime import parse_iso
from common.segments.segment import SegmentIdWithShardSpec

HOUR = 3_600_000
H0 = parse_iso("2026-12-04T00:00:00Z")
SCHEMA = parse_data_schema(
    {
        "dataSource": "wiki",
        "dimensionsSpec": {"useSchemaDiscovery": True},
        "metricsSpec": [{"type": "count", "name": "count"}],
        "granularitySpec": {
            "segmentGranularity": "HOUR",
            "queryGranularity": "NONE",
            "rollup": False,
        },
    }
)
# Hour 0: dim3 a plain string, n a long, only_a present. Hour 1: dim3 multi-value, n a double.
HOUR0 = [
    InputRow(H0 + 2_180_788, {"dim3": "a", "n": 1, "only_a": "x"}, (None,)),
    InputRow(H0 + 2_312_864, {"dim3": "b", "n": 2}, (None,)),
]
HOUR0_LATER = [InputRow(H0 + 2_400_000, {"dim3": "a", "n": 3}, (None,))]
HOUR1 = [
    InputRow(H0 + HOUR + 60_000, {"dim3": ["a", "c"], "n": 1.5}, (None,)),
    InputRow(H0 + HOUR + 125_000, {"dim3": ["d"], "n": 2.5}, (None,)),
]
AGGS = [
    {"type": "count", "name": "rows"},
    {"type": "doubleSum", "name": "n", "fieldName": "n"},
    {"type": "longMin", "name": "first", "fieldName": "__time"},
    {"type": "longMax", "name": "last", "fieldName": "__time"},
]
QUERIES: list[dict[str, Any]] = [
    {"queryType": "scan", "columns": ["__time", "dim3", "n", "only_a"]},
    {"queryType": "scan", "resultFormat": "compactedList"},
    {"queryType": "timeseries", "granularity": "minute", "aggregations": AGGS},
    {"queryType": "timeseries", "granularity": "all", "aggregations": AGGS},
    {
        "queryType": "topN",
        "granularity": "all",
        "dimension": "dim3",
        "metric": "rows",
        "threshold": 3,
        "aggregations": AGGS,
    },
    {
        "queryType": "topN",
        "granularity": "minute",
        "dimension": "dim3",
        "metric": "rows",
        "threshold": 2,
        "aggregations": AGGS,
    },
    {"queryType": "groupBy", "granularity": "hour", "dimensions": ["dim3"], "aggregations": AGGS},
    {"queryType": "segmentMetadata", "merge": True},
]


def _ident(hour: int) -> SegmentIdWithShardSpec:
    itv = Interval(H0 + hour * HOUR, H0 + (hour + 1) * HOUR)
    return SegmentIdWithShardSpec("wiki", itv, "v1", 0)


def _realtime(tmp: Path) -> tuple[Appenderator, list[Sink]]:
    app = Appenderator(SCHEMA, tmp / "persist", PersistLimits(), now=0.0)
    s0 = app.get_or_create_sink(_ident(0), "seq_0")
    s1 = app.get_or_create_sink(_ident(1), "seq_0")
    app.add_rows(s0, HOUR0)
    app.add_rows(s1, HOUR1)
    app.persist_hydrants(app.swap(now=0.0), {})  # a persisted, memory-mapped hydrant each
    app.add_rows(s0, HOUR0_LATER)  # and rows still in memory
    return app, [s0, s1]


def _historical(tmp: Path, app: Appenderator, sink: Sink) -> pa.Table:
    table, dims, metrics = app.merged_table(sink)
    name = str(sink.identifier.interval.start)
    parquet, ipc = tmp / f"{name}.parquet", tmp / f"{name}.arrow"
    write_parquet(table, parquet, sink.identifier.interval, dimensions=dims, metrics=metrics)
    parquet_to_ipc(parquet, ipc)
    return open_segment(ipc).table


def _answer(body: dict[str, Any], segments: list[tuple[pa.Table, Interval]]) -> Any:
    q = parse_query({"dataSource": "wiki", "intervals": ["2000/2100"], **body})
    nodes = [
        to_ipc(merge(q, [run_segment(q, t, interval=i, segment_id=f"wiki_{i.start}")]))
        for t, i in segments
    ]
    return finalize(q, merge(q, [from_ipc(n) for n in nodes]))


@pytest.fixture
def both(tmp_path: Path) -> tuple[list[tuple[pa.Table, Interval]], list[tuple[pa.Table, Interval]]]:
    app, sinks = _realtime(tmp_path)
    peon = [(s.query_table(["count"]), s.identifier.interval) for s in sinks]
    historical = [(_historical(tmp_path, app, s), s.identifier.interval) for s in sinks]
    return peon, historical


IDS = [
    "scan",
    "scan-all-columns",
    "ts-minute",
    "ts-all",
    "topN-all",
    "topN-minute",
    "groupBy",
    "segmentMetadata",
]


@pytest.mark.parametrize("body", QUERIES, ids=IDS)
def test_peon_and_historical_agree(both: Any, body: dict[str, Any]) -> None:
    peon, historical = both
    assert _answer(body, peon) == _answer(body, historical)


def test_the_answers_are_druids(both: Any) -> None:
    peon, historical = both
    for segments in (peon, historical):
        [all_] = _answer(QUERIES[3], segments)
        assert all_["timestamp"] == "2026-12-04T00:36:20.788Z"
        assert all_["result"] == {
            "rows": 5,
            "n": 10.0,
            "first": H0 + 2_180_788,
            "last": H0 + HOUR + 125_000,
        }
        minutes = [r["timestamp"][11:16] for r in _answer(QUERIES[2], segments)]
        assert minutes == ["00:36", "00:37", "00:38", "00:39", "00:40", "01:01", "01:02"]
        events = [e for b in _answer(QUERIES[0], segments) for e in b["events"]]
        assert [e["dim3"] for e in events] == ["a", "b", "a", ["a", "c"], "d"]
        assert [e["only_a"] for e in events] == ["x", None, None, None, None]
