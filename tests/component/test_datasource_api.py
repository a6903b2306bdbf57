"""Endpoints Druid tools call to find datasources, segments and servers, on real servers:

* coordinator ``/servers`` (ids, ``simple``, ``full``, one server, its segments), served intervals
  and tiers of a datasource, a served segment by id;
* coordinator ``/metadata/segments`` (with ``datasources`` and ``includeOvershadowedStatus``),
  ``POST /metadata/datasources/{ds}/segments`` with intervals;
* marking every segment of a datasource unused (``DELETE /datasources/{ds}``) or used again
  (``POST``, overshadowed ones stay unused), one segment by id, and kill (503 with no
  overlord here; ``test_kill.py`` runs one);
* broker ``/druid/v2/datasources`` (names, columns, ``full``, ``dimensions``/``metrics``) and
  ``candidates`` (per datasource and for a query).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.aio import wait_until
from services.overlord.service import OverlordService
from tests.component.test_coordinator_api import leader
from tests.support.cluster import cluster, sqlite_properties
from tests.support.segments import V1, V2, historical_props, make_segment

COORD = "/druid/coordinator/v1"


async def test_metadata_segments_and_marking_a_whole_datasource(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        service = await leader(c)
        old = [make_segment(tmp_path, d) for d in range(2)]
        newer = make_segment(tmp_path, 0, V2)
        await service.store.insert_segments([*old, newer])
        url = c.nodes["coordinator"].url + COORD
        get = lambda path, **kw: c.http.get(url + path, **kw)  # noqa: E731

        listed = (await get("/metadata/segments")).json()
        assert sorted(s["identifier"] for s in listed) == sorted(
            s.identifier for s in [*old, newer]
        )
        assert listed[0]["loadSpec"] and listed[0]["dataSource"] == "wiki"
        assert (await get("/metadata/segments", params={"datasources": "other"})).json() == []
        # a datasource with only unused segments: listed with includeUnused or includeDisabled
        await c.http.delete(url + "/datasources/wiki")
        assert (await get("/metadata/datasources")).json() == []
        for flag in ("includeUnused", "includeDisabled"):
            assert (await get("/metadata/datasources", params={flag: ""})).json() == ["wiki"]
        for seg in [*old, newer]:  # one by one: no overshadowing check, as in Druid
            await c.http.post(url + f"/datasources/wiki/segments/{seg.identifier}")
        both = await get(
            "/metadata/segments", params=[("datasources", "x"), ("datasources", "wiki")]
        )
        assert len(both.json()) == 3
        status = (await get("/metadata/segments", params={"includeOvershadowedStatus": ""})).json()
        by_id = {s["identifier"]: s for s in status}
        assert by_id[old[0].identifier]["overshadowed"] is True
        assert by_id[old[1].identifier]["overshadowed"] is False
        assert by_id[newer.identifier]["overshadowed"] is False
        # the seeded _default rule loads 2 replicas in _default_tier
        assert {s["replicationFactor"] for s in status} == {2}
        assert {s["realtime"] for s in status} == {False}
        assert by_id[newer.identifier]["loadSpec"] == newer.load_spec

        body = ["2024-01-02T00:00:00.000Z/2024-01-02T01:00:00.000Z"]
        hits = await c.http.post(url + "/metadata/datasources/wiki/segments", json=body)
        assert hits.json() == [old[1].identifier]
        hits = await c.http.post(
            url + "/metadata/datasources/wiki/segments", params={"full": ""}, json=body
        )
        assert hits.json()[0]["shardSpec"]["type"] == "numbered"
        bad = await c.http.post(url + "/metadata/datasources/wiki/segments", json=["nope"])
        assert bad.status_code == 400 and bad.json()["errorMessage"]

        # one segment by id
        one = f"/datasources/wiki/segments/{old[1].identifier}"
        assert (await c.http.delete(url + one)).json() == {"segmentStateChanged": True}
        assert (await c.http.delete(url + one)).json() == {"segmentStateChanged": False}
        assert (await c.http.post(url + one)).json() == {"segmentStateChanged": True}
        unparseable = await c.http.delete(url + "/datasources/wiki/segments/garbage")
        assert unparseable.status_code == 400

        # the whole datasource: unused, then used again except what is overshadowed
        assert (await c.http.delete(url + "/datasources/wiki")).json() == {"numChangedSegments": 3}
        assert (await get("/metadata/segments")).json() == []
        assert (await c.http.delete(url + "/datasources/wiki")).json() == {"numChangedSegments": 0}
        assert (await c.http.delete(url + "/datasources/nothing")).json() == {
            "numChangedSegments": 0
        }
        assert (await c.http.post(url + "/datasources/wiki")).json() == {"numChangedSegments": 2}
        used = sorted(s["identifier"] for s in (await get("/metadata/segments")).json())
        assert used == sorted([old[1].identifier, newer.identifier])

        # kill goes to the overlord (none runs here: 503), never taken for "mark unused"
        killed = await c.http.delete(
            url + "/datasources/wiki", params={"kill": "true", "interval": "2024-01-01_2024-01-03"}
        )
        assert killed.status_code == 503 and "overlord" in killed.json()["errorMessage"]
        killed = await c.http.delete(url + "/datasources/wiki/intervals/2024-01-01_2024-01-03")
        assert killed.status_code == 503
        no_interval = await c.http.delete(url + "/datasources/wiki", params={"kill": "true"})
        assert no_interval.status_code == 400 and "interval" in no_interval.json()["errorMessage"]
        assert len((await get("/metadata/segments")).json()) == 2

        # unused segments (Druid's DataSegmentPlus), paged by id
        unused = (await get("/metadata/datasources/wiki/unusedSegments")).json()
        assert [u["dataSegment"]["identifier"] for u in unused] == [old[0].identifier]
        assert unused[0]["used"] is False and unused[0]["createdDate"].endswith("Z")
        assert unused[0]["usedStatusLastUpdatedDate"].endswith("Z")
        await c.http.delete(url + f"/datasources/wiki/segments/{old[1].identifier}")
        ids = sorted(s.identifier for s in old)
        page = lambda **p: get("/metadata/datasources/wiki/unusedSegments", params=p)  # noqa: E731
        listed = [u["dataSegment"]["identifier"] for u in (await page(sortOrder="DESC")).json()]
        assert listed == ids[::-1]
        assert [u["dataSegment"]["identifier"] for u in (await page(limit=1)).json()] == ids[:1]
        after = (await page(lastSegmentId=ids[0])).json()
        assert [u["dataSegment"]["identifier"] for u in after] == ids[1:]
        day0 = (await page(interval="2024-01-01_2024-01-02")).json()
        assert [u["dataSegment"]["identifier"] for u in day0] == [old[0].identifier]
        for bad_params in ({"limit": -1}, {"lastSegmentId": "x"}, {"sortOrder": "up"}):
            assert (await page(**bad_params)).status_code == 400, bad_params
        # one segment: an unparseable id is a 400; includeUnused=false does not include
        one = f"/metadata/datasources/wiki/segments/{old[0].identifier}"
        assert (await get(one)).status_code == 404
        assert (await get(one, params={"includeUnused": "false"})).status_code == 404
        assert (await get(one, params={"includeUnused": "true"})).status_code == 200
        assert (await get("/metadata/datasources/wiki/segments/garbage")).status_code == 400


async def test_servers_intervals_and_broker_datasources(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        service = await leader(c)
        h = await c.start("historical", "h", **historical_props(tmp_path, "h"))
        broker = await c.start("broker")
        segs = [make_segment(tmp_path, d) for d in range(2)]
        await service.store.insert_segments(segs)
        host = h.settings.host_and_port
        get = lambda path, **kw: c.get("coordinator", COORD + path, **kw)  # noqa: E731
        bget = lambda path, **kw: c.get("broker", path, **kw)  # noqa: E731

        async def served() -> bool:
            return (
                len(
                    (
                        await bget(
                            "/druid/v2/datasources/wiki/candidates",
                            params={"intervals": "2024-01-01/2024-01-03"},
                        )
                    ).json()
                )
                == 2
            )

        await wait_until(served, within=30, what="segments served and seen by the broker")

        # ---- coordinator: servers
        assert (await get("/servers")).json() == [host]
        size = sum(s.size for s in segs)
        simple = (await get("/servers", params={"simple": ""})).json()
        assert simple == [
            {
                "host": host,
                "tier": "_default_tier",
                "type": "historical",
                "priority": 0,
                "currSize": size,
                "maxSize": 10**8,
            }
        ]
        full = (await get("/servers", params={"full": ""})).json()
        assert list(full[0]["segments"]) == [s.identifier for s in segs]
        assert full[0]["segments"][segs[0].identifier]["loadSpec"] == segs[0].load_spec
        assert (await get(f"/servers/{host}", params={"simple": ""})).json() == simple[0]
        assert (await get(f"/servers/{host}")).json() == full[0]
        ids = (await get(f"/servers/{host}/segments")).json()
        assert ids == [s.identifier for s in segs]
        one = (await get(f"/servers/{host}/segments/{segs[1].identifier}")).json()
        assert one["identifier"] == segs[1].identifier
        assert (await get("/servers/nobody:1")).status_code == 404
        assert (await get(f"/servers/{host}/segments/nope")).status_code == 404

        # ---- coordinator: served intervals, tiers, one served segment
        days = [
            "2024-01-02T00:00:00.000Z/2024-01-03T00:00:00.000Z",
            "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z",
        ]
        assert (await get("/datasources/wiki/intervals")).json() == days
        by_iv = (await get("/datasources/wiki/intervals", params={"simple": ""})).json()
        assert list(by_iv) == days
        assert by_iv[days[1]] == {"size": segs[0].size, "count": 1}
        full_iv = (await get("/datasources/wiki/intervals", params={"full": ""})).json()
        entry = full_iv[days[1]][segs[0].identifier]
        assert entry["servers"] == [host] and entry["metadata"]["identifier"] == segs[0].identifier
        inside = (await get("/datasources/wiki/intervals/2024-01-01_2024-01-02")).json()
        assert inside == [segs[0].identifier]
        inside_simple = await get(
            "/datasources/wiki/intervals/2024-01-01_2024-01-02", params={"simple": ""}
        )
        assert inside_simple.json() == {days[1]: {"size": segs[0].size, "count": 1}}
        assert (await get("/datasources/wiki/intervals/nonsense")).status_code == 400
        view = (await get("/datasources/wiki/intervals/2024-01-01T12_2024-01-05/serverview")).json()
        assert [v["segment"]["identifier"] for v in view] == [s.identifier for s in segs]
        assert view[0]["servers"] == [
            {
                "name": host,
                "host": host,
                "hostAndTlsPort": None,
                "maxSize": 10**8,
                "type": "historical",
                "tier": "_default_tier",
                "priority": 0,
            }
        ]
        assert (
            await get("/datasources/nope/intervals/2024-01-01_2024-01-05/serverview")
        ).json() == []
        assert (await get("/datasources/nope/intervals")).status_code == 204
        assert (await get("/datasources/wiki/tiers")).json() == ["_default_tier"]
        assert (await get("/datasources/nope/tiers")).json() == []
        seg = (await get(f"/datasources/wiki/segments/{segs[0].identifier}")).json()
        assert seg == {"metadata": segs[0].to_json(), "servers": [host]}
        assert (await get("/datasources/wiki/segments/nope")).status_code == 204

        # ---- coordinator: every datasource by interval
        day0, day1 = segs[0].size, segs[1].size
        assert (await get("/intervals")).json() == {
            days[0]: {"wiki": {"size": day1, "count": 1}},
            days[1]: {"wiki": {"size": day0, "count": 1}},
        }
        first = "/intervals/2024-01-01_2024-01-02"
        assert (await get(first)).json() == {"size": day0, "count": 1}
        assert (await get(first, params={"simple": ""})).json() == {
            days[1]: {"size": day0, "count": 1}
        }
        assert (await get(first, params={"full": ""})).json() == {
            days[1]: {"wiki": {"size": day0, "count": 1}}
        }
        assert (await get("/intervals/2030-01-01_2030-01-02")).json() == {}
        assert (await get("/intervals/garbage")).status_code == 400

        # ---- coordinator: one datasource's load status
        load = "/datasources/wiki/loadstatus"
        both_days = {"forceMetadataRefresh": "false", "interval": "2024-01-01_2024-01-03"}
        assert (await get(load, params={"interval": "2024-01-01_2024-01-03"})).status_code == 400
        assert (await get(load, params=both_days)).json() == {"wiki": 100.0}
        assert (await get(load, params={**both_days, "simple": ""})).json() == {"wiki": 0}
        # the seeded _default rule asks for 2 replicas; one historical has one of each
        full_load = await get(load, params={**both_days, "full": ""})
        assert full_load.json() == {"_default_tier": {"wiki": 2}}
        # ... unless counted against the cluster: one historical can hold one replica
        cluster_view = {**both_days, "full": "", "computeUsingClusterView": ""}
        assert (await get(load, params=cluster_view)).json() == {"_default_tier": {"wiki": 0}}
        everything = await get("/loadstatus", params={"full": "", "computeUsingClusterView": ""})
        assert everything.json() == {"_default_tier": {"wiki": 0}}
        assert (await get("/loadstatus", params={"full": ""})).json() == {
            "_default_tier": {"wiki": 2}
        }
        # without an interval: the last two weeks, where nothing is
        assert (await get(load, params={"forceMetadataRefresh": "true"})).status_code == 204

        # ---- broker: datasources and their columns
        assert (await bget("/druid/v2/datasources")).json() == ["wiki"]
        dims, mets = sorted(segs[0].dimensions), sorted(segs[0].metrics)
        # no interval: the last week only, and these segments are from 2024
        assert (await bget("/druid/v2/datasources/wiki")).json() == {
            "dimensions": [],
            "metrics": [],
        }
        january = {"interval": "2024-01-01/2024-02-01"}
        cols = {"dimensions": dims, "metrics": mets}
        assert (await bget("/druid/v2/datasources/wiki", params=january)).json() == cols
        assert (await bget("/druid/v2/datasources/wiki/dimensions", params=january)).json() == dims
        assert (await bget("/druid/v2/datasources/wiki/metrics", params=january)).json() == mets
        full_cols = await bget("/druid/v2/datasources/wiki", params={**january, "full": ""})
        # the two days abut with the same columns: one interval
        assert full_cols.json() == {"2024-01-01T00:00:00.000Z/2024-01-03T00:00:00.000Z": cols}
        assert (await bget("/druid/v2/datasources/nope")).json() == {
            "dimensions": [],
            "metrics": [],
        }
        bad = await bget("/druid/v2/datasources/wiki", params={"interval": "x"})
        assert bad.status_code == 400

        # ---- broker: candidates
        located: list[dict[str, Any]] = (
            await bget(
                "/druid/v2/datasources/wiki/candidates",
                params={"intervals": "2024-01-01T12:00/2024-01-02T06:00"},
            )
        ).json()
        location = {
            "name": host,
            "host": host,
            "hostAndTlsPort": None,
            "maxSize": 10**8,
            "type": "historical",
            "tier": "_default_tier",
            "priority": 0,
        }
        assert located == [
            {
                "interval": "2024-01-01T12:00:00.000Z/2024-01-02T00:00:00.000Z",
                "version": V1,
                "partitionNumber": 0,
                "size": segs[0].size,
                "locations": [location],
            },
            {
                "interval": "2024-01-02T00:00:00.000Z/2024-01-02T06:00:00.000Z",
                "version": V1,
                "partitionNumber": 0,
                "size": segs[1].size,
                "locations": [location],
            },
        ]
        none = await bget(
            "/druid/v2/datasources/wiki/candidates",
            params={"intervals": "2024-01-01/2024-01-02", "numCandidates": 0},
        )
        assert none.json()[0]["locations"] == []
        missing = await bget("/druid/v2/datasources/wiki/candidates")
        assert missing.status_code == 400
        query = {
            "queryType": "timeseries",
            "dataSource": "wiki",
            "intervals": ["2024-01-02/2024-01-03"],
            "granularity": "all",
            "aggregations": [{"type": "count", "name": "rows"}],
        }
        for_query = await c.http.post(broker.url + "/druid/v2/candidates", json=query)
        assert [x["interval"] for x in for_query.json()] == [days[0]]
        slash = await c.http.post(broker.url + "/druid/v2/candidates/", json=query)
        assert slash.json() == for_query.json()
        assert (await c.http.post(broker.url + "/druid/v2/candidates", json={})).status_code == 400


async def test_overlord_marks_segments_as_the_web_console_asks(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        overlord = await c.start("overlord")

        async def leading() -> bool:
            return (await c.get("overlord", "/druid/indexer/v1/isLeader")).status_code == 200

        await wait_until(leading, within=20, what="overlord leadership")
        assert isinstance(overlord.service, OverlordService)
        store = overlord.service.store
        old = [make_segment(tmp_path, d) for d in range(2)]
        newer = make_segment(tmp_path, 0, V2)
        await store.insert_segments([*old, newer])
        url = overlord.url + "/druid/indexer/v1/datasources"

        async def used() -> list[str]:
            return sorted(s.identifier for s in await store.used_segments("wiki"))

        one = f"{url}/wiki/segments/{old[1].identifier}"
        assert (await c.http.delete(one)).json() == {"numChangedSegments": 1}
        assert (await c.http.delete(one)).json() == {"numChangedSegments": 0}
        assert (await c.http.post(one)).json() == {"numChangedSegments": 1}
        assert (await c.http.delete(f"{url}/wiki/segments/nonsense")).status_code == 400

        body = {"interval": "2024-01-02/2024-01-03"}
        assert (await c.http.post(f"{url}/wiki/markUnused", json=body)).json() == {
            "numChangedSegments": 1
        }
        assert (await c.http.post(f"{url}/wiki/markUsed", json=body)).json() == {
            "numChangedSegments": 1
        }
        bad = await c.http.post(f"{url}/wiki/markUsed", json={"segmentIds": []})
        assert bad.status_code == 400 and "interval" in bad.json()["errorMessage"]

        assert (await c.http.delete(f"{url}/wiki")).json() == {"numChangedSegments": 3}
        assert await used() == []
        # all used again, except day 0 of V1 that V2 overshadows
        assert (await c.http.post(f"{url}/wiki")).json() == {"numChangedSegments": 2}
        assert await used() == sorted([old[1].identifier, newer.identifier])
        ids = {"segmentIds": [old[0].identifier]}
        assert (await c.http.post(f"{url}/wiki/markUsed", json=ids)).json() == {
            "numChangedSegments": 0
        }
