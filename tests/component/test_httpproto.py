"""``OneWriteHttpToolsProtocol`` over real HTTP: the same bytes as uvicorn's own protocol, in fewer
writes, with a streaming head still sent at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from common.aio import wait_until
from common.httpproto import OneWriteHttpToolsProtocol
from common.serve import uvicorn_config


class App:
    """A raw ASGI app whose paths send exactly the messages a test needs."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        path = scope["path"]
        if path == "/echo":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            await start(send, 200, [(b"content-length", b"%d" % len(body))])
            await send({"type": "http.response.body", "body": body})
        elif path == "/plain":
            await start(send, 200, [(b"content-type", b"application/json"), LENGTH_7])
            await send({"type": "http.response.body", "body": b'{"a":1}'})
        elif path == "/empty":
            await start(send, 204, [])
            await send({"type": "http.response.body", "body": b""})
        elif path == "/chunked":  # no content-length: uvicorn uses chunked encoding
            await start(send, 200, [(b"content-type", b"text/plain")])
            await send({"type": "http.response.body", "body": b"ab", "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            await send({"type": "http.response.body", "body": b"cde", "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/late":  # a stream whose first part waits for the test
            await start(send, 200, [(b"content-type", b"text/plain")])
            await self.gate.wait()
            await send({"type": "http.response.body", "body": b"late", "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/close":
            await start(send, 200, [(b"connection", b"close"), LENGTH_7])
            await send({"type": "http.response.body", "body": b"closing"})
        elif path == "/raise-first":
            raise RuntimeError("before the response")
        elif path == "/raise-after-start":
            await start(send, 200, [LENGTH_7])
            raise RuntimeError("after the head")
        elif path == "/too-long":
            await start(send, 200, [(b"content-length", b"2")])
            await send({"type": "http.response.body", "body": b"abc"})
        else:
            await start(send, 404, [(b"content-length", b"0")])
            await send({"type": "http.response.body", "body": b""})


LENGTH_7 = (b"content-length", b"7")


async def start(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


class CountingTransport:
    """The connection's real transport, counting writes."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def counting(base: type[HttpToolsProtocol], writes: list[bytes]) -> type[HttpToolsProtocol]:
    class Counting(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CountingTransport(transport, writes))  # type: ignore[arg-type]

    return Counting


@asynccontextmanager
async def serve(app: Any, http: type[HttpToolsProtocol] | None = None) -> AsyncIterator[int]:
    """``app`` under uvicorn as kdruid configures it (``http`` to override the protocol)."""
    extra = {} if http is None else {"http": http}
    config = uvicorn_config(app, lifespan="off", host="127.0.0.1", port=0, **extra)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="uvicorn")
    await wait_until(lambda: server.started or task.done(), within=10, what="uvicorn to start")
    if task.done():
        task.result()
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def exchange(port: int, data: bytes, responses: int = 1) -> bytes:
    """Send raw bytes, read ``responses`` whole responses (or up to EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        out = b""
        for _ in range(responses):
            one = await read_response(reader)
            if not one:
                break
            out += one
        return out
    finally:
        writer.close()
        await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader, head_method: bool = False) -> bytes:
    """One response's bytes: head, then a content-length or chunked body (or up to EOF)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    if head_method or head.startswith((b"HTTP/1.1 204", b"HTTP/1.1 304")):
        return head
    if length is not None:
        try:
            return head + await reader.readexactly(int(length[1]))
        except asyncio.IncompleteReadError as exc:
            return head + exc.partial
    if re.search(rb"(?im)^transfer-encoding: *chunked", head):
        body = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            body += size_line
            size = int(size_line.strip(), 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                return head + body
    return head + await reader.read()


def normalise(raw: bytes) -> bytes:
    """Without the ``date`` header, which differs from one second to the next."""
    return re.sub(rb"(?im)^date: [^\r]*\r\n", b"", raw)


REQUESTS = {
    "plain": b"GET /plain HTTP/1.1\r\nhost: x\r\n\r\n",
    "empty": b"GET /empty HTTP/1.1\r\nhost: x\r\n\r\n",
    "chunked": b"GET /chunked HTTP/1.1\r\nhost: x\r\n\r\n",
    "head": b"HEAD /plain HTTP/1.1\r\nhost: x\r\n\r\n",
    "head-chunked": b"HEAD /chunked HTTP/1.1\r\nhost: x\r\n\r\n",
    "close": b"GET /close HTTP/1.1\r\nhost: x\r\n\r\n",
    "client-close": b"GET /plain HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "http-1.0": b"GET /plain HTTP/1.0\r\n\r\n",
    "raise-first": b"GET /raise-first HTTP/1.1\r\nhost: x\r\n\r\n",
    "raise-after-start": b"GET /raise-after-start HTTP/1.1\r\nhost: x\r\n\r\n",
    "too-long": b"GET /too-long HTTP/1.1\r\nhost: x\r\n\r\n",
    "post": b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello",
    "100-continue": (
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\nhello"
    ),
    "bad-request": b"GET /plain HTTP/1.1\r\nhost x\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
async def test_same_bytes_as_uvicorn_protocol(name: str) -> None:
    """Every response, errors included, is byte for byte what uvicorn's own protocol sends (and
    on a connection kept alive, the next response too)."""
    app = App()
    answers = []
    for http in (None, HttpToolsProtocol):
        async with serve(app, http) as port:
            answers.append(normalise(await read_all(port, REQUESTS[name])))
    assert answers[0] == answers[1]
    assert answers[0].startswith(b"HTTP/1.1 ")


async def read_all(port: int, data: bytes) -> bytes:
    """Everything the server sends in answer to ``data`` and a closing request after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data + b"GET /close HTTP/1.1\r\nhost: x\r\n\r\n")
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_plain_response_is_one_write() -> None:
    writes: list[bytes] = []
    async with serve(App(), counting(OneWriteHttpToolsProtocol, writes)) as port:
        raw = await exchange(port, REQUESTS["plain"])
        assert raw.endswith(b'\r\n\r\n{"a":1}')
        assert writes == [raw]
        writes.clear()
        raw = await exchange(port, REQUESTS["empty"])
        assert raw.startswith(b"HTTP/1.1 204 No Content\r\n")
        assert writes == [raw]


async def test_uvicorn_protocol_writes_head_and_body_apart() -> None:
    """What the protocol saves: uvicorn's own writes the head and the body separately."""
    writes: list[bytes] = []
    async with serve(App(), counting(HttpToolsProtocol, writes)) as port:
        raw = await exchange(port, REQUESTS["plain"])
    assert len(writes) == 2
    assert b"".join(writes) == raw


async def test_chunked_head_joins_first_part() -> None:
    writes: list[bytes] = []
    async with serve(App(), counting(OneWriteHttpToolsProtocol, writes)) as port:
        raw = await exchange(port, REQUESTS["chunked"])
    assert raw.endswith(b"\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")
    assert writes[0].endswith(b"\r\n\r\n2\r\nab\r\n")
    assert b"".join(writes) == raw


async def test_head_goes_out_at_once_when_the_body_waits() -> None:
    """A streaming response's head is not held until its first part."""
    app = App()
    async with serve(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /late HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"transfer-encoding: chunked" in head
            assert not app.gate.is_set()
            app.gate.set()
            body = await read_response_body(reader)
        finally:
            writer.close()
            await writer.wait_closed()
    assert body == b"4\r\nlate\r\n0\r\n\r\n"


async def read_response_body(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while not body.endswith(b"0\r\n\r\n"):
        body += await asyncio.wait_for(reader.read(100), 10)
    return body


async def test_head_request_sends_its_head() -> None:
    writes: list[bytes] = []
    async with serve(App(), counting(OneWriteHttpToolsProtocol, writes)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(REQUESTS["head"])
            head = await asyncio.wait_for(read_response(reader, head_method=True), 10)
            # Keep-alive: the connection serves the next request.
            writer.write(REQUESTS["plain"])
            plain = await asyncio.wait_for(read_response(reader), 10)
        finally:
            writer.close()
            await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 7\r\n" in head
    assert plain.endswith(b'{"a":1}')
    assert writes == [head, plain]


async def test_keep_alive_and_pipelining() -> None:
    async with serve(App()) as port:
        raw = await exchange(port, REQUESTS["plain"] + REQUESTS["chunked"] + REQUESTS["post"], 3)
    answers = re.split(rb"(?=HTTP/1\.1 )", raw)[1:]
    assert len(answers) == 3
    assert answers[0].endswith(b'{"a":1}')
    assert answers[1].endswith(b"0\r\n\r\n")
    assert answers[2].endswith(b"\r\n\r\nhello")


async def test_error_after_head_closes_after_sending_the_head() -> None:
    async with serve(App()) as port:
        raw = await read_all(port, REQUESTS["raise-after-start"])
    # The head went out, then the connection was closed (the body never came).
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n")


async def test_httpx_client() -> None:
    """An HTTP client library sees ordinary responses on one kept-alive connection."""
    async with (
        serve(App()) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        plain = await client.get("/plain")
        chunked = await client.get("/chunked")
        empty = await client.get("/empty")
        head = await client.head("/plain")
        echo = await client.post("/echo", content=b"x" * 100_000)
    assert (plain.status_code, plain.json()) == (200, {"a": 1})
    assert plain.headers["content-type"] == "application/json"
    assert (chunked.status_code, chunked.content) == (200, b"abcde")
    assert (empty.status_code, empty.content) == (204, b"")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "7")
    assert echo.content == b"x" * 100_000
