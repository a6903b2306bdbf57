"""Druid's resource/action model and the basic-security user and role maps, in Druid's JSON.

A permission is a ``ResourceAction`` whose resource name is a regular expression matched against
the whole name (Java's ``Pattern.matches``), for one resource type and one action.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Action(StrEnum):
    READ = "READ"
    WRITE = "WRITE"


class ResourceType(StrEnum):
    DATASOURCE = "DATASOURCE"
    VIEW = "VIEW"
    CONFIG = "CONFIG"
    STATE = "STATE"
    SYSTEM_TABLE = "SYSTEM_TABLE"
    QUERY_CONTEXT = "QUERY_CONTEXT"
    EXTERNAL = "EXTERNAL"


def action_for_method(method: str) -> Action:
    """Druid's resource filters: GET (and HEAD/OPTIONS) read, everything else writes."""
    return Action.READ if method.upper() in ("GET", "HEAD", "OPTIONS") else Action.WRITE


class Resource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    type: str = Field(min_length=1)

    @field_validator("type")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class ResourceAction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    resource: Resource
    action: Action


class Permission(BaseModel):
    """``BasicAuthorizerPermission``: the action and the compiled pattern's source."""

    model_config = ConfigDict(frozen=True)

    resourceAction: ResourceAction
    resourceNamePattern: str

    @classmethod
    def of(cls, ra: ResourceAction) -> Permission:
        try:
            re.compile(ra.resource.name)
        except re.error as exc:
            raise ValueError(f"invalid resource name pattern {ra.resource.name!r}: {exc}") from None
        return cls(resourceAction=ra, resourceNamePattern=ra.resource.name)

    def allows(self, resource_type: str, name: str, action: Action) -> bool:
        ra = self.resourceAction
        return (
            ra.action == action
            and ra.resource.type == resource_type
            and _pattern(self.resourceNamePattern).fullmatch(name) is not None
        )


@functools.lru_cache(maxsize=4096)
def _pattern(source: str) -> re.Pattern[str]:
    return re.compile(source)


class AuthorizerUser(BaseModel):
    name: str
    roles: list[str] = Field(default_factory=list)


class AuthorizerRole(BaseModel):
    name: str
    permissions: list[Permission] = Field(default_factory=list)


class UserAndRoleMap(BaseModel):
    """What an authorizer knows; Druid's ``UserAndRoleMap`` (the cached serialized map)."""

    userMap: dict[str, AuthorizerUser] = Field(default_factory=dict)
    roleMap: dict[str, AuthorizerRole] = Field(default_factory=dict)


class Credentials(BaseModel):
    """``BasicAuthenticatorCredentials``: base64 salt and hash, and the iteration count."""

    salt: str
    hash: str
    iterations: int


class AuthenticatorUser(BaseModel):
    name: str
    credentials: Credentials | None = None


@dataclass(frozen=True)
class AuthenticationResult:
    """Who made the request, which authorizer decides for them, and which authenticator said so."""

    identity: str
    authorizer_name: str
    authenticated_by: str


#: Every resource type, READ and WRITE, any name: the admin and internal-client roles.
SUPERUSER_PERMISSIONS = [
    Permission.of(ResourceAction(resource=Resource(name=".*", type=t.value), action=a))
    for t in ResourceType
    for a in Action
]
