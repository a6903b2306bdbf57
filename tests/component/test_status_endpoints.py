"""Endpoints every node serves (/status..., discovery view, Druid errors), on real uvicorn nodes."""

from __future__ import annotations

import gc
from pathlib import Path

import common
from common.aio import wait_until
from common.config import ROLES
from tests.support.cluster import Cluster, cluster, sqlite_properties

ERROR_KEYS = {"error", "errorMessage", "errorClass", "host"}


async def test_status_version_and_memory(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        await c.start("broker")
        resp = await c.get("broker", "/status")
        assert resp.status_code == 200
        body = resp.json()
        assert body["version"] == common.__version__
        memory = body["memory"]
        assert set(memory) == {
            "maxMemory",
            "totalMemory",
            "freeMemory",
            "usedMemory",
            "directMemory",
        }
        assert all(isinstance(v, int) for v in memory.values())
        # Druid's invariants (JVM Runtime figures): they add up.
        assert memory["usedMemory"] == memory["totalMemory"] - memory["freeMemory"]
        assert 0 <= memory["freeMemory"] <= memory["totalMemory"] <= memory["maxMemory"]
        assert memory["usedMemory"] > 0
        assert memory["directMemory"] == -1  # no off-heap limit in a Python process

        health = await c.get("broker", "/status/health")
        assert health.status_code == 200
        assert health.json() is True


async def test_status_properties_hides_secrets(tmp_path: Path) -> None:
    props = {
        **sqlite_properties(tmp_path),
        "druid.metadata.storage.connector.password": "hunter2",
        "druid.s3.secretKey": "s3cr3t",
    }
    async with cluster(props) as c:
        node = await c.start("historical")
        resp = await c.get("historical", "/status/properties")
        assert resp.status_code == 200
        shown = resp.json()
        assert "druid.metadata.storage.connector.password" not in shown
        assert "druid.s3.secretKey" not in shown
        assert "hunter2" not in resp.text and "s3cr3t" not in resp.text
        # What is not secret is shown, as set.
        assert shown["druid.host"] == "127.0.0.1"
        assert shown["druid.plaintextPort"] == str(node.server.port)
        assert shown["druid.metadata.storage.connector.connectURI"] == str(tmp_path / "metadata.db")


async def test_self_discovered_follows_the_announcement(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        node = await c.start("historical")

        async def discovered() -> bool:
            return (await c.get("historical", "/status/selfDiscovered")).status_code == 200

        await wait_until(discovered, within=5.0, what="selfDiscovered 200")
        status = await c.get("historical", "/status/selfDiscovered/status")
        assert status.status_code == 200
        assert status.json() == {"selfDiscovered": True}

        # Withdrawn from discovery (as at shutdown): 503 and false.
        service = node.service
        await service.discovery.announcer.unannounce(service.discovery_node)
        resp = await c.get("historical", "/status/selfDiscovered")
        assert resp.status_code == 503
        status = await c.get("historical", "/status/selfDiscovered/status")
        assert status.status_code == 200
        assert status.json() == {"selfDiscovered": False}

        await service.reannounce()
        assert (await c.get("historical", "/status/selfDiscovered")).status_code == 200


async def test_unknown_path_is_druid_404(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        node = await c.start("peon")
        resp = await c.get("peon", "/druid/v2/no/such/thing")
        assert resp.status_code == 404
        assert resp.headers["content-type"].startswith("application/json")
        body = resp.json()
        assert set(body) == ERROR_KEYS
        assert body["error"] == "Not found"
        assert body["host"] == node.settings.host_and_port

        resp = await c.http.post(node.url + "/status/health")
        assert resp.status_code == 405
        assert set(resp.json()) == ERROR_KEYS
        assert resp.json()["error"] == "Method not allowed"


async def _sees(c: Cluster, name: str, expected: dict[str, set[str]]) -> bool:
    resp = await c.get(name, "/druid-internal/v1/discovery")
    if resp.status_code != 200:
        return False
    view = resp.json()
    return all(set(view[role]["nodes"]) >= nodes for role, nodes in expected.items())


async def test_discovery_view_shape_and_content(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        broker = await c.start("broker")
        hist = await c.start("historical")
        expected = {
            "broker": {broker.settings.host_and_port},
            "historical": {hist.settings.host_and_port},
        }
        await wait_until(lambda: _sees(c, "broker", expected), within=5.0, what="broker view")
        view = (await c.get("broker", "/druid-internal/v1/discovery")).json()
        assert set(view) == set(ROLES)
        for role in ROLES:
            assert set(view[role]) == {"initialized", "timedOut", "nodes"}
            assert view[role]["initialized"] is True
            assert view[role]["timedOut"] is False
        assert view["historical"]["nodes"] == [hist.settings.host_and_port]
        assert view["broker"]["nodes"] == [broker.settings.host_and_port]
        assert view["coordinator"]["nodes"] == []

        # A node that stops cleanly leaves everyone's view (unannounced, not left to expire).
        await c.stop("historical")
        await wait_until(
            lambda: _gone(c, "broker", "historical"), within=1.5, what="historical gone"
        )


async def _gone(c: Cluster, name: str, role: str) -> bool:
    view = (await c.get(name, "/druid-internal/v1/discovery")).json()
    return view[role]["nodes"] == []


async def test_overlord_lists_started_peon_as_worker(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        overlord = await c.start("overlord")
        peon = await c.start("peon", **{"druid.worker.capacity": "3"})
        await wait_until(
            lambda: overlord.service.selector is not None and overlord.service.selector.is_leader(),
            within=5.0,
            what="overlord leads",
        )

        async def listed() -> bool:
            resp = await c.get("overlord", "/druid/indexer/v1/workers")
            return resp.status_code == 200 and len(resp.json()) == 1

        await wait_until(listed, within=5.0, what="peon listed as worker")
        (entry,) = (await c.get("overlord", "/druid/indexer/v1/workers")).json()
        worker = entry["worker"]
        assert worker["host"] == peon.settings.host_and_port
        assert worker["capacity"] == 3
        assert worker["ip"] == "127.0.0.1"
        assert worker["scheme"] == "http"
        assert worker["category"] == "_default_worker_category"


async def test_a_started_node_has_frozen_its_start_up_heap(tmp_path: Path) -> None:
    # Whatever start-up made lives on: a full collection should not walk it again and again.
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async with cluster(sqlite_properties(tmp_path)) as c:
        await c.start("broker")
        assert gc.get_freeze_count() > 0
