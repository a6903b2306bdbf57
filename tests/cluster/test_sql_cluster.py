"""Druid SQL on a real cluster in this process: coordinator, overlord, two historicals and a
broker (SQLite metadata, local deep storage). Segments are published to the metadata store, the
coordinator has them loaded (two replicas by the default rule), and the broker answers SQL over
them (checked against DuckDB) and over the sys tables: sys.segments (the coordinator's used
segments joined with the broker's view), sys.server_segments, sys.servers (leaders marked),
sys.tasks and sys.supervisors (an overlord with none: empty, Druid's columns)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from common.aio import wait_until
from common.query.sql.catalog import SYSTEM_TABLES
from services.coordinator.service import CoordinatorService
from tests.support.cluster import cluster, sqlite_properties
from tests.support.segments import COORD, make_segment, start_cluster

pytestmark = pytest.mark.slow


async def test_sql_and_sys_tables_on_a_cluster(tmp_path: Path) -> None:
    props = {**sqlite_properties(tmp_path), "druid.coordinator.period": "PT1S"}
    days = [make_segment(tmp_path, d) for d in range(3)]
    async with cluster(props) as c:
        coord, h1, h2 = await start_cluster(c, tmp_path)
        await c.start("overlord")
        broker = await c.start("broker")
        service = coord.service
        assert isinstance(service, CoordinatorService)
        assert await service.store.insert_segments(days) == 3

        async def sql(query: str, **kw: Any) -> Any:
            resp = await c.http.post(f"{broker.url}/druid/v2/sql", json={"query": query, **kw})
            assert resp.status_code == 200, resp.text
            return resp.json()

        async def replicated() -> bool:
            status = (await c.get("coordinator", f"{COORD}/loadstatus")).json()
            if status != {"wiki": 100.0}:
                return False
            rows = await sql("SELECT segment_id, num_replicas FROM sys.segments")
            return len(rows) == 3 and all(r["num_replicas"] == 2 for r in rows)

        await wait_until(replicated, within=40, what="every segment on both historicals")

        # Data: the same SQL as DuckDB over the rows the segments were written from.
        rows = [
            {"__time": d.interval.start + i * 1000, "page": f"p{i % 3}", "added": i}
            for d in days
            for i in range(20)
        ]
        con = duckdb.connect()
        con.register("wiki", pa.Table.from_pylist(rows))
        got = await sql(
            "SELECT page, COUNT(*) AS c, SUM(added) AS s FROM wiki GROUP BY page ORDER BY page",
            resultFormat="array",
        )
        want = con.execute(
            "SELECT page, COUNT(*), SUM(added) FROM wiki GROUP BY page ORDER BY page"
        ).fetchall()
        assert [tuple(r) for r in got] == [tuple(r) for r in want]
        got = await sql(
            "SELECT FLOOR(__time TO DAY) AS d, MAX(added) AS m FROM wiki "
            "WHERE page <> 'p0' GROUP BY 1",
            resultFormat="array",
        )
        assert got == [
            ["2024-01-01T00:00:00.000Z", 19],
            ["2024-01-02T00:00:00.000Z", 19],
            ["2024-01-03T00:00:00.000Z", 19],
        ]

        # sys.segments: published, available, active, two replicas, Druid's JSON columns.
        segs = await sql("SELECT * FROM sys.segments ORDER BY segment_id")
        assert [s["segment_id"] for s in segs] == sorted(d.identifier for d in days)
        for s, d in zip(segs, sorted(days, key=lambda d: d.identifier), strict=True):
            assert list(s) == list(SYSTEM_TABLES["SYS.SEGMENTS"])
            assert s["datasource"] == "wiki" and s["version"] == d.version
            assert (s["start"], s["end"]) == (
                str(d.interval).split("/")[0],
                str(d.interval).split("/")[1],
            )
            assert s["size"] == d.size and s["size"] > 0
            assert (s["is_published"], s["is_available"], s["is_active"]) == (1, 1, 1)
            assert (s["is_realtime"], s["is_overshadowed"]) == (0, 0)
            assert s["shard_spec"].startswith('{"type":"numbered"')
        per_ds = await sql(
            "SELECT datasource, COUNT(*) AS n, SUM(num_replicas) AS r FROM sys.segments "
            "WHERE is_active = 1 GROUP BY datasource"
        )
        assert per_ds == [{"datasource": "wiki", "n": 3, "r": 6}]

        # sys.server_segments: each historical serves every segment.
        pairs = await sql(
            "SELECT server, COUNT(*) AS n FROM sys.server_segments GROUP BY server ORDER BY server"
        )
        assert pairs == sorted(
            [{"server": h.settings.host_and_port, "n": 3} for h in (h1, h2)],
            key=lambda r: r["server"],
        )

        # sys.servers: every role, the leaders marked.
        async def overlord_leads() -> bool:
            r = await c.get("overlord", "/druid/indexer/v1/isLeader")
            return r.status_code == 200

        await wait_until(overlord_leads, within=20, what="overlord leadership")
        servers = await sql("SELECT server, server_type, is_leader, tier FROM sys.servers")
        by_type = {s["server_type"]: s for s in servers if s["server_type"] != "historical"}
        assert by_type["coordinator"]["is_leader"] == 1
        assert by_type["coordinator"]["server"] == coord.settings.host_and_port
        assert by_type["overlord"]["is_leader"] == 1
        assert by_type["broker"]["is_leader"] is None
        hist = [s for s in servers if s["server_type"] == "historical"]
        assert sorted(s["server"] for s in hist) == sorted(
            h.settings.host_and_port for h in (h1, h2)
        )
        assert all(s["tier"] == "_default_tier" for s in hist)

        # sys.tasks / sys.supervisors: an overlord with none; Druid's columns in the header.
        for table in ("TASKS", "SUPERVISORS"):
            got = await sql(f"SELECT * FROM sys.{table.lower()}", resultFormat="array", header=True)
            assert got == [list(SYSTEM_TABLES[f"SYS.{table}"])]
