"""The ``compact`` task end to end: a batch datasource loaded in small segments (several per
hour) is compacted into one segment per hour, then re-compacted into one segment for the day;
the old segments are overshadowed and marked unused, the new ones carry
``lastCompactionState``, and native and SQL queries answer the same before and after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.aio import wait_until
from common.segments.segment import DataSegment
from common.segments.timeline import SegmentTimeline
from services.coordinator.service import CoordinatorService
from tests.cluster.test_batch_cluster import index_parallel, schema, sql, submit_and_wait
from tests.cluster.test_ingest_e2e import cluster_props, start_cluster
from tests.support.cluster import Cluster, cluster

pytestmark = pytest.mark.slow

DAY = "2024-01-01/2024-01-02"
SQL = (
    "SELECT TIME_FLOOR(__time, 'PT1H') AS h, page, COUNT(*) AS n, SUM(added) AS a, "
    'SUM("count") AS c FROM small GROUP BY 1, 2 ORDER BY 1, 2'
)


def rows() -> str:
    """8 rows in each of 4 hours: 3 segments an hour with maxRowsPerSegment 3."""
    return "\n".join(
        json.dumps(
            {
                "ts": f"2024-01-01T0{i % 4}:{i:02d}:00Z",
                "page": f"p{i % 3}",
                "user": f"u{i % 5}",
                "added": i,
            }
        )
        for i in range(32)
    )


async def answers(c: Cluster) -> tuple[Any, Any]:
    native = {
        "queryType": "timeseries",
        "dataSource": "small",
        "intervals": [DAY],
        "granularity": "hour",
        "aggregations": [
            {"type": "longSum", "name": "rows", "fieldName": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
            {"type": "cardinality", "name": "users", "fields": ["user"]},
        ],
    }
    r = await c.http.post(c.nodes["broker"].url + "/druid/v2", json=native)
    assert r.status_code == 200, r.text
    return r.json(), await sql(c, SQL)


async def visible(coord: CoordinatorService) -> list[DataSegment]:
    used = await coord.store.used_segments("small")
    timeline = SegmentTimeline.of(used)
    return sorted(
        (s for s in used if not timeline.is_segment_overshadowed(s)), key=lambda s: s.interval
    )


async def settle(c: Cluster, coord: CoordinatorService, count: int, before: Any) -> None:
    """Wait until only ``count`` segments are used (old ones marked unused) and the broker
    answers ``before`` again from them."""

    async def only_new() -> bool:
        return len(await coord.store.used_segments("small")) == count

    await wait_until(only_new, within=40, what="overshadowed segments marked unused")

    async def same() -> bool:
        status = (await c.get("coordinator", "/druid/coordinator/v1/loadstatus")).json()
        return status.get("small") == 100.0 and await answers(c) == before

    await wait_until(same, within=40, what="the compacted segments answer as before")


async def test_compact_small_segments_then_coarser_granularity(tmp_path: Path) -> None:
    async with cluster(cluster_props(tmp_path)) as c:
        await start_cluster(c, tmp_path)
        load = index_parallel(
            schema("small", [DAY], segmentGranularity="HOUR"),
            {"type": "inline", "data": rows()},
            {"type": "json"},
            {"partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 3}},
        )
        await submit_and_wait(c, load)
        coord = c.nodes["coordinator"].service
        assert isinstance(coord, CoordinatorService)
        small = await visible(coord)
        hours = sorted({s.interval for s in small})
        assert len(hours) == 4 and len(small) > len(hours)  # several segments per hour

        async def loaded() -> bool:
            status = (await c.get("coordinator", "/druid/coordinator/v1/loadstatus")).json()
            if status.get("small") != 100.0:
                return False
            native, rows = await answers(c)
            return sum(int(x["result"]["rows"]) for x in native) == 32 and len(rows) > 0

        await wait_until(loaded, within=40, what="small segments queryable")
        before = await answers(c)

        compact = {
            "type": "compact",
            "dataSource": "small",
            "ioConfig": {
                "type": "compact",
                "inputSpec": {"type": "interval", "interval": DAY},
            },
        }
        await submit_and_wait(c, compact)
        await settle(c, coord, len(hours), before)
        after = await visible(coord)
        assert [s.interval for s in after] == hours  # one segment per hour
        assert all(s.version > max(x.version for x in small) for s in after)
        state = after[0].last_compaction_state
        assert state is not None
        assert state["granularitySpec"]["segmentGranularity"] == "HOUR"
        assert state["dimensionsSpec"] == {"dimensions": ["page", "user"]}
        assert state["metricsSpec"] == [
            {"type": "longSum", "name": "count", "fieldName": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
        ]
        assert set(state) == {
            "partitionsSpec",
            "dimensionsSpec",
            "metricsSpec",
            "transformSpec",
            "indexSpec",
            "granularitySpec",
        }

        by_day = dict(compact, granularitySpec={"segmentGranularity": "DAY"})
        await submit_and_wait(c, by_day)
        await settle(c, coord, 1, before)
        (whole,) = await visible(coord)
        assert str(whole.interval) == "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"
        assert whole.last_compaction_state is not None
        assert whole.last_compaction_state["granularitySpec"]["segmentGranularity"] == "DAY"
