"""The one place internal HTTP clients are made.

Every call one node makes to another (long polling, the load queue, task chat and actions,
broker-to-data-node queries) goes through a client from ``InternalClients.new`` (httpx) or,
for the broker's queries to data nodes, ``InternalClients.session`` (aiohttp: about half the
client-side CPU per request of httpx, which counts in a small query's fixed cost). Either sends
the escalator's credentials (``druid.escalator.*``; none with the ``noop`` escalator) and
verifies TLS peers with ``druid.client.https.trustStorePath``. A user's own credentials are never
forwarded. ``tests/unit/test_auth_clients.py`` fails if any other module builds an
``httpx.AsyncClient`` or an ``aiohttp.ClientSession`` of its own.
"""

from __future__ import annotations

import base64
import ssl
from typing import TYPE_CHECKING, Any

import httpx

from common.auth.config import SecuritySettings

if TYPE_CHECKING:
    import aiohttp


class InternalClients:
    def __init__(self, settings: SecuritySettings | None = None) -> None:
        settings = settings or SecuritySettings()
        esc = settings.escalator
        self._header: str | None = None
        if esc.type == "basic" and esc.internal_client_password is not None:
            pair = (
                f"{esc.internal_client_username}:{esc.internal_client_password.get_secret_value()}"
            )
            self._header = "Basic " + base64.b64encode(pair.encode()).decode()
        self.verify: ssl.SSLContext | bool = True
        tls = settings.tls
        if tls.client_ca_path:
            ctx = ssl.create_default_context(cafile=tls.client_ca_path)
            ctx.check_hostname = tls.validate_hostnames
            if tls.require_client_certificate and tls.cert_path:
                ctx.load_cert_chain(tls.cert_path, tls.key_path or tls.cert_path)
            self.verify = ctx

    async def _authorize(self, request: httpx.Request) -> None:
        if self._header is not None:
            request.headers["Authorization"] = self._header

    def new(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` (any of its keyword arguments) for internal calls.

        The credentials are set by a request hook, so a followed redirect (a follower's 307 to
        its leader, another port) carries them too; httpx's ``auth=`` would drop them there.
        """
        hooks = dict(kwargs.pop("event_hooks", {}))
        hooks["request"] = [*hooks.get("request", []), self._authorize]
        return httpx.AsyncClient(verify=self.verify, event_hooks=hooks, **kwargs)

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An ``aiohttp.ClientSession`` (any of its keyword arguments) for internal calls, made in
        a running event loop and kept for the process's life (one connection pool).

        Its requests carry the escalator's credentials as a default header, verify TLS peers as
        ``new``'s clients do (the trust store, else httpx's default context: certifi, or
        ``SSL_CERT_FILE``), take no proxy or netrc settings from the environment and keep no
        cookies. Pass
        ``allow_redirects=False`` to every request: aiohttp would follow a redirect (without the
        credentials to another host), an internal client made by ``new`` does not unless told.
        """
        # Imported here: only the broker makes a session, and aiohttp costs every other role
        # ~6 MB and ~0.2 s at start-up.
        import aiohttp

        headers = dict(kwargs.pop("headers", {}))
        if self._header is not None:
            headers["Authorization"] = self._header
        ssl_context = self.verify if isinstance(self.verify, ssl.SSLContext) else None
        if ssl_context is None:
            ssl_context = httpx.create_ssl_context()  # certifi, as httpx's verify=True
        connector = aiohttp.TCPConnector(ssl=ssl_context, limit=0)
        return aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            **kwargs,
        )


#: For code and tests outside a node (no escalator, default verification).
PLAIN_CLIENTS = InternalClients()


def uvicorn_tls_kwargs(settings: SecuritySettings) -> dict[str, Any]:
    """uvicorn's TLS arguments from ``druid.server.https.*`` (PEM files)."""
    tls = settings.tls
    if not tls.cert_path:
        raise ValueError("druid.server.https.keyStorePath (a PEM file) is required with TLS")
    kwargs: dict[str, Any] = {
        "ssl_certfile": tls.cert_path,
        "ssl_keyfile": tls.key_path or tls.cert_path,
    }
    if tls.key_password is not None:
        kwargs["ssl_keyfile_password"] = tls.key_password.get_secret_value()
    if tls.server_ca_path:
        kwargs["ssl_ca_certs"] = tls.server_ca_path
    if tls.require_client_certificate:
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return kwargs
