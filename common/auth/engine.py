"""Who is asking (the authenticator chain) and may they (the authorizers), over a snapshot.

Druid's semantics: the chain runs in order; a ``basic`` authenticator with no ``Basic`` header
passes the request on, with a malformed header or wrong credentials answers 401 at once (unless
``skipOnFailure``); ``allowAll`` and ``anonymous`` always authenticate. Nobody authenticated: 401.
The ``basic`` authorizer allows an action when one of the user's roles holds a permission of the
same resource type and action whose name pattern matches the whole resource name.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping

from common.auth.config import ALLOW_ALL, SecuritySettings
from common.auth.db import SecuritySnapshot
from common.auth.model import Action, AuthenticationResult
from common.auth.passwords import CredentialVerifier

log = logging.getLogger(__name__)

ALLOW_ALL_RESULT = AuthenticationResult(ALLOW_ALL, ALLOW_ALL, ALLOW_ALL)


class Unauthenticated(Exception):
    """No authenticator accepted the request (401). The reason is for the log, never the client."""

    def __init__(self, reason: str, user: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user = user


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` -> (user, password); None if not a Basic header.

    Raises ``Unauthenticated`` for a Basic header that does not decode to exactly
    ``user:password`` (Druid splits on ':' and wants two non-empty-trailing parts).
    """
    if header is None or len(header) < 7 or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("undecodable Basic credentials") from None
    parts = decoded.split(":")
    while parts and parts[-1] == "":  # Java's String.split drops trailing empty strings
        parts.pop()
    if len(parts) != 2:
        raise Unauthenticated("malformed Basic credentials")
    return parts[0], parts[1]


class SecurityEngine:
    """The chain and the authorizers of one node, reading the current snapshot on each call."""

    def __init__(
        self,
        settings: SecuritySettings,
        snapshot: Callable[[], SecuritySnapshot],
        on_failure: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.settings = settings
        self._snapshot = snapshot
        self._verifier = CredentialVerifier()
        self._on_failure = on_failure

    # ---- authentication

    def authenticate(self, headers: Mapping[str, str]) -> AuthenticationResult:
        try:
            return self._authenticate(headers.get("authorization"))
        except Unauthenticated as exc:
            log.info("authentication failed (%s) for user %r", exc.reason, exc.user)
            if self._on_failure is not None:
                self._on_failure(exc.reason, exc.user)
            raise

    def _authenticate(self, header: str | None) -> AuthenticationResult:
        creds: tuple[str, str] | None = None
        parsed = False
        for name in self.settings.authenticator_chain:
            cfg = self.settings.authenticators[name]
            if cfg.type == ALLOW_ALL:
                return ALLOW_ALL_RESULT
            if cfg.type == "anonymous":
                return AuthenticationResult(cfg.identity, cfg.authorizer_name, name)
            if not parsed:
                creds, parsed = parse_basic(header), True
            if creds is None:
                continue
            user, password = creds
            if self.check_password(name, user, password):
                return AuthenticationResult(user, cfg.authorizer_name, name)
            if not cfg.skip_on_failure:
                raise Unauthenticated("bad credentials", user)
        raise Unauthenticated(
            "no credentials" if creds is None else "bad credentials", creds[0] if creds else None
        )

    def check_password(self, authenticator: str, user: str, password: str) -> bool:
        users = self._snapshot().authn.get(authenticator, {})
        entry = users.get(user)
        if entry is None or entry.credentials is None:
            return False
        return self._verifier.verify(password, entry.credentials)

    # ---- authorization

    def authorize(
        self, who: AuthenticationResult, resource_type: str, name: str, action: Action
    ) -> bool:
        if who.authorizer_name == ALLOW_ALL:
            return True  # Druid's implicit allowAll authorizer
        authorizer = self.settings.authorizers.get(who.authorizer_name)
        if authorizer is None:
            return False
        if authorizer.type == ALLOW_ALL:
            return True
        maps = self._snapshot().authz.get(authorizer.name)
        if maps is None:
            return False
        user = maps.userMap.get(who.identity)
        if user is None:
            return False
        for role_name in user.roles:
            role = maps.roleMap.get(role_name)
            if role is not None and any(
                p.allows(resource_type, name, action) for p in role.permissions
            ):
                return True
        return False
