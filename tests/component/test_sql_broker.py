"""Druid SQL over HTTP on a real broker (real discovery, inventory long polls, scatter-gather)
over an in-memory data node: result formats byte for byte with Druid's Content-Types and headers,
parameters, EXPLAIN, INFORMATION_SCHEMA as Superset/pydruid query it, sys.servers and
sys.server_segments, cancellation by sqlQueryId, and 400s that leave the broker serving."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest

from common.aio import wait_until
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from tests.support.sqlenv import MemoryDataNode, broker_over

pytestmark = pytest.mark.slow

DAY = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start
V1 = "2024-02-01T00:00:00.000Z"
ROWS = 6


def day_segment(d: int) -> tuple[DataSegment, pa.Table]:
    iv = Interval(T0 + d * DAY, T0 + (d + 1) * DAY)
    table = pa.table(
        {
            "__time": pa.array([iv.start + i * 3_600_000 for i in range(ROWS)], pa.int64()),
            "page": [f"p{i % 2}" for i in range(ROWS)],
            "added": pa.array([d * 10 + i for i in range(ROWS)], pa.int64()),
            "ratio": pa.array([i / 4 for i in range(ROWS)], pa.float64()),
        }
    )
    seg = DataSegment(
        dataSource="wiki", interval=iv, version=V1, dimensions=["page"], metrics=["added"]
    )
    return seg, table


@contextlib.asynccontextmanager
async def environment(tmp: Path) -> AsyncIterator[tuple[httpx.AsyncClient, MemoryDataNode, str]]:
    async def ready(http: httpx.AsyncClient, url: str) -> bool:
        r = await http.post(f"{url}/druid/v2/sql", json={"query": "SELECT COUNT(*) AS n FROM wiki"})
        return r.status_code == 200 and r.json() == [{"n": 2 * ROWS}]

    async with broker_over(tmp, [day_segment(d) for d in range(2)], ready) as env:
        yield env


GROUPED = (
    "SELECT page, COUNT(*) AS c, SUM(ratio) AS r FROM wiki "
    "WHERE __time < TIMESTAMP '2024-01-02' GROUP BY page ORDER BY page"
)
# day 0: p0 rows i=0,2,4 (ratio 0, 0.5, 1.0); p1 rows i=1,3,5 (ratio 0.25, 0.75, 1.25)
EXPECTED: dict[tuple[str, bool], bytes] = {
    ("object", False): b'[{"page":"p0","c":3,"r":1.5},{"page":"p1","c":3,"r":2.25}]\n',
    ("object", True): b'[{"page":{"type":"STRING","sqlType":"VARCHAR"},'
    b'"c":{"type":"LONG","sqlType":"BIGINT"},"r":{"type":"DOUBLE","sqlType":"DOUBLE"}},'
    b'{"page":"p0","c":3,"r":1.5},{"page":"p1","c":3,"r":2.25}]\n',
    ("array", False): b'[["p0",3,1.5],["p1",3,2.25]]\n',
    ("array", True): b'[["page","c","r"],["STRING","LONG","DOUBLE"],["VARCHAR","BIGINT","DOUBLE"],'
    b'["p0",3,1.5],["p1",3,2.25]]\n',
    ("objectLines", False): b'{"page":"p0","c":3,"r":1.5}\n{"page":"p1","c":3,"r":2.25}\n\n',
    ("arrayLines", False): b'["p0",3,1.5]\n["p1",3,2.25]\n\n',
    ("arrayLines", True): b'["page","c","r"]\n["STRING","LONG","DOUBLE"]\n'
    b'["VARCHAR","BIGINT","DOUBLE"]\n["p0",3,1.5]\n["p1",3,2.25]\n\n',
    ("csv", False): b"p0,3,1.5\np1,3,2.25\n\n",
    ("csv", True): b"page,c,r\nSTRING,LONG,DOUBLE\nVARCHAR,BIGINT,DOUBLE\np0,3,1.5\np1,3,2.25\n\n",
}
CONTENT_TYPES = {
    "object": "application/json",
    "array": "application/json",
    "objectLines": "text/plain",
    "arrayLines": "text/plain",
    "csv": "text/csv",
}


async def sql(http: httpx.AsyncClient, url: str, query: str, **kw: Any) -> httpx.Response:
    return await http.post(f"{url}/druid/v2/sql", json={"query": query, **kw})


def rows(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_formats_headers_explain_catalog_and_errors(tmp_path: Path) -> None:
    async with environment(tmp_path) as (http, node, url):
        for (fmt, header), body in EXPECTED.items():
            extra = {"header": True, "typesHeader": True, "sqlTypesHeader": True} if header else {}
            resp = await sql(
                http, url, GROUPED, resultFormat=fmt, context={"sqlQueryId": f"q-{fmt}"}, **extra
            )
            assert resp.status_code == 200, resp.text
            assert resp.content == body, (fmt, header, resp.content)
            assert resp.headers["Content-Type"].split(";")[0] == CONTENT_TYPES[fmt]
            assert resp.headers["X-Druid-SQL-Query-Id"] == f"q-{fmt}"
            assert resp.headers.get("X-Druid-SQL-Header-Included") == ("yes" if header else None)
        # Without a sqlQueryId the broker makes one up and says which.
        resp = await sql(http, url, GROUPED)
        assert len(resp.headers["X-Druid-SQL-Query-Id"]) == 36
        # header alone: object formats name the columns with null, array formats one row.
        resp = await sql(http, url, GROUPED, resultFormat="objectLines", header=True)
        assert resp.content.splitlines()[0] == b'{"page":null,"c":null,"r":null}'

        # Parameters, in order, typed.
        resp = await sql(
            http,
            url,
            "SELECT COUNT(*) AS n, MAX(added) AS m FROM wiki WHERE page = ? AND added < ?",
            parameters=[{"type": "VARCHAR", "value": "p1"}, {"type": "BIGINT", "value": 13}],
        )
        assert rows(resp) == [{"n": 4, "m": 11}]
        # Scan with expressions, time text as Druid's ISO.
        resp = await sql(
            http,
            url,
            "SELECT __time, UPPER(page) AS p, added * 2 AS a2 FROM wiki "
            "WHERE added >= 14 ORDER BY __time DESC LIMIT 2",
            resultFormat="array",
        )
        assert rows(resp) == [
            ["2024-01-02T05:00:00.000Z", "P1", 30],
            ["2024-01-02T04:00:00.000Z", "P0", 28],
        ]

        # EXPLAIN PLAN FOR: the native query.
        plan = rows(await sql(http, url, f"EXPLAIN PLAN FOR {GROUPED}"))
        assert list(plan[0]) == ["PLAN", "RESOURCES", "ATTRIBUTES"]
        native = orjson.loads(plan[0]["PLAN"])[0]["query"]
        assert native["queryType"] == "groupBy"
        assert native["dataSource"] == {"type": "table", "name": "wiki"}
        assert orjson.loads(plan[0]["RESOURCES"]) == [{"name": "wiki", "type": "DATASOURCE"}]

        # What Superset / pydruid send to list schemas, tables and columns.
        schemata = rows(await sql(http, url, "SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA"))
        assert {"druid", "sys", "INFORMATION_SCHEMA"} <= {r["SCHEMA_NAME"] for r in schemata}
        tables = rows(
            await sql(
                http,
                url,
                "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'druid'",
            )
        )
        assert tables == [{"TABLE_NAME": "wiki"}]
        columns = rows(
            await sql(
                http,
                url,
                "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS "
                "WHERE TABLE_NAME = 'wiki'",
                resultFormat="array",
            )
        )
        assert columns == [
            ["__time", "TIMESTAMP"],
            ["added", "BIGINT"],
            ["page", "VARCHAR"],
            ["ratio", "DOUBLE"],
        ]
        sys_tables = rows(
            await sql(
                http,
                url,
                "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'sys' "
                "ORDER BY TABLE_NAME",
                resultFormat="array",
            )
        )
        assert [r[0] for r in sys_tables] == [
            "segments",
            "server_segments",
            "servers",
            "supervisors",
            "tasks",
        ]

        # sys.servers: every discovered node; the data node with its sizes.
        servers = rows(
            await sql(
                http,
                url,
                "SELECT server, server_type, tier, max_size, is_leader FROM sys.servers "
                "ORDER BY server_type",
            )
        )
        data_host = node.settings.host_and_port
        assert {
            "server": data_host,
            "server_type": "historical",
            "tier": "_default_tier",
            "max_size": 10**9,
            "is_leader": None,
        } in servers
        assert "broker" in {s["server_type"] for s in servers}
        pairs = rows(
            await sql(
                http,
                url,
                "SELECT server, COUNT(*) AS n FROM sys.server_segments GROUP BY server",
            )
        )
        assert pairs == [{"server": data_host, "n": 2}]

        # Errors: Druid's JSON, 400, and the broker keeps serving.
        sql_error = "druidException"  # Druid's InvalidSqlInput (ErrorResponse shape)
        bad: list[tuple[dict[str, Any], str]] = [
            ({"query": "SELEC page FROM wiki"}, sql_error),
            ({"query": "SELECT page FROM wiki WHERE"}, sql_error),
            ({"query": "SELECT page,, FROM wiki"}, sql_error),
            ({"query": ""}, sql_error),
            ({"query": "SELECT ? FROM wiki"}, sql_error),
            ({"query": "SELECT nope FROM wiki"}, sql_error),
            ({"query": "SELECT * FROM missing_table"}, sql_error),
            ({"query": "SELECT page FROM wiki ORDER BY added"}, sql_error),
            (
                {"query": "SELECT a.page FROM wiki a JOIN wiki b ON a.page = b.page"},
                sql_error,
            ),
            ({"query": "SELECT page FROM wiki", "resultFormat": "xml"}, "Invalid input"),
            ({"nope": 1}, "Json parse failed"),
        ]
        for body, code in bad:
            resp = await http.post(f"{url}/druid/v2/sql", json=body)
            assert resp.status_code == 400, (body, resp.text)
            err = resp.json()
            assert err["error"] == code, (body, err)
            if code == sql_error:
                assert set(err) == {
                    "error",
                    "errorCode",
                    "persona",
                    "category",
                    "errorMessage",
                    "context",
                }
                assert err["errorCode"] == "invalidInput" and err["persona"] == "USER"
                assert err["context"]["sourceType"] == "sql"
                assert "sqlglot" not in err["errorMessage"]
            else:
                assert set(err) == {"error", "errorMessage", "errorClass", "host"}
        resp = await http.post(f"{url}/druid/v2/sql", json={"query": "SELECT page,, FROM wiki"})
        assert resp.json()["errorMessage"] == (
            "Received an unexpected token [,] (line [1], column [13])"
        )
        resp = await http.post(f"{url}/druid/v2/sql", content=b"{not json")
        assert resp.status_code == 400 and resp.json()["error"] == "Json parse failed"
        assert rows(await sql(http, url, "SELECT COUNT(*) AS n FROM wiki")) == [{"n": 2 * ROWS}]


async def test_delete_cancels_a_running_sql_query(tmp_path: Path) -> None:
    async with environment(tmp_path) as (http, node, url):
        assert (await http.delete(f"{url}/druid/v2/sql/never-ran")).status_code == 404
        node.gate.clear()
        reads = node.reads
        pending = asyncio.create_task(
            sql(http, url, "SELECT SUM(added) FROM wiki", context={"sqlQueryId": "slow-sql"})
        )
        await wait_until(lambda: node.reads > reads, within=5, what="the query to reach the node")
        assert (await http.delete(f"{url}/druid/v2/sql/slow-sql")).status_code == 202
        resp = await pending
        assert resp.status_code == 500 and resp.json()["error"] == "Query cancelled", resp.text
        node.gate.set()
        assert rows(await sql(http, url, "SELECT SUM(added) AS s FROM wiki")) == [
            {"s": sum(range(6)) + sum(range(10, 16))}
        ]


async def test_timestamps_context_keys_and_subqueries_over_http(tmp_path: Path) -> None:
    async with environment(tmp_path) as (http, _node, url):
        # MIN/MAX(__time) are TIMESTAMPs: ISO text, TIMESTAMP in the SQL types header.
        resp = await sql(
            http,
            url,
            "SELECT MIN(__time) AS lo, MAX(__time) AS hi, COUNT(*) AS n FROM wiki",
            resultFormat="csv",
            header=True,
            sqlTypesHeader=True,
        )
        lines = resp.text.splitlines()
        assert lines[:2] == ["lo,hi,n", "TIMESTAMP,TIMESTAMP,BIGINT"]
        lo, hi, n = lines[2].split(",")
        assert n == "12" and lo.startswith("2024-01-01T") and lo.endswith(".000Z")
        assert hi.startswith("2024-01-02T") and hi.endswith(".000Z")

        at = {"sqlCurrentTimestamp": "2024-01-02T03:00:00Z"}
        text = "SELECT COUNT(*) AS n FROM wiki WHERE __time >= CURRENT_TIMESTAMP - INTERVAL '1' DAY"
        assert rows(await sql(http, url, text, context=at)) == [{"n": 9}]
        tz = {"sqlTimeZone": "America/Los_Angeles"}
        first = "SELECT __time FROM wiki ORDER BY __time LIMIT 1"
        assert rows(await sql(http, url, first, context=tz)) == [
            {"__time": "2023-12-31T16:00:00.000-08:00"}
        ]
        assert rows(await sql(http, url, "SELECT 1 + 1")) == [{"EXPR$0": 2}]

        nested = (
            "SELECT COUNT(*) AS n FROM (SELECT page, COUNT(*) AS c FROM wiki GROUP BY page) "
            "WHERE c = 6"
        )
        assert rows(await sql(http, url, nested)) == [{"n": 2}]
        assert rows(
            await sql(
                http,
                url,
                "SELECT SUM(added) AS s FROM wiki WHERE page IN "
                "(SELECT page FROM wiki WHERE added = 13)",
            )
        ) == [{"s": sum(d * 10 + i for d in range(2) for i in (1, 3, 5))}]
        resp = await sql(http, url, nested, context={"maxSubqueryRows": 1})
        assert resp.status_code == 400
        assert resp.json()["error"] == "Resource limit exceeded"
        assert "beyond maximum[1] rows" in resp.json()["errorMessage"]


async def test_missing_segments_fail_the_sql_query_unless_partial_results(tmp_path: Path) -> None:
    """A segment the broker sees announced but no server can read (moved, dropped mid-query) is
    not silently left out of an SQL answer: Druid's SegmentMissingException, after the retry."""
    async with environment(tmp_path) as (http, node, url):
        total = "SELECT COUNT(*) AS n, SUM(added) AS s FROM wiki"
        nested = (
            "SELECT COUNT(*) AS pages, SUM(s) AS s FROM "
            "(SELECT page, SUM(added) AS s FROM wiki GROUP BY page)"
        )
        full = [{"n": 2 * ROWS, "s": sum(range(6)) + sum(range(10, 16))}]
        assert rows(await sql(http, url, total)) == full
        seg, table = day_segment(1)
        node.open.pop(seg.id)  # still announced, no longer readable
        reads = node.reads
        for query in (total, nested):
            resp = await sql(http, url, query)
            assert resp.status_code == 500, resp.text
            body = resp.json()
            assert body["errorClass"] == "org.apache.druid.query.SegmentMissingException"
            assert body["errorMessage"] == (
                "No results found for segments[[SegmentDescriptor{interval="
                f"{seg.interval}, version='{V1}', partitionNumber=0}}]]"
            )
        assert node.reads > reads
        # returnPartialResults: the answer without the missing segment, as Druid's.
        partial = {"returnPartialResults": True}
        assert rows(await sql(http, url, total, context=partial)) == [{"n": ROWS, "s": 15}]
        assert rows(await sql(http, url, nested, context=partial)) == [{"pages": 2, "s": 15}]
        node.serve(seg, table)
        assert rows(await sql(http, url, total)) == full
