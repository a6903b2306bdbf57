"""The coordinator's segment REST endpoints on a real server: metadata, mark used/unused (and
their 400s), load status and queue, served datasources, handoff answers."""

from __future__ import annotations

from pathlib import Path

from common.aio import wait_until
from services.coordinator.service import CoordinatorService
from tests.support.cluster import Cluster, cluster, sqlite_properties
from tests.support.segments import V1, V2, historical_props, make_segment

COORD = "/druid/coordinator/v1"


async def leader(c: Cluster) -> CoordinatorService:
    node = await c.start("coordinator")

    async def leads() -> bool:
        return (await c.get("coordinator", f"{COORD}/isLeader")).status_code == 200

    await wait_until(leads, within=20, what="leadership")
    assert isinstance(node.service, CoordinatorService)
    return node.service


async def test_metadata_and_mark_used_unused(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        service = await leader(c)
        segs = [make_segment(tmp_path, d) for d in range(3)]
        newer = make_segment(tmp_path, 0, V2)
        await service.store.insert_segments([*segs, newer])
        get = lambda path, **kw: c.get("coordinator", COORD + path, **kw)  # noqa: E731
        assert (await get("/metadata/datasources")).json() == ["wiki"]
        full = (await get("/metadata/datasources", params={"full": ""})).json()
        assert full[0]["name"] == "wiki" and len(full[0]["segments"]) == 4
        ids = (await get("/metadata/datasources/wiki/segments")).json()
        assert sorted(ids) == sorted(s.identifier for s in [*segs, newer])
        one = await get(f"/metadata/datasources/wiki/segments/{segs[1].identifier}")
        assert one.json()["identifier"] == segs[1].identifier
        assert (await get("/metadata/datasources/nope/segments")).status_code == 404
        assert (await get("/metadata/datasources/nope")).status_code == 404

        post = lambda path, body: c.http.post(c.nodes["coordinator"].url + COORD + path, json=body)  # noqa: E731
        # by ids
        resp = await post("/datasources/wiki/markUnused", {"segmentIds": [segs[1].identifier]})
        assert resp.json() == {"numChangedSegments": 1}
        gone = await get(f"/metadata/datasources/wiki/segments/{segs[1].identifier}")
        assert gone.status_code == 404
        unused = await get(
            f"/metadata/datasources/wiki/segments/{segs[1].identifier}",
            params={"includeUnused": ""},
        )
        assert unused.status_code == 200
        # by interval and versions: only segments the interval contains
        body = {"interval": "2024-01-01/2024-01-03", "versions": [V1]}
        assert (await post("/datasources/wiki/markUnused", body)).json() == {
            "numChangedSegments": 1
        }
        # marking used skips what is overshadowed: day 0 of V1 stays unused (V2 replaced it)
        assert (
            await post("/datasources/wiki/markUsed", {"interval": "2024-01-01/2024-01-04"})
        ).json() == {"numChangedSegments": 1}
        still_unused = await get(f"/metadata/datasources/wiki/segments/{segs[0].identifier}")
        assert still_unused.status_code == 404
        assert (await get("/metadata/datasources", params={"includeUnused": ""})).json() == ["wiki"]

        for bad in (
            {},
            [],
            "x",
            {"interval": "2024-01-01/2024-01-02", "segmentIds": [segs[0].identifier]},
            {"segmentIds": [segs[0].identifier], "versions": [V1]},
            {"segmentIds": []},
            {"segmentIds": "abc"},
            {"segmentIds": ["not-a-wiki-segment"]},
            {"interval": "yesterday"},
            {"interval": 5},
            {"interval": "2024-01-01/2024-01-02", "bogus": 1},
        ):
            resp = await post("/datasources/wiki/markUnused", bad)
            assert resp.status_code == 400, (bad, resp.text)
            assert resp.json()["errorMessage"]
        resp = await c.http.post(
            c.nodes["coordinator"].url + COORD + "/datasources/wiki/markUsed",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert resp.status_code == 400
        assert (await get("/loadstatus", params={"simple": ""})).json() == {"wiki": 3}


async def test_served_views_with_a_historical(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        service = await leader(c)
        get = lambda path, **kw: c.get("coordinator", COORD + path, **kw)  # noqa: E731
        assert (await get("/datasources")).json() == []
        assert (await get("/datasources/wiki")).status_code == 204
        assert (await get("/loadqueue")).json() == {}
        hoff = {"interval": "2024-01-01/2024-01-02", "partitionNumber": 0, "version": V1}
        assert (await get("/datasources/wiki/handoffComplete", params=hoff)).json() is False
        bad = await get("/datasources/wiki/handoffComplete", params={**hoff, "interval": "x"})
        assert bad.status_code == 400

        await c.start("historical", **historical_props(tmp_path, "h"))
        segs = [make_segment(tmp_path, d) for d in range(2)]
        await service.store.insert_segments(segs)

        async def loaded() -> bool:
            return bool((await get("/loadstatus")).json() == {"wiki": 100.0})

        await wait_until(loaded, within=20, what="segments loaded")
        # default rule wants 2 replicas; one historical has one of each
        assert (await get("/loadstatus", params={"full": ""})).json() == {
            "_default_tier": {"wiki": 2}
        }
        assert (await get("/loadstatus", params={"simple": ""})).json() == {"wiki": 0}
        assert (await get("/datasources")).json() == ["wiki"]
        simple = (await get("/datasources/wiki")).json()
        size = sum(s.size for s in segs)
        assert simple["tiers"] == {
            "_default_tier": {"size": size, "segmentCount": 2, "replicatedSize": size}
        }
        assert simple["segments"]["count"] == 2
        assert simple["segments"]["minTime"] == "2024-01-01T00:00:00.000Z"
        assert simple["segments"]["maxTime"] == "2024-01-03T00:00:00.000Z"
        listing = (await get("/datasources", params={"simple": ""})).json()
        assert listing == [{"name": "wiki", "properties": simple}]
        full = (await get("/datasources/wiki", params={"full": ""})).json()
        assert [s["identifier"] for s in full["segments"]] == [s.identifier for s in segs]
        segments_full = (await get("/datasources/wiki/segments", params={"full": ""})).json()
        assert segments_full[0]["loadSpec"] == segs[0].load_spec
        queue = (await get("/loadqueue", params={"simple": ""})).json()
        assert list(queue.values()) == [
            {
                "segmentsToLoad": 0,
                "segmentsToDrop": 0,
                "segmentsToLoadSize": 0,
                "segmentsToDropSize": 0,
            }
        ]
        assert (await get("/datasources/wiki/handoffComplete", params=hoff)).json() is True
        later = {**hoff, "version": V2}
        assert (await get("/datasources/wiki/handoffComplete", params=later)).json() is False
