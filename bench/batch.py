"""Native batch throughput: ``index_parallel`` from local JSON and from Parquet, next to a raw
pyarrow read of the same files in the same run.

An overlord and a peon run in this process (SQLite metadata, local deep storage); the task is
timed from submit to SUCCESS (read, parse, index, push, publish). The raw read is
``pyarrow.json.read_json`` / ``pyarrow.parquet.read_table`` of the same file, single-threaded
(best of three). Each figure is given in wall time and in CPU time of this process (all its
threads): on a shared machine the CPU figures are the steadier measure of work per core.
A task's fixed cost (assignment, one lock and one segment per day, publish, status) is measured
with a 70-row task over the same days and also shown subtracted ("net of the fixed cost").
``--in-process`` runs the same tasks with no cluster (``tests.support.batch``: actions answered
in-process): reading, parsing, indexing, segment writing and pushing only.

    .venv/bin/python -m bench.batch --rows 200000 [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from common.aio import wait_until
from tests.support.batch import local_task
from tests.support.cluster import Cluster, sqlite_properties

T0 = 1_704_067_200_000
PAGES = [f"page{i}" for i in range(200)]


def make_rows(n: int) -> pa.Table:
    return pa.table(
        {
            "ts": pa.array([T0 + (i * 86_400_000 * 7) // n for i in range(n)], pa.int64()),
            "page": [PAGES[i % len(PAGES)] for i in range(n)],
            "country": [f"c{i % 17}" for i in range(n)],
            "added": list(range(n)),
            "delta": [float(i % 101) for i in range(n)],
        }
    )


def task(ds: str, path: Path, fmt: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": ds,
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["page", "country"]},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "DAY",
                    "queryGranularity": "NONE",
                    "rollup": False,
                },
            },
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": {"type": "local", "files": [str(path)]},
                "inputFormat": fmt,
            },
            "tuningConfig": {"type": "index_parallel"},
        },
    }


def write_inputs(table: pa.Table, json_path: Path, parquet_path: Path) -> None:
    json_path.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))
    pq.write_table(table, parquet_path)


async def run_task(c: Cluster, body: dict[str, Any]) -> tuple[float, float]:
    """Wall and CPU seconds (this process: overlord, peon and the polling client) from submit
    to SUCCESS."""
    started, cpu = time.perf_counter(), time.process_time()
    r = await c.http.post(c.nodes["overlord"].url + "/druid/indexer/v1/task", json=body)
    r.raise_for_status()
    task_id = r.json()["task"]
    state = {}

    async def done() -> bool:
        s = await c.get("overlord", f"/druid/indexer/v1/task/{task_id}/status")
        state.update(s.json()["status"])
        return state["status"] != "RUNNING"

    await wait_until(done, within=3600, interval=0.05)
    if state["status"] != "SUCCESS":
        raise SystemExit(f"task failed: {state}")
    return time.perf_counter() - started, time.process_time() - cpu


def raw_read(read: Any) -> tuple[float, float]:
    """Best of three single-threaded reads: wall and CPU seconds."""
    best = (float("inf"), float("inf"))
    for _ in range(3):
        t, cpu = time.perf_counter(), time.process_time()
        read()
        best = min(best, (time.perf_counter() - t, time.process_time() - cpu))
    return best


Runner = Callable[[dict[str, Any]], Awaitable[tuple[float, float]]]


async def run_local_task(tmp: Path, body: dict[str, Any]) -> tuple[float, float]:
    """The task alone in this process: no overlord, no peon, actions answered in-process."""
    runner, _ = local_task({**body, "id": f"local_{time.monotonic_ns()}"}, tmp)
    started, cpu = time.perf_counter(), time.process_time()
    status = await runner.run()
    if status["status"] != "SUCCESS":
        raise SystemExit(f"task failed: {status}")
    return time.perf_counter() - started, time.process_time() - cpu


@dataclass
class Inputs:
    rows: int
    json: Path
    parquet: Path
    tiny: Path
    raw_json: tuple[float, float]
    raw_parquet: tuple[float, float]


def prepare(rows: int, tmp: Path) -> Inputs:
    """The files and the raw reads, before any service runs (writing blocks this thread)."""
    json_path, parquet_path = tmp / "rows.json", tmp / "rows.parquet"
    write_inputs(make_rows(rows), json_path, parquet_path)
    # 70 rows over the same 7 days: the same locks, segments and publish, next to no rows
    tiny_path = tmp / "tiny.json"
    write_inputs(make_rows(70), tiny_path, tmp / "tiny.parquet")
    raw_json = raw_read(
        lambda: pj.read_json(json_path, read_options=pj.ReadOptions(use_threads=False))
    )
    raw_parquet = raw_read(lambda: pq.read_table(parquet_path, use_threads=False))
    return Inputs(rows, json_path, parquet_path, tiny_path, raw_json, raw_parquet)


async def measure(run: Runner, inputs: Inputs) -> None:
    rows, tiny_path = inputs.rows, inputs.tiny
    # A long-running peon has paid its first-task costs (thread pools, lazy imports).
    await run(task("bench_warm", tiny_path, {"type": "json"}))
    tiny = [await run(task(f"bench_tiny{i}", tiny_path, {"type": "json"})) for i in range(3)]
    fixed = (statistics.median(t[0] for t in tiny), statistics.median(t[1] for t in tiny))
    t_json = await run(task("bench_json", inputs.json, {"type": "json"}))
    t_pq = await run(task("bench_pq", inputs.parquet, {"type": "parquet"}))
    print(f"rows: {rows}   (wall: elapsed; cpu: CPU seconds of this process, all threads)")
    print(
        f"fixed cost of a task (70 rows, 7 segments): wall {fixed[0] * 1000:.0f} ms, "
        f"cpu {fixed[1] * 1000:.0f} ms"
    )
    figures = (("json", t_json, inputs.raw_json), ("parquet", t_pq, inputs.raw_parquet))
    for name, took, raw in figures:
        for i, kind in enumerate(("wall", "cpu")):
            net = took[i] - fixed[i]
            print(
                f"{name:8s} {kind:4s} index_parallel {rows / took[i]:>12,.0f} rows/s   "
                f"raw pyarrow read {rows / raw[i]:>12,.0f} rows/s   "
                f"ratio {raw[i] / took[i]:.3f}   net of the fixed cost {raw[i] / net:.3f}"
            )


async def main(rows: int, in_process: bool) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        inputs = prepare(rows, tmp)
        if in_process:
            await measure(partial(run_local_task, tmp), inputs)
            return
        c = Cluster({**sqlite_properties(tmp), "druid.worker.capacity": "1"})
        try:
            await c.start("overlord")
            await c.start("peon")

            async def ready() -> bool:
                w = await c.get("overlord", "/druid/indexer/v1/workers")
                return w.status_code == 200 and len(w.json()) == 1

            await wait_until(ready, within=30)
            await measure(partial(run_task, c), inputs)
        finally:
            await c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the task alone (tests.support.batch): ingestion without the cluster's costs",
    )
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.in_process))
