"""A Kubernetes API-server double for tests: a real HTTP server kubernetes_asyncio talks to.

``K8sApiDouble`` serves pods, configmaps (``/api/v1/namespaces/<ns>/...``) and leases
(``/apis/coordination.k8s.io/v1/namespaces/<ns>/leases``): get, list, create, replace, patch,
delete, and watch (``?watch=true`` as the client sends it: ``watch=True``) with
``resourceVersion``, ``allowWatchBookmarks`` and ``timeoutSeconds``. The semantics are in
``k8s_api_store``. A watch from a resourceVersion older than the retained history gets an
``ERROR`` event holding a 410 ``Status`` (what real Kubernetes sends), or an HTTP 410 when
``gone_as_http`` is set.

Fault injection, for the tests of the backend's recovery:

* ``drop_watches(abort=False)``: end every open watch stream (cleanly, or by resetting the
  connection with ``abort=True``);
* ``fail_next(n, status=500)``: answer the next ``n`` requests with that status;
* ``stall = seconds``: delay every request;
* ``pause()`` / ``resume()``: every request, and every watch event, hangs until resumed;
* ``store.compact()`` or a small ``history``: force 410 Gone.

Usage::

    async with K8sApiDouble() as api:
        api.add_pod("ns", "pod-a")
        path = api.write_kubeconfig(tmp_path / "kubeconfig")
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.support.k8s_api_store import KINDS, ApiError, Change, Store, parse_selector, watch_event

_BODY: web.RequestKey[Any] = web.RequestKey("body", object)
_DROP = object()
_ABORT = object()


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


class K8sApiDouble:
    def __init__(
        self, *, history: int = 1000, bookmark_interval: float = 1.0, gone_as_http: bool = False
    ) -> None:
        self.store = Store(history=history)
        self.bookmark_interval = bookmark_interval
        self.gone_as_http = gone_as_http
        self.requests: list[RequestRecord] = []
        self.bookmarks_sent: list[int] = []
        self.stall = 0.0
        self._fail: list[int] = []
        self._running = asyncio.Event()
        self._running.set()
        self._watches: set[asyncio.Queue[object]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle
    async def start(self) -> K8sApiDouble:
        app = web.Application(middlewares=[self._faults])
        for prefix in ("/api/v1", "/apis/coordination.k8s.io/v1"):
            app.router.add_route("*", prefix + "/namespaces/{ns}/{resource}", self._collection)
            app.router.add_route("*", prefix + "/namespaces/{ns}/{resource}/{name}", self._item)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        self.resume()
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> K8sApiDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> str:
        text = (
            "apiVersion: v1\nkind: Config\ncurrent-context: double\n"
            f"clusters:\n- name: double\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: tester\n  user:\n    token: test-token\n"
            "contexts:\n- name: double\n  context:\n    cluster: double\n    user: tester\n"
            f"    namespace: {namespace}\n"
        )
        Path(path).write_text(text)
        return str(path)

    # ---- faults
    def fail_next(self, n: int, status: int = 500) -> None:
        self._fail.extend([status] * n)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def drop_watches(self, abort: bool = False) -> None:
        for q in list(self._watches):
            q.put_nowait(_ABORT if abort else _DROP)

    @property
    def open_watches(self) -> int:
        return len(self._watches)

    # ---- direct access for tests (no HTTP)
    def add_pod(
        self,
        namespace: str,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        ready: bool | None = None,
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if labels is not None:
            meta["labels"] = labels
        if annotations is not None:
            meta["annotations"] = annotations
        body: dict[str, Any] = {"metadata": meta, "spec": {"containers": [{"name": "main"}]}}
        if ready is not None:
            body["status"] = _pod_status(ready)
        return self.store.create("pods", namespace, body)

    def set_pod_ready(self, namespace: str, name: str, ready: bool) -> dict[str, Any]:
        pod = self.store.get("pods", namespace, name)
        pod["status"] = _pod_status(ready)
        return self.store.replace("pods", namespace, name, pod)

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self.store.get("pods", namespace, name)

    # ---- HTTP
    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        await self._running.wait()
        if self.stall:
            await asyncio.sleep(self.stall)
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return _error(ApiError(400, "the request body is not valid JSON"))
        self.requests.append(
            RequestRecord(
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("Content-Type", ""),
                body,
            )
        )
        if self._fail:
            code = self._fail.pop(0)
            return _error(ApiError(code, f"injected failure {code}"))
        request[_BODY] = body
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except ApiError as exc:
            return _error(exc)

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        ns, resource = request.match_info["ns"], request.match_info["resource"]
        if resource not in KINDS:
            raise ApiError(404, f"the server could not find the requested resource {resource!r}")
        if request.method == "GET":
            if _truthy(request.query.get("watch")):
                return await self._watch(request, resource, ns)
            items, rv = self.store.list(resource, ns, request.query.get("labelSelector"))
            kind, api_version = KINDS[resource]
            return _json(
                {
                    "kind": kind + "List",
                    "apiVersion": api_version,
                    "metadata": {"resourceVersion": rv},
                    "items": items,
                }
            )
        if request.method == "POST":
            return _json(self.store.create(resource, ns, request[_BODY]), status=201)
        raise ApiError(405, f"method {request.method} not allowed", "MethodNotAllowed")

    async def _item(self, request: web.Request) -> web.StreamResponse:
        ns, resource = request.match_info["ns"], request.match_info["resource"]
        name = request.match_info["name"]
        body = request[_BODY]
        if request.method == "GET":
            return _json(self.store.get(resource, ns, name))
        if request.method == "PUT":
            return _json(self.store.replace(resource, ns, name, body))
        if request.method == "PATCH":
            ctype = request.headers.get("Content-Type", "")
            return _json(self.store.patch(resource, ns, name, ctype, body))
        if request.method == "DELETE":
            return _json(self.store.delete(resource, ns, name))
        raise ApiError(405, f"method {request.method} not allowed", "MethodNotAllowed")

    async def _watch(self, request: web.Request, resource: str, ns: str) -> web.StreamResponse:
        query = request.query
        matches = parse_selector(query.get("labelSelector"))
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        timeout = float(query.get("timeoutSeconds") or 0) or 1800.0
        rv_text = query.get("resourceVersion") or "0"
        try:
            since = int(rv_text)
        except ValueError:
            raise ApiError(400, f"invalid resourceVersion {rv_text!r}") from None
        kind, api_version = KINDS[resource]

        queue: asyncio.Queue[object] = asyncio.Queue()

        def on_change(change: Change) -> None:
            if change.resource == resource and change.namespace == ns:
                queue.put_nowait(change)

        # Replay and subscription happen in one synchronous step: no change is lost or doubled.
        gone: ApiError | None = None
        backlog: list[tuple[str, dict[str, Any]]] = []
        if since == 0:
            items, _ = self.store.list(resource, ns, query.get("labelSelector"))
            backlog = [("ADDED", o) for o in items]
        else:
            try:
                for change in self.store.changes_since(since):
                    if change.resource == resource and change.namespace == ns:
                        if (etype := watch_event(change, matches)) is not None:
                            backlog.append((etype, change.new))
            except ApiError as exc:
                gone = exc
        if gone is not None and self.gone_as_http:
            raise gone
        if gone is None:
            self.store.listeners.append(on_change)
        self._watches.add(queue)

        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval

        async def send(etype: str, obj: dict[str, Any]) -> None:
            await self._running.wait()
            await resp.write(orjson.dumps({"type": etype, "object": obj}) + b"\n")

        try:
            if gone is not None:
                await send("ERROR", gone.status())
                return resp
            for etype, obj in backlog:
                await send(etype, obj)
            while True:
                now = loop.time()
                if now >= deadline:
                    break
                wait = min(deadline, next_bookmark) - now if bookmarks else deadline - now
                try:
                    item = await asyncio.wait_for(queue.get(), max(0.0, wait))
                except TimeoutError:
                    if bookmarks and loop.time() >= next_bookmark:
                        # The queue is empty: every change up to store.rv has been sent.
                        meta = {"resourceVersion": str(self.store.rv)}
                        await send(
                            "BOOKMARK", {"kind": kind, "apiVersion": api_version, "metadata": meta}
                        )
                        self.bookmarks_sent.append(int(meta["resourceVersion"]))
                        next_bookmark = loop.time() + self.bookmark_interval
                    continue
                if item is _DROP:
                    break
                if item is _ABORT:
                    if request.transport is not None:
                        request.transport.close()
                    break
                assert isinstance(item, Change)
                if (etype := watch_event(item, matches)) is not None:
                    await send(etype, item.new)
            with contextlib.suppress(ConnectionError):
                await resp.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            self._watches.discard(queue)
            if on_change in self.store.listeners:
                self.store.listeners.remove(on_change)
        return resp


def _pod_status(ready: bool) -> dict[str, Any]:
    flag = "True" if ready else "False"
    return {
        "phase": "Running",
        "conditions": [
            {"type": "ContainersReady", "status": flag},
            {"type": "Ready", "status": flag},
        ],
        "containerStatuses": [{"name": "main", "ready": ready}],
    }


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


def _error(exc: ApiError) -> web.Response:
    return _json(exc.status(), status=exc.code)


def backend_properties(kubeconfig: str, cluster_id: str = "dc", **extra: str) -> dict[str, str]:
    """runtime.properties for ``druid.discovery.type=k8s`` against a double's kubeconfig."""
    return {
        "druid.discovery.type": "k8s",
        "druid.discovery.k8s.clusterIdentifier": cluster_id,
        "druid.discovery.k8s.kubeconfig": kubeconfig,
        **extra,
    }
