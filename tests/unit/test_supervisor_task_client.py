"""The supervisor's chat client: Druid's retry policy, not-available tasks, and pause's 202 path
(recorded responses through respx; retry waits shortened through ChatSettings)."""

from __future__ import annotations

import httpx
import pytest
import respx

from services.overlord.supervisor.spec import ChatSettings
from services.overlord.supervisor.task_client import (
    TaskChatClient,
    TaskChatError,
    TaskNotAvailable,
)

CHAT = "http://peon:8100/druid/worker/v1/chat/t1"
FAST = ChatSettings(retries=2, http_timeout=1.0, min_wait=0.0, max_wait=0.01)


def client(http: httpx.AsyncClient, where: str | None = "http://peon:8100") -> TaskChatClient:
    return TaskChatClient(http, lambda _tid: where, FAST)


@respx.mock
async def test_retries_5xx_and_connection_errors_then_succeeds() -> None:
    route = respx.get(f"{CHAT}/status").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(200, json="READING"),
        ]
    )
    async with httpx.AsyncClient() as http:
        assert await client(http).status("t1") == "READING"
    assert route.call_count == 3
    assert route.calls[0].request.headers["X-Druid-Task-Id"] == "t1"


@respx.mock
async def test_gives_up_after_chat_retries_plus_one_attempts() -> None:
    route = respx.get(f"{CHAT}/offsets/current").mock(return_value=httpx.Response(500))
    async with httpx.AsyncClient() as http:
        with pytest.raises(TaskChatError):
            await client(http).current_offsets("t1")
    assert route.call_count == FAST.retries + 1


@respx.mock
async def test_4xx_and_no_location_are_not_retried() -> None:
    route = respx.post(f"{CHAT}/pause").mock(return_value=httpx.Response(409, text="not reading"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(TaskChatError) as err:
            await client(http).pause("t1")
        assert err.value.status == 409
        with pytest.raises(TaskNotAvailable):
            await client(http, where=None).status("t1")
    assert route.call_count == 1


@respx.mock
async def test_pause_202_polls_status_then_reads_offsets() -> None:
    respx.post(f"{CHAT}/pause").mock(return_value=httpx.Response(202))
    respx.get(f"{CHAT}/status").mock(
        side_effect=[httpx.Response(200, json="READING"), httpx.Response(200, json="PAUSED")]
    )
    respx.get(f"{CHAT}/offsets/current").mock(return_value=httpx.Response(200, json={"0": 7}))
    end = respx.post(f"{CHAT}/offsets/end").mock(return_value=httpx.Response(200, json={"0": 9}))
    async with httpx.AsyncClient() as http:
        c = client(http)
        assert await c.pause("t1", poll_interval=0.0) == {0: 7}
        await c.set_end_offsets("t1", {0: 9}, finish=True)
    assert end.calls[0].request.url.params["finish"] == "true"
    assert end.calls[0].request.content == b'{"0":9}'
