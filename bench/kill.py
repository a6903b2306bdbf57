"""Kill task throughput: unused segments deleted per second (metadata rows + deep-storage files).

Publishes ``--segments`` small segments (one file each, local deep storage, SQLite metadata)
marked unused, then runs the kill task's work (``KillRun``: lock, batches of ``--batch-size``,
rows then files) and prints segments/s. Also prints how long listing the candidates alone takes,
since every batch re-reads the datasource's unused rows.

    .venv/bin/python -m bench.kill --segments 2000 --batch-size 100
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from common.config import load_settings
from common.metadata import MetadataStore
from common.metadata.unused import kill_candidates
from common.segments.deep_storage import DeepStorage
from common.segments.format import write_parquet
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from services.overlord.tasks.kill import KillRun, parse_kill

HOUR = 3_600_000
T0 = Interval.parse("2024-01-01/2024-01-02").start


async def main(n: int, batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = load_settings(
            "overlord",
            properties={
                "druid.metadata.storage.type": "sqlite",
                "druid.metadata.storage.connector.connectURI": str(root / "meta.db"),
            },
            environ={},
        )
        store = await MetadataStore.connect(settings.metadata)
        deep = DeepStorage("local", storage_directory=str(root / "deep"))
        src = root / "src.parquet"
        write_parquet(
            pa.table({"__time": pa.array([T0], pa.int64()), "x": pa.array([1], pa.int64())}),
            src,
            Interval(T0, T0 + HOUR),
        )
        segments = [
            deep.push(
                DataSegment(
                    dataSource="bench",
                    interval=Interval(T0 + i * HOUR, T0 + (i + 1) * HOUR),
                    version="v1",
                    shardSpec={"type": "numbered", "partitionNum": 0, "partitions": 1},
                ),
                src,
            )
            for i in range(n)
        ]
        await store.insert_segments(segments, used=False)
        everything = Interval(T0, T0 + (n + 1) * HOUR)

        started = time.perf_counter()
        rows = await store.unused_segment_rows("bench")
        kill_candidates(rows, everything, limit=batch_size)
        list_s = time.perf_counter() - started

        spec = parse_kill(
            {
                "type": "kill",
                "id": "bench-kill",
                "dataSource": "bench",
                "interval": str(everything),
                "batchSize": batch_size,
            }
        )
        work = KillRun(spec, store, deep, lambda _r: None)
        started = time.perf_counter()
        await work.acquire_lock()
        await work.run()
        elapsed = time.perf_counter() - started
        left = len(await store.list_segments("bench", used=None))
        await store.close()
        print(
            f"killed {work.killed} segments in {work.batches} batches: {elapsed:.2f} s, "
            f"{work.killed / elapsed:.0f} segments/s; listing {n} unused rows once: "
            f"{list_s * 1000:.0f} ms; rows left {left}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.segments, args.batch_size))
