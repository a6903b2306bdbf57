"""Druid's apply functions over an ARRAY column, vectorised (the lambda evaluated once over every
element of every row) against the row-by-row evaluator of the same expression (the baseline,
measured in the same run), and the implicit mapping of a multi-value column against the same.

    .venv/bin/python -m bench.apply --rows 100000 --width 4
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from common.expr import parse_expression

CASES = (
    "map((x) -> x * 2 + k, arr)",
    "filter((x) -> x > 50, arr)",
    "any((x) -> x > 90, arr)",
    "cartesian_map((x, y) -> x + y, arr, [1, 2])",
    "concat(tags, '-', k)",  # implicit map over a multi-value column
)


def best_ms(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--width", type=int, default=4, help="elements per row")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    flat = rng.integers(0, 100, a.rows * a.width)
    offsets = pa.array(np.arange(0, a.rows * a.width + 1, a.width, dtype=np.int64))
    table = pa.table(
        {
            "arr": pa.LargeListArray.from_arrays(offsets, pa.array(flat)),
            "tags": pa.ListArray.from_arrays(
                offsets.cast(pa.int32()), pa.array([f"t{v}" for v in flat])
            ),
            "k": pa.array(rng.integers(0, 10, a.rows)),
        }
    )
    rows = table.to_pylist()
    for text in CASES:
        expr = parse_expression(text)
        vector = best_ms(lambda e=expr: e.evaluate_table(table), a.runs)
        by_row = best_ms(lambda e=expr: [e.evaluate(r) for r in rows], a.runs)
        print(
            f"{text:45} rows={a.rows} width={a.width} row by row {by_row:.1f} ms, "
            f"vectorised {vector:.1f} ms, ratio {by_row / vector:.1f}x"
        )


if __name__ == "__main__":
    main()
