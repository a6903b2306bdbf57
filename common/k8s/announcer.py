"""Announce a node by labelling and annotating its own pod (Druid's ``K8sDruidNodeAnnouncer``).

One merge patch per role and operation, retried with jittered backoff on transient failures
(no answer, 429, 5xx). An announce that still fails raises; an unannounce that fails is logged,
as in Druid: it runs at shutdown, and a deleted pod leaves discovery anyway.
"""

from __future__ import annotations

import logging

from common.aio import retry
from common.discovery.base import NodeAnnouncer
from common.discovery.node import DiscoveryDruidNode
from common.k8s.client import K8sApiError, KubeApi
from common.k8s.pods import announce_patch, unannounce_patch

log = logging.getLogger(__name__)


class _Transient(Exception):
    def __init__(self, error: K8sApiError) -> None:
        super().__init__(str(error))
        self.error = error


class K8sAnnouncer(NodeAnnouncer):
    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        pod_name: str,
        cluster_id: str,
        *,
        attempts: int = 5,
        backoff_base: float = 0.2,
    ) -> None:
        self._api = api
        self.namespace = namespace
        self.pod_name = pod_name
        self.cluster_id = cluster_id
        self._attempts = attempts
        self._backoff_base = backoff_base
        self._announced: set[str] = set()

    async def _patch(self, patch: dict[str, object], what: str) -> None:
        async def once() -> None:
            try:
                await self._api.patch_pod(self.namespace, self.pod_name, patch)
            except K8sApiError as exc:
                if exc.transient:
                    raise _Transient(exc) from None
                raise

        try:
            await retry(
                once,
                attempts=self._attempts,
                retry_on=(_Transient,),
                base=self._backoff_base,
                what=what,
            )
        except _Transient as exc:
            raise exc.error from None

    async def announce(self, node: DiscoveryDruidNode) -> None:
        what = f"announcing {node.node_role} {node.host_and_port} on pod {self.pod_name}"
        await self._patch(announce_patch(node, self.cluster_id), what)
        self._announced.add(node.node_role)
        log.info("announced %s %s on pod %s/%s",
                 node.node_role, node.host_and_port, self.namespace, self.pod_name)  # fmt: skip

    async def unannounce(self, node: DiscoveryDruidNode) -> None:
        role = node.node_role
        others = self._announced - {role}
        what = f"unannouncing {role} {node.host_and_port} on pod {self.pod_name}"
        try:
            await self._patch(unannounce_patch(role, keep_shared=bool(others)), what)
        except K8sApiError as exc:
            log.warning("%s failed: %s", what, exc)
            return
        self._announced.discard(role)
        log.info("unannounced %s %s", role, node.host_and_port)
