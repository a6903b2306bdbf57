"""uvicorn's httptools protocol, writing a response's head and its first body part in one write.

uvicorn writes the status line and headers when the app sends ``http.response.start`` and the
body at ``http.response.body``: two ``transport.write`` calls, so two ``send`` system calls and
two TCP segments for a plain response. On a node answering many small requests at once (a change
delivered to 1,000 parked long polls, docs/long-polling.md) those system calls are most of the
server's CPU. ``OneWriteHttpToolsProtocol`` gives each request's ``RequestResponseCycle`` a
transport that holds the head back until the next write, which it joins: one system call per
plain response. The ASGI spec allows a server to hold the head until the first body message;
this one holds it no longer than the current turn of the event loop (one ``call_soon`` per turn
flushes the heads still held), so a streaming response whose first part comes later still sends
its head at once, and a response that ends with no write after its head (HEAD, an empty body)
sends it at its end. Everything else (chunked encoding, HEAD, 204, keep-alive,
``connection: close``, errors, pipelining, flow control) is uvicorn's own code, unchanged.

``common.serve.uvicorn_config`` makes it the default protocol of every kdruid server.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose responses go out in one write when head and body are ready
    together."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # A new request (not a WebSocket upgrade, which leaves the cycle as it was).
        if cycle is not None and cycle is not before:
            holder = _HeadHoldingTransport(self.transport, cycle, _flusher(self.loop))
            cycle.transport = holder  # type: ignore[assignment]
            cycle.on_response = holder.response_complete


class _Flusher:
    """Writes the heads still held at the end of the loop's turn: one callback per turn for every
    response started in it, not one per response (1,000 of them when a change reaches 1,000
    parked long polls)."""

    __slots__ = ("__weakref__", "_handle", "_held", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._held: list[_HeadHoldingTransport] = []
        self._handle: asyncio.Handle | None = None

    def hold(self, holder: _HeadHoldingTransport) -> None:
        self._held.append(holder)
        if self._handle is None:
            self._handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._handle = None
        held, self._held = self._held, []
        for holder in held:
            if holder._head:  # most have gone out with their body already
                holder.flush()


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


class _HeadHoldingTransport:
    """The transport a ``RequestResponseCycle`` writes through: the first write after the
    response started (its head) is held, and joined to the next write; ``flush`` (end of the
    loop's turn, ``close``, response complete) writes it alone."""

    __slots__ = ("_cycle", "_flusher", "_head", "_on_response", "_transport")

    def __init__(
        self, transport: asyncio.Transport, cycle: RequestResponseCycle, flusher: _Flusher
    ) -> None:
        self._transport = transport
        self._cycle = cycle
        self._flusher = flusher
        #: ``None`` before the head is written, the held head, then ``b""`` once it went out.
        self._head: bytes | None = None
        self._on_response = cycle.on_response

    def write(self, data: bytes) -> None:
        head = self._head
        if head is None:
            if self._cycle.response_started:
                # The status line and headers: ``send`` writes them once, in one piece.
                self._head = data
                self._flusher.hold(self)
                return
            # Before the response (``100 Continue``): as is.
        elif head:
            self._head = b""
            data = head + data
        self._transport.write(data)

    def flush(self) -> None:
        """Write a held head now."""
        head = self._head
        if head:
            self._head = b""
            self._transport.write(head)

    def response_complete(self) -> None:
        """The cycle's ``on_response``: a response may complete with no write after its head
        (HEAD, an empty body), which then goes out before the protocol moves on."""
        if self._head:
            self.flush()
        self._on_response()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
