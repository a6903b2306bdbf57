"""Ingest cost of sketch metrics: rows/s of the row parser + incremental index (rollup, minute
granularity) with a count and a doubleSum only, then with HLLSketchBuild, thetaSketch and
quantilesDoublesSketch added, over the same JSON records, side by side in one run.

    .venv/bin/python -m bench.sketch_ingest --rows 50000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from common.ingest.index import IncrementalIndex
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import RowParser
from common.ingest.spec import parse_data_schema, parse_input_format

BASE: list[dict[str, Any]] = [
    {"type": "count", "name": "count"},
    {"type": "doubleSum", "name": "s", "fieldName": "v"},
]
SKETCHES: list[dict[str, Any]] = [
    *BASE,
    {"type": "HLLSketchBuild", "name": "h", "fieldName": "user"},
    {"type": "thetaSketch", "name": "t", "fieldName": "user"},
    {"type": "quantilesDoublesSketch", "name": "q", "fieldName": "v"},
]


def _run(metrics: list[dict[str, Any]], records: list[bytes], batch: int) -> tuple[float, int]:
    schema = parse_data_schema(
        {
            "dataSource": "bench",
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": metrics,
            "granularitySpec": {"queryGranularity": "MINUTE"},
        }
    )
    parser = RowParser(
        schema, parse_input_format({"type": "json"}), ParseExceptionHandler(RowIngestionMeters())
    )
    index = IncrementalIndex(schema)
    start = time.perf_counter()
    for i in range(0, len(records), batch):
        index.add_rows([r for rec in records[i : i + batch] for r in parser.parse(rec, now_ms=0)])
    index.to_arrow()
    return len(records) / (time.perf_counter() - start), index.rows_in_memory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    records = [
        orjson.dumps(
            {
                "timestamp": 1_700_000_000_000 + i * 100,
                "page": f"p{i % 50}",
                "user": f"u{i % 20_000}",
                "v": float(i % 977),
            }
        )
        for i in range(args.rows)
    ]
    for name, metrics in (("count + doubleSum", BASE), ("+ HLL, theta, quantiles", SKETCHES)):
        rate, rows = _run(metrics, records, args.batch)
        print(f"{name:>26}: {rate:>10,.0f} rows/s  ({rows} rolled-up rows)")


if __name__ == "__main__":
    main()
