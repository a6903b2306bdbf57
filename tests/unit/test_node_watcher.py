"""The node cache of a role (NodeRoleWatcher) and the per-service view (ServiceDiscovery)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from common.discovery.base import (
    NodeDiscoveryProvider,
    NodeRoleWatcher,
    ServiceDiscovery,
)
from common.discovery.node import (
    DATA_NODE_SERVICE,
    LOOKUP_NODE_SERVICE,
    WORKER_NODE_SERVICE,
    DataNodeService,
    DiscoveryDruidNode,
    DruidNode,
    DruidService,
    LookupNodeService,
    NodeRole,
    WorkerNodeService,
)

Event = tuple[str, object]


class Recorder:
    """A listener that records every call as (method, sorted host:ports | timed_out)."""

    def __init__(self, events: list[Event] | None = None, name: str = "") -> None:
        self.events: list[Event] = [] if events is None else events
        self.name = name

    def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None:
        self.events.append((self.name + "added", sorted(n.host_and_port for n in nodes)))

    def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None:
        self.events.append((self.name + "removed", sorted(n.host_and_port for n in nodes)))

    def node_view_initialized(self, timed_out: bool) -> None:
        self.events.append((self.name + "initialized", timed_out))


class Exploding:
    def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None:
        raise RuntimeError("boom")

    def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None:
        raise RuntimeError("boom")

    def node_view_initialized(self, timed_out: bool) -> None:
        raise RuntimeError("boom")


def node(
    role: NodeRole,
    host: str,
    port: int = 8083,
    services: dict[str, DruidService] | None = None,
    tier: str | None = None,
) -> DiscoveryDruidNode:
    if services is None:
        services = {}
        if role in ("historical", "peon"):
            server_type = "historical" if role == "historical" else "indexer-executor"
            services[DATA_NODE_SERVICE] = DataNodeService(
                tier=tier or "_default_tier", server_type=server_type
            )
        if role == "peon":
            services[WORKER_NODE_SERVICE] = WorkerNodeService(ip=host, capacity=1)
        if role in ("historical", "broker", "peon"):
            services[LOOKUP_NODE_SERVICE] = LookupNodeService()
    return DiscoveryDruidNode(
        druid_node=DruidNode(service=f"druid/{role}", host=host, plaintext_port=port),
        node_role=role,
        services=services,
        start_time=datetime(2024, 1, 1, tzinfo=UTC),
    )


# ---------------------------------------------------------------------------------------------
# NodeRoleWatcher


def test_listeners_not_called_before_init_then_snapshot_and_initialized() -> None:
    w = NodeRoleWatcher("historical")
    rec = Recorder()
    w.register_listener(rec)
    w.node_added(node("historical", "h1"))
    w.reset_nodes([node("historical", "h1"), node("historical", "h2")])
    w.node_removed("h1:8083")
    w.node_added(node("historical", "h3"))
    assert rec.events == []
    assert not w.initialized.is_set()
    assert sorted(n.host_and_port for n in w.get_all_nodes()) == ["h2:8083", "h3:8083"]

    w.cache_initialized()
    assert rec.events == [("added", ["h2:8083", "h3:8083"]), ("initialized", False)]
    assert w.initialized.is_set()
    assert w.timed_out is False


def test_init_with_no_nodes_calls_only_initialized() -> None:
    w = NodeRoleWatcher("broker")
    rec = Recorder()
    w.register_listener(rec)
    w.reset_nodes([])
    w.cache_initialized()
    assert rec.events == [("initialized", False)]


def test_init_by_timeout_is_flagged_and_later_reads_still_apply() -> None:
    w = NodeRoleWatcher("broker")
    rec = Recorder()
    w.register_listener(rec)
    w.cache_initialized(timed_out=True)
    assert w.timed_out is True
    assert rec.events == [("initialized", True)]
    # The real first read arrives later; initialization is not repeated.
    w.reset_nodes([node("broker", "b1", 8082)])
    w.cache_initialized()
    assert rec.events == [("initialized", True), ("added", ["b1:8082"])]
    assert w.timed_out is True


def test_initialized_only_once() -> None:
    w = NodeRoleWatcher("broker")
    rec = Recorder()
    w.register_listener(rec)
    w.cache_initialized()
    w.cache_initialized()
    w.cache_initialized(timed_out=True)
    assert rec.events == [("initialized", False)]
    assert w.timed_out is False


def test_reset_nodes_emits_only_the_difference() -> None:
    w = NodeRoleWatcher("historical")
    rec = Recorder()
    w.reset_nodes([node("historical", "h1"), node("historical", "h2")])
    w.cache_initialized()
    w.register_listener(rec)
    rec.events.clear()

    w.reset_nodes([node("historical", "h1"), node("historical", "h2")])
    assert rec.events == []

    w.reset_nodes([node("historical", "h2"), node("historical", "h3"), node("historical", "h4")])
    assert rec.events == [("removed", ["h1:8083"]), ("added", ["h3:8083", "h4:8083"])]

    rec.events.clear()
    w.reset_nodes([])
    assert rec.events == [("removed", ["h2:8083", "h3:8083", "h4:8083"])]
    assert w.get_all_nodes() == []


def test_reset_nodes_ignores_other_roles() -> None:
    w = NodeRoleWatcher("historical")
    w.reset_nodes([node("historical", "h1"), node("broker", "b1", 8082)])
    assert [n.host_and_port for n in w.get_all_nodes()] == ["h1:8083"]


def test_changed_node_in_reset_is_removed_then_added() -> None:
    w = NodeRoleWatcher("historical")
    w.reset_nodes([node("historical", "h1", tier="hot"), node("historical", "h2")])
    w.cache_initialized()
    rec = Recorder()
    w.register_listener(rec)
    rec.events.clear()
    w.reset_nodes([node("historical", "h1", tier="cold"), node("historical", "h2")])
    assert rec.events == [("removed", ["h1:8083"]), ("added", ["h1:8083"])]
    (h1,) = [n for n in w.get_all_nodes() if n.host_and_port == "h1:8083"]
    svc = h1.service(DATA_NODE_SERVICE)
    assert isinstance(svc, DataNodeService) and svc.tier == "cold"


def test_changed_node_via_node_added_is_removed_then_added() -> None:
    w = NodeRoleWatcher("historical")
    w.cache_initialized()
    old = node("historical", "h1", tier="hot")
    new = node("historical", "h1", tier="cold")
    w.node_added(old)
    seen: list[tuple[str, list[DiscoveryDruidNode]]] = []

    class Keep:
        def nodes_added(self, nodes: list[DiscoveryDruidNode]) -> None:
            seen.append(("added", nodes))

        def nodes_removed(self, nodes: list[DiscoveryDruidNode]) -> None:
            seen.append(("removed", nodes))

        def node_view_initialized(self, timed_out: bool) -> None:
            pass

    w.register_listener(Keep())
    seen.clear()
    w.node_added(new)
    assert [kind for kind, _ in seen] == ["removed", "added"]
    assert seen[0][1][0].same_as(old)
    assert seen[1][1][0].same_as(new)


def test_same_node_added_again_is_silent() -> None:
    w = NodeRoleWatcher("historical")
    w.cache_initialized()
    rec = Recorder()
    w.register_listener(rec)
    w.node_added(node("historical", "h1"))
    # Same node, only the start time differs: Druid's equality ignores it.
    again = node("historical", "h1").model_copy(
        update={"start_time": datetime(2025, 1, 1, tzinfo=UTC)}
    )
    w.node_added(again)
    assert rec.events == [("initialized", False), ("added", ["h1:8083"])]


def test_node_added_of_wrong_role_is_ignored() -> None:
    w = NodeRoleWatcher("historical")
    w.cache_initialized()
    w.node_added(node("broker", "b1", 8082))
    assert w.get_all_nodes() == []


def test_removing_unknown_node_is_silent() -> None:
    w = NodeRoleWatcher("historical")
    w.cache_initialized()
    rec = Recorder()
    w.register_listener(rec)
    rec.events.clear()
    w.node_removed("nobody:1")
    assert rec.events == []


def test_single_events_after_init() -> None:
    w = NodeRoleWatcher("historical")
    w.cache_initialized()
    rec = Recorder()
    w.register_listener(rec)
    rec.events.clear()
    w.node_added(node("historical", "h1"))
    w.node_removed("h1:8083")
    assert rec.events == [("added", ["h1:8083"]), ("removed", ["h1:8083"])]


def test_register_after_init_gets_snapshot_immediately() -> None:
    w = NodeRoleWatcher("historical")
    w.reset_nodes([node("historical", "h1"), node("historical", "h2")])
    w.cache_initialized(timed_out=True)
    rec = Recorder()
    w.register_listener(rec)
    assert rec.events == [("added", ["h1:8083", "h2:8083"]), ("initialized", True)]


def test_removed_listener_is_not_called() -> None:
    w = NodeRoleWatcher("historical")
    rec = Recorder()
    w.register_listener(rec)
    w.remove_listener(rec)
    w.remove_listener(rec)  # removing twice is harmless
    w.cache_initialized()
    w.node_added(node("historical", "h1"))
    assert rec.events == []


def test_failing_listener_does_not_stop_others() -> None:
    w = NodeRoleWatcher("historical")
    events: list[Event] = []
    first, last = Recorder(events, "a-"), Recorder(events, "c-")
    w.register_listener(first)
    w.register_listener(Exploding())
    w.register_listener(last)
    w.reset_nodes([node("historical", "h1")])
    w.cache_initialized()
    w.node_added(node("historical", "h2"))
    w.node_removed("h1:8083")
    assert events == [
        ("a-added", ["h1:8083"]),
        ("c-added", ["h1:8083"]),
        ("a-initialized", False),
        ("c-initialized", False),
        ("a-added", ["h2:8083"]),
        ("c-added", ["h2:8083"]),
        ("a-removed", ["h1:8083"]),
        ("c-removed", ["h1:8083"]),
    ]
    # Registering a failing listener after init does not raise either.
    w.register_listener(Exploding())


async def test_wait_initialized_returns_snapshot() -> None:
    w = NodeRoleWatcher("historical")
    waiter = asyncio.ensure_future(w.wait_initialized())
    await asyncio.sleep(0)
    assert not waiter.done()
    w.reset_nodes([node("historical", "h1")])
    w.cache_initialized()
    nodes = await asyncio.wait_for(waiter, 1.0)
    assert [n.host_and_port for n in nodes] == ["h1:8083"]


# ---------------------------------------------------------------------------------------------
# ServiceDiscovery


def watchers(*roles: NodeRole) -> dict[str, NodeRoleWatcher]:
    return {r: NodeRoleWatcher(r) for r in roles}


def test_service_view_initializes_only_after_all_roles() -> None:
    ws = watchers("historical", "peon", "broker")
    view = ServiceDiscovery(DATA_NODE_SERVICE, list(ws.values()))
    rec = Recorder()
    view.register_listener(rec)
    ws["historical"].reset_nodes([node("historical", "h1")])
    ws["historical"].cache_initialized()
    ws["peon"].reset_nodes([node("peon", "p1", 8100)])
    ws["peon"].cache_initialized()
    assert rec.events == []
    assert not view.initialized.is_set()
    ws["broker"].cache_initialized()
    assert view.initialized.is_set()
    assert rec.events == [("added", ["h1:8083", "p1:8100"]), ("initialized", False)]


def test_service_view_filters_by_service_key() -> None:
    ws = watchers("historical", "peon", "broker")
    view = ServiceDiscovery(DATA_NODE_SERVICE, list(ws.values()))
    for w in ws.values():
        w.cache_initialized()
    rec = Recorder()
    view.register_listener(rec)
    rec.events.clear()
    ws["broker"].node_added(node("broker", "b1", 8082))  # lookup only: not a data node
    ws["historical"].node_added(node("historical", "h1"))
    ws["peon"].node_added(node("peon", "p1", 8100))
    assert rec.events == [("added", ["h1:8083"]), ("added", ["p1:8100"])]
    assert sorted(n.host_and_port for n in view.get_all_nodes()) == ["h1:8083", "p1:8100"]

    rec.events.clear()
    ws["broker"].node_removed("b1:8082")
    ws["historical"].node_removed("h1:8083")
    assert rec.events == [("removed", ["h1:8083"])]


def test_service_view_follows_a_node_that_stops_offering_the_service() -> None:
    ws = watchers("peon")
    view = ServiceDiscovery(WORKER_NODE_SERVICE, list(ws.values()))
    ws["peon"].reset_nodes([node("peon", "p1", 8100)])
    ws["peon"].cache_initialized()
    rec = Recorder()
    view.register_listener(rec)
    rec.events.clear()
    without_worker = node("peon", "p1", 8100, services={LOOKUP_NODE_SERVICE: LookupNodeService()})
    ws["peon"].reset_nodes([without_worker])
    assert rec.events == [("removed", ["p1:8100"])]
    assert view.get_all_nodes() == []


def test_service_view_timed_out_if_any_role_timed_out() -> None:
    ws = watchers("historical", "peon")
    view = ServiceDiscovery(DATA_NODE_SERVICE, list(ws.values()))
    ws["historical"].cache_initialized(timed_out=True)
    ws["peon"].cache_initialized()
    assert view.initialized.is_set()
    assert view.timed_out is True


def test_service_view_over_already_initialized_watchers() -> None:
    ws = watchers("historical", "peon")
    ws["historical"].reset_nodes([node("historical", "h1")])
    for w in ws.values():
        w.cache_initialized()
    view = ServiceDiscovery(DATA_NODE_SERVICE, list(ws.values()))
    assert view.initialized.is_set()
    rec = Recorder()
    view.register_listener(rec)
    assert rec.events == [("added", ["h1:8083"]), ("initialized", False)]


def test_service_view_failing_listener_does_not_stop_others() -> None:
    ws = watchers("historical")
    view = ServiceDiscovery(DATA_NODE_SERVICE, list(ws.values()))
    rec = Recorder()
    view.register_listener(Exploding())
    view.register_listener(rec)
    ws["historical"].reset_nodes([node("historical", "h1")])
    ws["historical"].cache_initialized()
    ws["historical"].node_added(node("historical", "h2"))
    assert rec.events == [
        ("added", ["h1:8083"]),
        ("initialized", False),
        ("added", ["h2:8083"]),
    ]


# ---------------------------------------------------------------------------------------------
# provider


class FakeProvider(NodeDiscoveryProvider):
    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    def _start_watching(self, watcher: NodeRoleWatcher) -> None:
        self.started.append(watcher.role)

    async def is_discoverable(self, node: DiscoveryDruidNode) -> bool:
        return False

    async def close(self) -> None:
        pass


def test_provider_watches_each_role_once_and_services_over_roles() -> None:
    p = FakeProvider()
    assert p.get_for_node_role("historical") is p.get_for_node_role("historical")
    workers = p.get_for_service(WORKER_NODE_SERVICE)
    assert p.get_for_service(WORKER_NODE_SERVICE) is workers
    assert p.started.count("historical") == 1
    assert "peon" in p.started
    with pytest.raises(ValueError, match="Unknown service"):
        p.get_for_service("fooNodeService")


def test_service_view_ignores_a_reannouncement_that_keeps_its_service() -> None:
    """A peon re-announced with ``dataNodeService`` added or dropped (it does so when its first
    task starts and its last one ends) is still the same worker: the ``workerNodeService`` view
    says nothing, the ``dataNodeService`` view sees it come and go."""
    ws = watchers("peon")
    worker_only = node(
        "peon",
        "p1",
        8100,
        services={WORKER_NODE_SERVICE: WorkerNodeService(ip="p1", capacity=2)},
    )
    with_data = node(
        "peon",
        "p1",
        8100,
        services={
            WORKER_NODE_SERVICE: WorkerNodeService(ip="p1", capacity=2),
            DATA_NODE_SERVICE: DataNodeService(
                tier="_default_tier", server_type="indexer-executor"
            ),
        },
    )
    workers = ServiceDiscovery(WORKER_NODE_SERVICE, list(ws.values()))
    data = ServiceDiscovery(DATA_NODE_SERVICE, list(ws.values()))
    ws["peon"].reset_nodes([worker_only])
    ws["peon"].cache_initialized()
    worker_events: list[Event] = []
    data_events: list[Event] = []
    workers.register_listener(Recorder(worker_events))
    data.register_listener(Recorder(data_events))
    worker_events.clear()
    data_events.clear()

    ws["peon"].node_added(with_data)
    ws["peon"].reset_nodes([worker_only])
    assert worker_events == []
    assert data_events == [("added", ["p1:8100"]), ("removed", ["p1:8100"])]
    assert workers.get_all_nodes() == [worker_only]

    # A changed worker entry (another capacity) is still passed on, as a removal and an addition.
    bigger = node(
        "peon",
        "p1",
        8100,
        services={WORKER_NODE_SERVICE: WorkerNodeService(ip="p1", capacity=4)},
    )
    ws["peon"].node_added(bigger)
    assert worker_events == [("removed", ["p1:8100"]), ("added", ["p1:8100"])]
    # And a real departure too.
    worker_events.clear()
    ws["peon"].node_removed("p1:8100")
    assert worker_events == [("removed", ["p1:8100"])]
    assert workers.get_all_nodes() == []
