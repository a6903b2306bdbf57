"""Run kdruid nodes in the test's event loop: real uvicorn servers on ephemeral ports.

``Cluster`` starts roles by name with shared properties (a metadata store, short discovery
timings), and stops them cleanly (lifespan shutdown: unannounce, release leadership).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from common.config import Settings, load_settings
from common.serve import RunningServer
from common.server import NodeService, bind_socket
from services.cli import app_factory

#: Discovery and election timings short enough for tests, in Druid's ISO 8601 form.
FAST_DISCOVERY = {
    "druid.discovery.metadata.heartbeatPeriod": "PT0.2S",
    "druid.discovery.metadata.nodeTtl": "PT2S",
    "druid.discovery.metadata.pollPeriod": "PT0.1S",
    "druid.discovery.metadata.leaseDuration": "PT3S",
    "druid.discovery.metadata.renewDeadline": "PT2S",
    "druid.discovery.metadata.retryPeriod": "PT0.5S",
    "druid.discovery.initializationTimeout": "PT10S",
}


def sqlite_properties(tmp: Path) -> dict[str, str]:
    return {
        "druid.host": "127.0.0.1",
        "druid.metadata.storage.type": "sqlite",
        "druid.metadata.storage.connector.connectURI": str(tmp / "metadata.db"),
        "druid.storage.storageDirectory": str(tmp / "deep"),
        "druid.indexer.task.baseTaskDir": str(tmp / "task"),
        **FAST_DISCOVERY,
    }


@dataclass
class Node:
    name: str
    role: str
    settings: Settings
    app: FastAPI
    server: RunningServer

    @property
    def url(self) -> str:
        return self.settings.base_url

    @property
    def service(self) -> NodeService:
        service: NodeService = self.app.state.service
        return service


class Cluster:
    def __init__(self, properties: Mapping[str, Any]) -> None:
        self.properties = dict(properties)
        self.nodes: dict[str, Node] = {}
        self.http = httpx.AsyncClient(timeout=10.0)

    async def start(self, role: str, name: str | None = None, **overrides: Any) -> Node:
        name = name or role
        sock = bind_socket("127.0.0.1", 0)
        port = int(sock.getsockname()[1])
        props = {**self.properties, **overrides}
        tls_only = (
            str(props.get("druid.enableTlsPort")).lower() == "true"
            and str(props.get("druid.enablePlaintextPort")).lower() == "false"
        )
        props["druid.tlsPort" if tls_only else "druid.plaintextPort"] = str(port)
        settings = load_settings(role, properties=props, environ={})
        app = app_factory(role)(settings)
        server = RunningServer(app, sock)
        try:
            await server.start()
        except BaseException:
            sock.close()
            raise
        node = Node(name, role, settings, app, server)
        self.nodes[name] = node
        return node

    async def stop(self, name: str) -> None:
        node = self.nodes.pop(name)
        await node.server.stop()

    async def close(self) -> None:
        for name in reversed(list(self.nodes)):
            await self.stop(name)
        await self.http.aclose()

    async def get(self, name: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(self.nodes[name].url + path, **kwargs)


@contextlib.asynccontextmanager
async def cluster(properties: Mapping[str, Any]) -> AsyncIterator[Cluster]:
    c = Cluster(properties)
    try:
        yield c
    finally:
        await c.close()
