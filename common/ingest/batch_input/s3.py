"""The ``s3`` input source of native batch ingestion (Druid's ``S3InputSource``).

Exactly one of ``uris`` (``s3://bucket/key``), ``prefixes`` (every non-empty object whose key
starts with the prefix's key, listed) or ``objects`` (``[{"bucket", "path"}]``); ``objectGlob``
keeps the objects whose key matches it, with Java's ``PathMatcher`` glob rules (``*`` and ``?``
stay within one path segment, ``**`` crosses ``/``, ``[...]``, ``{a,b}``), as Druid applies it
to the object part of the URI. Each object is one split.

The client is the one deep storage builds (``common.segments.deep_storage.S3ClientOptions``,
from ``druid.s3.*``), with the spec's overrides: ``properties`` (``accessKeyId`` and
``secretAccessKey``, each a plain string or a password provider ``{"type": "default",
"password"}`` / ``{"type": "environment", "variable"}``, resolved on the peon that reads),
``endpointConfig`` (``url``, ``signingRegion``), ``clientConfig`` (``protocol``,
``enablePathStyleAccess``) and ``proxyConfig`` (``host``, ``port``, ``username``, ``password``).
Refused with a 400: ``assumeRoleArn`` / ``assumeRoleExternalId`` and ``systemFields``.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlparse

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.config import S3Settings
from common.segments.deep_storage import S3ClientOptions

SCHEME = "s3"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _check_password(value: Any, key: str) -> Any:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a string or a password provider object")
    kind = value.get("type", "default")
    if kind == "default" and isinstance(value.get("password"), str):
        return value
    if kind == "environment" and isinstance(value.get("variable"), str):
        return value
    raise ValueError(
        f"{key}: a password provider is {{'type': 'default', 'password'}} or "
        "{'type': 'environment', 'variable'}"
    )


def resolve_password(value: str | dict[str, Any] | None, key: str) -> str | None:
    """A plain string or a checked password provider; the environment is read here, on the
    peon that runs the task."""
    if value is None or isinstance(value, str):
        return value
    if value.get("type", "default") == "default":
        return str(value["password"])
    var = str(value["variable"])
    if var not in os.environ:
        raise ValueError(f"{key}: environment variable [{var}] is not set")
    return os.environ[var]


class S3Properties(_Model):
    accessKeyId: str | dict[str, Any] | None = None
    secretAccessKey: str | dict[str, Any] | None = None
    assumeRoleArn: str | None = None
    assumeRoleExternalId: str | None = None

    @model_validator(mode="after")
    def _check(self) -> S3Properties:
        _check_password(self.accessKeyId, "properties.accessKeyId")
        _check_password(self.secretAccessKey, "properties.secretAccessKey")
        if self.accessKeyId is not None and self.secretAccessKey is None:
            raise ValueError("secretAccessKey cannot be null if accessKeyId is given")
        if self.secretAccessKey is not None and self.accessKeyId is None:
            raise ValueError("accessKeyId cannot be null if secretAccessKey is given")
        if self.assumeRoleArn or self.assumeRoleExternalId:
            raise ValueError("properties.assumeRoleArn is not supported")
        return self


class S3EndpointConfig(_Model):
    url: str | None = None
    signingRegion: str | None = None


class S3ClientConfig(_Model):
    protocol: Literal["http", "https", "HTTP", "HTTPS"] = "https"
    enablePathStyleAccess: bool | None = None


class S3ProxyConfig(_Model):
    host: str
    port: int = Field(ge=1, le=65535)
    username: str | None = None
    password: str | None = None


class CloudObject(_Model):
    bucket: str = Field(min_length=1)
    path: str

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        v = v.removesuffix("/")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", v):
            raise ValueError(f"bucket [{v}] must follow DNS-compliant naming conventions")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return v.removeprefix("/")

    @property
    def uri(self) -> str:
        return f"{SCHEME}://{self.bucket}/{self.path}"


def parse_uri(uri: str) -> CloudObject:
    """``s3://bucket/key`` as a ``CloudObject`` (Druid checks the scheme, any case)."""
    parsed = urlparse(uri)
    if parsed.scheme.lower() != SCHEME or not parsed.netloc:
        raise ValueError(f"Invalid URI scheme [{uri}] must be [{SCHEME}]")
    return CloudObject(bucket=parsed.netloc, path=parsed.path)


class S3InputSource(_Model):
    type: Literal["s3"]
    uris: list[str] | None = None
    prefixes: list[str] | None = None
    objects: list[CloudObject] | None = None
    objectGlob: str | None = None
    properties: S3Properties | None = None
    endpointConfig: S3EndpointConfig | None = None
    clientConfig: S3ClientConfig | None = None
    proxyConfig: S3ProxyConfig | None = None
    systemFields: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> S3InputSource:
        given = [k for k in ("uris", "prefixes", "objects") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("Exactly one of uris, prefixes or objects must be specified")
        for uri in [*(self.uris or []), *(self.prefixes or [])]:
            parse_uri(uri)
        if self.objectGlob:
            glob_regex(self.objectGlob)
        if self.systemFields:
            raise ValueError("systemFields are not supported")
        return self

    def locations(self) -> list[CloudObject]:
        """The objects named by ``uris`` or ``objects`` (``prefixes`` need a listing)."""
        if self.objects:
            return list(self.objects)
        return [parse_uri(u) for u in self.uris or []]

    def client_options(self, defaults: S3Settings | None) -> S3ClientOptions:
        """The deep-storage client's options (``druid.s3.*``) with this spec's overrides."""
        opts = S3ClientOptions.from_settings(defaults or S3Settings())
        props = self.properties
        if props is not None and props.accessKeyId is not None:
            opts = replace(
                opts,
                access_key=resolve_password(props.accessKeyId, "properties.accessKeyId"),
                secret_key=resolve_password(props.secretAccessKey, "properties.secretAccessKey"),
            )
        client = self.clientConfig
        endpoint = self.endpointConfig
        if endpoint is not None and endpoint.url:
            url = endpoint.url
            if "://" not in url:
                url = f"{(client.protocol if client else 'https').lower()}://{url}"
            opts = replace(opts, endpoint_url=url)
        if endpoint is not None and endpoint.signingRegion:
            opts = replace(opts, signing_region=endpoint.signingRegion)
        if client is not None and client.enablePathStyleAccess is not None:
            opts = replace(opts, path_style=client.enablePathStyleAccess)
        proxy = self.proxyConfig
        if proxy is not None:
            opts = replace(
                opts,
                proxy={
                    "scheme": "http",
                    "host": proxy.host,
                    "port": proxy.port,
                    **({"username": proxy.username} if proxy.username else {}),
                    **({"password": proxy.password} if proxy.password else {}),
                },
            )
        return opts

    def split_json(self, obj: CloudObject) -> dict[str, Any]:
        """The input source of a sub-task reading only ``obj`` (Druid's ``withSplit``)."""
        out = self.model_dump(
            exclude_none=True,
            include={"properties", "endpointConfig", "clientConfig", "proxyConfig"},
        )
        return {"type": SCHEME, "objects": [{"bucket": obj.bucket, "path": obj.path}], **out}


@lru_cache(maxsize=64)
def glob_regex(glob: str) -> re.Pattern[str]:
    """Java's ``FileSystem.getPathMatcher("glob:...")`` as a regular expression."""
    out: list[str] = []
    i, n = 0, len(glob)
    in_group = False
    while i < n:
        c = glob[i]
        i += 1
        if c == "\\":
            if i >= n:
                raise ValueError(f"objectGlob [{glob}]: no character to escape")
            out.append(re.escape(glob[i]))
            i += 1
        elif c == "*":
            if i < n and glob[i] == "*":
                out.append(".*")
                i += 1
            else:
                out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 1 if i < n and glob[i] == "!" else i)
            if end < 0:
                raise ValueError(f"objectGlob [{glob}]: missing ']'")
            body = glob[i:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body:
                raise ValueError(f"objectGlob [{glob}]: empty bracket expression")
            chars = "".join("\\" + ch if ch in "\\^[]" else ch for ch in body)
            out.append(f"(?![/])[{'^' if negate else ''}{chars}]")
            i = end + 1
        elif c == "{":
            if in_group:
                raise ValueError(f"objectGlob [{glob}]: cannot nest groups")
            in_group = True
            out.append("(?:")
        elif c == "}" and in_group:
            in_group = False
            out.append(")")
        elif c == "," and in_group:
            out.append("|")
        else:
            out.append(re.escape(c))
    if in_group:
        raise ValueError(f"objectGlob [{glob}]: missing '}}'")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as e:
        raise ValueError(f"objectGlob [{glob}]: {e}") from None


def filesystem(source: S3InputSource, defaults: S3Settings | None) -> pafs.FileSystem:
    return source.client_options(defaults).filesystem()


def list_objects(source: S3InputSource, fs: pafs.FileSystem | None) -> list[CloudObject]:
    """Every object of the source, after ``objectGlob`` (blocking: ``fs`` lists ``prefixes``).
    Listed objects come sorted by key; empty ones are skipped, as Druid does for prefixes only."""
    if not source.prefixes:
        found = source.locations()
    else:
        if fs is None:
            raise ValueError("listing s3 prefixes needs an S3 client")
        found = []
        for prefix in source.prefixes:
            loc = parse_uri(prefix)
            if fs.get_file_info(loc.bucket).type == pafs.FileType.NotFound:
                raise FileNotFoundError(f"bucket [{loc.bucket}] does not exist")
            base = loc.path.rsplit("/", 1)[0] if "/" in loc.path else ""
            selector = pafs.FileSelector(
                f"{loc.bucket}/{base}".rstrip("/"), recursive=True, allow_not_found=True
            )
            listed = []
            for info in fs.get_file_info(selector):
                key = info.path.split("/", 1)[1] if "/" in info.path else ""
                if info.type == pafs.FileType.File and info.size and key.startswith(loc.path):
                    listed.append(CloudObject(bucket=loc.bucket, path=key))
            found.extend(sorted(listed, key=lambda o: o.path))
    if source.objectGlob:
        pattern = glob_regex(source.objectGlob)
        found = [o for o in found if pattern.fullmatch(o.path)]
    return found


def read_object(fs: pafs.FileSystem, obj: CloudObject) -> bytes:
    """An object's bytes (blocking)."""
    with fs.open_input_stream(f"{obj.bucket}/{obj.path}") as f:
        data: bytes = f.read()
    return data
