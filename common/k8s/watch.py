"""Discover nodes by LIST + WATCH of labelled pods (Druid's ``K8sDruidNodeDiscoveryProvider``).

One loop per watched role:

1. LIST pods with the role selector; ``reset_nodes`` with what they announce (the watcher emits
   only the difference); the first successful list initializes the watcher.
2. WATCH from the list's resourceVersion with bookmarks. ADDED, MODIFIED and DELETED are applied
   through ``PodNodeIndex`` (a changed annotation replaces the node, a pod that stops matching
   the selector or stops being Ready is removed); a BOOKMARK only advances the resourceVersion.
3. The server ending the stream (its ``timeoutSeconds``) means: watch again from the last
   resourceVersion. 410 Gone, a broken stream or any error means: LIST again, after a
   full-jitter backoff that resets once events flow. Never a fixed sleep.

A watcher whose first list has not succeeded within ``initialization_timeout`` initializes as
timed out (Druid's ``BaseNodeRoleWatcher``), so a service can start with an empty view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from common.aio import Backoff, TaskGroup, wait_event
from common.discovery.base import NodeDiscoveryProvider, NodeRoleWatcher
from common.discovery.node import DiscoveryDruidNode
from common.k8s.client import K8sApiError, KubeApi, WatchGone
from common.k8s.pods import (
    PodNodeIndex,
    node_of_pod,
    node_selector,
    resource_version,
    role_selector,
)

log = logging.getLogger(__name__)

# A stream that ends sooner than this without one event is treated as a failure, so a server or
# proxy that closes watches at once cannot make the loop spin.
_MIN_QUIET_STREAM = 1.0


class K8sNodeDiscoveryProvider(NodeDiscoveryProvider):
    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        cluster_id: str,
        *,
        require_ready: bool = False,
        initialization_timeout: float = 30.0,
        watch_timeout: int = 300,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        super().__init__()
        self._api = api
        self.namespace = namespace
        self.cluster_id = cluster_id
        self.require_ready = require_ready
        self._init_timeout = initialization_timeout
        self._watch_timeout = watch_timeout
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._tasks = TaskGroup("k8s-discovery")
        self._rng = random.Random()
        self.relists = 0  # how many LISTs after the first, for tests and metrics

    def _start_watching(self, watcher: NodeRoleWatcher) -> None:
        self._tasks.start(self._watch_role(watcher), f"watch-{watcher.role}")
        self._tasks.start(self._init_timeout_for(watcher), f"init-timeout-{watcher.role}")

    async def _init_timeout_for(self, watcher: NodeRoleWatcher) -> None:
        if not await wait_event(watcher.initialized, self._init_timeout):
            watcher.cache_initialized(timed_out=True)

    async def _watch_role(self, watcher: NodeRoleWatcher) -> None:
        role = watcher.role
        selector = role_selector(self.cluster_id, role)
        index = PodNodeIndex(role, self.require_ready)
        backoff = Backoff(base=self._backoff_base, cap=self._backoff_cap, rng=self._rng)
        rv: str | None = None
        listed = False
        while True:
            try:
                if rv is None:
                    pods, rv = await self._api.list_pods(self.namespace, selector)
                    self.relists += int(listed)
                    listed = True
                    watcher.reset_nodes(index.reset(pods))
                    watcher.cache_initialized()
                started = time.monotonic()
                rv, events = await self._follow(watcher, index, selector, rv, backoff)
                if events:
                    continue
                if time.monotonic() - started >= _MIN_QUIET_STREAM:
                    continue
                log.warning("%s watch ended at once without events; backing off", role)
            except WatchGone as exc:
                log.info("%s watch: history gone (%s); listing again", role, exc.reason or exc)
                rv = None
            except K8sApiError as exc:
                log.warning("%s list/watch failed; listing again: %s", role, exc)
                rv = None
            except Exception:
                log.exception("%s list/watch failed; listing again", role)
                rv = None
            delay = backoff.next_delay()
            await asyncio.sleep(self._backoff_cap if delay is None else delay)

    async def _follow(
        self,
        watcher: NodeRoleWatcher,
        index: PodNodeIndex,
        selector: str,
        rv: str,
        backoff: Backoff,
    ) -> tuple[str, int]:
        """Apply one watch stream until the server ends it: the last resourceVersion seen, and
        how many events came (events flowing again reset the backoff)."""
        timeout = int(self._watch_timeout * self._rng.uniform(1.0, 2.0))
        events = 0
        stream = self._api.watch_pods(self.namespace, selector, rv, timeout)
        async with contextlib.aclosing(stream) as watch:
            async for event in watch:
                etype, obj = event.get("type"), event["object"]
                if etype in ("ADDED", "MODIFIED", "DELETED"):
                    delta = index.apply(str(etype), obj)
                    for host_and_port in delta.removed:
                        watcher.node_removed(host_and_port)
                    for node in delta.added:
                        watcher.node_added(node)
                elif etype != "BOOKMARK":
                    log.warning("%s watch: ignoring event of type %r", watcher.role, etype)
                rv = resource_version(obj) or rv
                if not events:
                    backoff.reset()
                events += 1
        return rv, events

    async def is_discoverable(self, node: DiscoveryDruidNode) -> bool:
        selector = node_selector(self.cluster_id, node.node_role, node.host_and_port)
        pods, _ = await self._api.list_pods(self.namespace, selector)
        for pod in pods:
            found = node_of_pod(pod, node.node_role, self.require_ready)
            if found is not None and found.host_and_port == node.host_and_port:
                return True
        return False

    async def close(self) -> None:
        await self._tasks.close()
