"""Where a node's security snapshot comes from, and how it stays fresh.

* The coordinator owns the data: it reads ``druid_config`` (Druid's keys
  ``basic_authentication_<authenticator>_users``, ``basic_authorization_<authorizer>_users`` and
  ``_roles``), seeds the initial users and roles, writes every edit with a compare-and-swap and
  re-reads every ``druid.auth.basic.common.pollingPeriod`` (other coordinators' writes).
* Every other role fetches Druid's ``cachedSerializedUserMap`` endpoints from a coordinator with
  the escalator's credentials at start and then every polling period (Druid's
  ``CoordinatorPolling...CacheManager``). A node waits for the first fetch before it serves and
  announces itself (``NodeService._wait_security_loaded``); past that bound every basic login
  fails (401) until a fetch succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter

from common.aio import wait_event
from common.auth.config import SecuritySettings
from common.auth.db import (
    AuthnUsers,
    SecuritySnapshot,
    authn_key,
    authz_roles_key,
    authz_users_key,
    seed_authn,
    seed_authz,
)
from common.auth.model import AuthenticatorUser, AuthorizerRole, AuthorizerUser, UserAndRoleMap
from common.errors import MetadataStoreError, ServiceUnavailable

if TYPE_CHECKING:
    from common.aio import TaskGroup

log = logging.getLogger(__name__)

AUTHN_PREFIX = "/druid-ext/basic-security/authentication"
AUTHZ_PREFIX = "/druid-ext/basic-security/authorization"

_AUTHN_USERS = TypeAdapter(dict[str, AuthenticatorUser])
_AUTHZ_USERS = TypeAdapter(dict[str, AuthorizerUser])
_AUTHZ_ROLES = TypeAdapter(dict[str, AuthorizerRole])

M = TypeVar("M")
CAS_ATTEMPTS = 20


class ConfigStore(Protocol):
    async def get_config(self, name: str) -> bytes | None: ...

    async def compare_and_swap_config(self, name: str, old: bytes | None, new: bytes) -> bool: ...


def _dump(value: object) -> bytes:
    if isinstance(value, dict):
        return orjson.dumps(
            {
                k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
                for k, v in value.items()
            },
            option=orjson.OPT_SORT_KEYS,
        )
    raise TypeError(type(value))


class StoreSecurity:
    """The coordinator's side: the metadata store is the truth, edits go through here."""

    def __init__(
        self,
        settings: SecuritySettings,
        store: ConfigStore,
        publish: Callable[[SecuritySnapshot], None],
    ) -> None:
        self.settings = settings
        self.store = store
        self._publish = publish
        self.snapshot = SecuritySnapshot()

    async def _edit(
        self,
        key: str,
        adapter: TypeAdapter[dict[str, M]],
        edit: Callable[[dict[str, M]], dict[str, M]],
    ) -> None:
        for _ in range(CAS_ATTEMPTS):
            old = await self.store.get_config(key)
            current = adapter.validate_json(old) if old is not None else {}
            new = edit(current)
            if old is not None and new == current:
                return
            try:
                if await self.store.compare_and_swap_config(key, old, _dump(new)):
                    return
            except MetadataStoreError as exc:  # a concurrent first insert
                log.info("security update of %s raced (%s); retrying", key, exc)
        raise ServiceUnavailable(f"could not update {key}: too many concurrent updates")

    async def edit_authn(
        self, authenticator: str, edit: Callable[[AuthnUsers], AuthnUsers]
    ) -> None:
        await self._edit(authn_key(authenticator), _AUTHN_USERS, edit)
        await self.reload()

    async def edit_authz(
        self, authorizer: str, edit: Callable[[UserAndRoleMap], UserAndRoleMap]
    ) -> None:
        """Users and roles live under two keys; the edit's result is written key by key."""
        for _ in range(CAS_ATTEMPTS):
            users_old = await self.store.get_config(authz_users_key(authorizer))
            roles_old = await self.store.get_config(authz_roles_key(authorizer))
            current = UserAndRoleMap(
                userMap=_AUTHZ_USERS.validate_json(users_old) if users_old else {},
                roleMap=_AUTHZ_ROLES.validate_json(roles_old) if roles_old else {},
            )
            new = edit(current)
            ok = True
            if new.roleMap != current.roleMap or roles_old is None:
                ok = await self._cas(authz_roles_key(authorizer), roles_old, _dump(new.roleMap))
            if ok and (new.userMap != current.userMap or users_old is None):
                ok = await self._cas(authz_users_key(authorizer), users_old, _dump(new.userMap))
            if ok:
                await self.reload()
                return
        raise ServiceUnavailable(
            f"could not update authorizer {authorizer}: too many concurrent updates"
        )

    async def _cas(self, key: str, old: bytes | None, new: bytes) -> bool:
        try:
            return await self.store.compare_and_swap_config(key, old, new)
        except MetadataStoreError as exc:
            log.info("security update of %s raced (%s); retrying", key, exc)
            return False

    async def seed(self) -> None:
        settings = self.settings
        for a in settings.basic_authenticators():

            def seed_users(users: AuthnUsers, name: str = a.name) -> AuthnUsers:
                return seed_authn(users, settings, name)

            await self._edit(authn_key(a.name), _AUTHN_USERS, seed_users)
        for z in settings.basic_authorizers():

            def seed_maps(maps: UserAndRoleMap, name: str = z.name) -> UserAndRoleMap:
                return seed_authz(maps, settings, name)

            await self.edit_authz(z.name, seed_maps)
        await self.reload()

    async def reload(self) -> None:
        authn: dict[str, AuthnUsers] = {}
        authz: dict[str, UserAndRoleMap] = {}
        for a in self.settings.basic_authenticators():
            raw = await self.store.get_config(authn_key(a.name))
            authn[a.name] = _AUTHN_USERS.validate_json(raw) if raw else {}
        for z in self.settings.basic_authorizers():
            users = await self.store.get_config(authz_users_key(z.name))
            roles = await self.store.get_config(authz_roles_key(z.name))
            authz[z.name] = UserAndRoleMap(
                userMap=_AUTHZ_USERS.validate_json(users) if users else {},
                roleMap=_AUTHZ_ROLES.validate_json(roles) if roles else {},
            )
        self.snapshot = SecuritySnapshot(authn=authn, authz=authz, loaded=True)
        self._publish(self.snapshot)


async def fetch_from_coordinator(
    settings: SecuritySettings, client: httpx.AsyncClient, base_url: str
) -> SecuritySnapshot:
    """Druid's cached serialized maps of every basic authenticator and authorizer."""
    authn: dict[str, AuthnUsers] = {}
    authz: dict[str, UserAndRoleMap] = {}
    for a in settings.basic_authenticators():
        r = await client.get(f"{base_url}{AUTHN_PREFIX}/db/{a.name}/cachedSerializedUserMap")
        r.raise_for_status()
        authn[a.name] = _AUTHN_USERS.validate_json(r.content)
    for z in settings.basic_authorizers():
        r = await client.get(f"{base_url}{AUTHZ_PREFIX}/db/{z.name}/cachedSerializedUserMap")
        r.raise_for_status()
        authz[z.name] = UserAndRoleMap.model_validate_json(r.content)
    return SecuritySnapshot(authn=authn, authz=authz, loaded=True)


async def poll_forever(
    period: float,
    refresh: Callable[[], Awaitable[None]],
    what: str,
    first_retry: float = 0.5,
    wake: asyncio.Event | None = None,
) -> None:
    """Refresh now, then every ``period`` seconds or as soon as ``wake`` is set; until the
    first success retry quickly (failures before it are expected while the cluster starts)."""
    loaded = False
    failures = 0
    while True:
        if wake is not None:
            wake.clear()
        try:
            await refresh()
            loaded, failures = True, 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            level = logging.WARNING if loaded or failures > 20 else logging.DEBUG
            log.log(level, "refreshing %s failed: %s", what, exc)
        delay = period if loaded else min(first_retry, period)
        if wake is None:
            await asyncio.sleep(delay)
            continue
        await wait_event(wake, delay)


async def from_any_coordinator(
    coordinators: Callable[[], list[str]], fetch: Callable[[str], Awaitable[None]]
) -> None:
    """``fetch(base_url)`` from the first discovered coordinator that answers."""
    urls = coordinators()
    if not urls:
        raise RuntimeError("no coordinator discovered yet")
    last: Exception | None = None
    for url in urls:
        try:
            await fetch(url)
            return
        except Exception as exc:  # try the next coordinator
            last = exc
    raise RuntimeError(f"no coordinator answered: {last}")


def start_coordinator_pull(
    tasks: TaskGroup,
    name: str,
    what: str,
    period: float,
    coordinators: Callable[[], list[str]],
    client: httpx.AsyncClient,
    fetch: Callable[[httpx.AsyncClient, str], Awaitable[None]],
    wake: asyncio.Event | None = None,
) -> None:
    """A node's pull of coordinator-owned state (security data, lookups): ``fetch(client, url)``
    from any coordinator now, then every ``period`` seconds (or when ``wake`` is set), as task
    ``name`` of ``tasks``; ``client`` is closed when the task stops."""

    async def refresh() -> None:
        await from_any_coordinator(coordinators, lambda url: fetch(client, url))

    async def run() -> None:
        try:
            await poll_forever(period, refresh, what, wake=wake)
        finally:
            await client.aclose()

    tasks.start(run(), name=name)
