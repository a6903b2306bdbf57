"""The long-poll endpoint helper over ASGI (no sockets): status codes, bodies and Druid's 400s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from common.aio import wait_until
from common.longpoll import ChangeHistory, add_longpoll_route, parse_query

PATH = "/druid-internal/v1/segments"


@pytest.fixture
def history() -> ChangeHistory[dict[str, str]]:
    return ChangeHistory()


@pytest.fixture
async def client(history: ChangeHistory[dict[str, str]]) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    served = [{"action": "load", "id": "a"}]
    add_longpoll_route(app, PATH, history, lambda: served, host="h1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@pytest.mark.parametrize("query", ["", "?counter=0", "?counter=0&timeout=0", "?timeout=-5"])
async def test_timeout_must_be_positive(client: httpx.AsyncClient, query: str) -> None:
    r = await client.get(PATH + query)
    assert r.status_code == 400
    assert r.json()["errorMessage"] == "timeout must be positive."
    assert r.json()["host"] == "h1"


async def test_non_integer_parameter_is_400(client: httpx.AsyncClient) -> None:
    r = await client.get(PATH, params={"counter": "x", "timeout": "10"})
    assert r.status_code == 400
    assert "counter" in r.json()["errorMessage"]


async def test_negative_counter_gets_full_snapshot(
    client: httpx.AsyncClient, history: ChangeHistory[dict[str, str]]
) -> None:
    history.add([{"action": "load", "id": "a"}])
    r = await client.get(PATH, params={"counter": -1, "timeout": 60000})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    last = history.last_counter
    assert r.json() == {
        "resetCounter": False,
        "resetCause": None,
        "counter": {"counter": last.counter, "hash": last.hash},
        "requests": [{"action": "load", "id": "a"}],
    }


async def test_idle_counter_gets_204_after_timeout(
    client: httpx.AsyncClient, history: ChangeHistory[dict[str, str]]
) -> None:
    origin = history.last_counter
    r = await client.get(PATH, params={"counter": 0, "hash": origin.hash, "timeout": 5})
    assert r.status_code == 204
    assert r.content == b""


async def test_parked_request_answers_on_change(
    client: httpx.AsyncClient, history: ChangeHistory[dict[str, str]]
) -> None:
    pending = asyncio.create_task(
        client.get(PATH, params={"counter": 0, "hash": history.last_counter.hash, "timeout": 60000})
    )
    await wait_until(lambda: history.parked == 1, within=5, what="the request to park")
    history.add([{"action": "drop", "id": "a"}])
    r = await pending
    assert r.status_code == 200
    assert r.json()["requests"] == [{"action": "drop", "id": "a"}]
    assert r.json()["counter"]["counter"] == 1


async def test_reset_is_200_with_cause(client: httpx.AsyncClient) -> None:
    r = await client.get(PATH, params={"counter": 5, "hash": 1, "timeout": 60000})
    assert r.status_code == 200
    assert r.json()["resetCounter"] is True
    assert "> last counter" in r.json()["resetCause"]


async def test_shutdown_answers_503_to_parked_and_new_requests(
    client: httpx.AsyncClient, history: ChangeHistory[dict[str, str]]
) -> None:
    pending = asyncio.create_task(
        client.get(PATH, params={"counter": 0, "hash": history.last_counter.hash, "timeout": 60000})
    )
    await wait_until(lambda: history.parked == 1, within=5, what="the request to park")
    history.close()
    for r in (await pending, await client.get(PATH, params={"counter": -1, "timeout": 1})):
        assert r.status_code == 503
        assert r.json()["errorMessage"] == "Server is shutting down."


def test_parse_query_defaults_like_druid() -> None:
    assert parse_query({"timeout": "100"}) == (0, 0, 100)
    assert parse_query({"counter": "-1", "hash": "", "timeout": "1"}) == (-1, 0, 1)
