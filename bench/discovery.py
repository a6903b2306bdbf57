"""Discovery latency of the k8s backend: from a pod's announcement patch to every watcher seeing it.

Runs the Kubernetes API-server double in-process, ``--watchers`` independent backends (each its
own client and watch) on the ``historical`` role, and announces ``--pods`` pods one after
another (or all at once with ``--burst``). Prints p50/p99/max of "patch sent -> last watcher
saw it".

    .venv/bin/python -m bench.discovery --pods 200 --watchers 5
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common.config import load_settings
from common.discovery.node import DataNodeService, DiscoveryDruidNode, DruidNode
from common.k8s.announcer import K8sAnnouncer
from common.k8s.backend import K8sDiscoveryBackend
from common.k8s.client import KubeApi
from tests.support.k8s_api import K8sApiDouble, backend_properties

NS = "bench"


class Arrivals:
    def __init__(self) -> None:
        self.seen: dict[str, list[float]] = {}
        self.changed = asyncio.Event()

    def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None:
        now = time.perf_counter()
        for n in nodes:
            self.seen.setdefault(n.host_and_port, []).append(now)
        self.changed.set()

    def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None:
        pass

    def node_view_initialized(self, timed_out: bool) -> None:
        pass


def node(i: int) -> DiscoveryDruidNode:
    return DiscoveryDruidNode(
        druidNode=DruidNode(
            service="druid/historical", host=f"10.0.{i // 250}.{i % 250}", plaintextPort=8083
        ),
        nodeType="historical",
        services={"dataNodeService": DataNodeService(serverType="historical")},
        startTime=datetime.now(UTC),
    )


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main(pods: int, watchers: int, burst: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with K8sApiDouble() as api:
            kubeconfig = api.write_kubeconfig(Path(tmp) / "kubeconfig")
            settings = load_settings(
                "broker", properties=backend_properties(kubeconfig), environ={}
            )
            for i in range(pods):
                api.add_pod(NS, f"pod-{i}", labels={"app": "druid"})
            backends = [
                await K8sDiscoveryBackend.create(
                    settings, environ={"POD_NAME": f"pod-{i}", "POD_NAMESPACE": NS}
                )
                for i in range(watchers)
            ]
            arrivals = Arrivals()
            for b in backends:
                w = b.provider.get_for_node_role("historical")
                await w.initialized.wait()
                w.register_listener(arrivals)
            client = await KubeApi.connect(kubeconfig)
            sent: dict[str, float] = {}

            async def announce(i: int) -> None:
                n = node(i)
                announcer = K8sAnnouncer(client, NS, f"pod-{i}", "dc")
                sent[n.host_and_port] = time.perf_counter()
                await announcer.announce(n)

            async def all_seen(keys: list[str]) -> None:
                while not all(len(arrivals.seen.get(k, [])) >= watchers for k in keys):
                    arrivals.changed.clear()
                    await arrivals.changed.wait()

            started = time.perf_counter()
            if burst:
                await asyncio.gather(*(announce(i) for i in range(pods)))
                await all_seen(list(sent))
            else:
                for i in range(pods):
                    await announce(i)
                    await all_seen([node(i).host_and_port])
            total = time.perf_counter() - started
            lat = [(max(arrivals.seen[k]) - t) * 1000 for k, t in sent.items()]
            await client.close()
            for b in backends:
                await b.close()
    mode = "burst" if burst else "sequential"
    print(f"discovery latency, {pods} pods, {watchers} watchers, {mode}: "
          f"p50 {statistics.median(lat):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
          f"max {max(lat):.1f} ms; total {total:.2f} s")  # fmt: skip


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--watchers", type=int, default=5)
    parser.add_argument("--burst", action="store_true", help="announce all pods at once")
    args = parser.parse_args()
    asyncio.run(main(args.pods, args.watchers, args.burst))
