"""The inventory wakes its watchers (the coordinator's duty loop) when a data node becomes synced,
even when its first successful sync brings no segment: the TLS + basic-security cluster test
stalled because an empty historical that answered 401 until it had fetched the security maps
became synced silently, after the leader had planned without it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from common.aio import wait_until
from common.auth.clients import InternalClients
from common.discovery.base import NodeRoleWatcher
from common.discovery.node import DataNodeService, DiscoveryDruidNode, DruidNode
from common.serverview.inventory import HttpServerInventoryView


class ScriptedClients(InternalClients):
    """Internal clients answering from ``handler`` instead of the network."""

    def __init__(self, handler: Any) -> None:
        super().__init__()
        self.handler = handler

    def new(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler), **kwargs)


def historical(port: int) -> DiscoveryDruidNode:
    return DiscoveryDruidNode(
        druid_node=DruidNode(service="druid/historical", host="h", plaintext_port=port),
        node_role="historical",
        services={"dataNodeService": DataNodeService(server_type="historical", max_size=10**9)},
        start_time=datetime(2024, 1, 1, tzinfo=UTC),
    )


async def test_an_empty_historical_becoming_synced_after_failures_wakes_the_watchers() -> None:
    answers = 0
    parked = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal answers
        answers += 1
        if answers <= 2:  # not ready yet (e.g. its security maps are not fetched): 401
            return httpx.Response(401, content=b'{"error":"Unauthorized"}')
        if request.url.params["counter"] == "-1":
            snapshot = {
                "resetCounter": False,
                "resetCause": None,
                "counter": {"counter": 0, "hash": 1},
                "requests": [],
            }
            return httpx.Response(200, content=orjson.dumps(snapshot))
        await parked.wait()  # a parked long poll: nothing changes
        return httpx.Response(204)

    watcher = NodeRoleWatcher("historical")
    watcher.cache_initialized()
    view = HttpServerInventoryView(watcher, server_timeout=5, clients=ScriptedClients(handler))
    view.start()
    try:
        # As on a coordinator started before any historical: the view is initialized, empty.
        await asyncio.wait_for(view.initialized.wait(), 5)
        watcher.node_added(historical(8083))
        (server,) = view.servers()
        assert server.syncer is not None
        await wait_until(lambda: answers >= 1, within=5, what="the first attempt")
        view.changed.clear()  # the planner ran and found no synced historical
        await wait_until(lambda: server.synced, within=10, what="the first successful sync")
        assert server.segments == {}
        assert view.changed.is_set()
        view.changed.clear()
        await asyncio.sleep(0.05)
        assert not view.changed.is_set()  # a parked, unchanged poll is no news
    finally:
        parked.set()
        await view.close()
