"""The k8s backend's announce and list/watch discovery against the API-server double."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from common.aio import wait_until
from common.config import Settings, load_settings
from common.discovery.node import (
    DataNodeService,
    DiscoveryDruidNode,
    DruidNode,
    LookupNodeService,
    NodeRole,
)
from common.errors import ConfigError
from common.k8s.backend import K8sDiscoveryBackend
from common.k8s.client import K8sApiError
from common.k8s.pods import announce_patch, unannounce_patch
from common.k8s.watch import K8sNodeDiscoveryProvider
from tests.support.k8s_api import K8sApiDouble, backend_properties

NS = "druid"
ROLES: tuple[NodeRole, ...] = ("coordinator", "overlord", "broker", "historical", "peon")
ANNOUNCED_LABELS = {
    "druidDiscoveryAnnouncement-id-hash",
    "druidDiscoveryAnnouncement-cluster-identifier",
}


def make_node(role: NodeRole, host: str, port: int = 8080, tier: str = "t1") -> DiscoveryDruidNode:
    services: dict[str, Any] = {"lookupNodeService": LookupNodeService()}
    if role in ("historical", "peon"):
        services["dataNodeService"] = DataNodeService(tier=tier, serverType=role)
    return DiscoveryDruidNode(
        druidNode=DruidNode(service=f"druid/{role}", host=host, plaintextPort=port),
        nodeType=role,
        services=services,
        startTime=datetime(2025, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
async def api() -> AsyncIterator[K8sApiDouble]:
    async with K8sApiDouble(bookmark_interval=0.2) as double:
        yield double


@pytest.fixture
def settings(api: K8sApiDouble, tmp_path: Path) -> Callable[..., Settings]:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")

    def build(**extra: str) -> Settings:
        props = backend_properties(
            kubeconfig, **{"druid.discovery.initializationTimeout": "PT5S", **extra}
        )
        return load_settings("broker", properties=props, environ={})

    return build


@pytest.fixture
async def backends(
    api: K8sApiDouble, settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Any]]:
    opened: list[K8sDiscoveryBackend] = []

    async def open_backend(pod: str, **extra: str) -> K8sDiscoveryBackend:
        env = {"POD_NAME": pod, "POD_NAMESPACE": NS}
        backend = await K8sDiscoveryBackend.create(settings(**extra), environ=env)
        opened.append(backend)
        return backend

    yield open_backend
    for b in opened:
        await b.close()


def hosts(backend: K8sDiscoveryBackend, role: NodeRole) -> set[str]:
    return {n.host_and_port for n in backend.provider.get_for_node_role(role).get_all_nodes()}


async def test_announce_sets_exactly_druids_keys_on_a_bare_pod(
    api: K8sApiDouble, backends: Callable[..., Any]
) -> None:
    api.add_pod(NS, "bare")  # no labels, no annotations: Druid's JSON Patch would fail here
    api.add_pod(NS, "busy", labels={"app": "druid"}, annotations={"keep": "me"})
    for pod, role in (("bare", "historical"), ("busy", "broker")):
        backend = await backends(pod)
        node = make_node(role, "10.1.1.1")
        writes_before = len(api.requests)
        await backend.announcer.announce(node)
        patches = [r for r in api.requests[writes_before:] if r.method == "PATCH"]
        assert len(patches) == 1 and patches[0].content_type == "application/merge-patch+json"
        meta = api.pod(NS, pod)["metadata"]
        role_labels = {k for k in meta["labels"] if k.startswith("druidDiscoveryAnnouncement-")}
        assert role_labels == ANNOUNCED_LABELS | {f"druidDiscoveryAnnouncement-{role}"}
        assert meta["labels"][f"druidDiscoveryAnnouncement-{role}"] == "true"
        assert meta["labels"]["druidDiscoveryAnnouncement-cluster-identifier"] == "dc"
        assert meta["annotations"][f"druidNodeInfo-{role}"] == node.to_json()
        await backend.announcer.unannounce(node)
        after = api.pod(NS, pod)["metadata"]
        assert after.get("labels") in ({}, {"app": "druid"}, None)
        assert after.get("annotations") in ({}, {"keep": "me"}, None)
    assert api.pod(NS, "busy")["metadata"]["labels"] == {"app": "druid"}
    assert api.pod(NS, "busy")["metadata"]["annotations"] == {"keep": "me"}


async def test_announce_retries_transient_failures_and_fails_on_a_missing_pod(
    api: K8sApiDouble, backends: Callable[..., Any]
) -> None:
    api.add_pod(NS, "p")
    backend = await backends("p")
    api.fail_next(2, 503)
    await backend.announcer.announce(make_node("broker", "h"))
    assert "druidNodeInfo-broker" in api.pod(NS, "p")["metadata"]["annotations"]
    ghost = await backends("ghost")
    with pytest.raises(K8sApiError) as err:
        await ghost.announcer.announce(make_node("broker", "g"))
    assert err.value.status == 404
    await ghost.announcer.unannounce(make_node("broker", "g"))  # logged, not raised


async def test_missing_pod_env_stops_start_up(settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match="POD_NAME"):
        await K8sDiscoveryBackend.create(settings(), environ={"POD_NAMESPACE": NS})
    with pytest.raises(ConfigError, match="MY_NS"):
        s = settings(**{"druid.discovery.k8s.podNamespaceEnvKey": "MY_NS"})
        await K8sDiscoveryBackend.create(s, environ={"POD_NAME": "p", "POD_NAMESPACE": NS})


async def test_all_roles_discover_each_other_and_follow_changes(
    api: K8sApiDouble, backends: Callable[..., Any]
) -> None:
    members = {}
    for i, role in enumerate(ROLES):
        api.add_pod(NS, f"pod-{role}")
        members[role] = (await backends(f"pod-{role}"), make_node(role, f"10.0.0.{i}"))
    # One role announced before the watchers start (seen by LIST), the rest after (by WATCH).
    await members["coordinator"][0].announcer.announce(members["coordinator"][1])
    for backend, _ in members.values():
        for role in ROLES:
            await backend.provider.get_for_node_role(role).initialized.wait()
    for backend, node in members.values():
        if node.node_role != "coordinator":
            await backend.announcer.announce(node)

    def everyone_sees(expect: dict[NodeRole, set[str]]) -> bool:
        return all(hosts(b, r) == expect[r] for b, _ in members.values() for r in ROLES)

    truth = {role: {node.host_and_port} for role, (_, node) in members.items()}
    await wait_until(lambda: everyone_sees(truth), within=10, what="all roles discovered")
    # Druid's service view: dataNodeService from historical and peon.
    view = members["broker"][0].provider.get_for_service("dataNodeService")
    await view.initialized.wait()
    assert {n.node_role for n in view.get_all_nodes()} == {"historical", "peon"}
    for backend, node in members.values():
        assert await backend.provider.is_discoverable(node)

    # A re-annotated pod's new JSON reaches watchers (Druid ignores MODIFIED).
    hb, _ = members["historical"]
    moved = make_node("historical", "10.0.0.3", tier="t2")
    await hb.announcer.announce(moved)

    def tier_seen() -> bool:
        return all(
            [n.service("dataNodeService") for n in b.provider.get_for_node_role("historical")
             .get_all_nodes()] == [DataNodeService(tier="t2", serverType="historical")]
            for b, _ in members.values()
        )  # fmt: skip

    await wait_until(tier_seen, within=10, what="re-annotated node")
    # Unannounce and pod deletion both remove the node everywhere.
    await members["broker"][0].announcer.unannounce(members["broker"][1])
    api.store.delete("pods", NS, "pod-peon")
    truth = {**truth, "broker": set(), "peon": set()}
    await wait_until(lambda: everyone_sees(truth), within=10, what="removals")
    assert not await members["broker"][0].provider.is_discoverable(members["broker"][1])


async def watcher_converges(
    api: K8sApiDouble, provider: K8sNodeDiscoveryProvider, role: NodeRole = "broker"
) -> None:
    def truth() -> set[str]:
        items, _ = api.store.list("pods", NS, f"druidDiscoveryAnnouncement-{role}=true")
        return {
            DiscoveryDruidNode.from_json(p["metadata"]["annotations"][f"druidNodeInfo-{role}"])
            .host_and_port for p in items
        }  # fmt: skip

    def seen() -> set[str]:
        return {n.host_and_port for n in provider.get_for_node_role(role).get_all_nodes()}

    try:
        await wait_until(lambda: seen() == truth(), within=15, what="the watcher to converge")
    except TimeoutError:
        raise AssertionError(f"watcher sees {seen()}, the pods say {truth()}") from None


async def stream_flowing(api: K8sApiDouble) -> None:
    """Wait for a watch that has delivered something (so the client's backoff was reset)."""
    sent = len(api.bookmarks_sent)
    await wait_until(lambda: len(api.bookmarks_sent) > sent, within=10, what="a live watch")


async def test_watch_faults_converge(api: K8sApiDouble, backends: Callable[..., Any]) -> None:
    for i in range(4):
        api.add_pod(NS, f"b{i}")
    b0 = await backends("b0")
    provider = b0.provider
    assert isinstance(provider, K8sNodeDiscoveryProvider)
    watcher = provider.get_for_node_role("broker")
    await watcher.initialized.wait()
    assert not watcher.timed_out
    peers = [await backends(f"b{i}") for i in range(4)]
    await peers[0].announcer.announce(make_node("broker", "h0"))
    await watcher_converges(api, provider)

    # A cleanly dropped stream and a broken connection; changes made meanwhile are not lost.
    for abort in (False, True):
        await stream_flowing(api)
        api.drop_watches(abort=abort)
        await peers[1].announcer.announce(make_node("broker", f"h1-{abort}"))
        await watcher_converges(api, provider)

    # 410 Gone: history forgotten while the stream is down -> LIST again, apply the difference.
    def announce_behind_its_back(pod: str, node: DiscoveryDruidNode) -> None:
        patch = announce_patch(node, "dc")
        api.store.patch("pods", NS, pod, "application/merge-patch+json", patch)

    relists = provider.relists
    await stream_flowing(api)
    api.pause()  # the re-watch waits until the history it needs is gone
    api.drop_watches()
    announce_behind_its_back("b2", make_node("broker", "h2"))
    api.store.compact()
    api.resume()
    await watcher_converges(api, provider)
    assert provider.relists > relists

    # Server errors on the re-list: backoff and retry until it works.
    await stream_flowing(api)
    api.pause()
    api.drop_watches()
    announce_behind_its_back("b3", make_node("broker", "h3"))
    api.store.patch("pods", NS, "b0", "application/merge-patch+json", unannounce_patch("broker"))
    api.store.compact()
    api.fail_next(3, 500)
    api.resume()
    await watcher_converges(api, provider)
    assert {n.host_and_port for n in watcher.get_all_nodes()} == {"h1-True:8080", "h2:8080",
                                                                  "h3:8080"}  # fmt: skip


async def test_bookmarks_advance_the_resource_version(
    api: K8sApiDouble, backends: Callable[..., Any]
) -> None:
    api.add_pod(NS, "p")
    backend = await backends("p")
    provider = backend.provider
    assert isinstance(provider, K8sNodeDiscoveryProvider)
    await provider.get_for_node_role("broker").initialized.wait()
    for i in range(5):  # writes the broker watch does not match: only a bookmark carries them
        api.store.create("configmaps", NS, {"metadata": {"name": f"c{i}"}})
    target = api.store.rv
    await stream_flowing(api)
    watches = len([r for r in api.requests if r.query.get("watch")])
    # Once a bookmark at the newest version is on the stream, forget history and drop it.
    await wait_until(lambda: any(rv >= target for rv in api.bookmarks_sent), within=10)
    api.store.compact()
    api.drop_watches()
    await wait_until(
        lambda: len([r for r in api.requests if r.query.get("watch")]) > watches, within=10
    )
    rewatch = [r for r in api.requests if r.query.get("watch")][-1]
    assert int(rewatch.query["resourceVersion"]) >= target
    assert provider.relists == 0  # the bookmark's version was still valid: no re-list


async def test_initialization_times_out_when_the_api_is_down(
    api: K8sApiDouble, backends: Callable[..., Any]
) -> None:
    api.add_pod(NS, "p")
    backend = await backends("p", **{"druid.discovery.initializationTimeout": "PT0.5S"})
    api.pause()
    watcher = backend.provider.get_for_node_role("overlord")
    await wait_until(lambda: watcher.initialized.is_set(), within=5)
    assert watcher.timed_out and watcher.get_all_nodes() == []
    api.resume()


async def test_require_ready(api: K8sApiDouble, backends: Callable[..., Any]) -> None:
    api.add_pod(NS, "h", ready=False)
    backend = await backends("h", **{"druid.discovery.k8s.requireReady": "true"})
    node = make_node("historical", "10.9.9.9")
    await backend.announcer.announce(node)
    watcher = backend.provider.get_for_node_role("historical")
    await watcher.initialized.wait()
    assert watcher.get_all_nodes() == []
    assert not await backend.provider.is_discoverable(node)
    api.set_pod_ready(NS, "h", True)
    await wait_until(lambda: len(watcher.get_all_nodes()) == 1, within=10, what="ready pod")
    assert await backend.provider.is_discoverable(node)
    api.set_pod_ready(NS, "h", False)
    await wait_until(lambda: watcher.get_all_nodes() == [], within=10, what="unready pod gone")
