"""Leader locks on Kubernetes objects: ``LeaseLock`` implementations for ``LeaderSelector``.

* ``ConfigMapLock`` (Druid's, client-java's ``ConfigMapLock``): the record is the JSON annotation
  ``control-plane.alpha.kubernetes.io/leader`` of a ConfigMap; other annotations and data of that
  ConfigMap are kept on every write.
* ``K8sLeaseLock`` (client-go's ``LeaseLock``): the record is the spec of a
  ``coordination.k8s.io/v1`` Lease (``leaseTransitions``; times as MicroTime).

Both: get = read, create = create (409: another candidate created it first), update = replace
carrying the resourceVersion that was read (409: someone else wrote in between).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from common.discovery.leader import LeaderRecord
from common.k8s.client import KubeApi

LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
JSON = dict[str, Any]


def lock_name(cluster_id: str, role: str) -> str:
    """Druid's ``<clusterIdentifier>-leaderelection-<coordinator|overlord>``."""
    return f"{cluster_id}-leaderelection-{role}"


class _CachedObjectLock:
    """Remembers the object last read, so that a replace rewrites it whole (fields kept)."""

    def __init__(self, api: KubeApi, namespace: str, name: str) -> None:
        self._api = api
        self.namespace = namespace
        self.name = name
        self._last: JSON | None = None

    def _base(self, version: str) -> JSON:
        last = self._last
        if last is not None and last.get("metadata", {}).get("resourceVersion") == version:
            return copy.deepcopy(last)
        # Not the object we read: a minimal body still compare-and-swaps on the version.
        return {"metadata": {"name": self.name, "namespace": self.namespace}}

    def _remember(self, obj: JSON | None) -> None:
        self._last = obj


class ConfigMapLock(_CachedObjectLock):
    async def get(self) -> tuple[LeaderRecord | None, str] | None:
        obj = await self._api.read_config_map(self.namespace, self.name)
        self._remember(obj)
        if obj is None:
            return None
        meta = obj.get("metadata") or {}
        record = LeaderRecord.from_json((meta.get("annotations") or {}).get(LEADER_ANNOTATION))
        return record, str(meta.get("resourceVersion") or "")

    async def create(self, record: LeaderRecord) -> bool:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "annotations": {LEADER_ANNOTATION: record.to_json()},
            },
        }
        created = await self._api.create_config_map(self.namespace, body)
        self._remember(created)
        return created is not None

    async def update(self, record: LeaderRecord, version: str) -> bool:
        body = self._base(version)
        meta = body.setdefault("metadata", {})
        meta["resourceVersion"] = version
        annotations = meta.get("annotations") or {}
        annotations[LEADER_ANNOTATION] = record.to_json()
        meta["annotations"] = annotations
        body["apiVersion"], body["kind"] = "v1", "ConfigMap"
        replaced = await self._api.replace_config_map(self.namespace, self.name, body)
        self._remember(replaced)
        return replaced is not None

    def describe(self) -> str:
        return f"configmap {self.namespace}/{self.name}"


def micro_time(stamp: str) -> str | None:
    """A record time (``...T00:00:00.000Z``) as a Kubernetes MicroTime (6 fraction digits)."""
    if not stamp:
        return None
    try:
        ts = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_time(stamp: str | None) -> str:
    """A MicroTime back in the record's millisecond form."""
    if not stamp:
        return ""
    try:
        ts = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def lease_spec(record: LeaderRecord) -> JSON:
    """client-go's ``LeaderElectionRecordToLeaseSpec``."""
    return {
        "holderIdentity": record.holder_identity,
        "leaseDurationSeconds": record.lease_duration_seconds,
        "acquireTime": micro_time(record.acquire_time),
        "renewTime": micro_time(record.renew_time),
        "leaseTransitions": record.leader_transitions,
    }


def record_of_lease(spec: JSON) -> LeaderRecord | None:
    """client-go's ``LeaseSpecToLeaderElectionRecord`` (None for an empty spec)."""
    if not spec:
        return None
    return LeaderRecord(
        holder_identity=str(spec.get("holderIdentity") or ""),
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=record_time(spec.get("acquireTime")),
        renew_time=record_time(spec.get("renewTime")),
        leader_transitions=int(spec.get("leaseTransitions") or 0),
    )


class K8sLeaseLock(_CachedObjectLock):
    async def get(self) -> tuple[LeaderRecord | None, str] | None:
        obj = await self._api.read_lease(self.namespace, self.name)
        self._remember(obj)
        if obj is None:
            return None
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        return record_of_lease(obj.get("spec") or {}), version

    async def create(self, record: LeaderRecord) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": lease_spec(record),
        }
        created = await self._api.create_lease(self.namespace, body)
        self._remember(created)
        return created is not None

    async def update(self, record: LeaderRecord, version: str) -> bool:
        body = self._base(version)
        body.setdefault("metadata", {})["resourceVersion"] = version
        body["spec"] = lease_spec(record)
        body["apiVersion"], body["kind"] = "coordination.k8s.io/v1", "Lease"
        replaced = await self._api.replace_lease(self.namespace, self.name, body)
        self._remember(replaced)
        return replaced is not None

    def describe(self) -> str:
        return f"lease {self.namespace}/{self.name}"
