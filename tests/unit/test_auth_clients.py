"""Internal HTTP clients are made in one place (common/auth/clients.py) and carry the escalator."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from common.auth.clients import InternalClients
from common.auth.config import parse_security

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_builds_its_own_httpx_client() -> None:
    offenders = []
    for package in ("common", "services"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "common/auth/clients.py":
                continue
            if re.search(r"(httpx\.AsyncClient|ClientSession)\s*\(", path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


async def test_escalator_credentials_are_sent_and_noop_sends_none() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200)

    basic = parse_security(
        {
            "druid.escalator.type": "basic",
            "druid.escalator.internalClientUsername": "druid_system",
            "druid.escalator.internalClientPassword": "pw",
        }
    )
    for clients in (InternalClients(basic), InternalClients()):
        async with clients.new(transport=httpx.MockTransport(handler)) as http:
            await http.get("http://node:8083/druid-internal/v1/segments")
    assert seen == ["Basic ZHJ1aWRfc3lzdGVtOnB3", None]


async def test_credentials_follow_a_redirect_to_another_port() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.port == 8081:
            return httpx.Response(307, headers={"location": "http://leader:8082/x"})
        return httpx.Response(200)

    settings = parse_security(
        {"druid.escalator.type": "basic", "druid.escalator.internalClientPassword": "pw"}
    )
    async with InternalClients(settings).new(
        transport=httpx.MockTransport(handler), follow_redirects=True
    ) as http:
        assert (await http.get("http://follower:8081/x")).status_code == 200
    assert [auth for _, auth in seen] == ["Basic ZHJ1aWRfc3lzdGVtOnB3"] * 2


async def _recording_server(seen: list[tuple[str, str | None]]) -> Any:
    """A local aiohttp server: /r redirects to /x, everything answers 200; ``seen`` gets each
    request's path and Authorization header."""

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization")))
        if request.path == "/r":
            raise web.HTTPTemporaryRedirect("/x")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner


async def test_session_sends_the_escalator_credentials_and_noop_sends_none() -> None:
    seen: list[tuple[str, str | None]] = []
    runner = await _recording_server(seen)
    port = runner.addresses[0][1]
    basic = parse_security(
        {
            "druid.escalator.type": "basic",
            "druid.escalator.internalClientUsername": "druid_system",
            "druid.escalator.internalClientPassword": "pw",
        }
    )
    try:
        for clients in (InternalClients(basic), InternalClients()):
            async with clients.session() as session:
                async with session.post(f"http://127.0.0.1:{port}/druid/v2", data=b"{}") as r:
                    assert r.status == 200
                # as the scatter-gather asks: a redirect is answered, not followed
                async with session.get(f"http://127.0.0.1:{port}/r", allow_redirects=False) as r:
                    assert r.status == 307
    finally:
        await runner.cleanup()
    assert seen == [
        ("/druid/v2", "Basic ZHJ1aWRfc3lzdGVtOnB3"),
        ("/r", "Basic ZHJ1aWRfc3lzdGVtOnB3"),
        ("/druid/v2", None),
        ("/r", None),
    ]


async def test_session_verifies_with_the_trust_store() -> None:
    plain = InternalClients()
    async with plain.session() as session:
        ctx = session.connector._ssl  # type: ignore[union-attr]
        assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    custom = InternalClients()
    custom.verify = ssl.create_default_context()
    async with custom.session() as session:
        assert session.connector._ssl is custom.verify  # type: ignore[union-attr]
