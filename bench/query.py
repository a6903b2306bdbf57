"""Native query speed through the broker, next to DuckDB on the same Arrow data.

Builds a ``--rows`` table (default 10 M) over four days, cut into ``--segments`` segments (default
4, so 2.5 M rows each), pushes them to local deep storage and loads them on one historical; a
broker in the same process serves the queries. For timeseries (hour), topN (a 1,000-value
dimension, threshold 10, with a filter) and groupBy (two dimensions) it times, ``--runs`` times
each: the query through the broker, the data node alone (the segments-spec query the broker
sends, Arrow IPC answer), and DuckDB running the same computation on the same Arrow table. Prints
medians, the ratio broker/DuckDB, and the broker overhead (broker minus data node).
Targets: ratio <= 1.3, overhead <= 15 ms.

    .venv/bin/python -m bench.query                 # 10 M rows
    .venv/bin/python -m bench.query --rows 2000000  # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from common.query.datanode import descriptor_json
from common.segments.deep_storage import DeepStorage
from common.segments.format import write_parquet
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from common.serverview.changes import SegmentChangeRequest
from services.broker.plan import segments_to_query
from tests.support.cluster import Cluster, Node, sqlite_properties

DAY = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start
DAYS = 4
VERSION = "2024-02-01T00:00:00.000Z"
COUNTRIES = np.array([f"c{i}" for i in range(10)], dtype=object)
PAGES = np.array([f"page-{i:04d}" for i in range(1000)], dtype=object)
INTERVAL = f"2024-01-01/2024-01-0{DAYS + 1}"


def make_table(rows: int, seed: int = 42) -> pa.Table:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(T0, T0 + DAYS * DAY, rows, dtype=np.int64))
    return pa.table(
        {
            "__time": pa.array(times, pa.int64()),
            "country": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, len(COUNTRIES), rows, dtype=np.int32)),
                pa.array(list(COUNTRIES)),
            ),
            "page": pa.DictionaryArray.from_arrays(
                pa.array(rng.zipf(1.3, rows).clip(1, len(PAGES)).astype(np.int32) - 1),
                pa.array(list(PAGES)),
            ),
            "added": pa.array(rng.integers(0, 1000, rows, dtype=np.int64)),
            "delta": pa.array(rng.normal(0, 10, rows)),
        }
    )


def split(table: pa.Table, parts: int) -> list[tuple[Interval, pa.Table]]:
    """``parts`` time-contiguous segments, each a whole interval (``parts`` divides the span)."""
    span = DAYS * DAY // parts
    times = table["__time"].to_numpy()
    out = []
    for i in range(parts):
        iv = Interval(T0 + i * span, T0 + (i + 1) * span)
        lo, hi = np.searchsorted(times, [iv.start, iv.end])
        out.append((iv, table.slice(int(lo), int(hi - lo))))
    return out


QUERIES: dict[str, tuple[dict[str, Any], str]] = {
    "timeseries(hour)": (
        {
            "queryType": "timeseries",
            "granularity": "hour",
            "aggregations": [
                {"type": "count", "name": "n"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
                {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
            ],
        },
        """SELECT (__time // 3600000) * 3600000 AS b, count(*), sum(added), sum(delta)
           FROM t GROUP BY b ORDER BY b""",
    ),
    "topN(1000 values)": (
        {
            "queryType": "topN",
            "granularity": "all",
            "dimension": "page",
            "metric": "added",
            "threshold": 10,
            "filter": {"type": "in", "dimension": "country", "values": ["c1", "c2", "c3"]},
            "aggregations": [{"type": "longSum", "name": "added", "fieldName": "added"}],
        },
        """SELECT page, sum(added) AS s FROM t WHERE country IN ('c1', 'c2', 'c3')
           GROUP BY page ORDER BY s DESC, page LIMIT 10""",
    ),
    "groupBy(2 dims)": (
        {
            "queryType": "groupBy",
            "granularity": "all",
            "dimensions": ["country", "page"],
            "aggregations": [
                {"type": "count", "name": "n"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
            ],
        },
        """SELECT country, page, count(*), sum(added) FROM t
           GROUP BY country, page ORDER BY country, page""",
    ),
    "groupBy(expr VC)": (
        {
            "queryType": "groupBy",
            "granularity": "all",
            "virtualColumns": [
                {
                    "type": "expression",
                    "name": "cp",
                    "expression": "concat(country, '/', substring(page, 5, 2))",
                    "outputType": "STRING",
                }
            ],
            "dimensions": ["cp"],
            "aggregations": [
                {"type": "count", "name": "n"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
            ],
        },
        """SELECT country || '/' || substr(page, 6, 2) AS cp, count(*), sum(added) FROM t
           GROUP BY cp ORDER BY cp""",
    ),
    "timeseries(expr)": (
        {
            "queryType": "timeseries",
            "granularity": "day",
            "filter": {"type": "expression", "expression": "added > 500 && delta < 5.0"},
            "aggregations": [
                {"type": "count", "name": "n"},
                {"type": "longSum", "name": "a2", "expression": "added * 2"},
                {"type": "doubleSum", "name": "dd", "expression": "delta * delta"},
            ],
        },
        """SELECT (__time // 86400000) * 86400000 AS b, count(*), sum(added * 2),
                  sum(delta * delta)
           FROM t WHERE added > 500 AND delta < 5.0 GROUP BY b ORDER BY b""",
    ),
    "topN(join 10k)": (
        {
            "queryType": "topN",
            "granularity": "all",
            "dataSource": {
                "type": "join",
                "left": "bench",
                "right": {
                    "type": "inline",
                    "columnNames": ["page", "label"],
                    "columnTypes": ["string", "string"],
                    "rows": [[f"page-{i:04d}", f"L{i % 97:02d}"] for i in range(10_000)],
                },
                "rightPrefix": "j.",
                "condition": 'page == "j.page"',
                "joinType": "LEFT",
            },
            "dimension": "j.label",
            "metric": "added",
            "threshold": 10,
            "aggregations": [{"type": "longSum", "name": "added", "fieldName": "added"}],
        },
        """SELECT label, sum(added) AS s FROM t LEFT JOIN labels ON t.page = labels.page
           GROUP BY label ORDER BY s DESC, label LIMIT 10""",
    ),
}


def build_segments(table: pa.Table, count: int, tmp: Path) -> list[DataSegment]:
    """Split ``table`` into ``count`` segments and push them to local deep storage in ``tmp``."""
    deep = DeepStorage("local", storage_directory=str(tmp / "deep"))
    segments = []
    for i, (iv, part) in enumerate(split(table, count)):
        src = tmp / f"seg-{i}.parquet"
        info = write_parquet(part, src, iv, dimensions=["country", "page"])
        seg = DataSegment(
            dataSource="bench",
            interval=iv,
            version=VERSION,
            dimensions=info.dimensions,
            metrics=info.metrics,
        )
        segments.append(deep.push(seg, src))
    return segments


async def load_historical(c: Cluster, segments: list[DataSegment]) -> Node:
    """A historical in ``c`` with every segment loaded (through its load queue endpoint)."""
    h = await c.start("historical")
    registry = h.service.registry  # type: ignore[attr-defined]
    pending = [SegmentChangeRequest.load(s).to_json() for s in segments]
    while len(registry) < len(segments):
        await c.http.post(
            f"{h.url}/druid-internal/v1/segments/changeRequests?timeout=60000",
            json=pending,
            timeout=120,
        )
    return h


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kdruid-bench-query-"))
    print(f"building {args.rows:,} rows in {args.segments} segments ...", flush=True)
    table = make_table(args.rows)
    segments = build_segments(table, args.segments, tmp)
    duck = duckdb.connect()
    duck.execute(f"SET threads = {args.threads}")
    duck.register("t", table)
    duck.register(
        "labels",
        pa.table(
            {
                "page": [f"page-{i:04d}" for i in range(10_000)],
                "label": [f"L{i % 97:02d}" for i in range(10_000)],
            }
        ),
    )

    props = {
        **sqlite_properties(tmp),
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(tmp / "cache"), "maxSize": 10**12}]
        ),
    }
    c = Cluster(props)
    try:
        h = await load_historical(c, segments)
        broker = await c.start("broker")
        service = broker.service
        while True:
            timeline = service.view.timeline("bench")  # type: ignore[attr-defined]
            if timeline is not None and len(
                segments_to_query(timeline, [Interval.parse(INTERVAL)])
            ) == len(segments):
                break
            await asyncio.sleep(0.05)
        descriptors = [
            descriptor_json(u.descriptor)
            for u in segments_to_query(timeline, [Interval.parse(INTERVAL)])
        ]
        print(
            f"{'query':<20} {'broker ms':>10} {'node ms':>9} {'duckdb ms':>10} "
            f"{'ratio':>6} {'overhead ms':>12}"
        )
        for name, (spec, sql) in QUERIES.items():
            body = {"dataSource": "bench", **spec, "intervals": [INTERVAL]}
            node_body = {**body, "intervals": {"type": "segments", "segments": descriptors}}
            b_t: list[float] = []
            n_t: list[float] = []
            d_t: list[float] = []
            result: Any = None
            for _ in range(args.runs + 1):  # the first round warms up and is not counted
                t = time.perf_counter()
                resp = await c.http.post(
                    f"{broker.url}/druid/v2",
                    content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"},
                    timeout=300,
                )
                b_t.append(time.perf_counter() - t)
                assert resp.status_code == 200, resp.text
                result = resp.json()
                t = time.perf_counter()
                resp = await c.http.post(
                    f"{h.url}/druid/v2",
                    content=orjson.dumps(node_body),
                    headers={"Content-Type": "application/json"},
                    timeout=300,
                )
                n_t.append(time.perf_counter() - t)
                assert resp.status_code == 200, resp.text
                t = time.perf_counter()
                want = duck.execute(sql).fetchall()
                d_t.append(time.perf_counter() - t)
            check(name, result, want)
            b, n, d = (median_ms(x[1:]) for x in (b_t, n_t, d_t))
            print(
                f"{name:<20} {b:>10.1f} {n:>9.1f} {d:>10.1f} {b / d:>6.2f} {b - n:>12.1f}",
                flush=True,
            )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"rows={args.rows:,} segments={args.segments} runs={args.runs} "
            f"duckdb threads={args.threads} cpus={os.cpu_count()} peak RSS={rss:.0f} MB"
        )
    finally:
        await c.close()


def check(name: str, result: list[dict[str, Any]], want: list[tuple[Any, ...]]) -> None:
    """The broker's answer agrees with DuckDB's (so both timed the same computation)."""
    if name.startswith("timeseries"):
        got = [r["result"]["n"] for r in result]
        assert got == [w[1] for w in want], "timeseries differs from DuckDB"
        if "a2" in result[0]["result"]:
            assert [r["result"]["a2"] for r in result] == [w[2] for w in want]
    elif name == "topN(join 10k)":
        assert [(r["j.label"], r["added"]) for r in result[0]["result"]] == [tuple(w) for w in want]
    elif name.startswith("topN"):
        assert [(r["page"], r["added"]) for r in result[0]["result"]] == [tuple(w) for w in want]
    elif name == "groupBy(expr VC)":
        got = [(r["event"]["cp"], r["event"]["n"], r["event"]["added"]) for r in result]
        assert got == [tuple(w) for w in want], "groupBy(expr VC) differs from DuckDB"
    else:
        got = sorted((r["event"]["country"], r["event"]["page"], r["event"]["n"]) for r in result)
        assert got == sorted((w[0], w[1], w[2]) for w in want), "groupBy differs from DuckDB"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--segments", type=int, default=4, help="segments (1-5 M rows each)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
