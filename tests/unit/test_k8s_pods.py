"""Pure parts of the k8s backend: labels, selectors, patches, pod -> node, the pod index."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from common.discovery.leader import LeaderRecord
from common.discovery.node import DiscoveryDruidNode, DruidNode, LookupNodeService
from common.k8s.locks import lease_spec, lock_name, micro_time, record_of_lease
from common.k8s.pods import (
    PodNodeIndex,
    announce_patch,
    node_of_pod,
    node_selector,
    pod_is_ready,
    role_selector,
    unannounce_patch,
)
from tests.support.k8s_api_store import apply_merge_patch


def node(role: str = "broker", host: str = "10.0.0.1", port: int = 8082) -> DiscoveryDruidNode:
    return DiscoveryDruidNode(
        druidNode=DruidNode(service=f"druid/{role}", host=host, plaintextPort=port),
        nodeType=role,  # type: ignore[arg-type]
        services={"lookupNodeService": LookupNodeService()},
        startTime=datetime(2025, 1, 1, tzinfo=UTC),
    )


def pod(name: str, *nodes: DiscoveryDruidNode, ready: bool | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"metadata": {"name": name, "labels": {}, "annotations": {}}}
    for n in nodes:
        p = apply_merge_patch(p, announce_patch(n, "dc"))
    if ready is not None:
        p["status"] = {"containerStatuses": [{"name": "a", "ready": ready}]}
    return p


def test_selectors_are_druids() -> None:
    assert role_selector("dc", "broker") == (
        "druidDiscoveryAnnouncement-cluster-identifier=dc,druidDiscoveryAnnouncement-broker=true"
    )
    assert node_selector("dc", "broker", "test-host:80").endswith(
        ",druidDiscoveryAnnouncement-id-hash=1429561393"
    )


def test_announce_patch_has_exactly_druids_keys() -> None:
    n = node("middleManager", "test-host", 80)
    patch = announce_patch(n, "dc")
    assert patch == {
        "metadata": {
            "labels": {
                "druidDiscoveryAnnouncement-middleManager": "true",
                "druidDiscoveryAnnouncement-id-hash": "1429561393",
                "druidDiscoveryAnnouncement-cluster-identifier": "dc",
            },
            "annotations": {"druidNodeInfo-middleManager": n.to_json()},
        }
    }
    # Applied to a pod without labels or annotations, and undone leaving other keys alone.
    bare: dict[str, Any] = {"metadata": {"name": "p"}}
    announced = apply_merge_patch(bare, patch)
    assert len(announced["metadata"]["labels"]) == 3
    announced["metadata"]["labels"]["app"] = "druid"
    announced["metadata"]["annotations"]["note"] = "x"
    undone = apply_merge_patch(announced, unannounce_patch("middleManager"))
    assert undone["metadata"] == {
        "name": "p",
        "labels": {"app": "druid"},
        "annotations": {"note": "x"},
    }


def test_unannounce_keeps_shared_labels_while_another_role_is_announced() -> None:
    p = pod("p", node("coordinator", port=8081), node("overlord", port=8081))
    p = apply_merge_patch(p, unannounce_patch("overlord", keep_shared=True))
    assert node_of_pod(p, "coordinator") is not None
    assert "druidDiscoveryAnnouncement-overlord" not in p["metadata"]["labels"]
    assert "druidDiscoveryAnnouncement-id-hash" in p["metadata"]["labels"]


def test_node_of_pod_skips_bad_annotations(caplog: pytest.LogCaptureFixture) -> None:
    n = node()
    assert node_of_pod(pod("ok", n), "broker") == n
    bad = pod("bad", n)
    bad["metadata"]["annotations"]["druidNodeInfo-broker"] = "{not json"
    missing = pod("missing", n)
    del missing["metadata"]["annotations"]["druidNodeInfo-broker"]
    wrong_role = pod("wrong", n)
    wrong_role["metadata"]["annotations"]["druidNodeInfo-historical"] = n.to_json()
    with caplog.at_level(logging.WARNING):
        assert node_of_pod(bad, "broker") is None
        assert node_of_pod(missing, "broker") is None
        assert node_of_pod(wrong_role, "historical") is None
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m.split()[1].rstrip(":") for m in warned] == ["bad", "missing", "wrong"]


def test_readiness() -> None:
    assert pod_is_ready(pod("r", ready=True))
    assert not pod_is_ready(pod("u", ready=False))
    assert not pod_is_ready(pod("none"))
    cond = {"status": {"conditions": [{"type": "ContainersReady", "status": "True"}]}}
    assert pod_is_ready(cond)
    n = node()
    assert node_of_pod(pod("u", n, ready=False), "broker", require_ready=True) is None
    assert node_of_pod(pod("u", n, ready=False), "broker", require_ready=False) == n


def test_pod_index_turns_events_into_removals_and_additions() -> None:
    index = PodNodeIndex("broker", require_ready=True)
    a, b = node(port=1), node(port=2)
    assert index.reset([pod("pa", a, ready=True), pod("pb", b, ready=False)]) == [a]
    delta = index.apply("MODIFIED", pod("pb", b, ready=True))
    assert delta.removed == [] and delta.added == [b]
    moved = node(port=3)  # pa re-announced with another port: the old node goes
    delta = index.apply("MODIFIED", pod("pa", moved, ready=True))
    assert delta.removed == ["10.0.0.1:1"] and delta.added == [moved]
    delta = index.apply("MODIFIED", pod("pa", moved, ready=False))
    assert delta.removed == ["10.0.0.1:3"] and delta.added == []
    assert index.apply("DELETED", pod("pa", moved)).removed == []  # already gone
    assert index.apply("DELETED", pod("pb", b)).removed == ["10.0.0.1:2"]
    assert index.apply("BOOKMARK", {"metadata": {}}).added == []


def test_lease_spec_round_trip() -> None:
    rec = LeaderRecord(
        "http://h:8081", 60, "2025-01-01T00:00:00.123Z", "2025-01-01T00:00:05.456Z", 3
    )
    spec = lease_spec(rec)
    assert spec["renewTime"] == "2025-01-01T00:00:05.456000Z"
    assert spec["leaseTransitions"] == 3
    assert record_of_lease(spec) == rec
    assert record_of_lease({}) is None
    assert micro_time("") is None and micro_time("garbage") is None
    assert lock_name("dc", "overlord") == "dc-leaderelection-overlord"
