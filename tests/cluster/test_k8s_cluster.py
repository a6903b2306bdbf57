"""All five roles (plus a second coordinator and overlord) on ``druid.discovery.type=k8s``.

They run in this test's process against the Kubernetes API-server double, each as its own pod:
each node's ``podNameEnvKey`` names its own environment variable, so one process can hold
several "pods". Every node discovers every other; one leader per election; a clean stop fails
over within ``retryPeriod`` + 1 s; a deleted pod, an unannounced node and a re-annotated pod
reach every watcher.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from common.aio import wait_until
from common.config import ROLES
from tests.support.cluster import Cluster, Node, cluster, sqlite_properties
from tests.support.k8s_api import K8sApiDouble, backend_properties

pytestmark = pytest.mark.slow

NS = "druid"
RETRY = 0.3
CPFX = "/druid/coordinator/v1"
OPFX = "/druid/indexer/v1"
COORDS = ("coordinator", "coordinator2")
OVERLORDS = ("overlord", "overlord2")


@pytest.fixture
async def k8s() -> AsyncIterator[K8sApiDouble]:
    async with K8sApiDouble(bookmark_interval=0.5) as api:
        yield api


@pytest.fixture
async def c(
    k8s: K8sApiDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    props = {
        **sqlite_properties(tmp_path),
        **backend_properties(str(k8s.write_kubeconfig(tmp_path / "kubeconfig"))),
        "druid.discovery.k8s.leaseDuration": "PT2S",
        "druid.discovery.k8s.renewDeadline": "PT1.2S",
        "druid.discovery.k8s.retryPeriod": f"PT{RETRY}S",
    }
    monkeypatch.setenv("POD_NAMESPACE", NS)
    async with cluster(props) as c:
        yield c


async def start_pod(c: Cluster, k8s: K8sApiDouble, mp: pytest.MonkeyPatch, role: str,
                    name: str | None = None) -> Node:  # fmt: skip
    name = name or role
    key = f"KDRUID_TEST_POD_{name.upper()}"
    mp.setenv(key, f"pod-{name}")
    k8s.add_pod(NS, f"pod-{name}")
    return await c.start(role, name=name, **{"druid.discovery.k8s.podNameEnvKey": key})


async def leaders(c: Cluster, names: tuple[str, ...], prefix: str) -> list[str]:
    result = []
    for name in names:
        if name in c.nodes and (await c.get(name, f"{prefix}/isLeader")).status_code == 200:
            result.append(name)
    return result


def expected(c: Cluster) -> dict[str, list[str]]:
    return {
        role: sorted(n.settings.host_and_port for n in c.nodes.values() if n.role == role)
        for role in ROLES
    }


async def all_see(c: Cluster, want: dict[str, list[str]]) -> bool:
    for name in c.nodes:
        view = (await c.get(name, "/druid-internal/v1/discovery")).json()
        if any(view[r]["nodes"] != want[r] or not view[r]["initialized"] for r in ROLES):
            return False
    return True


async def test_k8s_cluster_discovery_and_leadership(
    c: Cluster, k8s: K8sApiDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    for role in ROLES:
        await start_pod(c, k8s, monkeypatch, role)
    await start_pod(c, k8s, monkeypatch, "coordinator", "coordinator2")
    await start_pod(c, k8s, monkeypatch, "overlord", "overlord2")

    # Each node labelled its own pod with exactly Druid's keys.
    for name, node in c.nodes.items():
        meta = k8s.pod(NS, f"pod-{name}")["metadata"]
        assert set(meta["labels"]) == {
            f"druidDiscoveryAnnouncement-{node.role}",
            "druidDiscoveryAnnouncement-id-hash",
            "druidDiscoveryAnnouncement-cluster-identifier",
        }
        assert set(meta["annotations"]) == {f"druidNodeInfo-{node.role}"}

    await wait_until(lambda: all_see(c, expected(c)), within=15, what="all roles discovered")
    for name in c.nodes:
        assert (await c.get(name, "/status/selfDiscovered")).status_code == 200

    async def one(names: tuple[str, ...], prefix: str) -> bool:
        return len(await leaders(c, names, prefix)) == 1

    await wait_until(lambda: one(COORDS, CPFX), within=10, what="one coordinator leader")
    await wait_until(lambda: one(OVERLORDS, OPFX), within=10, what="one overlord leader")
    lock = k8s.store.get("configmaps", NS, "dc-leaderelection-coordinator")
    record = orjson.loads(
        lock["metadata"]["annotations"]["control-plane.alpha.kubernetes.io/leader"]
    )
    [coord_leader] = await leaders(c, COORDS, CPFX)
    assert record["holderIdentity"] == c.nodes[coord_leader].url

    # Clean stop of the coordinator leader: unannounced everywhere, the other takes over fast.
    stopped = time.monotonic()
    await c.stop(coord_leader)
    await wait_until(lambda: one(COORDS, CPFX), within=RETRY + 1.0, what="coordinator failover")
    assert time.monotonic() - stopped <= RETRY + 1.5
    await wait_until(lambda: all_see(c, expected(c)), within=15, what="stopped node gone")

    # A re-annotated pod: its new node JSON reaches every watcher.
    hist = c.nodes["historical"]
    meta = k8s.pod(NS, "pod-historical")["metadata"]
    node_json = orjson.loads(meta["annotations"]["druidNodeInfo-historical"])
    node_json["services"]["dataNodeService"]["tier"] = "hot"
    patch = {
        "metadata": {"annotations": {"druidNodeInfo-historical": orjson.dumps(node_json).decode()}}
    }
    k8s.store.patch("pods", NS, "pod-historical", "application/merge-patch+json", patch)

    def tier_everywhere() -> bool:
        for node in c.nodes.values():
            found = node.service.provider.get_for_node_role("historical").get_all_nodes()
            tiers = [n.services["dataNodeService"].tier for n in found]  # type: ignore[union-attr]
            if tiers != ["hot"]:
                return False
        return True

    await wait_until(tier_everywhere, within=15, what="new tier seen everywhere")

    # A deleted pod (its process gone without unannouncing) leaves every view.
    k8s.store.delete("pods", NS, "pod-historical")
    want = expected(c)
    want["historical"] = [hp for hp in want["historical"] if hp != hist.settings.host_and_port]
    await wait_until(lambda: all_see(c, want), within=15, what="deleted pod gone everywhere")
