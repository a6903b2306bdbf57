"""Arrays and multi-value strings end to end on a real cluster in this process (coordinator, one
historical, a broker; SQLite metadata, local deep storage): SQL UNNEST, ARRAY_AGG, GROUP BY an
ARRAY and MV_FILTER_ONLY over a segment file with a multi-value dimension, each planned at the
broker, sent over HTTP to the historical (the unnest datasource, the expression aggregator, the
ARRAY dimension, the mv-filtered virtual column) and merged back; checked against DuckDB over
the rows the segment was written from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from common.aio import wait_until
from tests.component.test_kill import start_coordinator
from tests.support.cluster import cluster, sqlite_properties
from tests.support.segments import COORD, historical_props, make_segment

pytestmark = pytest.mark.slow

ROWS = 20
TAGS: list[list[str] | None] = [
    None if i % 5 == 4 else [f"t{i % 3}", f"t{(i + 1) % 4}"] for i in range(ROWS)
]


async def test_unnest_array_agg_and_array_groups_through_broker_and_historical(
    tmp_path: Path,
) -> None:
    props = {**sqlite_properties(tmp_path), "druid.coordinator.period": "PT1S"}
    segment = make_segment(
        tmp_path, 0, extra={"tags": pa.array(TAGS, pa.list_(pa.string()))}
    )  # 20 rows: page p0, p1, p2 in turn; added 0..19; tags two values or null
    async with cluster(props) as c:
        coord = await start_coordinator(c)
        await c.start("historical", "h", **historical_props(tmp_path, "h"))
        broker = await c.start("broker")
        assert await coord.store.insert_segments([segment]) == 1

        async def sql(query: str, **context: Any) -> Any:
            body = {"query": query, "resultFormat": "array", "context": context}
            resp = await c.http.post(f"{broker.url}/druid/v2/sql", json=body)
            assert resp.status_code == 200, resp.text
            return resp.json()

        async def loaded() -> bool:
            status = (await c.get("coordinator", f"{COORD}/loadstatus")).json()
            return bool(status == {"wiki": 100.0}) and bool(await sql("SELECT COUNT(*) FROM wiki"))

        await wait_until(loaded, within=40, what="the segment loaded and served")
        duck = duckdb.connect()
        duck.register(
            "wiki",
            pa.table(
                {
                    "page": [f"p{i % 3}" for i in range(ROWS)],
                    "added": list(range(ROWS)),
                    "tags": pa.array(TAGS, pa.list_(pa.string())),
                }
            ),
        )

        def want(query: str) -> list[list[Any]]:
            return [list(r) for r in duck.execute(query).fetchall()]

        # UNNEST: the unnest datasource, applied by the historical to its segment
        assert await sql(
            "SELECT t, COUNT(*), SUM(added) FROM wiki "
            "CROSS JOIN UNNEST(MV_TO_ARRAY(tags)) AS u(t) GROUP BY t ORDER BY t"
        ) == want(
            "SELECT t, COUNT(*), SUM(added) FROM wiki CROSS JOIN UNNEST(tags) AS u(t) "
            "GROUP BY t ORDER BY t"
        )
        # ARRAY_AGG: the expression aggregator folded on the historical, combined at the broker
        got = await sql(
            "SELECT page, ARRAY_AGG(DISTINCT t) FROM wiki "
            "CROSS JOIN UNNEST(MV_TO_ARRAY(tags)) AS u(t) GROUP BY page ORDER BY page",
            sqlStringifyArrays=False,
        )
        assert got == want(
            "SELECT page, list_sort(list_distinct(list(t))) FROM wiki "
            "CROSS JOIN UNNEST(tags) AS u(t) GROUP BY page ORDER BY page"
        )
        got = await sql("SELECT ARRAY_AGG(added), STRING_AGG(page, ',') FROM wiki WHERE added < 4")
        assert got == [["[0,1,2,3]", "p0,p1,p2,p0"]]
        # GROUP BY an ARRAY: whole arrays grouped on the historical (an ARRAY dimension)
        got = await sql(
            "SELECT MV_TO_ARRAY(tags), COUNT(*) FROM wiki GROUP BY 1 ORDER BY 1",
            sqlStringifyArrays=False,
        )
        assert got == want("SELECT tags, COUNT(*) FROM wiki GROUP BY 1 ORDER BY 1 NULLS FIRST")
        # MV_FILTER_ONLY: the mv-filtered virtual column, sent to the historical as JSON
        got = await sql(
            "SELECT MV_FILTER_ONLY(tags, ARRAY['t0', 't1']), COUNT(*) FROM wiki GROUP BY 1 "
            "ORDER BY 1"
        )
        kept = want(
            "SELECT t, COUNT(*) FROM wiki CROSS JOIN UNNEST(tags) AS u(t) "
            "WHERE t IN ('t0', 't1') GROUP BY t ORDER BY t"
        )
        no_value = sum(1 for tags in TAGS if not tags or not {"t0", "t1"} & set(tags))
        assert got == [[None, no_value], *kept]
