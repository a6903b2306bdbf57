"""The basic-security database as one immutable snapshot, and the edits Druid's API makes.

Per ``basic`` authenticator: users with their credentials. Per ``basic`` authorizer: users with
their role names, roles with their permissions (Druid's ``UserAndRoleMap``). Edits are pure
functions returning a new map or raising ``SecurityDbError`` (Druid's 400 ``{"error": ...}``);
``common/auth/sync.py`` persists them in ``druid_config`` under Druid's key names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.auth.config import INTERNAL_USER_NAME, SecuritySettings
from common.auth.model import (
    SUPERUSER_PERMISSIONS,
    AuthenticatorUser,
    AuthorizerRole,
    AuthorizerUser,
    Credentials,
    Permission,
    ResourceAction,
    UserAndRoleMap,
)
from common.auth.passwords import make_credentials
from common.errors import InvalidInput

AuthnUsers = dict[str, AuthenticatorUser]


class SecurityDbError(InvalidInput):
    """Druid's ``BasicSecurityDBResourceException``: 400 ``{"error": message}``."""

    error_code = "Invalid input"

    def to_druid_json(self, host: str | None = None) -> dict[str, Any]:
        return {"error": self.message}


def authn_key(authenticator: str) -> str:
    return f"basic_authentication_{authenticator}_users"


def authz_users_key(authorizer: str) -> str:
    return f"basic_authorization_{authorizer}_users"


def authz_roles_key(authorizer: str) -> str:
    return f"basic_authorization_{authorizer}_roles"


@dataclass(frozen=True)
class SecuritySnapshot:
    """What one node knows. ``loaded`` is False until the first load or fetch succeeded."""

    authn: dict[str, AuthnUsers] = field(default_factory=dict)
    authz: dict[str, UserAndRoleMap] = field(default_factory=dict)
    loaded: bool = False


# ---- authenticator edits


def create_authn_user(users: AuthnUsers, name: str) -> AuthnUsers:
    if name in users:
        raise SecurityDbError(f"User [{name}] already exists.")
    return {**users, name: AuthenticatorUser(name=name)}


def delete_authn_user(users: AuthnUsers, name: str) -> AuthnUsers:
    if name not in users:
        raise SecurityDbError(f"User [{name}] does not exist.")
    return {k: v for k, v in users.items() if k != name}


def set_credentials(users: AuthnUsers, name: str, creds: Credentials) -> AuthnUsers:
    if name not in users:
        raise SecurityDbError(f"User [{name}] does not exist.")
    return {**users, name: AuthenticatorUser(name=name, credentials=creds)}


def seed_authn(users: AuthnUsers, settings: SecuritySettings, authenticator: str) -> AuthnUsers:
    """Druid's initial ``admin`` / ``druid_system`` users, when their passwords are configured
    and the users do not exist yet (an existing user's password is never overwritten)."""
    cfg = settings.authenticators[authenticator]
    out = dict(users)
    for user, secret in (
        ("admin", cfg.initial_admin_password),
        (INTERNAL_USER_NAME, cfg.initial_internal_client_password),
    ):
        if secret is not None and user not in out:
            creds = make_credentials(secret.get_secret_value(), cfg.credential_iterations)
            out[user] = AuthenticatorUser(name=user, credentials=creds)
    return out


# ---- authorizer edits


def user_of(m: UserAndRoleMap, name: str) -> AuthorizerUser:
    if name not in m.userMap:
        raise SecurityDbError(f"User [{name}] does not exist.")
    return m.userMap[name]


def role_of(m: UserAndRoleMap, name: str) -> AuthorizerRole:
    if name not in m.roleMap:
        raise SecurityDbError(f"Role [{name}] does not exist.")
    return m.roleMap[name]


def create_authz_user(m: UserAndRoleMap, name: str) -> UserAndRoleMap:
    if name in m.userMap:
        raise SecurityDbError(f"User [{name}] already exists.")
    return UserAndRoleMap(userMap={**m.userMap, name: AuthorizerUser(name=name)}, roleMap=m.roleMap)


def delete_authz_user(m: UserAndRoleMap, name: str) -> UserAndRoleMap:
    user_of(m, name)
    users = {k: v for k, v in m.userMap.items() if k != name}
    return UserAndRoleMap(userMap=users, roleMap=m.roleMap)


def create_role(m: UserAndRoleMap, name: str) -> UserAndRoleMap:
    if name in m.roleMap:
        raise SecurityDbError(f"Role [{name}] already exists.")
    return UserAndRoleMap(userMap=m.userMap, roleMap={**m.roleMap, name: AuthorizerRole(name=name)})


def delete_role(m: UserAndRoleMap, name: str) -> UserAndRoleMap:
    role_of(m, name)
    users = {
        k: AuthorizerUser(name=k, roles=[r for r in u.roles if r != name])
        for k, u in m.userMap.items()
    }
    roles = {k: v for k, v in m.roleMap.items() if k != name}
    return UserAndRoleMap(userMap=users, roleMap=roles)


def assign_role(m: UserAndRoleMap, user: str, role: str) -> UserAndRoleMap:
    u, _ = user_of(m, user), role_of(m, role)
    if role in u.roles:
        raise SecurityDbError(f"User [{user}] already has role [{role}].")
    users = {**m.userMap, user: AuthorizerUser(name=user, roles=[*u.roles, role])}
    return UserAndRoleMap(userMap=users, roleMap=m.roleMap)


def unassign_role(m: UserAndRoleMap, user: str, role: str) -> UserAndRoleMap:
    u, _ = user_of(m, user), role_of(m, role)
    if role not in u.roles:
        raise SecurityDbError(f"User [{user}] does not have role [{role}].")
    users = {**m.userMap, user: AuthorizerUser(name=user, roles=[r for r in u.roles if r != role])}
    return UserAndRoleMap(userMap=users, roleMap=m.roleMap)


def set_permissions(m: UserAndRoleMap, role: str, actions: list[ResourceAction]) -> UserAndRoleMap:
    """Replace the role's permissions (Druid's ``setPermissions``: the list is the new set)."""
    role_of(m, role)
    try:
        perms = [Permission.of(ra) for ra in actions]
    except ValueError as exc:
        raise SecurityDbError(str(exc)) from None
    roles = {**m.roleMap, role: AuthorizerRole(name=role, permissions=perms)}
    return UserAndRoleMap(userMap=m.userMap, roleMap=roles)


def seed_authz(m: UserAndRoleMap, settings: SecuritySettings, authorizer: str) -> UserAndRoleMap:
    """Druid's ``initSuperUsers``: the admin user and role and ``druid_system`` user and role,
    each role with every permission, created when missing."""
    cfg = settings.authorizers[authorizer]
    users, roles = dict(m.userMap), dict(m.roleMap)
    internal = settings.escalator.internal_client_username
    for user, role in ((cfg.initial_admin_user, cfg.initial_admin_role), (internal, internal)):
        if role not in roles:
            roles[role] = AuthorizerRole(name=role, permissions=list(SUPERUSER_PERMISSIONS))
        if user not in users:
            users[user] = AuthorizerUser(name=user, roles=[role])
    return UserAndRoleMap(userMap=users, roleMap=roles)
