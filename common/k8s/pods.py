"""Druid's pod labels and annotation, as pure functions over plain JSON (no I/O).

* ``announce_patch`` / ``unannounce_patch``: the JSON merge patches of the node's own pod. Druid
  sends a JSON Patch whose ``add`` fails on a pod without labels or annotations; a merge patch
  creates the maps, and ``null`` removes exactly the given keys.
* ``role_selector`` / ``node_selector``: Druid's label selectors.
* ``node_of_pod``: the announced node of a role on a pod, or None (not announced, bad JSON, or
  not Ready when readiness is required).
* ``PodNodeIndex``: which node each pod announces, so that a watch event (a pod whose annotation
  changed, that became unready, or was deleted) becomes the right removals and additions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from common.discovery.node import DiscoveryDruidNode, NodeRole, id_hash
from common.errors import InvalidInput

log = logging.getLogger(__name__)

LABEL_PREFIX = "druidDiscoveryAnnouncement-"
ID_HASH_LABEL = LABEL_PREFIX + "id-hash"
CLUSTER_ID_LABEL = LABEL_PREFIX + "cluster-identifier"
ANNOUNCEMENT_DONE = "true"
ANNOTATION_PREFIX = "druidNodeInfo-"

JSON = dict[str, Any]


def role_label(role: str) -> str:
    return LABEL_PREFIX + role


def node_annotation(role: str) -> str:
    return ANNOTATION_PREFIX + role


def role_selector(cluster_id: str, role: str) -> str:
    """Druid's ``getLabelSelectorForNodeRole``."""
    return f"{CLUSTER_ID_LABEL}={cluster_id},{role_label(role)}={ANNOUNCEMENT_DONE}"


def node_selector(cluster_id: str, role: str, host_and_port: str) -> str:
    """Druid's ``getLabelSelectorForNode``: the role selector plus the id hash."""
    return f"{role_selector(cluster_id, role)},{ID_HASH_LABEL}={id_hash(host_and_port)}"


def announce_patch(node: DiscoveryDruidNode, cluster_id: str) -> JSON:
    return {
        "metadata": {
            "labels": {
                role_label(node.node_role): ANNOUNCEMENT_DONE,
                ID_HASH_LABEL: id_hash(node.host_and_port),
                CLUSTER_ID_LABEL: cluster_id,
            },
            "annotations": {node_annotation(node.node_role): node.to_json()},
        }
    }


def unannounce_patch(role: str, keep_shared: bool = False) -> JSON:
    """Remove the role's label and annotation, and the shared labels unless ``keep_shared``.

    ``keep_shared``: another role of the same process is still announced on this pod, and the
    id-hash and cluster-identifier labels are what makes it discoverable (Druid removes them
    anyway, which hides the other role).
    """
    labels: JSON = {role_label(role): None}
    if not keep_shared:
        labels[ID_HASH_LABEL] = None
        labels[CLUSTER_ID_LABEL] = None
    return {"metadata": {"labels": labels, "annotations": {node_annotation(role): None}}}


def pod_name(pod: JSON) -> str:
    return str(pod.get("metadata", {}).get("name") or "")


def resource_version(obj: JSON) -> str | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return str(rv) if rv else None


def pod_is_ready(pod: JSON) -> bool:
    """All containers Ready: the ``ContainersReady`` condition, else every container status."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "ContainersReady":
            return bool(cond.get("status") == "True")
    statuses = status.get("containerStatuses") or []
    return bool(statuses) and all(s.get("ready") is True for s in statuses)


def node_of_pod(
    pod: JSON, role: NodeRole, require_ready: bool = False
) -> DiscoveryDruidNode | None:
    """The node of ``role`` the pod announces; None, with a warning when it is malformed."""
    meta = pod.get("metadata") or {}
    text = (meta.get("annotations") or {}).get(node_annotation(role))
    name = meta.get("name")
    if text is None:
        log.warning("pod %s is labelled as a %s but has no %s annotation; skipped",
                    name, role, node_annotation(role))  # fmt: skip
        return None
    try:
        node = DiscoveryDruidNode.from_json(text)
    except InvalidInput as exc:
        log.warning("pod %s: bad %s annotation, skipped: %s", name, node_annotation(role), exc)
        return None
    if node.node_role != role:
        log.warning("pod %s: %s annotation holds a %s node; skipped", name, role, node.node_role)
        return None
    if require_ready and not pod_is_ready(pod):
        log.debug("pod %s: %s not Ready yet; not discovered", name, role)
        return None
    return node


@dataclass
class Delta:
    removed: list[str] = field(default_factory=list)  # host:port
    added: list[DiscoveryDruidNode] = field(default_factory=list)


class PodNodeIndex:
    """Pod name -> the host:port it announces for one role, kept in step with a list/watch."""

    def __init__(self, role: NodeRole, require_ready: bool = False) -> None:
        self.role = role
        self.require_ready = require_ready
        self._by_pod: dict[str, str] = {}

    def reset(self, pods: list[JSON]) -> list[DiscoveryDruidNode]:
        """Rebuild from a full LIST; the nodes to hand to ``NodeRoleWatcher.reset_nodes``."""
        self._by_pod = {}
        nodes = []
        for pod in pods:
            node = node_of_pod(pod, self.role, self.require_ready)
            if node is not None:
                self._by_pod[pod_name(pod)] = node.host_and_port
                nodes.append(node)
        return nodes

    def apply(self, event_type: str, pod: JSON) -> Delta:
        """ADDED / MODIFIED / DELETED of one pod -> what the watcher must remove and add."""
        name = pod_name(pod)
        old = self._by_pod.get(name)
        delta = Delta()
        if event_type == "DELETED":
            self._by_pod.pop(name, None)
            if old is not None:
                delta.removed.append(old)
            return delta
        if event_type not in ("ADDED", "MODIFIED"):
            return delta
        node = node_of_pod(pod, self.role, self.require_ready)
        if old is not None and (node is None or node.host_and_port != old):
            delta.removed.append(old)
        if node is None:
            self._by_pod.pop(name, None)
        else:
            self._by_pod[name] = node.host_and_port
            delta.added.append(node)
        return delta
