"""The thin kubernetes_asyncio shell: the few API calls discovery and leader election make.

Every call goes through the generated ``CoreV1Api`` / ``CoordinationV1Api`` methods with
``_preload_content=False`` and returns plain JSON dicts (parsed with orjson): the backend reads a
handful of metadata fields, so building model objects would only cost time. A non-2xx answer or a
network failure becomes ``K8sApiError`` carrying the HTTP status (0 for no answer).

Configuration: an explicit kubeconfig path (``druid.discovery.k8s.kubeconfig``) wins; otherwise
the in-cluster service account when running in a pod (``KUBERNETES_SERVICE_HOST`` is set), else
the default kubeconfig (``~/.kube/config`` or ``$KUBECONFIG``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from common.errors import ConfigError, DiscoveryError

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
JSON = dict[str, Any]


class K8sApiError(DiscoveryError):
    """A Kubernetes API call failed; ``status`` is the HTTP status, 0 when there was no answer."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(f"Kubernetes API error {status} {reason}: {message}".strip())
        self.status = status
        self.reason = reason

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, throttled, or a server-side failure."""
        return self.status == 0 or self.status == 429 or self.status >= 500


class WatchGone(K8sApiError):
    """The watch's resourceVersion is older than the server's history: list again."""


async def load_configuration(
    kubeconfig: str | None, environ: Mapping[str, str] | None = None
) -> k8s_client.Configuration:
    env = os.environ if environ is None else environ
    cfg = k8s_client.Configuration()
    try:
        if kubeconfig:
            await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        elif env.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            await k8s_config.load_kube_config(client_configuration=cfg)
    except (k8s_config.ConfigException, OSError) as exc:
        where = kubeconfig or ("in-cluster" if env.get("KUBERNETES_SERVICE_HOST") else "default")
        raise ConfigError(
            f"cannot load the Kubernetes client configuration ({where}): {exc}; set "
            "druid.discovery.k8s.kubeconfig or run in a pod with a service account"
        ) from None
    return cfg


class KubeApi:
    """Raw-JSON access to pods, configmaps and leases of a Kubernetes API server."""

    def __init__(self, configuration: k8s_client.Configuration, request_timeout: float = 30.0):
        self._api_client = k8s_client.ApiClient(configuration)
        self._core = k8s_client.CoreV1Api(self._api_client)
        self._coordination = k8s_client.CoordinationV1Api(self._api_client)
        self.request_timeout = request_timeout

    @classmethod
    async def connect(cls, kubeconfig: str | None, request_timeout: float = 30.0) -> KubeApi:
        return cls(await load_configuration(kubeconfig), request_timeout)

    async def close(self) -> None:
        await self._api_client.close()

    # ---- plumbing
    async def _call(self, fn: Any, *args: Any, **kw: Any) -> JSON:
        try:
            resp = await fn(
                *args,
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                **kw,
            )
            try:
                body = await resp.read()
                status = resp.status
            finally:
                resp.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise K8sApiError(0, f"{type(exc).__name__}: {exc}") from None
        data = _loads(body)
        if not 200 <= status <= 299:
            raise _error(status, data, body)
        return data

    # ---- pods
    async def list_pods(self, namespace: str, selector: str) -> tuple[list[JSON], str]:
        """The matching pods and the list's resourceVersion."""
        data = await self._call(self._core.list_namespaced_pod, namespace, label_selector=selector)
        return list(data.get("items") or []), str(data.get("metadata", {}).get("resourceVersion"))

    async def patch_pod(self, namespace: str, name: str, patch: JSON) -> JSON:
        """A JSON merge patch (RFC 7386) of a pod: it creates missing label/annotation maps."""
        return await self._call(
            self._core.patch_namespaced_pod, name, namespace, patch, _content_type=MERGE_PATCH
        )

    async def watch_pods(
        self, namespace: str, selector: str, resource_version: str, timeout_seconds: int
    ) -> AsyncGenerator[JSON, None]:
        """Watch events (``{"type", "object"}``) from ``resource_version`` with bookmarks.

        Ends when the server ends the stream (its timeout); raises ``WatchGone`` on 410 (HTTP or
        an ERROR event) and ``K8sApiError`` on any other failure or a broken stream.
        """
        # A watch without traffic for longer than the server timeout plus slack is dead.
        read_limit = timeout_seconds + 30.0
        try:
            resp: Any = await self._core.list_namespaced_pod(
                namespace,
                label_selector=selector,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.request_timeout, sock_read=read_limit
                ),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise K8sApiError(0, f"{type(exc).__name__}: {exc}") from None
        try:
            if not 200 <= resp.status <= 299:
                body = await resp.read()
                raise _error(resp.status, _loads(body), body)
            while True:
                try:
                    line = await resp.content.readline()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise K8sApiError(0, f"watch stream broken: {type(exc).__name__}") from None
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise K8sApiError(0, f"watch sent invalid JSON: {line[:200]!r}") from None
                if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
                    raise K8sApiError(0, f"malformed watch event: {line[:200]!r}")
                if event.get("type") == "ERROR":
                    obj = event["object"]
                    raise _error(int(obj.get("code") or 0), obj, line)
                yield event
        finally:
            resp.release()
            resp.close()

    # ---- configmaps
    async def read_config_map(self, namespace: str, name: str) -> JSON | None:
        return await self._none_if_404(self._core.read_namespaced_config_map, name, namespace)

    async def create_config_map(self, namespace: str, body: JSON) -> JSON | None:
        """The created object, or None when one of that name exists already (409)."""
        return await self._none_if_409(self._core.create_namespaced_config_map, namespace, body)

    async def replace_config_map(self, namespace: str, name: str, body: JSON) -> JSON | None:
        """The replaced object, or None when its resourceVersion was stale (409)."""
        return await self._none_if_409(
            self._core.replace_namespaced_config_map, name, namespace, body
        )

    # ---- leases
    async def read_lease(self, namespace: str, name: str) -> JSON | None:
        return await self._none_if_404(self._coordination.read_namespaced_lease, name, namespace)

    async def create_lease(self, namespace: str, body: JSON) -> JSON | None:
        return await self._none_if_409(self._coordination.create_namespaced_lease, namespace, body)

    async def replace_lease(self, namespace: str, name: str, body: JSON) -> JSON | None:
        return await self._none_if_409(
            self._coordination.replace_namespaced_lease, name, namespace, body
        )

    async def _none_if_404(self, fn: Any, *args: Any) -> JSON | None:
        try:
            return await self._call(fn, *args)
        except K8sApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def _none_if_409(self, fn: Any, *args: Any) -> JSON | None:
        try:
            return await self._call(fn, *args)
        except K8sApiError as exc:
            if exc.status == 409:
                return None
            raise


def _loads(body: bytes) -> JSON:
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(status: int, data: JSON, body: bytes) -> K8sApiError:
    message = str(data.get("message") or body[:200].decode("utf-8", "replace"))
    reason = str(data.get("reason") or "")
    cls = WatchGone if status == 410 else K8sApiError
    return cls(status, message, reason)
