"""The load queue of a real historical: bad inputs, failed loads, restarts, probes, memory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from common.aio import wait_until
from common.segments.deep_storage import DeepStorage
from common.segments.format import write_parquet
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from common.serverview.changes import SegmentChangeRequest as Req
from services.historical.service import HistoricalService
from tests.component.test_historical_longpoll import (
    SEGMENTS,
    apply,
    cache_props,
    push_segment,
)
from tests.support.cluster import cluster, sqlite_properties

QUEUE = f"{SEGMENTS}/changeRequests"


async def test_bad_requests_are_400_and_the_service_keeps_running(tmp_path: Path) -> None:
    seg = push_segment(tmp_path, 0)
    async with cluster({**sqlite_properties(tmp_path), **cache_props(tmp_path)}) as c:
        h = await c.start("historical")
        good = [Req.load(seg).to_json()]
        no_action = {k: v for k, v in good[0].items() if k != "action"}
        bad_interval = {**good[0], "interval": "yesterday"}
        cases = [
            (f"{QUEUE}?timeout=1000", []),
            (f"{QUEUE}?timeout=1000", {"action": "load"}),
            (f"{QUEUE}?timeout=1000", [no_action]),
            (f"{QUEUE}?timeout=1000", [bad_interval]),
            (f"{QUEUE}?timeout=1000", ["load"]),
            (QUEUE, good),
            (f"{QUEUE}?timeout=0", good),
            (f"{QUEUE}?timeout=-5", good),
            (f"{QUEUE}?timeout=soon", good),
            (f"{QUEUE}?timeout=1000&loadingMode=FAST", good),
        ]
        for path, body in cases:
            resp = await c.http.post(h.url + path, json=body)
            assert resp.status_code == 400, (path, body, resp.text)
            err = resp.json()
            assert err["error"] and err["errorMessage"], err
        resp = await c.http.post(
            h.url + f"{QUEUE}?timeout=1000", content=b"[{", headers={"content-type": "x"}
        )
        assert resp.status_code == 400
        assert (await c.get("historical", "/status/health")).json() is True
        statuses = await apply(c, h, [Req.load(seg)])
        assert [s["state"] for s in statuses.values()] == ["SUCCESS"]


async def test_failed_loads_are_failed_with_a_cause(tmp_path: Path) -> None:
    missing, corrupt, big = (
        push_segment(tmp_path, d, rows=r) for d, r in ((0, 30), (1, 30), (2, 5000))
    )
    os.unlink(missing.load_spec["path"])
    with open(corrupt.load_spec["path"], "wb") as f:  # noqa: ASYNC230 (test setup)
        f.write(b"PAR1" + os.urandom(200) + b"PAR1")
    # Room for the small segments, not for the big one.
    props = {**sqlite_properties(tmp_path), **cache_props(tmp_path, max_size=big.size - 1)}
    async with cluster(props) as c:
        h = await c.start("historical")
        statuses = await apply(c, h, [Req.load(missing), Req.load(corrupt), Req.load(big)])
        by_id = {json.loads(k)["identifier"]: v for k, v in statuses.items()}
        assert {v["state"] for v in by_id.values()} == {"FAILED"}
        assert "not found" in by_id[str(missing.id)]["failureCause"]
        assert "Parquet" in by_id[str(corrupt.id)]["failureCause"]
        assert "no space" in by_id[str(big.id)]["failureCause"]
        snap = (await c.get("historical", f"{SEGMENTS}?counter=-1&timeout=1000")).json()
        assert snap["requests"] == []
        assert not list((tmp_path / "cache").glob("wiki/*"))
        assert (await c.get("historical", "/status/health")).status_code == 200


async def test_restart_serves_the_cache_without_downloading(tmp_path: Path) -> None:
    segs = [push_segment(tmp_path, d) for d in range(3)]
    props = {**sqlite_properties(tmp_path), **cache_props(tmp_path)}
    async with cluster(props) as c:
        h = await c.start("historical")
        await apply(c, h, [Req.load(s) for s in segs])
        await c.stop("historical")
        for s in segs:  # deep storage is gone: anything served now comes from the cache
            os.unlink(s.load_spec["path"])
        h = await c.start("historical")
        snap = (await c.get("historical", f"{SEGMENTS}?counter=-1&timeout=1000")).json()
        assert sorted(r["identifier"] for r in snap["requests"]) == sorted(str(s.id) for s in segs)
        service = h.service
        assert isinstance(service, HistoricalService)
        for s in segs:
            segment, table = service.registry.get_segment(s.id)
            assert segment == s and table.num_rows == 30
        # Asking to load what it serves is an immediate success, still without deep storage.
        statuses = await apply(c, h, [Req.load(segs[0])])
        assert [v["state"] for v in statuses.values()] == ["SUCCESS"]


async def test_probes_and_load_capabilities(tmp_path: Path) -> None:
    props = {
        **sqlite_properties(tmp_path),
        **cache_props(tmp_path, max_size=12345),
        "druid.segmentCache.numLoadingThreads": "3",
    }
    async with cluster(props) as c:
        h = await c.start("historical")
        caps = await c.get("historical", f"{SEGMENTS}/loadCapabilities")
        assert caps.json() == {"numLoadingThreads": 3, "numTurboLoadingThreads": 3}
        assert (await c.get("historical", "/druid/historical/v1/loadstatus")).json() == {
            "cacheInitialized": True
        }
        assert (await c.get("historical", "/druid/historical/v1/readiness")).status_code == 200
        text = h.service.discovery_node.to_json()
        assert '"type":"dataNodeService","tier":"_default_tier","maxSize":12345,' in text
        # Read back through discovery, as a coordinator sees it.
        watcher = h.service.provider.get_for_node_role("historical")
        await wait_until(lambda: bool(watcher.get_all_nodes()), within=10, what="discovery")
        (node,) = watcher.get_all_nodes()
        svc = node.services["dataNodeService"]
        assert (svc.max_size, svc.server_type, svc.tier) == (12345, "historical", "_default_tier")


async def test_probes_before_the_cache_is_open(tmp_path: Path) -> None:
    import httpx

    from common.config import load_settings
    from services.historical.app import create_app

    settings = load_settings(
        "historical",
        properties={**sqlite_properties(tmp_path), **cache_props(tmp_path)},
        environ={},
    )
    app = create_app(settings)  # lifespan not run: the cache is not open
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://h") as http:
        assert (await http.get("/druid/historical/v1/readiness")).status_code == 503
        assert (await http.get("/druid/historical/v1/loadstatus")).json() == {
            "cacheInitialized": False
        }
        resp = await http.post(f"{QUEUE}?timeout=100", json=[{"action": "noop"}])
        assert resp.status_code == 503


def _big_segment(tmp: Path, day: int, rows: int) -> DataSegment:
    start = Interval.parse("2024-01-01/2024-01-02").start + day * 86_400_000
    iv = Interval(start, start + 86_400_000)
    table = pa.table(
        {
            "__time": pa.array([iv.start + i for i in range(rows)], pa.int64()),
            "page": pa.array([f"page-{i % 5000}" for i in range(rows)]),
            "added": pa.array(range(rows), pa.int64()),
            "delta": pa.array([i * 0.25 for i in range(rows)], pa.float64()),
        }
    )
    src = tmp / f"big-{day}.parquet"
    info = write_parquet(table, src, iv)
    seg = DataSegment(
        dataSource="big",
        interval=iv,
        version="v1",
        dimensions=info.dimensions,
        metrics=info.metrics,
    )
    return DeepStorage("local", storage_directory=str(tmp / "deep")).push(seg, src)


async def test_loaded_segments_are_memory_mapped(tmp_path: Path) -> None:
    segs = [_big_segment(tmp_path, d, 500_000) for d in range(3)]
    props = {**sqlite_properties(tmp_path), **cache_props(tmp_path, max_size=10**9)}
    async with cluster(props) as c:
        h = await c.start("historical")
        service = h.service
        assert isinstance(service, HistoricalService)
        before = pa.total_allocated_bytes()
        await apply(c, h, [Req.load(s) for s in segs])
        await wait_until(lambda: len(service.registry) == 3, within=30, what="three segments")
        served = sum(service.registry.get_segment(s.id)[1].nbytes for s in segs)
        grown = pa.total_allocated_bytes() - before
        assert served > 30_000_000
        assert grown < served // 10, (grown, served)
