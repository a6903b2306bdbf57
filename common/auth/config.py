"""Security settings under Druid's keys: ``druid.auth.*``, ``druid.escalator.*`` and TLS.

Druid's keys carry over as they are::

    druid.auth.authenticatorChain=["MyBasicMetadataAuthenticator"]
    druid.auth.authenticator.MyBasicMetadataAuthenticator.type=basic
    druid.auth.authenticator.MyBasicMetadataAuthenticator.initialAdminPassword=...
    druid.auth.authenticator.MyBasicMetadataAuthenticator.initialInternalClientPassword=...
    druid.auth.authenticator.MyBasicMetadataAuthenticator.authorizerName=MyBasicMetadataAuthorizer
    druid.auth.authorizers=["MyBasicMetadataAuthorizer"]
    druid.auth.authorizer.MyBasicMetadataAuthorizer.type=basic
    druid.escalator.type=basic
    druid.escalator.internalClientUsername=druid_system
    druid.escalator.internalClientPassword=...
    druid.escalator.authorizerName=MyBasicMetadataAuthorizer

The default is Druid's: an ``allowAll`` chain and authorizer, no escalator (``noop``).
Passwords take Druid's ``PasswordProvider`` forms (see ``passwords.resolve_password``) and are
held as ``SecretStr`` so no repr or log line shows them. This module imports nothing of
``common.config`` (which imports it); errors are ``ValueError`` naming the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from common.auth.passwords import DEFAULT_KEY_ITERATIONS, resolve_password

ALLOW_ALL = "allowAll"
ADMIN_NAME = "admin"
INTERNAL_USER_NAME = "druid_system"

#: Whole keys (not under a prefix below) that belong to this module.
_TLS_KEYS = ("druid.enablePlaintextPort", "druid.enableTlsPort", "druid.tlsPort")
_PREFIXES = (
    "druid.auth.",
    "druid.escalator.",
    "druid.server.https.",
    "druid.client.https.",
)


def owns(key: str) -> bool:
    return key in _TLS_KEYS or key.startswith(_PREFIXES)


class AuthenticatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    authorizer_name: str = ALLOW_ALL
    initial_admin_password: SecretStr | None = None
    initial_internal_client_password: SecretStr | None = None
    credential_iterations: int = DEFAULT_KEY_ITERATIONS
    skip_on_failure: bool = False
    identity: str = "defaultUser"  # anonymous


class AuthorizerConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    initial_admin_user: str = ADMIN_NAME
    initial_admin_role: str = ADMIN_NAME


class EscalatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str = "noop"
    internal_client_username: str = INTERNAL_USER_NAME
    internal_client_password: SecretStr | None = None
    authorizer_name: str = ALLOW_ALL


class TlsConfig(BaseModel):
    """``druid.server.https.*`` and ``druid.client.https.*`` with PEM files.

    Druid reads Java keystores; here ``keyStorePath`` is a PEM file with the certificate chain
    (``certPath`` may name it separately) and ``keyPath`` (or the same file) the private key;
    ``trustStorePath`` is the CA bundle (PEM) clients verify peers with.
    """

    model_config = ConfigDict(frozen=True)

    enable_plaintext_port: bool = True
    enable_tls_port: bool = False
    tls_port: int | None = None
    cert_path: str | None = None
    key_path: str | None = None
    key_password: SecretStr | None = None
    server_ca_path: str | None = None
    require_client_certificate: bool = False
    client_ca_path: str | None = None
    validate_hostnames: bool = True


class SecuritySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    authenticator_chain: list[str] = Field(default_factory=lambda: [ALLOW_ALL])
    authenticators: dict[str, AuthenticatorConfig] = Field(
        default_factory=lambda: {ALLOW_ALL: AuthenticatorConfig(name=ALLOW_ALL, type=ALLOW_ALL)}
    )
    authorizers: dict[str, AuthorizerConfig] = Field(
        default_factory=lambda: {ALLOW_ALL: AuthorizerConfig(name=ALLOW_ALL, type=ALLOW_ALL)}
    )
    unsecured_paths: list[str] = Field(default_factory=list)
    allow_unauthenticated_http_options: bool = False
    polling_period: float = 60.0
    #: Druid's ``maxSyncRetries``: bounds how long a node waits for its first fetch at start.
    max_sync_retries: int = 10
    escalator: EscalatorConfig = Field(default_factory=EscalatorConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)

    @property
    def enabled(self) -> bool:
        """True when some request can be refused (anything but an all-``allowAll`` setup)."""
        return any(a.type != ALLOW_ALL for a in self.authenticators.values()) or any(
            a.type != ALLOW_ALL for a in self.authorizers.values()
        )

    def basic_authenticators(self) -> list[AuthenticatorConfig]:
        return [a for a in self.authenticators.values() if a.type == "basic"]

    def basic_authorizers(self) -> list[AuthorizerConfig]:
        return [a for a in self.authorizers.values() if a.type == "basic"]


def _json_list(value: Any, key: str) -> list[str]:
    if isinstance(value, list):
        items = value
    else:
        text = str(value).strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"invalid value for {key}: not a JSON list ({exc.msg})") from None
        else:
            items = [p.strip() for p in text.split(",") if p.strip()]
    if not all(isinstance(i, str) and i for i in items):
        raise ValueError(f"invalid value for {key}: expected a list of names")
    return list(items)


def _bool(value: Any, key: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"invalid value for {key}: expected true or false (got {value!r})")


def _int(value: Any, key: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"invalid value for {key}: expected an integer (got {value!r})") from None


def _secret(value: Any, key: str, environ: Mapping[str, str] | None) -> SecretStr | None:
    pw = resolve_password(value, key, environ)
    return None if pw is None else SecretStr(pw)


_AUTHN_FIELDS = {
    "type": "type",
    "authorizerName": "authorizer_name",
    "initialAdminPassword": "initial_admin_password",
    "initialInternalClientPassword": "initial_internal_client_password",
    "credentialIterations": "credential_iterations",
    "skipOnFailure": "skip_on_failure",
    "identity": "identity",
    # accepted for compatibility; kdruid's caches refresh by polling (see docs/security.md)
    "enableCacheNotifications": None,
    "cacheNotificationTimeout": None,
    "credentialsValidator.type": None,
}
_AUTHZ_FIELDS = {
    "type": "type",
    "initialAdminUser": "initial_admin_user",
    "initialAdminRole": "initial_admin_role",
    "enableCacheNotifications": None,
    "cacheNotificationTimeout": None,
    "roleProvider.type": None,
}
_ESCALATOR_FIELDS = {
    "type": "type",
    "internalClientUsername": "internal_client_username",
    "internalClientPassword": "internal_client_password",
    "authorizerName": "authorizer_name",
}
_HTTPS_SERVER = {
    "keyStorePath": "cert_path",
    "certPath": "cert_path",
    "keyPath": "key_path",
    "keyStorePassword": "key_password",
    "keyManagerPassword": "key_password",
    "keyStoreType": None,
    "certAlias": None,
    "trustStorePath": "server_ca_path",
    "trustStoreType": None,
    "requireClientCertificate": "require_client_certificate",
}
_HTTPS_CLIENT = {
    "trustStorePath": "client_ca_path",
    "trustStoreType": None,
    "trustStorePassword": None,
    "validateHostnames": "validate_hostnames",
}
_PEM_TYPES = ("pem", "")


def parse_security(
    props: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> SecuritySettings:
    """Build ``SecuritySettings`` from the owned keys of ``props``; ``ValueError`` names the key."""
    top: dict[str, Any] = {}
    authn: dict[str, dict[str, Any]] = {}
    authz: dict[str, dict[str, Any]] = {}
    esc: dict[str, Any] = {}
    tls: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith("druid.auth.authenticator."):
            name, _, field = key.removeprefix("druid.auth.authenticator.").partition(".")
            authn.setdefault(name, {})[_field(_AUTHN_FIELDS, field, key)] = (key, value)
        elif key.startswith("druid.auth.authorizer."):
            name, _, field = key.removeprefix("druid.auth.authorizer.").partition(".")
            authz.setdefault(name, {})[_field(_AUTHZ_FIELDS, field, key)] = (key, value)
        elif key.startswith("druid.escalator."):
            esc[_field(_ESCALATOR_FIELDS, key.removeprefix("druid.escalator."), key)] = (key, value)
        elif key.startswith("druid.server.https."):
            f = _field(_HTTPS_SERVER, key.removeprefix("druid.server.https."), key)
            tls[f] = (key, value)
            if key.endswith("Type") and str(value).lower() not in _PEM_TYPES:
                raise ValueError(f"{key}={value}: kdruid reads PEM files; set it to pem")
        elif key.startswith("druid.client.https."):
            f = _field(_HTTPS_CLIENT, key.removeprefix("druid.client.https."), key)
            tls[f] = (key, value)
            if key.endswith("Type") and str(value).lower() not in _PEM_TYPES:
                raise ValueError(f"{key}={value}: kdruid reads PEM files; set it to pem")
        else:
            top[key] = value
    out: dict[str, Any] = {}
    for key, value in top.items():
        if key == "druid.auth.authenticatorChain":
            out["authenticator_chain"] = _json_list(value, key)
        elif key == "druid.auth.authorizers":
            out["authorizer_list"] = _json_list(value, key)
        elif key == "druid.auth.unsecuredPaths":
            out["unsecured_paths"] = _json_list(value, key)
        elif key == "druid.auth.allowUnauthenticatedHttpOptions":
            out["allow_unauthenticated_http_options"] = _bool(value, key)
        elif key == "druid.auth.basic.common.pollingPeriod":
            out["polling_period"] = _int(value, key) / 1000.0
        elif key == "druid.auth.basic.common.maxSyncRetries":
            n = _int(value, key)
            if n <= 0:
                raise ValueError(f"invalid value for {key}: must be positive (got {n})")
            out["max_sync_retries"] = n
        elif key == "druid.auth.basic.common.maxRandomDelay":
            _int(value, key)
        elif key == "druid.enablePlaintextPort":
            tls["enable_plaintext_port"] = (key, value)
        elif key == "druid.enableTlsPort":
            tls["enable_tls_port"] = (key, value)
        elif key == "druid.tlsPort":
            tls["tls_port"] = (key, value)
        else:
            raise ValueError(f"unknown property {key!r}")
    return _build(out, authn, authz, esc, tls, environ)


def _field(fields: Mapping[str, str | None], field: str, key: str) -> str:
    if field not in fields:
        raise ValueError(f"unknown property {key!r}; known: {', '.join(sorted(fields))}")
    return fields[field] or f"_ignored_{field}"


def _typed(field: str, key: str, value: Any, environ: Mapping[str, str] | None) -> Any:
    if field.startswith("_ignored_"):
        return None
    if field in (
        "initial_admin_password",
        "initial_internal_client_password",
        "internal_client_password",
        "key_password",
    ):
        return _secret(value, key, environ)
    if field in ("credential_iterations", "tls_port"):
        n = _int(value, key)
        if n <= 0:
            raise ValueError(f"invalid value for {key}: must be positive (got {n})")
        return n
    if field in (
        "skip_on_failure",
        "enable_plaintext_port",
        "enable_tls_port",
        "require_client_certificate",
        "validate_hostnames",
    ):
        return _bool(value, key)
    return str(value)


def _section(
    raw: Mapping[str, tuple[str, Any]], environ: Mapping[str, str] | None
) -> dict[str, Any]:
    return {
        f: _typed(f, key, value, environ)
        for f, (key, value) in raw.items()
        if not f.startswith("_ignored_")
    }


def _build(
    top: dict[str, Any],
    authn_raw: dict[str, dict[str, Any]],
    authz_raw: dict[str, dict[str, Any]],
    esc_raw: dict[str, Any],
    tls_raw: dict[str, Any],
    environ: Mapping[str, str] | None,
) -> SecuritySettings:
    chain: list[str] = top.pop("authenticator_chain", [ALLOW_ALL])
    authorizer_names: list[str] = top.pop("authorizer_list", [ALLOW_ALL])
    authenticators: dict[str, AuthenticatorConfig] = {}
    for name in chain:
        fields = _section(authn_raw.pop(name, {}), environ)
        kind = fields.pop("type", ALLOW_ALL if name == ALLOW_ALL else None)
        if kind not in ("basic", ALLOW_ALL, "anonymous"):
            raise ValueError(
                f"druid.auth.authenticator.{name}.type must be basic, allowAll or anonymous"
                f" (got {kind!r})"
            )
        authenticators[name] = AuthenticatorConfig(name=name, type=kind, **fields)
    if authn_raw:
        stray = sorted(authn_raw)[0]
        raise ValueError(
            f"druid.auth.authenticator.{stray}.* is set but {stray!r} is not in "
            "druid.auth.authenticatorChain"
        )
    authorizers: dict[str, AuthorizerConfig] = {}
    for name in authorizer_names:
        fields = _section(authz_raw.pop(name, {}), environ)
        kind = fields.pop("type", ALLOW_ALL if name == ALLOW_ALL else None)
        if kind not in ("basic", ALLOW_ALL):
            raise ValueError(
                f"druid.auth.authorizer.{name}.type must be basic or allowAll (got {kind!r})"
            )
        authorizers[name] = AuthorizerConfig(name=name, type=kind, **fields)
    if authz_raw:
        stray = sorted(authz_raw)[0]
        raise ValueError(
            f"druid.auth.authorizer.{stray}.* is set but {stray!r} is not in druid.auth.authorizers"
        )
    for a in authenticators.values():
        if a.type != ALLOW_ALL and a.authorizer_name not in authorizers:
            raise ValueError(
                f"druid.auth.authenticator.{a.name}.authorizerName: {a.authorizer_name!r} is not"
                " in druid.auth.authorizers"
            )
    escalator = EscalatorConfig(**_section(esc_raw, environ))
    if escalator.type not in ("noop", "basic"):
        raise ValueError(f"druid.escalator.type must be noop or basic (got {escalator.type!r})")
    if escalator.type == "basic" and escalator.internal_client_password is None:
        raise ValueError("druid.escalator.internalClientPassword is required with type basic")
    tls = TlsConfig(**_section(tls_raw, environ))
    if tls.enable_tls_port and not tls.cert_path:
        raise ValueError("druid.server.https.keyStorePath (a PEM file) is required with TLS")
    if not tls.enable_tls_port and not tls.enable_plaintext_port:
        raise ValueError("druid.enablePlaintextPort=false needs druid.enableTlsPort=true")
    return SecuritySettings(
        authenticator_chain=chain,
        authenticators=authenticators,
        authorizers=authorizers,
        escalator=escalator,
        tls=tls,
        **top,
    )
