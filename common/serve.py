"""Running an app under uvicorn: in the foreground (the CLI) or in-process (tests, benchmarks).

Both bind the socket before the app is built, so a node announces the port it really listens on,
even when the OS picked it (port 0), with no window in which another process could take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Generator

import uvicorn
from fastapi import FastAPI

from common.config import Settings
from common.server import bind_socket

log = logging.getLogger(__name__)

#: Parked long-poll requests are released when a node stops; anything still open after this long
#: is cut so a stopping node never waits out a multi-minute long-poll hold.
GRACEFUL_SHUTDOWN_SECONDS = 3


def uvicorn_config(app: FastAPI, **kwargs: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
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
        await super().shutdown(sockets)


class _EmbeddedServer(_NodeServer):
    """A node server that leaves signal handling to the owner of the event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class RunningServer:
    """An app served by uvicorn inside the current event loop; ``stop()`` shuts it down cleanly."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        self.server = _EmbeddedServer(uvicorn_config(app))
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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


def serve_forever(app: FastAPI, settings: Settings) -> None:
    """Run one role in the foreground until SIGINT/SIGTERM (the ``kdruid <role>`` command)."""
    port = settings.node.plaintext_port
    bind_host = bind_address(settings)
    try:
        sock = bind_socket(bind_host, port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {bind_host}:{port}: {exc.strerror}") from None
    server = _NodeServer(uvicorn_config(app))
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(1)
