"""The broker's last step for a large answer: writing it as JSON.

In one process, on the data of ``bench/query.py`` (no HTTP, no cluster), each shape's broker
work timed two ways in interleaved rounds, the baseline measured in the same run:

* ``groupBy 10k groups``: one data node's answer (its own merge of four segments, which the
  broker takes as it is) written as Druid's JSON rows. Baseline: the list writer
  (``ARROW_ROWS`` out of reach); kdruid: the Arrow writer.
* ``scan list`` and ``scan compactedList``: a 100,000-row scan's events. Baseline: the list
  writer; kdruid: the Arrow writer.
* ``SQL object``: 100,000 SQL rows (a timestamp, two strings, a long, a double) in the
  ``object`` format. Baseline: the list writer; kdruid: the Arrow writer.

Each pair must write the same bytes (checked). Prints medians and kdruid/baseline. The baseline
is this code's list writer, so what both share (the scan's batch cutting, UTC timestamps
printed in Arrow) is not in the ratio.

    .venv/bin/python -m bench.render [--rows 2000000] [--runs 21]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.query import SHAPES, make_table
from common.query import finalize_json, merge, parse_query, run_segment
from common.query.engine import groupby, scan
from common.query.sql import results
from common.query.sql.execute import ResultSet
from common.query.sql.functions import TS
from common.query.sql.results import write_result
from common.segments.intervals import Interval

INTERVAL = Interval.parse("2024-01-01/2024-01-05")
Probe = Callable[[], bytes]


def _lists(*modules: ModuleType) -> Callable[[Probe], Probe]:
    """A probe run with the list writer (``ARROW_ROWS`` out of reach in ``modules``)."""

    def wrap(probe: Probe) -> Probe:
        def run() -> bytes:
            saved = [m.ARROW_ROWS for m in modules]
            for m in modules:
                m.ARROW_ROWS = sys.maxsize
            try:
                return probe()
            finally:
                for m, v in zip(modules, saved, strict=True):
                    m.ARROW_ROWS = v

        return run

    return wrap


def groupby_pair(table: pa.Table) -> tuple[Probe, Probe]:
    shape = next(s for s in SHAPES if s.name == "groupBy(2 dims)")
    q = parse_query({"dataSource": "bench", **shape.native, "intervals": [str(INTERVAL)]})
    quarter = table.num_rows // 4
    parts = [
        run_segment(q, table.slice(i * quarter, quarter), interval=INTERVAL, segment_id=f"s{i}")
        for i in range(4)
    ]
    node = merge(q, parts)  # what the data node sends, and the broker writes
    return _lists(groupby)(lambda: finalize_json(q, node)), lambda: finalize_json(q, node)


def scan_pair(table: pa.Table, fmt: str) -> tuple[Probe, Probe]:
    q = parse_query(
        {
            "queryType": "scan",
            "dataSource": "bench",
            "intervals": [str(INTERVAL)],
            "columns": ["__time", "country", "page", "added", "delta"],
            "limit": 100_000,
            "resultFormat": fmt,
        }
    )
    quarter = 25_000
    parts = [
        run_segment(q, table.slice(i * quarter, quarter), interval=INTERVAL, segment_id=f"s{i}")
        for i in range(4)
    ]
    partial = merge(q, parts)
    return _lists(scan)(lambda: finalize_json(q, partial)), lambda: finalize_json(q, partial)


def sql_pair(table: pa.Table) -> tuple[Probe, Probe]:
    rows = table.slice(0, 100_000)
    rs = ResultSet(
        ["__time", "country", "page", "added", "delta"],
        ["LONG", "STRING", "STRING", "LONG", "DOUBLE"],
        ["TIMESTAMP", "VARCHAR", "VARCHAR", "BIGINT", "DOUBLE"],
        [
            rows["__time"].combine_chunks().cast(TS),
            rows["country"].combine_chunks().cast(pa.string()),
            rows["page"].combine_chunks().cast(pa.string()),
            rows["added"].combine_chunks(),
            rows["delta"].combine_chunks(),
        ],
    )
    base = _lists(results)(lambda: write_result(rs, "object"))
    return base, lambda: write_result(rs, "object")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    table = make_table(args.rows)
    pairs = {
        "groupBy 10k groups": groupby_pair(table),
        "scan list": scan_pair(table, "list"),
        "scan compactedList": scan_pair(table, "compactedList"),
        "SQL object": sql_pair(table),
    }
    print(f"{'answer':<20} {'bytes':>10} {'baseline':>9} {'kdruid':>8} {'ratio':>6}  (ms, medians)")
    for name, (base, new) in pairs.items():
        want = base()
        assert new() == want, f"{name}: the two writers differ"
        times: dict[str, list[float]] = {"base": [], "new": []}
        for i in range(args.runs):
            order = [("base", base), ("new", new)]
            for key, probe in order if i % 2 else order[::-1]:
                start = time.perf_counter()
                probe()
                times[key].append((time.perf_counter() - start) * 1000)
        b, n = statistics.median(times["base"]), statistics.median(times["new"])
        print(f"{name:<20} {len(want):>10,} {b:>9.1f} {n:>8.1f} {n / b:>6.2f}")
    print(f"rows={args.rows:,} runs={args.runs} numpy {np.__version__} pyarrow {pa.__version__}")


if __name__ == "__main__":
    main()
