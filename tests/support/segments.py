"""Segments for tests: written with the segment writer and pushed to local deep storage, plus a
coordinator-and-two-historicals cluster to load them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from common.aio import wait_until
from common.segments.deep_storage import DeepStorage
from common.segments.format import write_parquet
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from tests.support.cluster import Cluster, Node

DAY_MS = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start
V1, V2 = "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"
COORD = "/druid/coordinator/v1"


def make_segment(
    tmp: Path,
    day: int,
    version: str = V1,
    rows: int = 20,
    storage: DeepStorage | None = None,
    extra: dict[str, pa.Array] | None = None,
) -> DataSegment:
    """Write a segment file with the writer and push it to local deep storage (``extra``: more
    columns of ``rows`` values, such as a multi-value dimension)."""
    iv = Interval(T0 + day * DAY_MS, T0 + (day + 1) * DAY_MS)
    table = pa.table(
        {
            "__time": pa.array([iv.start + i * 1000 for i in range(rows)], pa.int64()),
            "page": [f"p{i % 3}" for i in range(rows)],
            "added": pa.array(range(rows), pa.int64()),
            **(extra or {}),
        }
    )
    src = tmp / f"src-{day}-{version[:10]}.parquet"
    info = write_parquet(table, src, iv)
    seg = DataSegment(
        dataSource="wiki",
        interval=iv,
        version=version,
        dimensions=info.dimensions,
        metrics=info.metrics,
        shardSpec={"type": "numbered", "partitionNum": 0, "partitions": 1},
    )
    deep = storage or DeepStorage("local", storage_directory=str(tmp / "deep"))
    return deep.push(seg, src)


def historical_props(tmp: Path, name: str) -> dict[str, str]:
    return {
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(tmp / f"cache-{name}"), "maxSize": 10**8}]
        )
    }


async def start_cluster(c: Cluster, tmp: Path) -> tuple[Node, Node, Node]:
    coord = await c.start("coordinator")
    h1 = await c.start("historical", "h1", **historical_props(tmp, "h1"))
    h2 = await c.start("historical", "h2", **historical_props(tmp, "h2"))

    async def leads() -> bool:
        return (await c.get("coordinator", f"{COORD}/isLeader")).status_code == 200

    await wait_until(leads, within=20, what="coordinator leadership")
    return coord, h1, h2
