"""Handoff latency: from a segment recorded as used in ``druid_segments`` to its announcement
reaching a broker's inventory view.

In one process: a coordinator, two historicals and a broker (real uvicorn servers, SQLite
metadata store, local deep storage, the ``metadata`` discovery backend with test timings). The
bench builds an ``HttpServerInventoryView`` from the broker's discovery provider, as the broker
will, and times each segment from its insert to the view's ``segment_added``.

Two runs over ``--segments`` segments: ``sequential`` (insert one, wait for it, pause a random
0-1 s, next: the streaming handoff case) and ``burst`` (all inserted in one transaction).
Target: p99 < 5 s.

    .venv/bin/python bench/handoff.py --segments 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.aio import bounded, wait_until  # noqa: E402
from common.segments.segment import DataSegment, SegmentId  # noqa: E402
from common.serverview.inventory import DruidServer, HttpServerInventoryView  # noqa: E402
from services.coordinator.service import CoordinatorService  # noqa: E402
from tests.support.cluster import cluster, sqlite_properties  # noqa: E402
from tests.support.segments import historical_props, make_segment  # noqa: E402

TARGET_S = 5.0


class Arrivals:
    """Inventory callback: the first time each segment is announced by any server."""

    def __init__(self) -> None:
        self.at: dict[SegmentId, float] = {}
        self.changed = asyncio.Event()

    def segment_added(self, server: DruidServer, segment: DataSegment) -> None:
        self.at.setdefault(segment.id, time.perf_counter())
        self.changed.set()

    def segment_removed(self, server: DruidServer, segment: DataSegment) -> None:
        pass

    def server_removed(self, server: DruidServer) -> None:
        pass

    def segment_view_initialized(self) -> None:
        pass


async def wait_for(arrivals: Arrivals, ids: set[SegmentId], within: float) -> None:
    async def loop() -> None:
        while not ids <= arrivals.at.keys():
            arrivals.changed.clear()
            await arrivals.changed.wait()

    await bounded(loop(), within)


def summary(name: str, latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    p50, p99 = statistics.median(latencies), q[98]
    verdict = "OK" if p99 < TARGET_S else "OVER TARGET"
    return (
        f"{name:<10} n={len(latencies):<4} p50={p50:.3f}s p99={p99:.3f}s "
        f"max={max(latencies):.3f}s  (target p99 < {TARGET_S:.0f}s: {verdict})"
    )


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kdruid-handoff-") as d:
        tmp = Path(d)
        props = {
            **sqlite_properties(tmp),
            "druid.segmentCache.dropSegmentDelayMillis": "100",
            "druid.segmentCache.numLoadingThreads": "4",
        }
        async with cluster(props) as c:
            coord = await c.start("coordinator")
            for name in ("h1", "h2"):
                await c.start("historical", name, **historical_props(tmp, name))
            broker = await c.start("broker")
            view = HttpServerInventoryView(
                broker.service.provider.get_for_service("dataNodeService"),
                server_timeout=broker.settings.serverview_http.server_timeout,
                name="bench-broker-inventory",
            )
            arrivals = Arrivals()
            view.register_callback(arrivals)
            view.start()
            try:
                await bounded(view.initialized.wait(), 30)
                service = coord.service
                assert isinstance(service, CoordinatorService)
                await wait_until(lambda: service.duties is not None, within=30, what="leader")
                store = service.store
                # segment files are written and pushed before the clock starts
                seq = [make_segment(tmp, day) for day in range(n)]
                burst = [make_segment(tmp, day, "2030-01-01T00:00:00.000Z") for day in range(n)]
                latencies: list[float] = []
                rng = random.Random(7)
                for segment in seq:
                    # a random pause, so inserts do not line up with the coordinator's cycles
                    await asyncio.sleep(rng.uniform(0.0, 1.0))
                    t0 = time.perf_counter()
                    await store.insert_segments([segment])
                    await wait_for(arrivals, {segment.id}, 60)
                    latencies.append(arrivals.at[segment.id] - t0)
                print(summary("sequential", latencies))
                t0 = time.perf_counter()
                await store.insert_segments(burst)
                await wait_for(arrivals, {s.id for s in burst}, 120)
                print(summary("burst", [arrivals.at[s.id] - t0 for s in burst]))
                rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"peak RSS of the whole in-process cluster: {rss_mb:.0f} MB")
            finally:
                await view.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(json.dumps({"segments": args.segments, "historicals": 2, "replicas": 2}))
    asyncio.run(run(args.segments))


if __name__ == "__main__":
    main()
