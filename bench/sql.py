"""Druid SQL next to DuckDB: the shapes of ``bench/query.py`` written as SQL, plus a JOIN and a
two-level subquery.

First, with no cluster, the planning overhead of each query: parse (sqlglot, parameters) plus
plan (onto a native query), median over ``--plan-runs`` runs (target < 5 ms). Then, unless
``--rows 0``, the data of ``bench/query.py`` on one historical (and a 10,000-row ``labels``
datasource, the JOIN's right side) with a broker in this process. Per query, interleaved in every
round: ``POST /druid/v2/sql`` end to end, the native query it plans to through ``POST /druid/v2``
(for the JOIN and the subquery: its innermost native query), and DuckDB running the same SQL on
the same Arrow tables. Every answer is checked against DuckDB's. Prints medians, SQL/DuckDB, and
the SQL overhead (SQL minus native, the median of the rounds' differences: planning, the schema
lookup, broker-side layers, results).
Then the fixed cost of a tiny SQL query (a count over a 1,000-row datasource).

    .venv/bin/python -m bench.sql --rows 0           # planning overhead only
    .venv/bin/python -m bench.sql                    # and end to end on 10 M rows
    .venv/bin/python -m bench.sql --rows 2000000     # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import orjson
import pyarrow as pa

from bench.query import (
    T0,
    Timed,
    build_segments,
    cluster_properties,
    duck_probe,
    duck_sorted,
    interleaved,
    labels_table,
    load_historical,
    make_table,
    median_ms,
    paired_ms,
    post_json,
    quiet_logs,
    same_rows,
    tiny_table,
)
from common.aio import wait_until
from common.query.sql.catalog import SYSTEM_TABLES
from common.query.sql.parse import parse_sql
from common.query.sql.planner import plan_sql
from tests.support.cluster import Cluster

SCHEMA = {
    "__time": "LONG",
    "added": "LONG",
    "country": "STRING",
    "delta": "DOUBLE",
    "page": "STRING",
}
WHEN = "__time >= TIMESTAMP '2024-01-01' AND __time < TIMESTAMP '2024-01-05'"


@dataclass
class SqlShape:
    """Druid SQL, the native query type it plans to (None: more than one native query, so no
    planning row), DuckDB's SQL over ``t``/``labels``, and (for JOIN and subqueries) the
    innermost query that runs as a native query, timed as "native"."""

    name: str
    sql: str
    query_type: str | None
    duck: str
    inner: str | None = None


SHAPES: list[SqlShape] = [
    SqlShape(
        "timeseries(hour)",
        "SELECT FLOOR(__time TO HOUR) AS h, COUNT(*) AS n, SUM(added) AS added, "
        f"SUM(delta) AS delta FROM bench WHERE {WHEN} GROUP BY 1",
        "timeseries",
        "SELECT __time // 3600000, count(*), sum(added), sum(delta) FROM t GROUP BY 1",
    ),
    SqlShape(
        "topN(1000 values)",
        "SELECT page, SUM(added) AS added FROM bench "
        f"WHERE {WHEN} AND country IN ('c1', 'c2', 'c3') "
        "GROUP BY page ORDER BY added DESC LIMIT 10",
        "topN",
        "SELECT page, sum(added) AS s FROM t WHERE country IN ('c1', 'c2', 'c3') "
        "GROUP BY page ORDER BY s DESC, page LIMIT 10",
    ),
    SqlShape(
        "groupBy(2 dims)",
        "SELECT country, page, COUNT(*) AS n, SUM(added) AS added FROM bench "
        f"WHERE {WHEN} GROUP BY country, page",
        "groupBy",
        "SELECT country, page, count(*), sum(added) FROM t GROUP BY country, page",
    ),
    SqlShape(
        "groupBy(expr)",
        "SELECT country || '/' || SUBSTRING(page, 6, 2) AS cp, COUNT(*) AS n, "
        f"SUM(added) AS added FROM bench WHERE {WHEN} GROUP BY 1",
        "groupBy",
        "SELECT country || '/' || substr(page, 6, 2) AS cp, count(*), sum(added) FROM t "
        "GROUP BY cp",
    ),
    SqlShape(
        "timeseries(expr)",
        "SELECT FLOOR(__time TO DAY) AS d, COUNT(*) AS n, SUM(added * 2) AS a2, "
        f"SUM(delta * delta) AS dd FROM bench WHERE {WHEN} AND added > 500 AND delta < 5.0 "
        "GROUP BY 1",
        "timeseries",
        "SELECT __time // 86400000, count(*), sum(added * 2), sum(delta * delta) FROM t "
        "WHERE added > 500 AND delta < 5.0 GROUP BY 1",
    ),
    SqlShape(
        "groupBy(filtered aggs)",
        "SELECT country, COUNT(*) FILTER (WHERE added > 500) AS big, "
        "SUM(added) FILTER (WHERE page IN ('page-0001', 'page-0002')) AS p12, "
        "SUM(delta) FILTER (WHERE delta < 0.0) AS neg, COUNT(*) AS n "
        f"FROM bench WHERE {WHEN} GROUP BY country",
        "groupBy",
        "SELECT country, count(*) FILTER (WHERE added > 500), "
        "sum(added) FILTER (WHERE page IN ('page-0001', 'page-0002')), "
        "sum(delta) FILTER (WHERE delta < 0.0), count(*) FROM t GROUP BY country",
    ),
    SqlShape(
        "JOIN(10k labels)",
        "SELECT l.label, SUM(b.added) AS added FROM bench b "
        f"LEFT JOIN (SELECT page, label FROM labels WHERE {WHEN}) l ON b.page = l.page "
        "WHERE b.__time >= TIMESTAMP '2024-01-01' AND b.__time < TIMESTAMP '2024-01-05' "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        None,
        "SELECT label, sum(added) AS s FROM t LEFT JOIN labels ON t.page = labels.page "
        "GROUP BY label ORDER BY s DESC, label LIMIT 10",
        f"SELECT page, label FROM labels WHERE {WHEN}",
    ),
    SqlShape(
        "subquery(2 levels)",
        "SELECT COUNT(*) AS pages, SUM(added) AS added FROM (SELECT page, added FROM "
        "(SELECT page, SUM(added) AS added, COUNT(*) AS n FROM bench "
        f"WHERE {WHEN} GROUP BY page) WHERE n > 10) WHERE added > 0",
        None,
        "SELECT count(*), sum(added) FROM (SELECT page, added FROM (SELECT page, "
        "sum(added) AS added, count(*) AS n FROM t GROUP BY page) WHERE n > 10) "
        "WHERE added > 0",
        f"SELECT page, SUM(added) AS added, COUNT(*) AS n FROM bench WHERE {WHEN} GROUP BY page",
    ),
]

#: The ORDER BY ... LIMIT shapes compare in order; the others as sorted rows.
ORDERED = {"topN(1000 values)", "JOIN(10k labels)"}


def planning(runs: int) -> None:
    print(f"{'query':<23} {'parse ms':>9} {'plan ms':>8} {'total ms':>9}")
    now = int(time.time() * 1000)
    schemas = {"bench": SCHEMA, "labels": {"__time": "LONG", "page": "STRING", "label": "STRING"}}
    for s in SHAPES:
        if s.query_type is None:
            continue
        p_t: list[float] = []
        q_t: list[float] = []
        for _ in range(runs):
            t0 = time.perf_counter()
            stmt = parse_sql(s.sql)
            t1 = time.perf_counter()
            plan = plan_sql(stmt, schemas, now_ms=now, system_columns=SYSTEM_TABLES)
            t2 = time.perf_counter()
            p_t.append(t1 - t0)
            q_t.append(t2 - t1)
        assert plan.query_type == s.query_type, (s.name, plan.query_type)
        p, q = median_ms(p_t), median_ms(q_t)
        print(f"{s.name:<23} {p:>9.2f} {q:>8.2f} {p + q:>9.2f}", flush=True)


def _rows(name: str, got: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows = [tuple(r.values()) for r in got]
    if name.startswith("timeseries"):
        rows = [r[1:] for r in sorted(rows, key=lambda r: str(r[0]))]  # drop the time
    return rows if name in ORDERED else duck_sorted(rows)


def _duck_rows(name: str, want: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    rows = [tuple(r) for r in want]
    if name.startswith("timeseries"):
        rows = [r[1:] for r in sorted(rows, key=lambda r: r[0])]
    return rows if name in ORDERED else duck_sorted(rows)


async def end_to_end(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kdruid-bench-sql-"))
    print(f"building {args.rows:,} rows in {args.segments} segments ...", flush=True)
    table = make_table(args.rows)
    labels = labels_table()
    labels_ds = labels.add_column(0, "__time", pa.array([T0] * labels.num_rows, pa.int64()))
    labels_ds = pa.table(
        {
            "__time": labels_ds["__time"],
            "page": labels_ds["page"].dictionary_encode(),
            "label": labels_ds["label"].dictionary_encode(),
        }
    )
    segments = [
        *build_segments(table, args.segments, tmp),
        *build_segments(labels_ds, 1, tmp, "labels"),
        *build_segments(tiny_table(), 1, tmp, "tiny"),
    ]
    duck = duckdb.connect()
    duck.execute(f"SET threads = {args.threads}")
    duck.register("t", table)
    duck.register("labels", labels)
    duck.register("tiny", tiny_table())
    shapes = [s for s in SHAPES if re.search(args.only, s.name)]
    c = Cluster(cluster_properties(tmp, args.threads))
    http = aiohttp.ClientSession()
    try:
        await load_historical(c, segments)
        broker = await c.start("broker")
        sql_url = f"{broker.url}/druid/v2/sql"

        async def count_of(ds: str) -> Any:
            resp = await c.http.post(
                sql_url, json={"query": f"SELECT COUNT(*) AS n FROM {ds} WHERE {WHEN}"}
            )
            return resp.json() if resp.status_code == 200 else None

        async def loaded() -> bool:
            # Until the broker's view has a datasource, the SQL answers 400 "not found".
            return (
                await count_of("bench") == [{"n": args.rows}]
                and await count_of("labels") == [{"n": labels.num_rows}]
                and await count_of("tiny") is not None
            )

        await wait_until(loaded, within=120, what="the broker to see every segment")

        async def native_of(sql: str) -> dict[str, Any]:
            resp = await c.http.post(sql_url, json={"query": f"EXPLAIN PLAN FOR {sql}"})
            assert resp.status_code == 200, resp.text
            return dict(orjson.loads(resp.json()[0]["PLAN"])[0]["query"])

        probes: dict[str, dict[str, Timed]] = {}
        for s in shapes:
            probes[s.name] = {
                "sql": post_json(http, sql_url, {"query": s.sql}),
                "native": post_json(
                    http, f"{broker.url}/druid/v2", await native_of(s.inner or s.sql)
                ),
                "duckdb": duck_probe(duck, s.duck),
            }
            got = orjson.loads(await probes[s.name]["sql"]())
            want = await probes[s.name]["duckdb"]()
            same_rows(s.name, _rows(s.name, got), _duck_rows(s.name, want))
        print(
            f"{'query':<23} {'sql':>7} {'native':>7} {'duckdb':>7} {'sql/dk':>6} "
            f"{'sql overhead':>12}   (ms, medians of {args.runs}; native: the innermost query "
            "for JOIN and subquery)"
        )
        times = await interleaved([s.name for s in shapes], args.runs, probes)
        for s in shapes:
            q, n, d = (median_ms(times[s.name][p]) for p in ("sql", "native", "duckdb"))
            over = paired_ms(times[s.name]["sql"], times[s.name]["native"])
            print(f"{s.name:<23} {q:>7.1f} {n:>7.1f} {d:>7.1f} {q / d:>6.2f} {over:>12.1f}")

        tiny_sql = f"SELECT COUNT(*) AS n FROM tiny WHERE {WHEN}"
        tiny = {
            "tiny": {
                "sql": post_json(http, sql_url, {"query": tiny_sql}),
                "native": post_json(http, f"{broker.url}/druid/v2", await native_of(tiny_sql)),
                "duckdb": duck_probe(duck, "SELECT count(*) FROM tiny"),
            }
        }
        tiny_runs = max(args.runs, 30)
        tt = (await interleaved(["tiny"], tiny_runs, tiny))["tiny"]
        q, n, d = (median_ms(tt[p]) for p in ("sql", "native", "duckdb"))
        print(
            f"tiny SQL query (count of 1,000 rows, medians of {tiny_runs}): sql {q:.2f} ms, "
            f"native {n:.2f} ms, sql overhead {paired_ms(tt['sql'], tt['native']):.2f} ms, "
            f"duckdb {d:.2f} ms"
        )
        print(
            f"rows={args.rows:,} segments={args.segments} runs={args.runs} "
            f"duckdb threads={args.threads} cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}"
        )
    finally:
        await http.close()
        await c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="0: planning only")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument(
        "--runs", type=int, default=6, help="rounds; a multiple of 6 balances the probe order"
    )
    parser.add_argument("--plan-runs", type=int, default=300)
    parser.add_argument(
        "--threads", type=int, default=2, help="DuckDB threads and druid.processing.numThreads"
    )
    parser.add_argument("--only", default="", help="regex: only the shapes whose name matches")
    quiet_logs()
    args = parser.parse_args()
    planning(args.plan_runs)
    if args.rows:
        asyncio.run(end_to_end(args))
