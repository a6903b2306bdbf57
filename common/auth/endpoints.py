"""Druid's basic-security API: ``/druid-ext/basic-security/authentication/...`` and
``/druid-ext/basic-security/authorization/...``.

The coordinator serves all of it (edits go to the metadata store, then every node's cache); the
other roles serve ``loadStatus`` only. Every route needs CONFIG ``security`` (READ for GET,
WRITE otherwise) as Druid's ``BasicSecurityResourceFilter``; the cached maps other nodes fetch
need the internal role. Errors are Druid's 400 ``{"error": "..."}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from common.auth import db
from common.auth.declare import INTERNAL, SECURITY
from common.auth.model import ResourceAction, UserAndRoleMap
from common.auth.node import NodeSecurity
from common.auth.notify import CHANGES_PATH
from common.auth.passwords import make_credentials
from common.auth.sync import AUTHN_PREFIX, AUTHZ_PREFIX, StoreSecurity
from common.errors import ServiceUnavailable
from common.longpoll import add_longpoll_route


def load_status_router(security: NodeSecurity) -> APIRouter:
    router = APIRouter(tags=["security"])

    @router.get(f"{AUTHN_PREFIX}/loadStatus", dependencies=[SECURITY])
    async def authn_load_status() -> dict[str, bool]:
        loaded = security.snapshot.loaded
        return {a.name: loaded for a in security.settings.basic_authenticators()}

    @router.get(f"{AUTHZ_PREFIX}/loadStatus", dependencies=[SECURITY])
    async def authz_load_status() -> dict[str, bool]:
        loaded = security.snapshot.loaded
        return {a.name: loaded for a in security.settings.basic_authorizers()}

    return router


def _owner(security: NodeSecurity) -> StoreSecurity:
    if security.store_side is None:
        raise ServiceUnavailable("basic security is not configured on this coordinator")
    return security.store_side


def management_router(security: NodeSecurity) -> APIRouter:
    """The coordinator's full API (plus ``loadStatus``)."""
    router = load_status_router(security)
    settings = security.settings
    add_longpoll_route(
        router,
        CHANGES_PATH,
        security.versions.history,
        security.versions.current,
        name="security_changes",
        dependencies=[INTERNAL],
    )

    def authenticator(name: str) -> str:
        if name not in {a.name for a in settings.basic_authenticators()}:
            raise db.SecurityDbError(f"Basic authenticator with name [{name}] does not exist.")
        return name

    def authorizer(name: str) -> UserAndRoleMap:
        if name not in {a.name for a in settings.basic_authorizers()}:
            raise db.SecurityDbError(f"Basic authorizer with name [{name}] does not exist.")
        return security.snapshot.authz.get(name, UserAndRoleMap())

    # ---- authentication

    @router.post(f"{AUTHN_PREFIX}/refreshAll", dependencies=[SECURITY])
    async def authn_refresh() -> Response:
        await _owner(security).reload()
        return Response(status_code=200)

    @router.get(f"{AUTHN_PREFIX}/db/{{authenticatorName}}/users", dependencies=[SECURITY])
    async def authn_users(authenticatorName: str) -> list[str]:
        return sorted(security.snapshot.authn.get(authenticator(authenticatorName), {}))

    @router.get(
        f"{AUTHN_PREFIX}/db/{{authenticatorName}}/users/{{userName}}", dependencies=[SECURITY]
    )
    async def authn_user(authenticatorName: str, userName: str) -> dict[str, Any]:
        users = security.snapshot.authn.get(authenticator(authenticatorName), {})
        if userName not in users:
            raise db.SecurityDbError(f"User [{userName}] does not exist.")
        return users[userName].model_dump(mode="json")

    @router.post(
        f"{AUTHN_PREFIX}/db/{{authenticatorName}}/users/{{userName}}", dependencies=[SECURITY]
    )
    async def authn_create(authenticatorName: str, userName: str) -> Response:
        name = authenticator(authenticatorName)
        await _owner(security).edit_authn(name, lambda u: db.create_authn_user(u, userName))
        return Response(status_code=200)

    @router.delete(
        f"{AUTHN_PREFIX}/db/{{authenticatorName}}/users/{{userName}}", dependencies=[SECURITY]
    )
    async def authn_delete(authenticatorName: str, userName: str) -> Response:
        name = authenticator(authenticatorName)
        await _owner(security).edit_authn(name, lambda u: db.delete_authn_user(u, userName))
        return Response(status_code=200)

    @router.post(
        f"{AUTHN_PREFIX}/db/{{authenticatorName}}/users/{{userName}}/credentials",
        dependencies=[SECURITY],
    )
    async def authn_credentials(
        authenticatorName: str,
        userName: str,
        update: Annotated[dict[str, Any], Body()],
    ) -> Response:
        name = authenticator(authenticatorName)
        password = update.get("password")
        if not isinstance(password, str) or not password:
            raise db.SecurityDbError("Must provide a password.")
        iterations = settings.authenticators[name].credential_iterations
        creds = make_credentials(password, iterations)
        await _owner(security).edit_authn(name, lambda u: db.set_credentials(u, userName, creds))
        return Response(status_code=200)

    @router.get(
        f"{AUTHN_PREFIX}/db/{{authenticatorName}}/cachedSerializedUserMap", dependencies=[INTERNAL]
    )
    async def authn_cached(authenticatorName: str) -> dict[str, Any]:
        users = security.snapshot.authn.get(authenticator(authenticatorName), {})
        return {k: v.model_dump(mode="json") for k, v in users.items()}

    # ---- authorization

    async def edit(name: str, change: Callable[[UserAndRoleMap], UserAndRoleMap]) -> Response:
        authorizer(name)
        await _owner(security).edit_authz(name, change)
        return Response(status_code=200)

    @router.post(f"{AUTHZ_PREFIX}/refreshAll", dependencies=[SECURITY])
    async def authz_refresh() -> Response:
        await _owner(security).reload()
        return Response(status_code=200)

    @router.get(f"{AUTHZ_PREFIX}/db/{{authorizerName}}/users", dependencies=[SECURITY])
    async def authz_users(authorizerName: str) -> list[str]:
        return sorted(authorizer(authorizerName).userMap)

    @router.get(f"{AUTHZ_PREFIX}/db/{{authorizerName}}/users/{{userName}}", dependencies=[SECURITY])
    async def authz_user(
        authorizerName: str,
        userName: str,
        full: str | None = None,
    ) -> dict[str, Any]:
        m = authorizer(authorizerName)
        user = db.user_of(m, userName)
        if full is None:
            return user.model_dump(mode="json")
        roles = [m.roleMap[r] for r in user.roles if r in m.roleMap]
        return {"name": user.name, "roles": [r.model_dump(mode="json") for r in roles]}

    @router.post(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/users/{{userName}}", dependencies=[SECURITY]
    )
    async def authz_create_user(authorizerName: str, userName: str) -> Response:
        return await edit(authorizerName, lambda m: db.create_authz_user(m, userName))

    @router.delete(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/users/{{userName}}", dependencies=[SECURITY]
    )
    async def authz_delete_user(authorizerName: str, userName: str) -> Response:
        return await edit(authorizerName, lambda m: db.delete_authz_user(m, userName))

    @router.get(f"{AUTHZ_PREFIX}/db/{{authorizerName}}/roles", dependencies=[SECURITY])
    async def authz_roles(authorizerName: str) -> list[str]:
        return sorted(authorizer(authorizerName).roleMap)

    @router.get(f"{AUTHZ_PREFIX}/db/{{authorizerName}}/roles/{{roleName}}", dependencies=[SECURITY])
    async def authz_role(
        authorizerName: str,
        roleName: str,
        full: str | None = None,
    ) -> dict[str, Any]:
        m = authorizer(authorizerName)
        role = db.role_of(m, roleName)
        body = role.model_dump(mode="json")
        if full is not None:
            body["users"] = sorted(u.name for u in m.userMap.values() if roleName in u.roles)
        return body

    @router.post(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/roles/{{roleName}}", dependencies=[SECURITY]
    )
    async def authz_create_role(authorizerName: str, roleName: str) -> Response:
        return await edit(authorizerName, lambda m: db.create_role(m, roleName))

    @router.delete(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/roles/{{roleName}}", dependencies=[SECURITY]
    )
    async def authz_delete_role(authorizerName: str, roleName: str) -> Response:
        return await edit(authorizerName, lambda m: db.delete_role(m, roleName))

    @router.post(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/users/{{userName}}/roles/{{roleName}}",
        dependencies=[SECURITY],
    )
    async def authz_assign(authorizerName: str, userName: str, roleName: str) -> Response:
        return await edit(authorizerName, lambda m: db.assign_role(m, userName, roleName))

    @router.delete(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/users/{{userName}}/roles/{{roleName}}",
        dependencies=[SECURITY],
    )
    async def authz_unassign(authorizerName: str, userName: str, roleName: str) -> Response:
        return await edit(authorizerName, lambda m: db.unassign_role(m, userName, roleName))

    @router.get(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/roles/{{roleName}}/permissions",
        dependencies=[SECURITY],
    )
    async def authz_permissions(authorizerName: str, roleName: str) -> list[dict[str, Any]]:
        role = db.role_of(authorizer(authorizerName), roleName)
        return [p.model_dump(mode="json") for p in role.permissions]

    @router.post(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/roles/{{roleName}}/permissions",
        dependencies=[SECURITY],
    )
    async def authz_set_permissions(
        authorizerName: str,
        roleName: str,
        permissions: Annotated[list[ResourceAction], Body()],
    ) -> Response:
        return await edit(authorizerName, lambda m: db.set_permissions(m, roleName, permissions))

    @router.get(
        f"{AUTHZ_PREFIX}/db/{{authorizerName}}/cachedSerializedUserMap", dependencies=[INTERNAL]
    )
    async def authz_cached(authorizerName: str) -> dict[str, Any]:
        return authorizer(authorizerName).model_dump(mode="json")

    return router
