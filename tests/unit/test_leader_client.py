"""LeaderClient: the leader looked up ahead (``warm``), cached, looked up again after a failure."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from common.discovery.leader_client import LeaderClient
from common.errors import ServiceUnavailable


class Provider:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls

    def get_for_node_role(self, role: Any) -> Any:
        nodes = [SimpleNamespace(url=u) for u in self.urls]
        return SimpleNamespace(get_all_nodes=lambda: nodes)


def client(handler: Any, urls: list[str]) -> LeaderClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return LeaderClient(Provider(urls), "overlord", "/druid/indexer/v1", http)  # type: ignore[arg-type]


async def test_warm_looks_the_leader_up_once() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        if request.url.path.endswith("/leader"):
            return httpx.Response(200, text="http://leader:8090/")
        return httpx.Response(200, json={"result": 1})

    c = client(handler, ["http://follower:8090"])
    await c.warm()
    r = await c.request("POST", "/druid/indexer/v1/action", json={})
    assert r.json() == {"result": 1}
    assert seen == [
        "GET http://follower:8090/druid/indexer/v1/leader",
        "POST http://leader:8090/druid/indexer/v1/action",
    ]
    await c.http.aclose()


async def test_warm_without_a_leader_leaves_the_failure_to_the_first_request() -> None:
    leader: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/leader"):
            return httpx.Response(200, text=leader[0]) if leader else httpx.Response(503)
        return httpx.Response(200, json={"result": 2})

    c = client(handler, ["http://follower:8090"])
    await c.warm()  # no leader yet: not raised
    with pytest.raises(ServiceUnavailable):
        await c.request("POST", "/druid/indexer/v1/action", json={})
    leader.append("http://leader:8090")
    assert (await c.request("POST", "/druid/indexer/v1/action", json={})).json() == {"result": 2}
    await c.http.aclose()
    lone = client(handler, [])
    await lone.warm()  # no node announced at all
    await lone.http.aclose()
