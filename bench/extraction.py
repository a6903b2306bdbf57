"""The cost of extraction functions (``common.query.extraction``): a ``cascade`` of ``regex``
and ``upper`` over a plain string column and over the same column dictionary-encoded (a
segment's string dimensions are), next to ``pc.utf8_upper`` of the plain column measured in
the same run (the baseline: one vectorised Arrow kernel).

    .venv/bin/python -m bench.extraction --rows 1000000 --distinct 1000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import TypeAdapter

from common.query.extraction import ExtractionFn


def best_ms(f: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    fn = TypeAdapter(ExtractionFn).validate_python(
        {
            "type": "cascade",
            "extractionFns": [{"type": "regex", "expr": "^(\\w+)-"}, {"type": "upper"}],
        }
    )
    rng = np.random.default_rng(1)
    words = pa.array([f"page{i}-x" for i in range(args.distinct)])
    plain = words.take(pa.array(rng.integers(0, args.distinct, args.rows)))
    coded = plain.dictionary_encode()
    assert fn.apply(plain).to_pylist() == fn.apply(coded).to_pylist()
    base = best_ms(lambda: pc.utf8_upper(plain), args.runs)
    t_plain = best_ms(lambda: fn.apply(plain), args.runs)
    t_coded = best_ms(lambda: fn.apply(coded), args.runs)
    print(f"rows={args.rows} distinct={args.distinct}")
    print(f"baseline pc.utf8_upper (plain): {base:.1f} ms")
    print(f"cascade(regex, upper) plain: {t_plain:.1f} ms = {t_plain / base:.2f}x baseline")
    print(f"cascade(regex, upper) dictionary: {t_coded:.1f} ms = {t_coded / base:.2f}x baseline")


if __name__ == "__main__":
    main()
