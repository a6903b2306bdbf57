"""The cost of ``lookup()`` in a query: the expression over a string column, next to
``upper()`` of the same column measured in the same run (the baseline), on a plain and on a
dictionary-encoded column (a segment's string dimensions are dictionary-encoded).

    .venv/bin/python -m bench.lookup --rows 1000000 --distinct 1000 --keys 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from common.expr import Expr, parse_expression
from common.expr.lookups import StaticLookups, lookup_scope


def best_ms(e: Expr, t: pa.Table, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        e.evaluate_table(t)
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=500, help="entries of the lookup")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    values = np.array([f"k{i}" for i in range(a.distinct)])[rng.integers(0, a.distinct, a.rows)]
    col = pa.array(values)
    lookups = StaticLookups({"m": {f"k{i}": f"v{i}" for i in range(a.keys)}})
    baseline = parse_expression("upper(d)")
    lookup = parse_expression("lookup(d, 'm', 'none')")
    with lookup_scope(lookups):
        for name, c in (("plain", col), ("dictionary", col.dictionary_encode())):
            t = pa.table({"d": c})
            base, got = best_ms(baseline, t, a.runs), best_ms(lookup, t, a.runs)
            print(
                f"{name:10} rows={a.rows} upper(d) {base:.1f} ms, "
                f"lookup(d,'m','none') {got:.1f} ms, ratio {got / base:.2f}"
            )


if __name__ == "__main__":
    main()
