"""Running an app under uvicorn: in the foreground (the CLI) or in-process (tests, benchmarks).

Both bind the socket before the app is built, so a node announces the port it really listens on,
even when the OS picked it (port 0), with no window in which another process could take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Literal

import uvicorn
from fastapi import FastAPI

from common.auth.clients import uvicorn_tls_kwargs
from common.config import Settings
from common.httpproto import OneWriteHttpToolsProtocol
from common.server import bind_socket

log = logging.getLogger(__name__)

#: Parked long-poll requests are released when a node stops; anything still open after this long
#: is cut so a stopping node never waits out a multi-minute long-poll hold.
GRACEFUL_SHUTDOWN_SECONDS = 3


def uvicorn_config(
    app: FastAPI, lifespan: Literal["on", "off"] = "on", **kwargs: object
) -> uvicorn.Config:
    """uvicorn's config for a kdruid server: quiet, a short graceful shutdown, and
    ``OneWriteHttpToolsProtocol`` (each response in one write; ``http=`` overrides it)."""
    kwargs.setdefault("http", OneWriteHttpToolsProtocol)
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **kwargs,  # type: ignore[arg-type]
    )


class _NodeServer(uvicorn.Server):
    """uvicorn, telling the node service that shutdown began before draining open requests."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        service = getattr(getattr(app, "state", None), "service", None)
        if service is not None:
            service.begin_shutdown()
        if self.config.is_ssl:
            _drop_idle_connections(self.server_state.connections)
        await super().shutdown(sockets)


def _drop_idle_connections(connections: Iterable[object]) -> None:
    """Drop the idle keep-alive connections of a TLS server at once.

    uvicorn closes an idle connection with ``transport.close()``; over TLS that sends
    close_notify and waits for the peer's, which an idle pooled client connection never reads
    (httpx's TLS runs in memory, only while a request is in flight), so every TLS node waited out
    the whole graceful-shutdown timeout and a leader kept its lease that much longer. Aborting an
    idle connection is what a plaintext close amounts to for the client: its pooled connection
    reads as closed and is not reused. Connections with a request in flight are left to uvicorn.
    """
    for connection in list(connections):
        cycle = getattr(connection, "cycle", None)
        transport = getattr(connection, "transport", None)
        if transport is not None and (cycle is None or cycle.response_complete):
            transport.abort()


class _EmbeddedServer(_NodeServer):
    """A node server that leaves signal handling to the owner of the event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _tls_only(app: FastAPI) -> Settings | None:
    service = getattr(app.state, "service", None)
    settings: Settings | None = getattr(service, "settings", None)
    if settings is not None and settings.tls and not settings.security.tls.enable_plaintext_port:
        return settings
    return None


class RunningServer:
    """An app served by uvicorn inside the current event loop; ``stop()`` shuts it down cleanly.

    A node with ``druid.enableTlsPort=true`` and ``druid.enablePlaintextPort=false`` is served
    over TLS on the socket (its ``druid.tlsPort``).
    """

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        settings = _tls_only(app)
        self.scheme = "https" if settings is not None else "http"
        tls = uvicorn_tls_kwargs(settings.security) if settings is not None else {}
        self.server = _EmbeddedServer(uvicorn_config(app, **tls))
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self.server.serve(sockets=[self.sock]), name=f"uvicorn:{self.port}"
        )
        while not self.server.started:
            if self._task.done():
                await self._task  # re-raise the start-up failure
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self, *, force: bool = False) -> None:
        """Graceful stop (lifespan shutdown runs); ``force`` skips waiting for open requests."""
        if self._task is None:
            return
        self.server.should_exit = True
        if force:
            self.server.force_exit = True
        try:
            await self._task
        finally:
            self._task = None
            self.sock.close()


@contextlib.asynccontextmanager
async def running_node(
    make_app: Callable[[Settings], FastAPI],
    settings_for_port: Callable[[int], Settings],
    host: str = "127.0.0.1",
) -> AsyncIterator[RunningServer]:
    """Bind a free port, build the node's settings and app for it, serve, stop on exit."""
    sock = bind_socket(host, 0)
    port = int(sock.getsockname()[1])
    server = RunningServer(make_app(settings_for_port(port)), sock)
    try:
        await server.start()
    except BaseException:
        sock.close()
        raise
    try:
        yield server
    finally:
        await server.stop()


def bind_address(settings: Settings) -> str:
    """Where a role listens: Druid's ``druid.bindOnHost``: ``druid.host`` if true, else every
    (IPv4) interface."""
    return settings.node.host if settings.node.bind_on_host else "0.0.0.0"


def _bind(bind_host: str, port: int) -> socket.socket:
    try:
        return bind_socket(bind_host, port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {bind_host}:{port}: {exc.strerror}") from None


def serve_forever(app: FastAPI, settings: Settings) -> None:
    """Run one role in the foreground until SIGINT/SIGTERM (the ``kdruid <role>`` command), on
    :func:`bind_address`.

    ``druid.plaintextPort`` unless ``druid.enablePlaintextPort=false``, and ``druid.tlsPort``
    with ``druid.enableTlsPort=true``; with both, one process serves the app on both ports (the
    plaintext server runs the lifespan).
    """
    tls = settings.security.tls
    bind_host = bind_address(settings)
    servers: list[tuple[uvicorn.Server, socket.socket]] = []
    if tls.enable_plaintext_port:
        sock = _bind(bind_host, settings.node.plaintext_port)
        servers.append((_NodeServer(uvicorn_config(app)), sock))
    if tls.enable_tls_port:
        sock = _bind(bind_host, settings.tls_port)
        lifespan: Literal["on", "off"] = "off" if servers else "on"
        config = uvicorn_config(app, lifespan, **uvicorn_tls_kwargs(settings.security))
        servers.append((_NodeServer(config), sock))
    if len(servers) == 1:
        server, sock = servers[0]
        server.run(sockets=[sock])
        if not server.started:
            raise SystemExit(1)
        return

    async def both() -> None:
        await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in servers))

    asyncio.run(both())
