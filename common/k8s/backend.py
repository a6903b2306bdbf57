"""The ``k8s`` discovery backend: announcer, list/watch discovery and leader locks on one client.

``K8sDiscoveryBackend.create(settings)`` reads the pod's name and namespace from the environment
variables named by ``druid.discovery.k8s.podNameEnvKey`` / ``podNamespaceEnvKey`` (the Downward
API sets them), connects (see ``client.load_configuration``) and wires the pieces together.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from common.config import K8sDiscoverySettings, Settings
from common.discovery.backend import DiscoveryBackend, LeaderRole
from common.discovery.leader import LeaseLock
from common.errors import ConfigError
from common.k8s.announcer import K8sAnnouncer
from common.k8s.client import KubeApi
from common.k8s.locks import ConfigMapLock, K8sLeaseLock, lock_name
from common.k8s.watch import K8sNodeDiscoveryProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodInfo:
    name: str
    namespace: str

    @classmethod
    def from_env(cls, settings: K8sDiscoverySettings, environ: Mapping[str, str]) -> PodInfo:
        """Druid's ``PodInfo``: both variables must be set and non-empty."""
        found = {}
        for what, key in (
            ("podName", settings.pod_name_env_key),
            ("podNamespace", settings.pod_namespace_env_key),
        ):
            value = environ.get(key, "").strip()
            if not value:
                raise ConfigError(
                    f"Failed to find {what}: environment variable {key} is not set (it is named "
                    f"by druid.discovery.k8s.{what}EnvKey; set it from the Downward API, "
                    f"fieldRef metadata.{'name' if what == 'podName' else 'namespace'})"
                )
            found[what] = value
        return cls(found["podName"], found["podNamespace"])


class K8sDiscoveryBackend(DiscoveryBackend):
    def __init__(self, settings: Settings, api: KubeApi, pod: PodInfo) -> None:
        k8s = settings.k8s
        if not k8s.cluster_identifier:
            raise ConfigError("druid.discovery.k8s.clusterIdentifier is required")
        self._settings = k8s
        self.timing = k8s
        self._api = api
        self.pod = pod
        self.cluster_id = k8s.cluster_identifier
        self._announcer = K8sAnnouncer(api, pod.namespace, pod.name, self.cluster_id)
        self.announcer = self._announcer
        self._provider = K8sNodeDiscoveryProvider(
            api,
            pod.namespace,
            self.cluster_id,
            require_ready=k8s.require_ready,
            initialization_timeout=settings.discovery.initialization_timeout,
        )
        self.provider = self._provider

    @classmethod
    async def create(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> K8sDiscoveryBackend:
        """Connect as the pod named by the environment (``environ`` defaults to ``os.environ``)."""
        env = os.environ if environ is None else environ
        pod = PodInfo.from_env(settings.k8s, env)
        api = await KubeApi.connect(settings.k8s.kubeconfig)
        try:
            return cls(settings, api, pod)
        except BaseException:
            await api.close()
            raise

    def lock_namespace(self, role: LeaderRole) -> str:
        s = self._settings
        configured = (
            s.coordinator_leader_election_config_map_namespace
            if role == "coordinator"
            else s.overlord_leader_election_config_map_namespace
        )
        if configured is None:
            log.warning(
                "druid.discovery.k8s.%sLeaderElectionConfigMapNamespace is not set: using the "
                "pod's namespace %s. IF %s pods run in multiple namespaces, then you MUST set it.",
                role,
                self.pod.namespace,
                role,
            )
            return self.pod.namespace
        return configured

    def leader_lock(self, role: LeaderRole) -> LeaseLock:
        name, namespace = lock_name(self.cluster_id, role), self.lock_namespace(role)
        if self._settings.leader_election_lock == "lease":
            return K8sLeaseLock(self._api, namespace, name)
        return ConfigMapLock(self._api, namespace, name)

    async def close(self) -> None:
        await self._provider.close()
        await self._api.close()
