"""Internal HTTP clients are made in one place (common/auth/clients.py) and carry the escalator."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from common.auth.clients import InternalClients
from common.auth.config import parse_security

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_builds_its_own_httpx_client() -> None:
    offenders = []
    for package in ("common", "services"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "common/auth/clients.py":
                continue
            if re.search(r"httpx\.AsyncClient\s*\(", path.read_text()):
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
