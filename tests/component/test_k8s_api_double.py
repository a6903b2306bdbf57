"""The Kubernetes API-server double honours the semantics the k8s backend relies on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio import watch as kwatch
from kubernetes_asyncio.client.exceptions import ApiException

from common.aio import wait_until
from tests.support.k8s_api import K8sApiDouble

NS = "druid"
PODS = f"/api/v1/namespaces/{NS}/pods"


@pytest.fixture
async def api() -> AsyncIterator[K8sApiDouble]:
    async with K8sApiDouble(bookmark_interval=0.2) as double:
        yield double


@pytest.fixture
async def http(api: K8sApiDouble) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(api.url) as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    ctype: str = "application/json",
    **params: str,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    async with http.request(
        method, path, data=data, params=params, headers={"Content-Type": ctype}
    ) as resp:
        return resp.status, await resp.json()


async def watch_lines(http: aiohttp.ClientSession, n: int, **params: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with http.get(PODS, params={"watch": "true", **params}) as resp:
        assert resp.status == 200
        async for line in resp.content:
            events.append(json.loads(line))
            if len(events) == n:
                break
    return events


async def test_crud_conflicts_and_cluster_wide_resource_version(
    api: K8sApiDouble, http: aiohttp.ClientSession
) -> None:
    status, pod = await call(http, "POST", PODS, {"metadata": {"name": "a"}})
    assert status == 201 and pod["kind"] == "Pod"
    rv1 = int(pod["metadata"]["resourceVersion"])
    status, body = await call(http, "POST", PODS, {"metadata": {"name": "a"}})
    assert status == 409 and body["reason"] == "AlreadyExists" and body["kind"] == "Status"
    cms = f"/api/v1/namespaces/{NS}/configmaps"
    status, cm = await call(http, "POST", cms, {"metadata": {"name": "c"}})
    assert int(cm["metadata"]["resourceVersion"]) == rv1 + 1  # one counter for all kinds
    stale = dict(cm)
    status, cm2 = await call(http, "PUT", f"{cms}/c", {**cm, "data": {"k": "v"}})
    assert status == 200 and int(cm2["metadata"]["resourceVersion"]) > rv1 + 1
    status, body = await call(http, "PUT", f"{cms}/c", {**stale, "data": {"k": "w"}})
    assert status == 409 and body["reason"] == "Conflict"
    status, got = await call(http, "GET", f"{cms}/c")
    assert got["data"] == {"k": "v"}
    status, _ = await call(http, "GET", f"{cms}/missing")
    assert status == 404
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
    status, lease = await call(http, "POST", leases, {"metadata": {"name": "l"}, "spec": {}})
    assert status == 201 and lease["apiVersion"] == "coordination.k8s.io/v1"
    status, _ = await call(http, "DELETE", f"{PODS}/a")
    assert status == 200
    status, listing = await call(http, "GET", PODS)
    assert listing["items"] == [] and int(listing["metadata"]["resourceVersion"]) == api.store.rv


async def test_label_selectors(api: K8sApiDouble, http: aiohttp.ClientSession) -> None:
    api.add_pod(NS, "p1", labels={"app": "druid", "role": "broker"})
    api.add_pod(NS, "p2", labels={"app": "druid", "role": "historical"})
    api.add_pod(NS, "p3", labels={"app": "other"})
    api.add_pod("elsewhere", "p4", labels={"app": "druid"})

    async def names(selector: str) -> list[str]:
        status, body = await call(http, "GET", PODS, labelSelector=selector)
        assert status == 200
        return [p["metadata"]["name"] for p in body["items"]]

    assert await names("app=druid") == ["p1", "p2"]
    assert await names("app==druid,role=broker") == ["p1"]
    assert await names("app=druid,role!=broker") == ["p2"]
    assert await names("role") == ["p1", "p2"]
    assert await names("!role") == ["p3"]
    assert await names("role in (broker, historical),app=druid") == ["p1", "p2"]
    assert await names("role notin (broker)") == ["p2", "p3"]
    status, _ = await call(http, "GET", PODS, labelSelector="a=b=c")
    assert status == 400


async def test_patches(api: K8sApiDouble, http: aiohttp.ClientSession) -> None:
    api.add_pod(NS, "bare")
    # Druid's gotcha: a JSON Patch add under a missing map fails.
    add = [{"op": "add", "path": "/metadata/labels/x", "value": "1"}]
    status, body = await call(http, "PATCH", f"{PODS}/bare", add, "application/json-patch+json")
    assert status == 422 and "missing path" in body["message"]
    # A merge patch creates the maps; null removes exactly the key.
    merge = {"metadata": {"labels": {"x": "1", "y": "2"}, "annotations": {"a": "A"}}}
    status, pod = await call(http, "PATCH", f"{PODS}/bare", merge, "application/merge-patch+json")
    assert status == 200 and pod["metadata"]["labels"] == {"x": "1", "y": "2"}
    drop = {"metadata": {"labels": {"x": None}}}
    ctype = "application/strategic-merge-patch+json"
    status, pod = await call(http, "PATCH", f"{PODS}/bare", drop, ctype)
    assert pod["metadata"]["labels"] == {"y": "2"} and pod["metadata"]["annotations"] == {"a": "A"}
    ops = [
        {"op": "add", "path": "/metadata/labels/z~1w", "value": "3"},
        {"op": "replace", "path": "/metadata/labels/y", "value": "4"},
        {"op": "remove", "path": "/metadata/annotations/a"},
    ]
    status, pod = await call(http, "PATCH", f"{PODS}/bare", ops, "application/json-patch+json")
    assert status == 200
    assert (
        pod["metadata"]["labels"] == {"y": "4", "z/w": "3"} and pod["metadata"]["annotations"] == {}
    )
    bad = [{"op": "remove", "path": "/metadata/labels/nope"}]
    status, _ = await call(http, "PATCH", f"{PODS}/bare", bad, "application/json-patch+json")
    assert status == 422
    status, _ = await call(http, "PATCH", f"{PODS}/bare", {"metadata": {"labels": {"n": 1}}},
                           "application/merge-patch+json")  # fmt: skip
    assert status == 422  # label values are strings
    status, _ = await call(http, "PATCH", f"{PODS}/bare", {}, "text/plain")
    assert status == 415


async def test_watch_events_follow_the_selector(
    api: K8sApiDouble, http: aiohttp.ClientSession
) -> None:
    _, listing = await call(http, "GET", PODS, labelSelector="d=yes")
    rv = listing["metadata"]["resourceVersion"]
    api.add_pod(NS, "p", labels={"d": "no"})  # not matching: not delivered
    merge = "application/merge-patch+json"
    await call(http, "PATCH", f"{PODS}/p", {"metadata": {"labels": {"d": "yes"}}}, merge)
    await call(http, "PATCH", f"{PODS}/p", {"metadata": {"annotations": {"k": "v"}}}, merge)
    await call(http, "PATCH", f"{PODS}/p", {"metadata": {"labels": {"d": None}}}, merge)
    await call(http, "PATCH", f"{PODS}/p", {"metadata": {"labels": {"d": "yes"}}}, merge)
    await call(http, "DELETE", f"{PODS}/p")
    events = await watch_lines(http, 5, labelSelector="d=yes", resourceVersion=rv)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k": "v"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[-1] == api.store.rv


async def test_watch_live_events_bookmarks_and_timeout(
    api: K8sApiDouble, http: aiohttp.ClientSession
) -> None:
    _, listing = await call(http, "GET", PODS)
    rv = listing["metadata"]["resourceVersion"]
    params = {"resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "2"}
    got: list[dict[str, Any]] = []
    async with http.get(PODS, params={"watch": "True", **params}) as resp:
        await wait_until(lambda: api.open_watches == 1, within=5)
        api.add_pod(NS, "live")
        async for line in resp.content:  # ends by itself after timeoutSeconds
            got.append(json.loads(line))
    types = [e["type"] for e in got]
    assert types[0] == "ADDED" and "BOOKMARK" in types
    bookmark = next(e for e in got if e["type"] == "BOOKMARK")
    assert bookmark["object"]["kind"] == "Pod"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) == api.store.rv


@pytest.mark.parametrize("as_http", [False, True])
async def test_watch_from_forgotten_version_is_gone(as_http: bool) -> None:
    async with (
        K8sApiDouble(history=2, gone_as_http=as_http) as api,
        aiohttp.ClientSession(api.url) as http,
    ):
        old = api.add_pod(NS, "a")["metadata"]["resourceVersion"]
        for name in "bcd":
            api.add_pod(NS, name)
        async with http.get(PODS, params={"watch": "true", "resourceVersion": old}) as resp:
            if as_http:
                assert resp.status == 410
            else:
                event = json.loads(await resp.content.readline())
                assert event["type"] == "ERROR" and event["object"]["code"] == 410
        # The last two changes are retained: a watch from just before them works.
        recent = str(api.store.rv - 2)
        events = await watch_lines(http, 2, resourceVersion=recent)
        assert [e["object"]["metadata"]["name"] for e in events] == ["c", "d"]
        api.store.compact()
        async with http.get(PODS, params={"watch": "true", "resourceVersion": recent}) as resp:
            assert (
                resp.status == 410 or json.loads(await resp.content.readline())["type"] == "ERROR"
            )


async def test_faults(api: K8sApiDouble, http: aiohttp.ClientSession) -> None:
    api.fail_next(2, 503)
    assert (await call(http, "GET", PODS))[0] == 503
    assert (await call(http, "GET", PODS))[0] == 503
    assert (await call(http, "GET", PODS))[0] == 200
    api.pause()
    pending = asyncio.ensure_future(call(http, "GET", PODS))
    done, _ = await asyncio.wait({pending}, timeout=0.3)  # it must still hang after 0.3 s
    assert not done
    api.resume()
    assert (await pending)[0] == 200
    # A dropped watch ends cleanly; an aborted one breaks the connection.
    for abort in (False, True):
        async with http.get(PODS, params={"watch": "true"}) as resp:
            await wait_until(lambda: api.open_watches == 1, within=5)
            api.drop_watches(abort=abort)
            try:
                rest = await resp.content.read()
                assert not abort and rest == b""
            except aiohttp.ClientPayloadError:
                assert abort
        await wait_until(lambda: api.open_watches == 0, within=5)


async def test_kubernetes_asyncio_client_works_against_it(api: K8sApiDouble, tmp_path: Any) -> None:
    cfg = kclient.Configuration()
    await kconfig.load_kube_config(
        config_file=api.write_kubeconfig(tmp_path / "kubeconfig"), client_configuration=cfg
    )
    async with kclient.ApiClient(cfg) as client:
        core = kclient.CoreV1Api(client)
        api.add_pod(NS, "k", labels={"a": "b"})
        pods = await core.list_namespaced_pod(NS, label_selector="a=b", pretty="true")
        assert [p.metadata.name for p in pods.items] == ["k"]
        body = {"metadata": {"annotations": {"x": "y"}}}
        pod = await core.patch_namespaced_pod("k", NS, body)  # strategic merge patch by default
        assert pod.metadata.annotations == {"x": "y"}
        assert api.requests[-1].content_type == "application/strategic-merge-patch+json"
        w = kwatch.Watch()
        seen = []
        async with w:
            async for event in w.stream(
                core.list_namespaced_pod,
                NS,
                resource_version=pods.metadata.resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=5,
            ):
                seen.append((event["type"], event["raw_object"]["metadata"].get("name")))
                break
        assert seen == [("MODIFIED", "k")]
        with pytest.raises(ApiException) as err:
            await core.read_namespaced_pod("nope", NS)
        assert err.value.status == 404
