"""Lookups end to end on a real cluster in this process (coordinator, one historical, a broker;
SQLite metadata, local deep storage): a lookup defined through
``/druid/coordinator/v1/lookups/config`` reaches the historical and the broker, and SQL uses it
as ``LOOKUP(...)`` (evaluated on the historical, in a dimension and in a filter) and as a
``JOIN lookup.<name>`` table (the broker's copy, broadcast in the join)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.aio import wait_until
from services.coordinator.service import CoordinatorService
from tests.component.test_kill import start_coordinator
from tests.support.cluster import cluster, sqlite_properties
from tests.support.segments import COORD, historical_props, make_segment

pytestmark = pytest.mark.slow

PAGES = {"p0": "Zero", "p1": "One"}


async def test_lookup_config_used_by_sql_lookup_and_a_lookup_join(tmp_path: Path) -> None:
    poll = {"druid.lookup.pollingPeriod": "PT0.2S"}
    props = {**sqlite_properties(tmp_path), "druid.coordinator.period": "PT1S"}
    segment = make_segment(tmp_path, 0)  # 20 rows: page p0, p1, p2 in turn; added 0..19
    async with cluster(props) as c:
        coord = await start_coordinator(c)
        assert isinstance(coord, CoordinatorService)
        h = await c.start("historical", "h", **historical_props(tmp_path, "h"), **poll)
        broker = await c.start("broker", **poll)
        assert await coord.store.insert_segments([segment]) == 1
        config = {
            "__default": {
                "pages": {
                    "version": "v1",
                    "lookupExtractorFactory": {"type": "map", "map": PAGES},
                }
            }
        }
        url = c.nodes["coordinator"].url + "/druid/coordinator/v1/lookups/config"
        assert (await c.http.post(url, json=config)).status_code == 202

        async def sql(query: str) -> Any:
            resp = await c.http.post(f"{broker.url}/druid/v2/sql", json={"query": query})
            assert resp.status_code == 200, resp.text
            return resp.json()

        async def ready() -> bool:
            for node in (h, broker):
                got = await c.http.get(node.url + "/druid/listen/v1/lookups")
                if sorted(got.json()) != ["pages"]:
                    return False
            status = (await c.get("coordinator", f"{COORD}/loadstatus")).json()
            return bool(status == {"wiki": 100.0}) and bool(await sql("SELECT COUNT(*) FROM wiki"))

        await wait_until(ready, within=40, what="the lookup on both nodes and the segment loaded")

        # LOOKUP as a GROUP BY key: an extraction dimension the historical evaluates
        got = await sql(
            "SELECT LOOKUP(page, 'pages', 'other') AS name, COUNT(*) AS c, SUM(added) AS s "
            "FROM wiki GROUP BY 1 ORDER BY 1"
        )
        assert got == [
            {"name": "One", "c": 7, "s": sum(range(1, 20, 3))},
            {"name": "Zero", "c": 7, "s": sum(range(0, 20, 3))},
            {"name": "other", "c": 6, "s": sum(range(2, 20, 3))},
        ]
        # in a filter: a virtual column over lookup() on the historical
        got = await sql("SELECT COUNT(*) AS c FROM wiki WHERE LOOKUP(page, 'pages') = 'One'")
        assert got == [{"c": 7}]

        # native: a lookup dimension spec, sent on by the broker to the historical
        native = {
            "queryType": "groupBy",
            "dataSource": "wiki",
            "intervals": ["2024-01-01/2024-01-02"],
            "granularity": "all",
            "dimensions": [
                {"type": "lookup", "dimension": "page", "outputName": "name", "name": "pages"}
            ],
            "filter": {
                "type": "selector",
                "dimension": "page",
                "value": "Zero",
                "extractionFn": {"type": "registeredLookup", "lookup": "pages"},
            },
            "aggregations": [{"type": "count", "name": "c"}],
        }
        resp = await c.http.post(f"{broker.url}/druid/v2", json=native)
        assert resp.status_code == 200, resp.text
        assert [r["event"] for r in resp.json()] == [{"name": "Zero", "c": 7}]

        # the lookup as a table and as the right side of a join
        assert sorted(
            map(tuple, (r.values() for r in await sql("SELECT * FROM lookup.pages")))
        ) == [
            ("p0", "Zero"),
            ("p1", "One"),
        ]
        got = await sql(
            "SELECT l.v AS name, COUNT(*) AS c FROM wiki LEFT JOIN lookup.pages AS l "
            "ON wiki.page = l.k GROUP BY 1 ORDER BY 1"
        )
        assert got == [{"name": None, "c": 6}, {"name": "One", "c": 7}, {"name": "Zero", "c": 7}]
        tables = await sql(
            "SELECT TABLE_NAME, IS_JOINABLE FROM INFORMATION_SCHEMA.TABLES "
            "WHERE TABLE_SCHEMA = 'lookup'"
        )
        assert tables == [{"TABLE_NAME": "pages", "IS_JOINABLE": "YES"}]

        # an unknown lookup is a 400 naming it
        resp = await c.http.post(
            f"{broker.url}/druid/v2/sql", json={"query": "SELECT LOOKUP(page, 'nope') FROM wiki"}
        )
        assert resp.status_code == 400 and "Lookup [nope] not found" in resp.text
