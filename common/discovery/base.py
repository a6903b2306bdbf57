"""The discovery contracts (Druid's ``DruidNodeAnnouncer``, ``DruidNodeDiscoveryProvider``,
``DruidNodeDiscovery``) and the node cache both backends share.

``NodeRoleWatcher`` is Druid's ``BaseNodeRoleWatcher``: a map host:port -> node, listeners called
in event order, an ``initialized`` signal after the first successful read (or after a timeout,
flagged as timed out). A backend only feeds it: ``reset_nodes`` after a full read (it emits the
difference), ``node_added`` / ``node_removed`` for single events. Unlike Druid, a node re-announced
with different JSON (a MODIFIED pod) is applied: listeners see it removed, then added. A service
view (``ServiceDiscovery``) passes that on only when the node's entry for its own service changed:
a peon re-announced with or without ``dataNodeService`` is not a worker that left and came back.

Listener callbacks are synchronous, must not block, and are never called concurrently.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from common.discovery.node import SERVICE_TO_NODE_ROLES, DiscoveryDruidNode, NodeRole

log = logging.getLogger(__name__)


class NodeListener(Protocol):
    def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None: ...

    def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None: ...

    def node_view_initialized(self, timed_out: bool) -> None: ...


class NodeDiscovery(abc.ABC):
    """The current set of nodes of a role (or offering a service) plus change listeners."""

    @abc.abstractmethod
    def get_all_nodes(self) -> list[DiscoveryDruidNode]: ...

    @abc.abstractmethod
    def register_listener(self, listener: NodeListener) -> None:
        """After initialization, the listener is called at once with the current snapshot."""

    @abc.abstractmethod
    def remove_listener(self, listener: NodeListener) -> None: ...

    @property
    @abc.abstractmethod
    def initialized(self) -> asyncio.Event: ...

    @property
    @abc.abstractmethod
    def timed_out(self) -> bool: ...

    async def wait_initialized(self) -> list[DiscoveryDruidNode]:
        await self.initialized.wait()
        return self.get_all_nodes()


class _Listeners:
    def __init__(self) -> None:
        self.items: list[NodeListener] = []

    def call(self, method: str, *args: object) -> None:
        for listener in list(self.items):
            try:
                getattr(listener, method)(*args)
            except Exception:
                log.exception("discovery listener %r failed in %s", listener, method)


class _NodeView(NodeDiscovery):
    """A node map with listeners and an initialized flag (shared by role and service views)."""

    def __init__(self) -> None:
        self._nodes: dict[str, DiscoveryDruidNode] = {}
        self._listeners = _Listeners()
        self._initialized = asyncio.Event()
        self._timed_out = False

    def get_all_nodes(self) -> list[DiscoveryDruidNode]:
        return list(self._nodes.values())

    def register_listener(self, listener: NodeListener) -> None:
        self._listeners.items.append(listener)
        if self._initialized.is_set():
            if self._nodes:
                _safe(listener.nodes_added, self.get_all_nodes())
            _safe(listener.node_view_initialized, self._timed_out)

    def remove_listener(self, listener: NodeListener) -> None:
        if listener in self._listeners.items:
            self._listeners.items.remove(listener)

    @property
    def initialized(self) -> asyncio.Event:
        return self._initialized

    @property
    def timed_out(self) -> bool:
        return self._timed_out

    def _mark_initialized(self, timed_out: bool) -> None:
        """Set the flag, then give listeners the snapshot and the init call (once)."""
        self._timed_out = timed_out
        self._initialized.set()
        if self._nodes:
            self._listeners.call("nodes_added", self.get_all_nodes())
        self._listeners.call("node_view_initialized", timed_out)


class NodeRoleWatcher(_NodeView):
    """Druid's ``BaseNodeRoleWatcher``: the node cache of one role, fed by a backend."""

    def __init__(self, role: NodeRole) -> None:
        super().__init__()
        self.role = role

    # ---- fed by the backend
    def cache_initialized(self, timed_out: bool = False) -> None:
        if self._initialized.is_set():
            if not timed_out:
                log.debug("%s watcher: initialized again, ignored", self.role)
            return
        self._timed_out = timed_out
        self._initialized.set()
        if timed_out:
            log.warning(
                "%s watcher initialized by timeout, with %d nodes", self.role, len(self._nodes)
            )
        if self._nodes:
            self._listeners.call("nodes_added", self.get_all_nodes())
        self._listeners.call("node_view_initialized", timed_out)

    def node_added(self, node: DiscoveryDruidNode) -> None:
        if node.node_role != self.role:
            log.error("%s watcher: ignoring node of role %s", self.role, node.node_role)
            return
        old = self._nodes.get(node.host_and_port)
        if old is not None and old.same_as(node):
            return
        self._nodes[node.host_and_port] = node
        if self._initialized.is_set():
            if old is not None:
                self._listeners.call("nodes_removed", [old])
            self._listeners.call("nodes_added", [node])

    def node_removed(self, host_and_port: str) -> None:
        old = self._nodes.pop(host_and_port, None)
        if old is not None and self._initialized.is_set():
            self._listeners.call("nodes_removed", [old])

    def reset_nodes(self, nodes: Iterable[DiscoveryDruidNode]) -> None:
        """Replace the cache with a full read, telling listeners only what changed."""
        fresh = {n.host_and_port: n for n in nodes if n.node_role == self.role}
        removed = [
            old
            for key, old in self._nodes.items()
            if key not in fresh or not fresh[key].same_as(old)
        ]
        added = [
            new
            for key, new in fresh.items()
            if key not in self._nodes or not self._nodes[key].same_as(new)
        ]
        self._nodes = fresh
        if self._initialized.is_set():
            if removed:
                self._listeners.call("nodes_removed", removed)
            if added:
                self._listeners.call("nodes_added", added)


def _safe(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except Exception:
        log.exception("discovery listener failed")


class ServiceDiscovery(_NodeView, NodeListener):
    """Nodes offering one service key, over the watchers of the roles that may offer it
    (Druid's ``getForService``); initialized once every watched role is."""

    def __init__(self, service_key: str, watchers: list[NodeRoleWatcher]) -> None:
        super().__init__()
        self.service_key = service_key
        self._watchers = watchers
        self._pending = len(watchers)
        self._any_timed_out = False
        #: Keys whose removal was a re-announcement with this service unchanged: the matching
        #: addition is not passed on either.
        self._kept: set[str] = set()
        for w in watchers:
            w.register_listener(_RoleForwarder(self))

    def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None:
        mine = [n for n in nodes if self.service_key in n.services]
        fresh = []
        for n in mine:
            self._nodes[_key(n)] = n
            if _key(n) in self._kept:
                self._kept.discard(_key(n))
            else:
                fresh.append(n)
        if fresh and self._initialized.is_set():
            self._listeners.call("nodes_added", fresh)

    def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None:
        gone = []
        for n in nodes:
            key = _key(n)
            old = self._nodes.get(key)
            if old is None:
                continue
            if self._reannounced_unchanged(old):
                self._kept.add(key)  # the watcher calls nodes_added with the new node next
                continue
            gone.append(self._nodes.pop(key))
        if gone and self._initialized.is_set():
            self._listeners.call("nodes_removed", gone)

    def _reannounced_unchanged(self, old: DiscoveryDruidNode) -> bool:
        """The role watcher already holds a replacement of ``old`` (it updates its cache before
        telling listeners) with the same node and the same entry for this service."""
        for w in self._watchers:
            if w.role != old.node_role:
                continue
            new = w._nodes.get(old.host_and_port)
            return (
                new is not None
                and new.druid_node == old.druid_node
                and new.services.get(self.service_key) == old.services.get(self.service_key)
            )
        return False

    def node_view_initialized(self, timed_out: bool) -> None:
        self._pending -= 1
        self._any_timed_out = self._any_timed_out or timed_out
        if self._pending == 0:
            self._mark_initialized(self._any_timed_out)


def _key(node: DiscoveryDruidNode) -> str:
    # One process may play several roles on one port; a service view keys by role too.
    return f"{node.node_role}/{node.host_and_port}"


class _RoleForwarder:
    def __init__(self, target: ServiceDiscovery) -> None:
        self._target = target

    def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None:
        self._target.nodes_added(nodes)

    def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None:
        self._target.nodes_removed(nodes)

    def node_view_initialized(self, timed_out: bool) -> None:
        self._target.node_view_initialized(timed_out)


class NodeAnnouncer(abc.ABC):
    """Druid's ``DruidNodeAnnouncer``."""

    @abc.abstractmethod
    async def announce(self, node: DiscoveryDruidNode) -> None: ...

    @abc.abstractmethod
    async def unannounce(self, node: DiscoveryDruidNode) -> None: ...


class NodeDiscoveryProvider(abc.ABC):
    """Druid's ``DruidNodeDiscoveryProvider``: role watchers, service views, self-discovery."""

    def __init__(self) -> None:
        self._watchers: dict[NodeRole, NodeRoleWatcher] = {}
        self._services: dict[str, ServiceDiscovery] = {}

    def get_for_node_role(self, role: NodeRole) -> NodeDiscovery:
        return self._watcher(role)

    def get_for_service(self, service_key: str) -> NodeDiscovery:
        if service_key not in SERVICE_TO_NODE_ROLES:
            raise ValueError(f"Unknown service [{service_key}]")
        if service_key not in self._services:
            roles = SERVICE_TO_NODE_ROLES[service_key]
            self._services[service_key] = ServiceDiscovery(
                service_key, [self._watcher(r) for r in roles]
            )
        return self._services[service_key]

    def _watcher(self, role: NodeRole) -> NodeRoleWatcher:
        if role not in self._watchers:
            watcher = NodeRoleWatcher(role)
            self._watchers[role] = watcher
            self._start_watching(watcher)
        return self._watchers[role]

    @abc.abstractmethod
    def _start_watching(self, watcher: NodeRoleWatcher) -> None:
        """Begin feeding ``watcher`` (a backend starts a list/watch or poll loop here)."""

    @abc.abstractmethod
    async def is_discoverable(self, node: DiscoveryDruidNode) -> bool:
        """Is this exact node visible to others right now (``/status/selfDiscovered``)?"""

    @abc.abstractmethod
    async def close(self) -> None: ...
