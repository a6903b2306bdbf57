"""The segment announcement long poll against a real historical: snapshot, delta, 204, reset."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from common.aio import wait_until
from common.segments.segment import DataSegment
from common.serverview.changes import SegmentChangeRequest as Req
from common.serverview.inventory import HttpServerInventoryView
from tests.support.cluster import Cluster, Node, cluster, sqlite_properties
from tests.support.segments import make_segment

SEGMENTS = "/druid-internal/v1/segments"


def push_segment(tmp: Path, day: int, rows: int = 30) -> DataSegment:
    return make_segment(tmp, day, rows=rows)


def cache_props(tmp: Path, max_size: int = 10**8) -> dict[str, str]:
    return {
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(tmp / "cache"), "maxSize": max_size}]
        ),
        "druid.segmentCache.dropSegmentDelayMillis": "100",
    }


async def apply(c: Cluster, node: Node, reqs: list[Req]) -> dict[str, dict[str, Any]]:
    """POST the batch until every request is done, as the coordinator's load queue does."""
    pending = {json.dumps(r.to_json(), sort_keys=True): r for r in reqs}
    done: dict[str, dict[str, Any]] = {}
    while pending:
        resp = await c.http.post(
            f"{node.url}{SEGMENTS}/changeRequests?timeout=5000",
            json=[r.to_json() for r in pending.values()],
        )
        assert resp.status_code in (200, 204), resp.text
        for item in resp.json() if resp.status_code == 200 else []:
            if item["status"]["state"] != "PENDING":
                key = json.dumps(item["request"], sort_keys=True)
                done[key] = item["status"]
                pending.pop(key, None)
    return done


def ids(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((r["action"], r["identifier"]) for r in requests)


async def test_snapshot_delta_idle_and_reset_after_restart(tmp_path: Path) -> None:
    a, b, d = (push_segment(tmp_path, day) for day in range(3))
    props = {**sqlite_properties(tmp_path), **cache_props(tmp_path)}
    async with cluster(props) as c:
        h = await c.start("historical")
        # An empty historical: an empty snapshot.
        first = (await c.get("historical", f"{SEGMENTS}?counter=-1&timeout=1000")).json()
        assert first["resetCounter"] is False and first["requests"] == []

        statuses = await apply(c, h, [Req.load(a), Req.load(b)])
        assert [s["state"] for s in statuses.values()] == ["SUCCESS", "SUCCESS"]
        snap = (await c.get("historical", f"{SEGMENTS}?counter=-1&timeout=1000")).json()
        assert ids(snap["requests"]) == [("load", str(a.id)), ("load", str(b.id))]
        assert snap["requests"][0]["loadSpec"]["type"] == "local"
        counter = snap["counter"]

        # Nothing changes: the parked poll ends with 204.
        idle = await c.get(
            "historical",
            f"{SEGMENTS}?counter={counter['counter']}&hash={counter['hash']}&timeout=200",
        )
        assert idle.status_code == 204

        # A load while a poll is parked: the poll answers with the delta.
        parked = asyncio.create_task(
            c.get(
                "historical",
                f"{SEGMENTS}?counter={counter['counter']}&hash={counter['hash']}&timeout=10000",
            )
        )
        await apply(c, h, [Req.load(d)])
        delta = (await parked).json()
        assert delta["resetCounter"] is False
        assert ids(delta["requests"]) == [("load", str(d.id))]
        counter = delta["counter"]

        await apply(c, h, [Req.drop(a)])
        poll = f"{SEGMENTS}?counter={counter['counter']}&hash={counter['hash']}&timeout=1000"
        delta = (await c.get("historical", poll)).json()
        assert ids(delta["requests"]) == [("drop", str(a.id))]
        counter = delta["counter"]
        cache_dir = tmp_path / "cache" / "wiki"
        assert len(list(cache_dir.iterdir())) in (2, 3)  # a's files go after the drop delay

        # Restart on the same cache: the old counter is refused, the snapshot is the cache.
        await c.stop("historical")
        await c.start("historical")
        poll = f"{SEGMENTS}?counter={counter['counter']}&hash={counter['hash']}&timeout=1000"
        reset = (await c.get("historical", poll)).json()
        assert reset["resetCounter"] is True and reset["resetCause"]
        snap = (await c.get("historical", f"{SEGMENTS}?counter=-1&timeout=1000")).json()
        assert ids(snap["requests"]) == [("load", str(b.id)), ("load", str(d.id))]
        assert len(list(cache_dir.iterdir())) == 2  # the dropped one was deleted on stop


async def test_inventory_view_follows_loads_and_drops(tmp_path: Path) -> None:
    a, b = (push_segment(tmp_path, day) for day in range(2))
    props = {**sqlite_properties(tmp_path), **cache_props(tmp_path)}
    async with cluster(props) as c:
        h = await c.start("historical")
        await apply(c, h, [Req.load(a)])
        view = HttpServerInventoryView(
            h.service.provider.get_for_service("dataNodeService"), server_timeout=5
        )
        view.start()
        try:
            await asyncio.wait_for(view.initialized.wait(), 15)
            (server,) = view.servers()
            assert server.is_historical and set(server.segments) == {a.id}
            await apply(c, h, [Req.load(b), Req.drop(a)])
            await wait_until(lambda: set(server.segments) == {b.id}, within=10, what="delta")
        finally:
            await view.close()
