"""Native query speed next to DuckDB on the same Arrow data: in the engine, on the data node, and
through the broker.

Builds a ``--rows`` table over four days, cut into ``--segments`` segments, pushes them to local
deep storage and loads them on one historical; a broker in the same process serves the queries.
Per query shape it times, interleaved in every round (so the 2-core machine's noise hits all of
them alike), ``--runs`` rounds after one warm-up:

- ``engine``: the data node's code in this process, no HTTP: every segment's partial on
  ``druid.processing.numThreads`` worker threads (``run_on_node`` over the historical's own
  memory-mapped tables), merged and finalized into Druid's JSON;
- ``node``: ``POST /druid/v2`` to the historical with the segments spec the broker sends (Arrow
  IPC answer);
- ``broker``: ``POST /druid/v2`` to the broker (scatter, gather, merge, finalize, JSON);
- ``duckdb``: DuckDB (``--threads``) running the same computation on the same Arrow table.

Every answer is checked against DuckDB's. Prints medians, the ratios engine/DuckDB and
broker/DuckDB, and the broker overhead (broker minus node: the median of the rounds'
differences). Then the fixed cost of a tiny query (a count over a 1,000-row datasource) through
the broker, the node and the engine.
Targets (docs/architecture.md): ratio <= 1.3 (issue #12; <= 1.0, issue #16), broker + data node
<= 5 ms for a tiny query, broker overhead <= 10 ms.

    .venv/bin/python -m bench.query                          # 10 M rows
    .venv/bin/python -m bench.query --rows 2000000 --runs 3  # a quick run
    .venv/bin/python -m bench.query --only join              # shapes whose name matches
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import numpy as np
import orjson
import pyarrow as pa

from common.lookups.datasource import inline_lookups
from common.query import finalize, merge, parse_query
from common.query.datanode import descriptor_json, run_on_node, segment_lookup
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
LABELS = 10_000  # rows of the join's right side (inline table, lookup, SQL datasource)
TINY_ROWS = 1_000


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


def label_pairs() -> list[tuple[str, str]]:
    """The join's right side: 10,000 pages (the fact table uses the first 1,000), 97 labels."""
    return [(f"page-{i:04d}", f"L{i % 97:02d}") for i in range(LABELS)]


def labels_table() -> pa.Table:
    pairs = label_pairs()
    return pa.table({"page": [p for p, _ in pairs], "label": [lb for _, lb in pairs]})


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


# ------------------------------------------------------------------------------------------
# Comparing answers


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


def same_rows(name: str, got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    """Raise when kdruid's rows differ from DuckDB's (floats to 1e-9: summation order differs)."""
    ok = len(got) == len(want) and all(
        len(g) == len(w) and all(_same_value(x, y) for x, y in zip(g, w, strict=True))
        for g, w in zip(got, want, strict=True)
    )
    if not ok:
        raise AssertionError(f"{name}: kdruid {got[:5]}... != DuckDB {want[:5]}...")


def timeseries_rows(result: list[dict[str, Any]], names: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(r["result"][n] for n in names) for r in result]


def topn_rows(result: list[dict[str, Any]], names: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(e[n] for n in names) for e in result[0]["result"]]


def groupby_rows(result: list[dict[str, Any]], names: list[str]) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(r["event"][n] for n in names) for r in result),
        key=lambda t: tuple("" if v is None else str(v) for v in t),
    )


def duck_sorted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda t: tuple("" if v is None else str(v) for v in t))


# ------------------------------------------------------------------------------------------
# The query shapes


@dataclass
class Shape:
    """A native query (without ``intervals``; ``dataSource`` defaults to ``bench``), the DuckDB
    SQL of the same computation over table ``t`` (and ``labels``), and how to compare."""

    name: str
    native: dict[str, Any]
    duck: str
    rows: Callable[[list[dict[str, Any]]], list[tuple[Any, ...]]]
    duck_rows: Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]] = lambda r: [
        tuple(x) for x in r
    ]


def _join(right: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "type": "join",
        "left": "bench",
        "right": right,
        "rightPrefix": "j.",
        "condition": f'page == "j.{key}"',
        "joinType": "LEFT",
    }


def _join_topn(right: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    return {
        "queryType": "topN",
        "granularity": "all",
        "dataSource": _join(right, key),
        "dimension": f"j.{value}",
        "metric": "added",
        "threshold": 10,
        "aggregations": [{"type": "longSum", "name": "added", "fieldName": "added"}],
    }


JOIN_DUCK = """SELECT label, sum(added) AS s FROM t LEFT JOIN labels ON t.page = labels.page
               GROUP BY label ORDER BY s DESC, label LIMIT 10"""

SHAPES: list[Shape] = [
    Shape(
        "timeseries(hour)",
        {
            "queryType": "timeseries",
            "granularity": "hour",
            "aggregations": [
                {"type": "count", "name": "n"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
                {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
            ],
        },
        """SELECT count(*), sum(added), sum(delta) FROM t
           GROUP BY (__time // 3600000) ORDER BY (__time // 3600000)""",
        lambda r: timeseries_rows(r, ["n", "added", "delta"]),
    ),
    Shape(
        "topN(1000 values)",
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
        lambda r: topn_rows(r, ["page", "added"]),
    ),
    Shape(
        "groupBy(2 dims)",
        {
            "queryType": "groupBy",
            "granularity": "all",
            "dimensions": ["country", "page"],
            "aggregations": [
                {"type": "count", "name": "n"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
            ],
        },
        "SELECT country, page, count(*), sum(added) FROM t GROUP BY country, page",
        lambda r: groupby_rows(r, ["country", "page", "n", "added"]),
        duck_sorted,
    ),
    Shape(
        "groupBy(expr VC)",
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
           GROUP BY cp""",
        lambda r: groupby_rows(r, ["cp", "n", "added"]),
        duck_sorted,
    ),
    Shape(
        "groupBy(expr num VC)",
        {
            "queryType": "groupBy",
            "granularity": "all",
            "virtualColumns": [
                {
                    "type": "expression",
                    "name": "bin",
                    "expression": "(added / 100) * 100 + if(delta > 0, 1, 0)",
                    "outputType": "LONG",
                }
            ],
            "dimensions": [{"type": "default", "dimension": "bin", "outputType": "LONG"}],
            "aggregations": [
                {"type": "count", "name": "n"},
                {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
            ],
        },
        """SELECT (added // 100) * 100 + (CASE WHEN delta > 0 THEN 1 ELSE 0 END) AS bin,
                  count(*), sum(delta) FROM t GROUP BY bin""",
        lambda r: groupby_rows(r, ["bin", "n", "delta"]),
        duck_sorted,
    ),
    Shape(
        "timeseries(expr)",
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
        """SELECT count(*), sum(added * 2), sum(delta * delta) FROM t
           WHERE added > 500 AND delta < 5.0
           GROUP BY (__time // 86400000) ORDER BY (__time // 86400000)""",
        lambda r: timeseries_rows(r, ["n", "a2", "dd"]),
    ),
    Shape(
        "groupBy(filtered aggs)",
        {
            "queryType": "groupBy",
            "granularity": "all",
            "dimensions": ["country"],
            "aggregations": [
                {
                    "type": "filtered",
                    "filter": {
                        "type": "range",
                        "column": "added",
                        "matchValueType": "LONG",
                        "lower": 500,
                        "lowerOpen": True,
                    },
                    "aggregator": {"type": "count", "name": "big"},
                },
                {
                    "type": "filtered",
                    "filter": {
                        "type": "in",
                        "dimension": "page",
                        "values": ["page-0001", "page-0002"],
                    },
                    "aggregator": {"type": "longSum", "name": "p12", "fieldName": "added"},
                },
                {
                    "type": "filtered",
                    "filter": {
                        "type": "range",
                        "column": "delta",
                        "matchValueType": "DOUBLE",
                        "upper": 0.0,
                        "upperOpen": True,
                    },
                    "aggregator": {"type": "doubleSum", "name": "neg", "fieldName": "delta"},
                },
                {"type": "count", "name": "n"},
            ],
        },
        """SELECT country, count(*) FILTER (WHERE added > 500),
                  sum(added) FILTER (WHERE page IN ('page-0001', 'page-0002')),
                  sum(delta) FILTER (WHERE delta < 0.0), count(*)
           FROM t GROUP BY country""",
        lambda r: groupby_rows(r, ["country", "big", "p12", "neg", "n"]),
        duck_sorted,
    ),
    Shape(
        "topN(join inline 10k)",
        _join_topn(
            {
                "type": "inline",
                "columnNames": ["page", "label"],
                "columnTypes": ["string", "string"],
                "rows": [list(p) for p in label_pairs()],
            },
            "page",
            "label",
        ),
        JOIN_DUCK,
        lambda r: topn_rows(r, ["j.label", "added"]),
    ),
    Shape(
        "topN(join lookup 10k)",
        _join_topn({"type": "lookup", "lookup": "labels"}, "k", "v"),
        JOIN_DUCK,
        lambda r: topn_rows(r, ["j.v", "added"]),
    ),
]

LOOKUPS = {
    "__default": {
        "labels": {
            "version": "v1",
            "lookupExtractorFactory": {"type": "map", "map": dict(label_pairs())},
        }
    }
}

TINY = {
    "queryType": "timeseries",
    "dataSource": "tiny",
    "granularity": "all",
    "aggregations": [{"type": "count", "name": "n"}],
}


# ------------------------------------------------------------------------------------------
# The cluster


def build_segments(
    table: pa.Table, count: int, tmp: Path, data_source: str = "bench"
) -> list[DataSegment]:
    """Split ``table`` into ``count`` segments and push them to local deep storage in ``tmp``."""
    deep = DeepStorage("local", storage_directory=str(tmp / "deep"))
    segments = []
    dims = [n for n in table.column_names if pa.types.is_dictionary(table.schema.field(n).type)]
    for i, (iv, part) in enumerate(split(table, count)):
        src = tmp / f"{data_source}-{i}.parquet"
        info = write_parquet(part, src, iv, dimensions=dims)
        seg = DataSegment(
            dataSource=data_source,
            interval=iv,
            version=VERSION,
            dimensions=info.dimensions,
            metrics=info.metrics,
        )
        segments.append(deep.push(seg, src))
    return segments


def tiny_table() -> pa.Table:
    return make_table(TINY_ROWS, seed=7)


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


def cluster_properties(tmp: Path, threads: int) -> dict[str, str]:
    """The bench's cluster: SQLite metadata, a local segment cache, and the data node computing
    ``threads`` segments at once (``druid.processing.numThreads``), as many as DuckDB's threads."""
    return {
        **sqlite_properties(tmp),
        # Discovery at its defaults, not the tests' fast ones: their heartbeats and polls (every
        # 0.1-0.2 s, two nodes) were ~10% of the event loop's busy time under the tiny query, and
        # their 2 s node TTL is too short here: DuckDB runs in this process and some of its
        # versions hold the GIL through a whole query (1.5 took 1.5 s over the join), so no
        # heartbeat is written and the broker would drop the historical for a moment.
        "druid.discovery.metadata.heartbeatPeriod": "PT2S",
        "druid.discovery.metadata.pollPeriod": "PT0.5S",
        "druid.discovery.metadata.nodeTtl": "PT60S",
        "druid.processing.numThreads": str(threads),
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(tmp / "cache"), "maxSize": 10**12}]
        ),
    }


async def wait_for_timeline(broker: Node, data_source: str, count: int) -> list[dict[str, Any]]:
    """The broker's descriptors of ``data_source`` once it sees ``count`` segments."""
    service = broker.service
    while True:
        timeline = service.view.timeline(data_source)  # type: ignore[attr-defined]
        if timeline is not None:
            units = segments_to_query(timeline, [Interval.parse(INTERVAL)])
            if len(units) == count:
                return [descriptor_json(u.descriptor) for u in units]
        await asyncio.sleep(0.05)


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING)
    # No coordinator runs here: the lookup pull retries and would warn every few seconds.
    logging.getLogger("common.auth.sync").setLevel(logging.ERROR)


# ------------------------------------------------------------------------------------------
# Timing


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def paired_ms(a: list[float], b: list[float]) -> float:
    """How much longer ``a`` takes than ``b``: the median of their differences round by round
    (both ran in the same round), steadier than the difference of two medians."""
    return statistics.median(x - y for x, y in zip(a, b, strict=True)) * 1000


Timed = Callable[[], Awaitable[Any]]


def balanced_orders(n: int) -> list[list[int]]:
    """Orders of ``n`` probes in which each probe comes right after every other one equally
    often (a Williams design: ``n`` orders for an even ``n``, ``2n`` for an odd one).

    What ran just before a probe changes its time: measured on this machine, the broker's
    timeseries(expr) took 56 ms after itself and 67 ms right after DuckDB's query. A plain
    rotation puts the same probe after DuckDB in every round."""
    first = [0]
    lo, hi = 1, n - 1
    while len(first) < n:
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    orders = [[(p + i) % n for p in first] for i in range(n)]
    if n % 2:
        orders += [o[::-1] for o in orders]
    return orders


async def interleaved(
    shapes: list[str], runs: int, probes: dict[str, dict[str, Timed]]
) -> dict[str, dict[str, list[float]]]:
    """Seconds per (shape, probe): one warm-up round, then ``runs`` rounds, each running every
    shape's probes in turn, in the round's order of ``balanced_orders`` (so noise from other
    jobs on the machine, and the wake of the probe before, fall on every probe alike; a
    multiple of the design's length balances exactly)."""
    times: dict[str, dict[str, list[float]]] = {s: {} for s in shapes}
    for rnd in range(runs + 1):
        for shape in shapes:
            names = list(probes[shape])
            orders = balanced_orders(len(names))
            for i in orders[rnd % len(orders)]:
                probe = names[i]
                t = time.perf_counter()
                await probes[shape][probe]()
                elapsed = time.perf_counter() - t
                if rnd:
                    times[shape].setdefault(probe, []).append(elapsed)
    return times


def post_json(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Timed:
    """A timed POST with aiohttp, the client the broker reaches data nodes with. httpx (the
    tests' client) cost 1.4 ms more per request on this machine (a health check: 2.19 ms
    against 0.83 ms), which is the client's time, not the cluster's."""
    raw = orjson.dumps(body)
    timeout = aiohttp.ClientTimeout(total=300)

    async def run() -> Any:
        async with http.post(
            url, data=raw, headers={"Content-Type": "application/json"}, timeout=timeout
        ) as resp:
            content = await resp.read()
            assert resp.status == 200, content
            return content

    return run


def engine_probe(
    query: dict[str, Any], registry: Any, threads: int
) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    """The data node's work in this process (no HTTP, no IPC), finalized to Druid's JSON."""
    getter = segment_lookup(lambda: registry.segments, registry.get_segment)
    limit = asyncio.Semaphore(threads)

    async def run() -> list[dict[str, Any]]:
        q = parse_query(query)
        node = await run_on_node(q, getter, limit)
        return finalize(q, merge(q, [node.partial]))

    return run


def duck_probe(duck: Any, sql: str) -> Callable[[], Awaitable[list[tuple[Any, ...]]]]:
    async def run() -> list[tuple[Any, ...]]:
        return list(duck.execute(sql).fetchall())

    return run


# ------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kdruid-bench-query-"))
    print(f"building {args.rows:,} rows in {args.segments} segments ...", flush=True)
    table = make_table(args.rows)
    segments = build_segments(table, args.segments, tmp)
    tiny = build_segments(tiny_table(), 1, tmp, "tiny")
    duck = duckdb.connect()
    duck.execute(f"SET threads = {args.threads}")
    duck.register("t", table)
    duck.register("labels", labels_table())
    duck.register("tiny", tiny_table())
    shapes = [s for s in SHAPES if re.search(args.only, s.name)]

    c = Cluster(cluster_properties(tmp, args.threads))
    http = aiohttp.ClientSession()
    try:
        h = await load_historical(c, [*segments, *tiny])
        broker = await c.start("broker")
        broker.service.lookups.apply(LOOKUPS)  # type: ignore[attr-defined]
        descriptors = await wait_for_timeline(broker, "bench", len(segments))
        tiny_descriptors = await wait_for_timeline(broker, "tiny", 1)
        registry = h.service.registry  # type: ignore[attr-defined]
        threads = h.settings.processing.num_threads or os.cpu_count() or 2
        get_lookup = broker.service.lookups.get  # type: ignore[attr-defined]

        probes: dict[str, dict[str, Timed]] = {}
        for s in shapes:
            body = {"dataSource": "bench", **s.native, "intervals": [INTERVAL]}
            node_body = inline_lookups(
                {**body, "intervals": {"type": "segments", "segments": descriptors}}, get_lookup
            )
            probes[s.name] = {
                "engine": engine_probe(node_body, registry, threads),
                "node": post_json(http, f"{h.url}/druid/v2", node_body),
                "broker": post_json(http, f"{broker.url}/druid/v2", body),
                "duckdb": duck_probe(duck, s.duck),
            }
            # Same answers first (so every probe timed the same computation).
            got = orjson.loads(await probes[s.name]["broker"]())
            want = s.duck_rows(await probes[s.name]["duckdb"]())
            same_rows(s.name, s.rows(got), want)
            same_rows(s.name + " (engine)", s.rows(await probes[s.name]["engine"]()), want)

        print(
            f"{'query':<23} {'engine':>7} {'node':>7} {'broker':>7} {'duckdb':>7} "
            f"{'eng/dk':>6} {'brk/dk':>6} {'overhead':>8}   (ms, medians of {args.runs})"
        )
        times = await interleaved([s.name for s in shapes], args.runs, probes)
        for s in shapes:
            e, n, b, d = (
                median_ms(times[s.name][p]) for p in ("engine", "node", "broker", "duckdb")
            )
            over = paired_ms(times[s.name]["broker"], times[s.name]["node"])
            print(
                f"{s.name:<23} {e:>7.1f} {n:>7.1f} {b:>7.1f} {d:>7.1f} "
                f"{e / d:>6.2f} {b / d:>6.2f} {over:>8.1f}",
                flush=True,
            )

        # The fixed cost of a tiny query: a count over one 1,000-row segment.
        tiny_body = {**TINY, "intervals": [INTERVAL]}
        tiny_node = {**tiny_body, "intervals": {"type": "segments", "segments": tiny_descriptors}}
        tiny_probes = {
            "tiny": {
                "engine": engine_probe(tiny_node, registry, threads),
                "node": post_json(http, f"{h.url}/druid/v2", tiny_node),
                "broker": post_json(http, f"{broker.url}/druid/v2", tiny_body),
                "duckdb": duck_probe(duck, "SELECT count(*) FROM tiny"),
            }
        }
        tiny_runs = max(args.runs, args.tiny_runs)
        tt = (await interleaved(["tiny"], tiny_runs, tiny_probes))["tiny"]
        e, n, b, d = (median_ms(tt[p]) for p in ("engine", "node", "broker", "duckdb"))
        print(
            f"tiny query (count of {TINY_ROWS:,} rows, medians of {tiny_runs}): broker {b:.2f} ms "
            f"(broker + data node, HTTP both ways), node {n:.2f} ms, engine {e:.2f} ms, "
            f"broker overhead {paired_ms(tt['broker'], tt['node']):.2f} ms, duckdb {d:.2f} ms"
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"rows={args.rows:,} segments={args.segments} runs={args.runs} "
            f"processing threads={threads} duckdb threads={args.threads} cpus={os.cpu_count()} "
            f"load={os.getloadavg()[0]:.1f} peak RSS={rss:.0f} MB duckdb {duckdb.__version__}"
        )
    finally:
        await http.close()
        await c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--segments", type=int, default=4, help="segments (1-5 M rows each)")
    parser.add_argument(
        "--runs", type=int, default=8, help="rounds; a multiple of 4 balances the probe order"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="DuckDB threads and druid.processing.numThreads"
    )
    parser.add_argument("--only", default="", help="regex: only the shapes whose name matches")
    parser.add_argument("--tiny-runs", type=int, default=32, help="runs of the tiny query")
    quiet_logs()
    asyncio.run(main(parser.parse_args()))
