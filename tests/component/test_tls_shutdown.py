"""A TLS node stops without waiting out the graceful-shutdown timeout on idle keep-alive
connections: uvicorn's TLS close waits for the client's close_notify, which an idle pooled httpx
connection never sends, so every TLS node used to hold its port (and a leader its lease) for the
whole timeout."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import cluster, sqlite_properties
from tests.support.tls import make_pki, tls_properties


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_a_tls_node_stops_without_waiting_for_idle_clients(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    records = Records()
    uvicorn_log = logging.getLogger("uvicorn.error")
    try:
        async with cluster({**sqlite_properties(tmp_path), **tls_properties(pki)}) as c:
            node = await c.start("coordinator")
            uvicorn_log.addHandler(records)  # after uvicorn configured its loggers
            verify = ssl.create_default_context(cafile=str(pki.ca))
            async with httpx.AsyncClient(verify=verify) as client:
                for _ in range(2):  # one pooled connection, idle and kept alive
                    assert (await client.get(node.url + "/status/health")).status_code == 200
                await c.stop("coordinator")
                # the pooled connection reads as closed: the next request fails to connect
                with pytest.raises(httpx.TransportError):
                    await client.get(node.url + "/status/health")
    finally:
        uvicorn_log.removeHandler(records)
    waited = [m for m in records.messages if "graceful shutdown exceeded" in m]
    assert not waited, records.messages
