"""Auto-compaction on real servers: the config API (cluster config, one config per datasource,
task slots), the status and progress the duty computes, and the duty submitting a ``compact``
task to the overlord, which runs it on a peon: the compacted days end with one new segment each,
carrying the ``lastCompactionState`` the duty then counts as compacted."""

from __future__ import annotations

from pathlib import Path

from common.aio import wait_until
from common.segments.timeline import SegmentTimeline
from services.coordinator.service import CoordinatorService
from tests.component.test_kill import start_coordinator, start_overlord
from tests.support.cluster import cluster, sqlite_properties
from tests.support.segments import make_segment

COORD = "/druid/coordinator/v1"


async def test_compaction_config_api(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        await start_coordinator(c)
        url = c.nodes["coordinator"].url + COORD
        r = await c.http.get(url + "/config/compaction")
        assert r.status_code == 200 and r.json()["compactionConfigs"] == []
        assert r.json()["compactionTaskSlotRatio"] == 0.1

        body = {"dataSource": "wiki", "skipOffsetFromLatest": "PT1H", "taskPriority": 30}
        r = await c.http.post(url + "/config/compaction", json=body)
        assert r.status_code == 200 and r.content == b""
        one = (await c.http.get(url + "/config/compaction/wiki")).json()
        assert one == {
            "dataSource": "wiki",
            "taskPriority": 30,
            "inputSegmentSizeBytes": 100_000_000_000_000,
            "skipOffsetFromLatest": "PT1H",
        }
        # replacing keeps one config per datasource
        r = await c.http.post(url + "/config/compaction", json={"dataSource": "wiki"})
        configs = (await c.http.get(url + "/config/compaction")).json()["compactionConfigs"]
        assert [x["skipOffsetFromLatest"] for x in configs] == ["P1D"]

        r = await c.http.post(url + "/config/compaction", json={"dataSource": "w", "nope": 1})
        assert r.status_code == 400 and "nope" in r.json()["errorMessage"]
        r = await c.http.post(
            url + "/config/compaction/taskslots", params={"ratio": "0.5", "max": "3"}
        )
        assert r.status_code == 200
        full = (await c.http.get(url + "/config/compaction")).json()
        assert (full["compactionTaskSlotRatio"], full["maxCompactionTaskSlots"]) == (0.5, 3)
        bad = await c.http.post(url + "/config/compaction/taskslots", params={"ratio": "2"})
        assert bad.status_code == 400
        r = await c.http.post(
            url + "/config/compaction/cluster", json={"maxCompactionTaskSlots": 7}
        )
        assert r.status_code == 200
        assert (await c.http.get(url + "/config/compaction")).json()["maxCompactionTaskSlots"] == 7

        assert (await c.http.delete(url + "/config/compaction/wiki")).status_code == 200
        assert (await c.http.get(url + "/config/compaction/wiki")).status_code == 404
        assert (await c.http.delete(url + "/config/compaction/wiki")).status_code == 404
        r = await c.http.get(url + "/compaction/progress", params={"dataSource": "wiki"})
        assert r.status_code == 404


async def test_compaction_duty_status_and_submission(tmp_path: Path) -> None:
    props = {**sqlite_properties(tmp_path), "druid.coordinator.period.indexingPeriod": "PT0.5S"}
    async with cluster(props) as c:
        overlord = await start_overlord(c)
        await c.start("peon", **{"druid.worker.capacity": "2"})
        coordinator = await start_coordinator(c)
        assert isinstance(coordinator, CoordinatorService)
        segs = [make_segment(tmp_path, d) for d in range(4)]
        await overlord.store.insert_segments(segs)
        url = c.nodes["coordinator"].url + COORD
        body = {"dataSource": "wiki", "skipOffsetFromLatest": "P2D"}
        assert (await c.http.post(url + "/config/compaction", json=body)).status_code == 200

        async def compacted() -> bool:
            r = await c.http.get(url + "/compaction/status", params={"dataSource": "wiki"})
            if r.status_code != 200:
                return False
            snap = r.json()["latestStatus"][0]
            return bool(snap["intervalCountCompacted"] == 2)

        await wait_until(compacted, within=60, what="the duty's compact tasks run")
        snap = (await c.http.get(url + "/compaction/status")).json()["latestStatus"][0]
        assert snap["dataSource"] == "wiki" and snap["scheduleStatus"] == "RUNNING"
        # days 2 and 3 are within skipOffsetFromLatest (P2D); days 0 and 1 were compacted
        assert (snap["segmentCountAwaitingCompaction"], snap["segmentCountSkipped"]) == (0, 2)
        assert snap["intervalCountAwaitingCompaction"] == 0
        progress = await c.http.get(url + "/compaction/progress", params={"dataSource": "wiki"})
        assert progress.json() == {"remainingSegmentSize": 0}
        used = await overlord.store.used_segments("wiki")
        timeline = SegmentTimeline.of(used)
        visible = [s for s in used if not timeline.is_segment_overshadowed(s)]
        new = sorted((s for s in visible if s.last_compaction_state), key=lambda s: s.interval)
        assert [s.interval for s in new] == [segs[0].interval, segs[1].interval]
        assert all(s.version > segs[0].version for s in new)
        state = new[0].last_compaction_state
        assert state is not None
        assert state["partitionsSpec"] == {
            "type": "dynamic",
            "maxRowsPerSegment": 5_000_000,
            "maxTotalRows": 20_000_000,
        }
        assert state["granularitySpec"]["segmentGranularity"] == "DAY"
        assert state["dimensionsSpec"]["dimensions"] == list(segs[0].dimensions)
        assert {s.identifier for s in visible} >= {segs[2].identifier, segs[3].identifier}
