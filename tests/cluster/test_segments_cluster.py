"""End to end: segments in deep storage and druid_segments end up where their rules say.

One coordinator and two historicals in this process (real uvicorn servers, SQLite metadata, local
deep storage): replicas per rule, overshadowing by a newer version, a historical leaving (its
segments move to the other), and a drop rule (dropped and marked unused).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.aio import wait_until
from common.metadata import MetadataStore
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from services.coordinator.service import CoordinatorService
from services.historical.service import HistoricalService
from tests.support.cluster import Cluster, cluster, sqlite_properties
from tests.support.segments import COORD, V1, V2, make_segment, start_cluster

pytestmark = pytest.mark.slow


def holders(c: Cluster, seg: DataSegment) -> set[str]:
    result = set()
    for name, node in c.nodes.items():
        service = node.service
        if isinstance(service, HistoricalService) and service.announcer.is_served(seg.id):
            result.add(name)
    return result


async def used_ids(store: MetadataStore) -> set[str]:
    return {s.identifier for s in await store.used_segments("wiki")}


async def test_rules_replicas_overshadowing_leaving_historical_and_drop_rule(
    tmp_path: Path,
) -> None:
    props = {
        **sqlite_properties(tmp_path),
        "druid.coordinator.period": "PT2S",
        "druid.segmentCache.dropSegmentDelayMillis": "100",
    }
    async with cluster(props) as c:
        coord, _, _ = await start_cluster(c, tmp_path)
        service = coord.service
        assert isinstance(service, CoordinatorService)
        store = service.store
        day = [make_segment(tmp_path, d) for d in range(4)]
        # days 2 and 3: one replica; the rest: the _default rule's two
        one_replica = {
            "type": "loadByInterval",
            "interval": str(Interval(day[2].interval.start, day[3].interval.end)),
            "tieredReplicants": {"_default_tier": 1},
        }
        resp = await c.http.post(f"{coord.url}{COORD}/rules/wiki", json=[one_replica])
        assert resp.status_code == 200, resp.text
        assert await store.insert_segments(day) == 4

        def placed() -> bool:
            return all(holders(c, s) == {"h1", "h2"} for s in day[:2]) and all(
                len(holders(c, s)) == 1 for s in day[2:]
            )

        await wait_until(placed, within=30, what="segments placed per rule")

        async def fully_loaded() -> bool:
            status = (await c.get("coordinator", f"{COORD}/loadstatus")).json()
            return bool(status == {"wiki": 100.0})

        # the coordinator's inventory hears of the loads by long polling, a moment later
        await wait_until(fully_loaded, within=10, what="loadstatus 100%")
        handoff = await c.get(
            "coordinator",
            f"{COORD}/datasources/wiki/handoffComplete",
            params={"interval": str(day[0].interval), "partitionNumber": 0, "version": V1},
        )
        assert handoff.json() is True
        served = (await c.get("coordinator", f"{COORD}/datasources/wiki/segments")).json()
        assert sorted(served) == sorted(s.identifier for s in day)

        # a newer version of day 1 overshadows the old one: marked unused, then dropped
        newer = make_segment(tmp_path, 1, V2, rows=25)
        await store.insert_segments([newer])

        async def replaced() -> bool:
            return (
                holders(c, newer) == {"h1", "h2"}
                and not holders(c, day[1])
                and day[1].identifier not in await used_ids(store)
            )

        await wait_until(replaced, within=30, what="old version replaced")

        # the historical holding day 2 leaves: with 2 replicas wanted and one historical left,
        # the other ends up holding every used segment
        (leaving,) = holders(c, day[2])
        staying = "h1" if leaving == "h2" else "h2"
        await c.stop(leaving)
        wanted = [day[0], newer, day[2], day[3]]
        await wait_until(
            lambda: all(holders(c, s) == {staying} for s in wanted),
            within=30,
            what="segments re-assigned to the remaining historical",
        )

        # a drop rule for days 2-3: dropped from the historical and marked unused
        drop = {"type": "dropByInterval", "interval": one_replica["interval"]}
        resp = await c.http.post(f"{coord.url}{COORD}/rules/wiki", json=[drop])
        assert resp.status_code == 200

        async def dropped() -> bool:
            return (
                not holders(c, day[2])
                and not holders(c, day[3])
                and await used_ids(store) == {day[0].identifier, newer.identifier}
            )

        await wait_until(dropped, within=30, what="drop rule applied")
        assert holders(c, day[0]) == {staying}
        status = (await c.get("coordinator", f"{COORD}/loadstatus", params={"full": ""})).json()
        assert status == {"_default_tier": {"wiki": 2}}  # day 0 and the new day 1 miss one
