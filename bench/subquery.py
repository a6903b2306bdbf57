"""The broker-side part of a subquery: the outer query over a materialised inner result.

kdruid runs it in pyarrow (the planner's system-table path: ``pc`` filters and Acero's hash
aggregation). This measures that path next to DuckDB reading the same Arrow table zero-copy,
on the same rows, so the choice of engine is backed by figures. The inner result is a
``GROUP BY country, page`` shaped table of ``--rows`` rows (maxSubqueryRows is 100000 by
default, so that is the size that matters).

    .venv/bin/python -m bench.subquery --rows 100000
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa

from common.query.sql.execute import post_process
from common.query.sql.parse import Statement, parse_sql
from common.query.sql.planner import plan_sql

OUTER = {
    "filter+group": "SELECT country, COUNT(*) AS pages, SUM(added) AS added FROM (SELECT 1) "
    "WHERE n > 5 GROUP BY country ORDER BY added DESC LIMIT 10",
    "filter+scan": "SELECT page, n FROM (SELECT 1) WHERE added > 900 AND country = 'c3' "
    "ORDER BY n DESC LIMIT 20",
    "count": "SELECT COUNT(*) AS c, MAX(n) AS m FROM (SELECT 1) WHERE page <> 'p7'",
}


def inner_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(3)
    return pa.table(
        {
            "country": pa.array([f"c{i}" for i in rng.integers(0, 50, rows)]),
            "page": pa.array([f"p{i}" for i in range(rows)]),
            "n": pa.array(rng.integers(0, 20, rows), pa.int64()),
            "added": pa.array(rng.integers(0, 1000, rows), pa.int64()),
        }
    )


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    table = inner_table(args.rows)
    con = duckdb.connect()
    con.register("inner_t", table)
    print(f"outer query over a {args.rows:,}-row inner result, median of {args.runs} runs")
    print(f"{'query':<14} {'pyarrow ms':>11} {'duckdb ms':>10} {'rows':>5}")
    for name, sql in OUTER.items():
        stmt = parse_sql(sql.replace("FROM (SELECT 1)", "FROM (SELECT 1) AS s"))
        frm = stmt.select.args["from_"]
        frm.set("this", parse_sql('SELECT 1 FROM "<inline>"').select.args["from_"].this)

        def kdruid(stmt: Statement = stmt) -> int:
            plan = plan_sql(stmt, {}, now_ms=0, from_table=table)
            return post_process(plan, table).num_rows

        def duck(text: str = sql.replace("FROM (SELECT 1)", "FROM inner_t")) -> int:
            return con.sql(text).to_arrow_table().num_rows

        a, b = median_ms(kdruid, args.runs), median_ms(duck, args.runs)
        assert kdruid() == duck(), name
        print(f"{name:<14} {a:>11.2f} {b:>10.2f} {kdruid():>5}", flush=True)


if __name__ == "__main__":
    main()
