"""Druid SQL overhead: the queries of ``bench/query.py`` written as SQL.

First, with no cluster, the planning overhead of each query: parse (sqlglot, parameters) plus
plan (onto a native query), median over ``--plan-runs`` runs (target < 5 ms). Then, unless
``--rows 0``, the same data as ``bench/query.py`` on one historical and a broker in this
process, and per query the median end-to-end time of ``POST /druid/v2/sql`` next to the native
query it plans to through ``POST /druid/v2`` (their difference: planning, the schema lookup,
post-processing and the result writer).

    .venv/bin/python -m bench.sql --rows 0          # planning overhead only
    .venv/bin/python -m bench.sql --rows 2000000    # and end to end on 2 M rows
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.query import build_segments, load_historical, make_table
from common.aio import wait_until
from common.query.sql.catalog import SYSTEM_TABLES
from common.query.sql.parse import parse_sql
from common.query.sql.planner import plan_sql
from tests.support.cluster import Cluster, sqlite_properties

SCHEMA = {
    "__time": "LONG",
    "added": "LONG",
    "country": "STRING",
    "delta": "DOUBLE",
    "page": "STRING",
}
WHEN = "__time >= TIMESTAMP '2024-01-01' AND __time < TIMESTAMP '2024-01-05'"
#: name -> (SQL, the native query type it must plan to)
QUERIES: dict[str, tuple[str, str]] = {
    "timeseries(hour)": (
        "SELECT FLOOR(__time TO HOUR) AS h, COUNT(*) AS n, SUM(added) AS added, "
        f"SUM(delta) AS delta FROM bench WHERE {WHEN} GROUP BY 1",
        "timeseries",
    ),
    "topN(1000 values)": (
        "SELECT page, SUM(added) AS added FROM bench "
        f"WHERE {WHEN} AND country IN ('c1', 'c2', 'c3') "
        "GROUP BY page ORDER BY added DESC LIMIT 10",
        "topN",
    ),
    "groupBy(2 dims)": (
        "SELECT country, page, COUNT(*) AS n, SUM(added) AS added FROM bench "
        f"WHERE {WHEN} GROUP BY country, page",
        "groupBy",
    ),
}

#: name -> (SQL with subqueries, its innermost query): the inner part runs as a native query,
#: the outer layers at the broker (``common/query/sql/subquery.py``).
SUBQUERIES: dict[str, tuple[str, str]] = {
    "subquery(2 levels)": (
        "SELECT COUNT(*) AS pages, SUM(added) AS added FROM (SELECT page, added FROM "
        "(SELECT page, SUM(added) AS added, COUNT(*) AS n FROM bench "
        f"WHERE {WHEN} GROUP BY page) WHERE n > 10) WHERE added > 0",
        f"SELECT page, SUM(added) AS added, COUNT(*) AS n FROM bench WHERE {WHEN} GROUP BY page",
    ),
}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def planning(runs: int) -> None:
    print(f"{'query':<18} {'parse ms':>9} {'plan ms':>8} {'total ms':>9}")
    now = int(time.time() * 1000)
    for name, (sql, qtype) in QUERIES.items():
        p_t: list[float] = []
        q_t: list[float] = []
        for _ in range(runs):
            t0 = time.perf_counter()
            stmt = parse_sql(sql)
            t1 = time.perf_counter()
            plan = plan_sql(stmt, {"bench": SCHEMA}, now_ms=now, system_columns=SYSTEM_TABLES)
            t2 = time.perf_counter()
            p_t.append(t1 - t0)
            q_t.append(t2 - t1)
        assert plan.query_type == qtype, (name, plan.query_type)
        p, q = median_ms(p_t), median_ms(q_t)
        print(f"{name:<18} {p:>9.2f} {q:>8.2f} {p + q:>9.2f}", flush=True)


async def end_to_end(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kdruid-bench-sql-"))
    print(f"building {args.rows:,} rows in {args.segments} segments ...", flush=True)
    segments = build_segments(make_table(args.rows), args.segments, tmp)
    props = {
        **sqlite_properties(tmp),
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(tmp / "cache"), "maxSize": 10**12}]
        ),
    }
    c = Cluster(props)
    try:
        await load_historical(c, segments)
        broker = await c.start("broker")

        async def post(path: str, body: dict[str, Any]) -> tuple[float, Any]:
            t = time.perf_counter()
            resp = await c.http.post(
                f"{broker.url}{path}",
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=300,
            )
            elapsed = time.perf_counter() - t
            assert resp.status_code == 200, resp.text
            return elapsed, resp.json()

        count = f"SELECT COUNT(*) AS n FROM bench WHERE {WHEN}"

        async def loaded() -> bool:
            # Until the broker's view has the datasource, the SQL answers 400 "not found".
            resp = await c.http.post(f"{broker.url}/druid/v2/sql", json={"query": count})
            return resp.status_code == 200 and bool(resp.json() == [{"n": args.rows}])

        await wait_until(loaded, within=120, what="the broker to see every segment")
        print(f"{'query':<18} {'sql ms':>8} {'native ms':>10} {'sql overhead ms':>16} {'rows':>6}")
        for name, (sql, _) in QUERIES.items():
            _, explain = await post("/druid/v2/sql", {"query": f"EXPLAIN PLAN FOR {sql}"})
            native = orjson.loads(explain[0]["PLAN"])[0]["query"]
            s_t: list[float] = []
            n_t: list[float] = []
            rows: Any = None
            for _ in range(args.runs + 1):  # the first round warms up and is not counted
                elapsed, rows = await post("/druid/v2/sql", {"query": sql})
                s_t.append(elapsed)
                elapsed, _ = await post("/druid/v2", native)
                n_t.append(elapsed)
            s, n = median_ms(s_t[1:]), median_ms(n_t[1:])
            print(f"{name:<18} {s:>8.1f} {n:>10.1f} {s - n:>16.1f} {len(rows):>6}", flush=True)
        # Subqueries: "native ms" is the innermost query alone, as a native query.
        for name, (sql, inner) in SUBQUERIES.items():
            _, explain = await post("/druid/v2/sql", {"query": f"EXPLAIN PLAN FOR {inner}"})
            native = orjson.loads(explain[0]["PLAN"])[0]["query"]
            s_t, n_t = [], []
            for _ in range(args.runs + 1):
                elapsed, rows = await post("/druid/v2/sql", {"query": sql})
                s_t.append(elapsed)
                elapsed, _ = await post("/druid/v2", native)
                n_t.append(elapsed)
            s, n = median_ms(s_t[1:]), median_ms(n_t[1:])
            print(f"{name:<18} {s:>8.1f} {n:>10.1f} {s - n:>16.1f} {len(rows):>6}", flush=True)
    finally:
        await c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="0: planning only")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plan-runs", type=int, default=300)
    logging.basicConfig(level=logging.WARNING)
    args = parser.parse_args()
    planning(args.plan_runs)
    if args.rows:
        asyncio.run(end_to_end(args))
