"""Passwords: Druid's ``PasswordProvider`` forms and its PBKDF2-SHA512 credentials.

Druid hashes with ``PBKDF2WithHmacSHA512``, a 32-byte random salt, 10000 iterations
(``credentialIterations``) and a 512-bit key (``BasicAuthUtils``). A password is never kept,
logged or put into an error message; verification caches the derived key under a SHA-256 of
salt and password so a repeated request costs one SHA-256, not 10000 rounds of HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.auth.model import Credentials

SALT_LENGTH = 32
DEFAULT_KEY_ITERATIONS = 10_000
KEY_LENGTH_BYTES = 512 // 8


def hash_password(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, KEY_LENGTH_BYTES)


def make_credentials(password: str, iterations: int = DEFAULT_KEY_ITERATIONS) -> Credentials:
    salt = secrets.token_bytes(SALT_LENGTH)
    return Credentials(
        salt=base64.b64encode(salt).decode(),
        hash=base64.b64encode(hash_password(password, salt, iterations)).decode(),
        iterations=iterations,
    )


class CredentialVerifier:
    """Checks passwords against stored credentials, remembering recent derivations."""

    def __init__(self, max_entries: int = 1000) -> None:
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._max = max_entries

    def verify(self, password: str, creds: Credentials) -> bool:
        salt = base64.b64decode(creds.salt)
        expected = base64.b64decode(creds.hash)
        key = hashlib.sha256(
            salt + creds.iterations.to_bytes(4, "big") + password.encode()
        ).digest()
        derived = self._cache.get(key)
        if derived is None:
            derived = hash_password(password, salt, creds.iterations)
            self._cache[key] = derived
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return hmac.compare_digest(derived, expected)


def resolve_password(value: Any, key: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Druid's ``PasswordProvider`` forms, plus a file (a mounted Kubernetes Secret).

    * a plain string: the password itself;
    * ``{"type": "default", "password": "..."}``;
    * ``{"type": "environment", "variable": "NAME"}``: read from the environment;
    * ``{"type": "file", "path": "/etc/secret/x"}``: the file's text without its final newline.

    Raises ``ValueError`` naming ``key`` (never the password) when the form is wrong.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("{"):
            return str(value)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text  # a password that happens to start with '{'
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected a password or a PasswordProvider object")
    kind = value.get("type", "default")
    if kind == "default":
        pw = value.get("password")
        if not isinstance(pw, str):
            raise ValueError(f"{key}: a 'default' PasswordProvider needs a string 'password'")
        return pw
    if kind == "environment":
        var = value.get("variable")
        env = os.environ if environ is None else environ
        if not isinstance(var, str) or var not in env:
            raise ValueError(f"{key}: environment variable {var!r} is not set")
        return env[var]
    if kind == "file":
        path = value.get("path")
        if not isinstance(path, str):
            raise ValueError(f"{key}: a 'file' PasswordProvider needs a 'path'")
        try:
            return Path(path).read_text(encoding="utf-8").removesuffix("\n")
        except OSError as exc:
            raise ValueError(f"{key}: cannot read {path}: {exc.strerror}") from None
    raise ValueError(f"{key}: unknown PasswordProvider type {kind!r} (default, environment, file)")
