"""Sketch metrics at ingestion: built per row by the row parser and the incremental index,
unioned by rollup (in memory and across persisted hydrants at handoff), stored as binary segment
columns with their complex type, and answered the same by a peon before handoff and a
historical after it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import datasketches as ds
import orjson
import pyarrow as pa
import pytest

from common.errors import InvalidInput
from common.ingest import sketch_metrics
from common.ingest.appenderator import Appenderator, PersistLimits, Sink
from common.ingest.index import IncrementalIndex
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import InputRow, RowParser
from common.ingest.spec import parse_data_schema, parse_input_format
from common.query import finalize, from_ipc, merge, parse_query, run_segment, to_ipc
from common.segments.format import open_segment, parquet_to_ipc, read_parquet, write_parquet
from common.segments.intervals import Interval
from common.segments.isotime import parse_iso
from common.segments.segment import SegmentIdWithShardSpec

HOUR = 3_600_000
H0 = parse_iso("2026-12-04T00:00:00Z")
METRICS: list[dict[str, Any]] = [
    {"type": "count", "name": "count"},
    {"type": "hyperUnique", "name": "unique_users", "fieldName": "user"},
    {"type": "HLLSketchBuild", "name": "hll_users", "fieldName": "user", "lgK": 10},
    {"type": "thetaSketch", "name": "theta_users", "fieldName": "user", "size": 256},
    # k large enough that 6000 values stay exact: see test_quantiles_merges_are_approximate
    {"type": "quantilesDoublesSketch", "name": "q_latency", "fieldName": "latency", "k": 4096},
]


def _schema(rollup: bool = True) -> Any:
    return parse_data_schema(
        {
            "dataSource": "web",
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": METRICS,
            "granularitySpec": {
                "segmentGranularity": "HOUR",
                "queryGranularity": "MINUTE",
                "rollup": rollup,
            },
        }
    )


def _parser(schema: Any) -> tuple[RowParser, RowIngestionMeters]:
    meters = RowIngestionMeters()
    fmt = parse_input_format({"type": "json"})
    return RowParser(schema, fmt, ParseExceptionHandler(meters)), meters


def _rows(parser: RowParser, events: list[dict[str, Any]]) -> list[InputRow]:
    out: list[InputRow] = []
    for e in events:
        out.extend(parser.parse(orjson.dumps(e), now_ms=0))
    return out


def _event(i: int, hour: int = 0) -> dict[str, Any]:
    # 3 pages, users 0..n with repeats; latency i % 1000: enough distinct users that the HLL
    # sketches leave their exact (coupon) mode and theta (size 256) estimates.
    return {
        "timestamp": H0 + hour * HOUR + (i % 7) * 60_000,
        "page": f"p{i % 3}",
        "user": f"u{i % 1500}",
        "latency": float(i % 1000),
    }


# -------------------------------------------------------------------- build / merge / serialise


def test_rollup_unions_the_row_sketches() -> None:
    schema = _schema()
    parser, _ = _parser(schema)
    index = IncrementalIndex(schema, compact_rows=100)
    for start in range(0, 3000, 500):  # several compactions, each unions sketches
        index.add_rows(_rows(parser, [_event(i) for i in range(start, start + 500)]))
    table = index.to_arrow()
    assert table.num_rows == 3 * 7  # page x minute
    for name in ("unique_users", "hll_users", "theta_users", "q_latency"):
        assert table.schema.field(name).type == pa.binary()
    meta = {n: table.schema.field(n).metadata[b"druid.complexType"] for n in METRICS_NAMES}
    assert meta == {
        "unique_users": b"hyperUnique",
        "hll_users": b"HLLSketch",
        "theta_users": b"thetaSketch",
        "q_latency": b"quantilesDoublesSketch",
    }
    # Every stored sketch is a real, deserialisable sketch of that row's inputs.
    counts = table.column("count").to_pylist()
    assert sum(counts) == 3000
    quantiles = [ds.quantiles_doubles_sketch.deserialize(b) for b in table["q_latency"].to_pylist()]
    assert [q.n for q in quantiles] == counts
    assert all(q.k == 4096 for q in quantiles)
    hll = ds.hll_sketch.deserialize(table["hll_users"][0].as_py())
    assert hll.lg_config_k == 10
    # Union of all rows: 1500 distinct users, within the sketches' error.
    u = ds.hll_union(10)
    for b in table["hll_users"].to_pylist():
        u.update(ds.hll_sketch.deserialize(b))
    assert u.get_estimate() == pytest.approx(1500, rel=0.1)


METRICS_NAMES = ("unique_users", "hll_users", "theta_users", "q_latency")


def test_without_rollup_every_row_keeps_its_own_sketch() -> None:
    schema = _schema(rollup=False)
    parser, _ = _parser(schema)
    index = IncrementalIndex(schema)
    index.add_rows(_rows(parser, [_event(i) for i in range(10)]))
    table = index.to_arrow()
    assert table.num_rows == 10
    ests = [ds.hll_sketch.deserialize(b).get_estimate() for b in table["hll_users"].to_pylist()]
    assert ests == pytest.approx([1.0] * 10)


def test_hyperunique_counts_the_empty_string_but_hll_sketch_does_not() -> None:
    spec = _schema().metricsSpec
    hu = sketch_metrics.build_column(spec[1], ["", "a", None])
    hll = sketch_metrics.build_column(spec[2], ["", "a", None])
    assert ds.hll_sketch.deserialize(hu[0].as_py()).get_estimate() == pytest.approx(1.0)
    assert ds.hll_sketch.deserialize(hll[0].as_py()).get_estimate() == 0.0  # datasketches/Druid
    assert hu[2].as_py() is None and hll[2].as_py() is None


def test_multi_value_inputs_go_into_one_sketch() -> None:
    theta = _schema().metricsSpec[3]
    col = sketch_metrics.build_column(theta, [["a", "b", "a"]])
    assert ds.compact_theta_sketch.deserialize(col[0].as_py()).get_estimate() == 2.0


def test_merge_metrics_take_base64_sketches_and_refuse_other_values() -> None:
    schema = parse_data_schema(
        {
            "dataSource": "pre",
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [
                {"type": "HLLSketchMerge", "name": "h", "fieldName": "sk"},
                {"type": "thetaSketch", "name": "t", "fieldName": "tk", "isInputThetaSketch": True},
                {"type": "quantilesDoublesSketch", "name": "q", "fieldName": "qk"},
            ],
        }
    )
    hll = ds.hll_sketch(12)
    theta = ds.update_theta_sketch()
    quant = ds.quantiles_doubles_sketch(128)
    for i in range(100):
        hll.update(i)
        theta.update(i)
        quant.update(float(i))
    good = {
        "timestamp": H0,
        "page": "a",
        "sk": base64.b64encode(hll.serialize_compact()).decode(),
        "tk": base64.b64encode(theta.compact().serialize()).decode(),
        "qk": base64.b64encode(quant.serialize()).decode(),
    }
    parser, meters = _parser(schema)
    rows = _rows(parser, [good, {**good, "sk": "not a sketch!"}, {**good, "qk": "12.5"}])
    assert meters.processed_with_error == 1  # the bad HLL sketch; "12.5" is a number
    index = IncrementalIndex(schema)
    index.add_rows(rows)
    t = index.to_arrow()
    assert t.num_rows == 1
    assert ds.hll_sketch.deserialize(t["h"][0].as_py()).get_estimate() == pytest.approx(100, 0.02)
    assert ds.compact_theta_sketch.deserialize(t["t"][0].as_py()).get_estimate() == 100.0
    q = ds.quantiles_doubles_sketch.deserialize(t["q"][0].as_py())
    assert q.n == 201  # 100 + 100 from the two sketches, + the number 12.5


def test_bad_sketch_parameters_are_refused() -> None:
    bad = {"type": "thetaSketch", "name": "t", "fieldName": "u", "size": 1000}
    with pytest.raises(InvalidInput, match="size must be a power of 2"):
        parse_data_schema({"dataSource": "x", "metricsSpec": [bad]})


def test_segment_files_keep_sketches_and_their_type(tmp_path: Path) -> None:
    schema = _schema()
    parser, _ = _parser(schema)
    index = IncrementalIndex(schema)
    index.add_rows(_rows(parser, [_event(i) for i in range(50)]))
    itv = Interval(H0, H0 + HOUR)
    index.persist(tmp_path / "s.parquet", itv)
    table, info = read_parquet(tmp_path / "s.parquet")
    assert info.metrics == ("count", *METRICS_NAMES)
    assert table.schema.field("theta_users").metadata == {b"druid.complexType": b"thetaSketch"}
    assert table["q_latency"].to_pylist() == index.to_arrow()["q_latency"].to_pylist()
    parquet_to_ipc(tmp_path / "s.parquet", tmp_path / "s.arrow")
    mapped = open_segment(tmp_path / "s.arrow").table
    assert mapped.schema.field("hll_users").metadata == {b"druid.complexType": b"HLLSketch"}


# -------------------------------------------------------------------- peon vs historical

AGGS: list[dict[str, Any]] = [
    {"type": "longSum", "name": "rows", "fieldName": "count"},
    {"type": "hyperUnique", "name": "hu", "fieldName": "unique_users"},
    {"type": "HLLSketchMerge", "name": "hll", "fieldName": "hll_users", "round": True},
    {
        "type": "HLLSketchMerge",
        "name": "hll_raw",
        "fieldName": "hll_users",
        "shouldFinalize": False,
    },
    {"type": "thetaSketch", "name": "theta", "fieldName": "theta_users", "size": 256},
    {"type": "quantilesDoublesSketch", "name": "q", "fieldName": "q_latency", "k": 4096},
    {"type": "cardinality", "name": "pages", "fields": ["page"], "round": True},
]
POST: list[dict[str, Any]] = [
    {"type": "hyperUniqueCardinality", "name": "hu_est", "fieldName": "hu"},
    {
        "type": "HLLSketchEstimate",
        "name": "hll_est",
        "field": {"type": "fieldAccess", "fieldName": "hll"},
    },
    {"type": "finalizingFieldAccess", "name": "theta_final", "fieldName": "theta"},
    {
        "type": "thetaSketchEstimate",
        "name": "theta_self_intersect",
        "field": {
            "type": "thetaSketchSetOp",
            "name": "i",
            "func": "INTERSECT",
            "size": 256,
            "fields": [
                {"type": "fieldAccess", "fieldName": "theta"},
                {"type": "fieldAccess", "fieldName": "theta"},
            ],
        },
    },
    {
        "type": "quantilesDoublesSketchToQuantile",
        "name": "p50",
        "field": {"type": "fieldAccess", "fieldName": "q"},
        "fraction": 0.5,
    },
    {
        "type": "quantilesDoublesSketchToQuantiles",
        "name": "p",
        "field": {"type": "fieldAccess", "fieldName": "q"},
        "fractions": [0.0, 0.9, 1.0],
    },
]
QUERIES: list[dict[str, Any]] = [
    {
        "queryType": "timeseries",
        "granularity": "all",
        "aggregations": AGGS,
        "postAggregations": POST,
    },
    {"queryType": "timeseries", "granularity": "minute", "aggregations": AGGS},
    {
        "queryType": "topN",
        "granularity": "all",
        "dimension": "page",
        "metric": "hll",
        "threshold": 2,
        "aggregations": AGGS,
        "postAggregations": POST,
    },
    {
        "queryType": "groupBy",
        "granularity": "hour",
        "dimensions": ["page"],
        "aggregations": AGGS,
        "postAggregations": POST,
    },
    {
        "queryType": "groupBy",
        "granularity": "minute",
        "dimensions": ["page"],
        "aggregations": AGGS,
        "filter": {"type": "selector", "dimension": "page", "value": "p1"},
    },
]
# Scan and segmentMetadata are left out: before handoff a rolled-up datasource holds a row per
# key per hydrant, after it one row per key (Druid too), so their row counts differ.


def _ident(hour: int) -> SegmentIdWithShardSpec:
    return SegmentIdWithShardSpec(
        "web", Interval(H0 + hour * HOUR, H0 + (hour + 1) * HOUR), "v1", 0
    )


def _realtime(tmp: Path) -> tuple[Appenderator, list[Sink]]:
    schema = _schema()
    parser, _ = _parser(schema)
    app = Appenderator(schema, tmp / "persist", PersistLimits(), now=0.0)
    sinks = [app.get_or_create_sink(_ident(h), "seq_0") for h in (0, 1)]
    # Three generations per hour: two persisted (memory-mapped) hydrants and rows in memory,
    # with the same (page, minute) keys in each, so handoff's merge unions sketches.
    for gen in range(3):
        for h, sink in enumerate(sinks):
            events = [_event(i, h) for i in range(gen * 1000, (gen + 1) * 1000)]
            app.add_rows(sink, _rows(parser, events))
        if gen < 2:
            app.persist_hydrants(app.swap(now=0.0), {})
    return app, sinks


def _historical(tmp: Path, app: Appenderator, sink: Sink) -> pa.Table:
    table, dims, metrics = app.merged_table(sink)
    name = str(sink.identifier.interval.start)
    parquet, ipc = tmp / f"{name}.parquet", tmp / f"{name}.arrow"
    write_parquet(table, parquet, sink.identifier.interval, dimensions=dims, metrics=metrics)
    parquet_to_ipc(parquet, ipc)
    return open_segment(ipc).table


def _answer(body: dict[str, Any], segments: list[tuple[pa.Table, Interval]]) -> Any:
    q = parse_query({"dataSource": "web", "intervals": ["2000/2100"], **body})
    nodes = [
        to_ipc(merge(q, [run_segment(q, t, interval=i, segment_id=f"web_{i.start}")]))
        for t, i in segments
    ]
    return finalize(q, merge(q, [from_ipc(n) for n in nodes]))


@pytest.fixture
def both(tmp_path: Path) -> tuple[list[Any], list[Any]]:
    app, sinks = _realtime(tmp_path)
    metrics = [m["name"] for m in METRICS]
    peon = [(s.query_table(metrics), s.identifier.interval) for s in sinks]
    historical = [(_historical(tmp_path, app, s), s.identifier.interval) for s in sinks]
    return peon, historical


@pytest.mark.parametrize(
    "body", QUERIES, ids=["ts-all", "ts-minute", "topN", "groupBy", "groupBy-minute"]
)
def test_peon_and_historical_agree(both: Any, body: dict[str, Any]) -> None:
    peon, historical = both
    assert _answer(body, peon) == _answer(body, historical)


def test_the_answers_are_right(both: Any) -> None:
    peon, historical = both
    for segments in (peon, historical):
        [row] = _answer(QUERIES[0], segments)
        r = row["result"]
        assert r["rows"] == 6000
        # 1500 distinct users; every estimate within its sketch's error
        assert r["hu"] == pytest.approx(1500, rel=0.08)
        assert r["hu"] == r["hu_est"]
        assert isinstance(r["hll"], int) and r["hll"] == pytest.approx(1500, rel=0.1)
        assert ds.hll_sketch.deserialize(base64.b64decode(r["hll_raw"])).lg_config_k == 10
        assert r["theta"] == pytest.approx(1500, rel=0.2) and r["theta"] == r["theta_final"]
        assert r["theta_self_intersect"] == pytest.approx(r["theta"])
        assert r["q"] == 6000  # a finalized quantiles sketch is its N, as in Druid
        # 0..999 six times each; exact sketches, inclusive ranks (Druid's getQuantile)
        assert r["p50"] == 499.0
        assert r["p"] == [0.0, 899.0, 999.0]
        assert r["pages"] == 3
    for segments in (peon, historical):
        [meta] = _answer({"queryType": "segmentMetadata", "merge": True}, segments)
        types = {c: meta["columns"][c]["type"] for c in ("count", *METRICS_NAMES)}
        assert types == {
            "count": "LONG",
            "unique_users": "COMPLEX<hyperUnique>",
            "hll_users": "COMPLEX<HLLSketch>",
            "theta_users": "COMPLEX<thetaSketch>",
            "q_latency": "COMPLEX<quantilesDoublesSketch>",
        }


def test_quantiles_merges_are_approximate(both: Any) -> None:
    """With a small k the classic quantiles sketch compacts (DataSketches picks odd or even
    items at random, in Druid too): the peon and the historical then agree within the sketch's
    rank error, not bit for bit. Exact agreement needs k > half the values merged."""
    peon, historical = both
    body = {
        "queryType": "timeseries",
        "granularity": "all",
        "aggregations": [
            {"type": "quantilesDoublesSketch", "name": "q", "fieldName": "q_latency", "k": 32}
        ],
        "postAggregations": [
            {
                "type": "quantilesDoublesSketchToQuantile",
                "name": "p50",
                "field": {"type": "fieldAccess", "fieldName": "q"},
                "fraction": 0.5,
            }
        ],
    }
    for segments in (peon, historical):
        [row] = _answer(body, segments)
        assert row["result"]["q"] == 6000
        # k=32: normalized rank error about 6%, so the median lies in 0..999's 44%..56%
        assert 440 <= row["result"]["p50"] <= 560


@pytest.mark.parametrize(
    "agg",
    [
        {"type": "HLLSketchMerge", "name": "x", "fieldName": "theta_users"},
        {"type": "thetaSketch", "name": "x", "fieldName": "hll_users"},
        {"type": "quantilesDoublesSketch", "name": "x", "fieldName": "theta_users"},
        {"type": "hyperUnique", "name": "x", "fieldName": "q_latency"},
    ],
)
def test_an_aggregator_over_another_sketch_type_is_a_400(both: Any, agg: dict[str, Any]) -> None:
    _, historical = both
    with pytest.raises(InvalidInput, match="not a serialised"):
        _answer(
            {"queryType": "timeseries", "granularity": "all", "aggregations": [agg]}, historical
        )
