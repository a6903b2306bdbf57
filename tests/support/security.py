"""Properties and helpers for nodes running Druid's basic security."""

from __future__ import annotations

import httpx

from common.aio import wait_until

ADMIN_PASSWORD = "admin-pw-1"
INTERNAL_PASSWORD = "internal-pw-1"
AUTHN = "basic"
AUTHZ = "basicz"
ADMIN = ("admin", ADMIN_PASSWORD)
AUTHN_DB = f"/druid-ext/basic-security/authentication/db/{AUTHN}"
AUTHZ_DB = f"/druid-ext/basic-security/authorization/db/{AUTHZ}"


def basic_security_properties(polling_ms: int = 200) -> dict[str, str]:
    return {
        "druid.auth.authenticatorChain": f'["{AUTHN}"]',
        f"druid.auth.authenticator.{AUTHN}.type": "basic",
        f"druid.auth.authenticator.{AUTHN}.initialAdminPassword": ADMIN_PASSWORD,
        f"druid.auth.authenticator.{AUTHN}.initialInternalClientPassword": INTERNAL_PASSWORD,
        f"druid.auth.authenticator.{AUTHN}.authorizerName": AUTHZ,
        "druid.auth.authorizers": f'["{AUTHZ}"]',
        f"druid.auth.authorizer.{AUTHZ}.type": "basic",
        "druid.escalator.type": "basic",
        "druid.escalator.internalClientUsername": "druid_system",
        "druid.escalator.internalClientPassword": INTERNAL_PASSWORD,
        "druid.escalator.authorizerName": AUTHZ,
        "druid.auth.basic.common.pollingPeriod": str(polling_ms),
    }


async def ok(resp: httpx.Response) -> httpx.Response:
    assert resp.status_code == 200, (resp.request.method, resp.request.url, resp.text)
    return resp


async def add_user(
    http: httpx.AsyncClient,
    coordinator: str,
    name: str,
    password: str,
    permissions: list[dict[str, object]],
) -> None:
    """A user with its own role holding exactly ``permissions`` (Druid's API, as admin)."""
    await ok(await http.post(f"{coordinator}{AUTHN_DB}/users/{name}", auth=ADMIN))
    await ok(
        await http.post(
            f"{coordinator}{AUTHN_DB}/users/{name}/credentials",
            json={"password": password},
            auth=ADMIN,
        )
    )
    await ok(await http.post(f"{coordinator}{AUTHZ_DB}/users/{name}", auth=ADMIN))
    role = f"role_{name}"
    await ok(await http.post(f"{coordinator}{AUTHZ_DB}/roles/{role}", auth=ADMIN))
    await ok(
        await http.post(
            f"{coordinator}{AUTHZ_DB}/roles/{role}/permissions", json=permissions, auth=ADMIN
        )
    )
    await ok(await http.post(f"{coordinator}{AUTHZ_DB}/users/{name}/roles/{role}", auth=ADMIN))


async def wait_user_known(http: httpx.AsyncClient, base: str, user: tuple[str, str]) -> None:
    """Until ``base`` (any node) has fetched the user (its cache refreshes by polling)."""

    async def known() -> bool:
        r = await http.get(f"{base}/status/selfDiscovered/status", auth=user)
        return r.status_code != 401

    await wait_until(known, within=15.0, what=f"{user[0]} known at {base}")
