"""Druid's ``foo`` test datasource ingested the way Druid's SQL tests define it, sketch metrics
included (``unique_dim1`` a hyperUnique over dim1, as CalciteTests; ``qsketch_m1``,
``hllsketch_dim1`` and ``thetasketch_dim1`` as the DataSketches SQL tests add them), through the
row parser and the incremental index; SQL then gives the answers Druid's CalciteQueryTest,
HllSketchSqlAggregatorTest and DoublesSketchSqlAggregatorTest expect (SQL-compatible nulls), the
same over the in-memory index (a peon) as over the persisted segment files (a historical)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import datasketches as ds
import orjson
import pyarrow as pa
import pytest

from common.ingest.index import IncrementalIndex
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import RowParser
from common.ingest.spec import parse_data_schema, parse_input_format
from common.query import finalize, merge, parse_query, run_segment
from common.query.sql.runner import SqlQuery, run_sql
from common.segments.format import read_parquet
from common.segments.intervals import Interval

SCHEMA = parse_data_schema(
    {
        "dataSource": "foo",
        "timestampSpec": {"column": "t", "format": "iso"},
        "dimensionsSpec": {"dimensions": ["dim1", "dim2", "dim3"]},
        "metricsSpec": [
            {"type": "count", "name": "cnt"},
            {"type": "floatSum", "name": "m1", "fieldName": "m1"},
            {"type": "doubleSum", "name": "m2", "fieldName": "m2"},
            {"type": "hyperUnique", "name": "unique_dim1", "fieldName": "dim1"},
            {"type": "quantilesDoublesSketch", "name": "qsketch_m1", "fieldName": "m1", "k": 128},
            {"type": "HLLSketchBuild", "name": "hllsketch_dim1", "fieldName": "dim1"},
            {"type": "thetaSketch", "name": "thetasketch_dim1", "fieldName": "dim1"},
        ],
        "granularitySpec": {"segmentGranularity": "YEAR", "rollup": False},
    }
)
# Druid's TestDataBuilder.ROWS1 (dim2 missing in two rows, '' in one).
EVENTS: list[dict[str, Any]] = [
    {"t": "2000-01-01", "m1": "1.0", "m2": "1.0", "dim1": "", "dim2": ["a"], "dim3": ["a", "b"]},
    {"t": "2000-01-02", "m1": "2.0", "m2": "2.0", "dim1": "10.1", "dim3": ["b", "c"]},
    {"t": "2000-01-03", "m1": "3.0", "m2": "3.0", "dim1": "2", "dim2": [""], "dim3": ["d"]},
    {"t": "2001-01-01", "m1": "4.0", "m2": "4.0", "dim1": "1", "dim2": ["a"], "dim3": [""]},
    {"t": "2001-01-02", "m1": "5.0", "m2": "5.0", "dim1": "def", "dim2": ["abc"]},
    {"t": "2001-01-03", "m1": "6.0", "m2": "6.0", "dim1": "abc"},
]
YEARS = {"2000": Interval.parse("2000/2001"), "2001": Interval.parse("2001/2002")}


def _indexes() -> dict[str, IncrementalIndex]:
    parser = RowParser(
        SCHEMA, parse_input_format({"type": "json"}), ParseExceptionHandler(RowIngestionMeters())
    )
    out = {y: IncrementalIndex(SCHEMA) for y in YEARS}
    for e in EVENTS:
        out[e["t"][:4]].add_rows(parser.parse(orjson.dumps(e), now_ms=0))
    return out


def _segments(where: str, tmp: Path) -> list[tuple[Interval, str, pa.Table]]:
    indexes = _indexes()
    out = []
    for year, itv in YEARS.items():
        if where == "peon":
            table = indexes[year].to_arrow()
        else:
            indexes[year].persist(tmp / f"{year}.parquet", itv)
            table, _ = read_parquet(tmp / f"{year}.parquet")
        out.append((itv, f"foo_{year}", table))
    return out


class _Catalog:
    def __init__(self, columns: dict[str, str]) -> None:
        self._columns = columns

    async def datasources(self) -> list[str]:
        return ["foo"]

    async def columns(self, datasource: str) -> dict[str, str] | None:
        return dict(self._columns) if datasource == "foo" else None

    async def system_rows(self, table: str) -> list[dict[str, Any]]:
        return []


@pytest.fixture(params=["peon", "historical"])
def sql(request: Any, tmp_path: Path) -> Any:
    segments = _segments(request.param, tmp_path)

    async def native(query: dict[str, Any]) -> list[dict[str, Any]]:
        q = parse_query(query)
        partials = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in segments]
        return finalize(q, merge(q, partials))

    # The broker's view of the columns: what segmentMetadata says of the ingested segments.
    [meta] = asyncio.run(
        native({"queryType": "segmentMetadata", "dataSource": "foo", "merge": True})
    )
    columns = {c: v["type"] for c, v in meta["columns"].items()}

    def run(text: str) -> Any:
        req = SqlQuery(query=text, context={})
        return asyncio.run(run_sql(req, _Catalog(columns), native, sql_query_id="q")).result

    run.columns = columns  # type: ignore[attr-defined]
    return run


def test_the_columns_are_druids(sql: Any) -> None:
    assert sql.columns["unique_dim1"] == "COMPLEX<hyperUnique>"
    assert sql.columns["qsketch_m1"] == "COMPLEX<quantilesDoublesSketch>"
    assert sql.columns["hllsketch_dim1"] == "COMPLEX<HLLSketch>"
    assert sql.columns["thetasketch_dim1"] == "COMPLEX<thetaSketch>"


def test_calcite_count_distinct_on_hyperunique(sql: Any) -> None:
    # CalciteQueryTest.testCountDistinct / testApproxCountDistinct: the hyperUnique column counts
    # dim1's six values, '' included.
    rs = sql(
        "SELECT SUM(cnt), APPROX_COUNT_DISTINCT(unique_dim1), COUNT(DISTINCT unique_dim1) FROM foo"
    )
    assert rs.rows() == [[6, 6, 6]]
    # testApproxCountDistinct: the cardinality aggregator counts '' (not null) as Druid's does
    rs = sql(
        "SELECT SUM(cnt), APPROX_COUNT_DISTINCT(dim2), "
        "APPROX_COUNT_DISTINCT(dim2) FILTER(WHERE dim2 <> ''), APPROX_COUNT_DISTINCT(unique_dim1) "
        "FROM foo"
    )
    assert rs.rows() == [[6, 3, 2, 6]]


def test_hll_sketch_sql_aggregator(sql: Any) -> None:
    # HllSketchSqlAggregatorTest.testApproxCountDistinctHllSketch (SQL-compatible answers)
    rs = sql(
        "SELECT SUM(cnt), APPROX_COUNT_DISTINCT_DS_HLL(dim2), "
        "APPROX_COUNT_DISTINCT_DS_HLL(dim2) FILTER(WHERE dim2 <> ''), "
        "APPROX_COUNT_DISTINCT_DS_HLL(hllsketch_dim1, 21, 'HLL_8'), "
        "APPROX_COUNT_DISTINCT_DS_HLL(hllsketch_dim1), "
        "APPROX_COUNT_DISTINCT_DS_HLL(hllsketch_dim1, CAST(21 AS BIGINT)) FROM foo"
    )
    assert rs.rows() == [[6, 2, 2, 5, 5, 5]]


def test_quantiles_on_the_ingested_sketch_column(sql: Any) -> None:
    # DoublesSketchSqlAggregatorTest.testQuantileOnComplexColumn
    rs = sql(
        "SELECT APPROX_QUANTILE_DS(qsketch_m1, 0.01), APPROX_QUANTILE_DS(qsketch_m1, 0.5, 64), "
        "APPROX_QUANTILE_DS(qsketch_m1, 0.98, 256), "
        "APPROX_QUANTILE_DS(qsketch_m1, CAST(0.99 AS DOUBLE)), "
        "APPROX_QUANTILE_DS(qsketch_m1, 0.99) FILTER(WHERE dim1 = 'abc'), "
        "APPROX_QUANTILE_DS(qsketch_m1, 0.999) FILTER(WHERE dim1 <> 'abc'), "
        "APPROX_QUANTILE_DS(qsketch_m1, 0.999) FILTER(WHERE dim1 = 'abc') FROM foo"
    )
    assert rs.rows() == [[1.0, 3.0, 6.0, 6.0, 6.0, 5.0, 6.0]]
    assert rs.native_types == ["DOUBLE"] * 7


def test_quantiles_built_at_query_time(sql: Any) -> None:
    # DoublesSketchSqlAggregatorTest.testQuantileOnFloatAndLongs (without the m1 * 2 column)
    rs = sql(
        "SELECT APPROX_QUANTILE_DS(m1, 0.01), APPROX_QUANTILE_DS(m1, 0.5, 64), "
        "APPROX_QUANTILE_DS(m1, 0.98, 256), APPROX_QUANTILE_DS(m1, 0.99), "
        "APPROX_QUANTILE_DS(m1, 0.99) FILTER(WHERE dim1 = 'abc'), "
        "APPROX_QUANTILE_DS(m1, 0.999) FILTER(WHERE dim1 <> 'abc'), "
        "APPROX_QUANTILE_DS(m1, 0.999) FILTER(WHERE dim1 = 'abc'), "
        "APPROX_QUANTILE_DS(cnt, 0.5) FROM foo"
    )
    assert rs.rows() == [[1.0, 3.0, 6.0, 6.0, 6.0, 5.0, 6.0, 1.0]]


def test_sketch_values_and_their_estimates(sql: Any) -> None:
    rs = sql(
        "SELECT DS_HLL(hllsketch_dim1), DS_THETA(thetasketch_dim1), DS_QUANTILES_SKETCH(m1), "
        "HLL_SKETCH_ESTIMATE(DS_HLL(dim1)), HLL_SKETCH_ESTIMATE(DS_HLL(unique_dim1), true), "
        "THETA_SKETCH_ESTIMATE(DS_THETA(thetasketch_dim1)), "
        "DS_GET_QUANTILE(DS_QUANTILES_SKETCH(qsketch_m1), 0.5), "
        "APPROX_COUNT_DISTINCT_DS_THETA(thetasketch_dim1) FROM foo"
    )
    [row] = rs.rows()
    hll = ds.hll_sketch.deserialize(base64.b64decode(row[0]))
    theta = ds.compact_theta_sketch.deserialize(base64.b64decode(row[1]))
    quant = ds.quantiles_doubles_sketch.deserialize(base64.b64decode(row[2]))
    assert hll.get_estimate() == pytest.approx(5.0)  # '' is not hashed by datasketches
    assert theta.get_estimate() == 5.0
    assert (quant.n, quant.get_min_value(), quant.get_max_value()) == (6, 1.0, 6.0)
    assert row[3] == pytest.approx(5.0) and row[4] == 6.0
    assert row[5:] == [5.0, 3.0, 5]
    assert rs.native_types[:3] == [
        "COMPLEX<HLLSketch>",
        "COMPLEX<thetaSketch>",
        "COMPLEX<quantilesDoublesSketch>",
    ]
    assert rs.sql_types[:3] == ["OTHER"] * 3
    assert rs.native_types[3:] == ["DOUBLE"] * 4 + ["LONG"]


def test_a_sketch_result_has_the_aggregators_parameters(sql: Any) -> None:
    # Druid's HLL union answers a sketch of the aggregator's lgK and target type, also when one
    # stored sketch is all there is to merge (each segment's rows here are unioned per segment).
    [[blob]] = sql("SELECT DS_HLL(hllsketch_dim1, 10, 'HLL_8') FROM foo WHERE dim1 = 'abc'").rows()
    sk = ds.hll_sketch.deserialize(base64.b64decode(blob))
    assert (sk.lg_config_k, sk.tgt_type) == (10, ds.tgt_hll_type.HLL_8)
    assert sk.get_estimate() == pytest.approx(1.0)
