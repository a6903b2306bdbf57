"""Cost of basic security per request: authentication with cached PBKDF2 derivations, the
authorizer, and end to end through a running coordinator (secured vs open route).

    python -m bench.auth
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from common.auth import db
from common.auth.config import parse_security
from common.auth.engine import SecurityEngine
from common.auth.model import Action, Resource, ResourceAction, UserAndRoleMap
from common.auth.passwords import make_credentials
from tests.support.cluster import cluster, sqlite_properties
from tests.support.security import ADMIN, basic_security_properties


def p50_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def engine_figures(n: int = 20_000) -> None:
    props = {
        "druid.auth.authenticatorChain": '["b"]',
        "druid.auth.authenticator.b.type": "basic",
        "druid.auth.authenticator.b.authorizerName": "z",
        "druid.auth.authorizers": '["z"]',
        "druid.auth.authorizer.z.type": "basic",
    }
    maps = db.assign_role(
        db.create_authz_user(db.create_role(UserAndRoleMap(), "r"), "u"), "u", "r"
    )
    ra = ResourceAction(resource=Resource(name="wiki.*", type="DATASOURCE"), action=Action.READ)
    maps = db.set_permissions(maps, "r", [ra])
    users = {"u": db.AuthenticatorUser(name="u", credentials=make_credentials("pw"))}
    snap = db.SecuritySnapshot(authn={"b": users}, authz={"z": maps}, loaded=True)
    engine = SecurityEngine(parse_security(props), lambda: snap)
    headers = {"authorization": "Basic " + base64.b64encode(b"u:pw").decode()}
    t = time.perf_counter()
    engine.authenticate(headers)
    first = time.perf_counter() - t
    auth, authz = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        who = engine.authenticate(headers)
        t1 = time.perf_counter()
        engine.authorize(who, "DATASOURCE", "wikipedia", Action.READ)
        authz.append(time.perf_counter() - t1)
        auth.append(t1 - t0)
    print(f"first authentication (PBKDF2-SHA512, 10000 iterations): {first * 1e3:.1f} ms")
    print(f"authentication, cached derivation: p50 {p50_us(auth):.1f} us")
    print(f"authorization (regex permission):  p50 {p50_us(authz):.1f} us")


async def http_figures(n: int = 2000, path: str = "/druid/coordinator/v1/leader") -> None:
    """GET ``path`` (STATE READ) on two coordinators, allowAll and basic, requests interleaved
    so both see the same machine load."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        secured_props = {**sqlite_properties(Path(b)), **basic_security_properties()}
        async with cluster(sqlite_properties(Path(a))) as c1, cluster(secured_props) as c2:
            plain = await c1.start("coordinator")
            secured = await c2.start("coordinator")
            async with httpx.AsyncClient() as http:
                times: dict[str, list[float]] = {"open": [], "secured": []}
                for i in range(n + 100):
                    for key, url, auth in (
                        ("open", plain.url, None),
                        ("secured", secured.url, ADMIN),
                    ):
                        t = time.perf_counter()
                        r = await http.get(url + path, auth=auth)
                        if i >= 100:
                            times[key].append(time.perf_counter() - t)
                        assert r.status_code in (200, 503), r.text
    o, s_ = p50_us(times["open"]), p50_us(times["secured"])
    print(f"GET {path}, allowAll (Druid's default): p50 {o:.0f} us")
    print(f"GET {path}, basic security as admin:    p50 {s_:.0f} us")
    print(f"added per request (difference of p50s): {s_ - o:.0f} us")


if __name__ == "__main__":
    engine_figures()
    asyncio.run(http_figures())
