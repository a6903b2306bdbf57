"""Native queries through a real broker over two real historicals.

Segments are pushed to local deep storage and loaded through each historical's load queue
(``/druid-internal/v1/segments/changeRequests``): several days, one of them overshadowed by a
newer version, one with two partitions on different historicals, one replicated. Every query type
is compared with DuckDB over the concatenated visible rows (the overshadowed version excluded).
Then one historical stops: replicated segments still answer in full, the others are reported
in ``missingSegments``.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest

from common.aio import wait_until
from common.query.datanode import segment_lookup
from common.query.http import RESPONSE_CONTEXT_HEADER, data_node_query_router
from common.segments.deep_storage import DeepStorage
from common.segments.format import write_parquet
from common.segments.intervals import Interval
from common.segments.isotime import format_iso
from common.segments.segment import DataSegment
from common.serverview.changes import SegmentChangeRequest as Req
from tests.support.cluster import Cluster, Node, cluster, sqlite_properties

pytestmark = pytest.mark.slow

DAY = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start
V1, V2 = "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"
SEGMENTS = "/druid-internal/v1/segments"
COUNTRIES = ["US", "FR", "DE", None]


def make_rows(day: int, n: int, seed: int) -> pa.Table:
    rng = random.Random(seed)
    start = T0 + day * DAY
    times = sorted(rng.sample(range(DAY), n))
    return pa.table(
        {
            "__time": pa.array([start + t for t in times], pa.int64()),
            "country": [rng.choice(COUNTRIES) for _ in range(n)],
            "page": [f"p{rng.randrange(20):02d}" for _ in range(n)],
            "tags": [rng.sample(["a", "b", "c", "d"], rng.randint(1, 2)) for _ in range(n)],
            "added": pa.array([rng.randrange(1000) for _ in range(n)], pa.int64()),
            "delta": pa.array(
                [None if rng.random() < 0.1 else rng.uniform(-5, 5) for _ in range(n)],
                pa.float64(),
            ),
        }
    )


def push(tmp: Path, table: pa.Table, day: int, version: str, part: int, parts: int) -> DataSegment:
    iv = Interval(T0 + day * DAY, T0 + (day + 1) * DAY)
    src = tmp / f"src-{day}-{version[:7]}-{part}.parquet"
    info = write_parquet(table, src, iv)
    seg = DataSegment(
        dataSource="events",
        interval=iv,
        version=version,
        dimensions=info.dimensions,
        metrics=info.metrics,
        shardSpec={"type": "numbered", "partitionNum": part, "partitions": parts},
    )
    return DeepStorage("local", storage_directory=str(tmp / "deep")).push(seg, src)


async def load(c: Cluster, node: Node, segments: list[DataSegment]) -> None:
    """POST the batch until every load is done, as the coordinator's load queue does."""
    pending = {str(s.id): Req.load(s) for s in segments}
    while pending:
        resp = await c.http.post(
            f"{node.url}{SEGMENTS}/changeRequests?timeout=5000",
            json=[r.to_json() for r in pending.values()],
        )
        assert resp.status_code in (200, 204), resp.text
        for item in resp.json() if resp.status_code == 200 else []:
            state = item["status"]["state"]
            assert state != "FAILED", item
            if state == "SUCCESS":
                pending.pop(item["request"]["identifier"], None)


def mount_query_router(node: Node) -> None:
    """Serve /druid/v2 on a historical whose app does not mount it yet."""
    if any(getattr(r, "path", "") == "/druid/v2" for r in node.app.routes):
        return
    registry = node.service.registry  # type: ignore[attr-defined]
    getter = segment_lookup(lambda: registry.segments, registry.get_segment)
    node.app.include_router(data_node_query_router(getter, node.settings.host_and_port))


def historical_props(tmp: Path, name: str) -> dict[str, str]:
    return {
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(tmp / f"cache-{name}"), "maxSize": 10**9}]
        ),
        "druid.segmentCache.dropSegmentDelayMillis": "100",
    }


def iso(ms: int) -> str:
    return format_iso(ms)


def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def rows_close(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want, strict=True):
        assert all(close(x, y) for x, y in zip(g, w, strict=True)), (g, w)


async def test_queries_match_duckdb_then_survive_a_lost_historical(tmp_path: Path) -> None:
    day0 = make_rows(0, 300, 1)
    day1_old = make_rows(1, 200, 2)
    day1_new = make_rows(1, 250, 3)
    day2_p0, day2_p1 = make_rows(2, 150, 4), make_rows(2, 180, 5)
    day3 = make_rows(3, 220, 6)
    s0 = push(tmp_path, day0, 0, V1, 0, 1)
    s1_old = push(tmp_path, day1_old, 1, V1, 0, 1)
    s1_new = push(tmp_path, day1_new, 1, V2, 0, 1)
    s2_p0 = push(tmp_path, day2_p0, 2, V1, 0, 2)
    s2_p1 = push(tmp_path, day2_p1, 2, V1, 1, 2)
    s3 = push(tmp_path, day3, 3, V1, 0, 1)
    visible = pa.concat_tables([day0, day1_new, day2_p0, day2_p1, day3])
    con = duckdb.connect()
    con.register("events", visible)

    async with cluster(sqlite_properties(tmp_path)) as c:
        h1 = await c.start("historical", "h1", **historical_props(tmp_path, "h1"))
        h2 = await c.start("historical", "h2", **historical_props(tmp_path, "h2"))
        mount_query_router(h1)
        mount_query_router(h2)
        await load(c, h1, [s0, s1_new, s2_p0])
        await load(c, h2, [s1_old, s1_new, s2_p1, s3])
        broker = await c.start("broker")

        async def query(body: dict[str, Any]) -> Any:
            resp = await c.http.post(f"{broker.url}/druid/v2", json=body)
            assert resp.status_code == 200, resp.text
            return resp.json()

        def boundary_ok() -> Any:
            async def check() -> bool:
                r = await c.http.post(
                    f"{broker.url}/druid/v2",
                    json={
                        "queryType": "timeseries",
                        "dataSource": "events",
                        "intervals": ["2024-01-01/2024-01-05"],
                        "aggregations": [{"type": "count", "name": "n"}],
                    },
                )
                rows = r.json() if r.status_code == 200 else []
                return bool(rows) and rows[0]["result"]["n"] == visible.num_rows

            return check

        await wait_until(boundary_ok(), within=30, what="the broker to see every segment")
        base = {"dataSource": "events", "intervals": ["2024-01-01/2024-01-05"]}

        # timeseries by day, filtered, several aggregators
        ts = await query(
            {
                **base,
                "queryType": "timeseries",
                "granularity": "day",
                "filter": {"type": "in", "dimension": "country", "values": ["US", "FR"]},
                "aggregations": [
                    {"type": "count", "name": "n"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
                    {"type": "doubleMax", "name": "maxDelta", "fieldName": "delta"},
                    {"type": "longMin", "name": "minAdded", "fieldName": "added"},
                ],
                "postAggregations": [
                    {
                        "type": "arithmetic",
                        "name": "avg",
                        "fn": "/",
                        "fields": [
                            {"type": "fieldAccess", "fieldName": "added"},
                            {"type": "fieldAccess", "fieldName": "n"},
                        ],
                    }
                ],
            }
        )
        want = con.execute(
            f"""SELECT (__time // {DAY}) * {DAY} AS b, count(*), sum(added), sum(delta),
                       max(delta), min(added), sum(added) / count(*)
                FROM events WHERE country IN ('US', 'FR') GROUP BY b ORDER BY b"""
        ).fetchall()
        got = [
            (
                r["timestamp"],
                r["result"]["n"],
                r["result"]["added"],
                r["result"]["delta"],
                r["result"]["maxDelta"],
                r["result"]["minAdded"],
                r["result"]["avg"],
            )
            for r in ts
        ]
        rows_close(got, [(iso(w[0]), *w[1:]) for w in want])

        # timeseries by hour, numeric bound filter, empty buckets skipped
        hourly = await query(
            {
                **base,
                "queryType": "timeseries",
                "granularity": "hour",
                "context": {"skipEmptyBuckets": True},
                "filter": {
                    "type": "bound",
                    "dimension": "added",
                    "lower": "900",
                    "ordering": "numeric",
                },
                "aggregations": [{"type": "count", "name": "n"}],
            }
        )
        want = con.execute(
            """SELECT (__time // 3600000) * 3600000 AS b, count(*) FROM events
                WHERE added >= 900 GROUP BY b ORDER BY b"""
        ).fetchall()
        assert [(r["timestamp"], r["result"]["n"]) for r in hourly] == [
            (iso(b), n) for b, n in want
        ]
        assert len(hourly) < 96  # some hours were empty and skipped

        # topN with a not filter (nulls do not match, three-valued logic)
        top = await query(
            {
                **base,
                "queryType": "topN",
                "granularity": "all",
                "dimension": "page",
                "metric": "added",
                "threshold": 5,
                "filter": {
                    "type": "not",
                    "field": {"type": "selector", "dimension": "country", "value": "DE"},
                },
                "aggregations": [{"type": "longSum", "name": "added", "fieldName": "added"}],
            }
        )
        want = con.execute(
            """SELECT page, sum(added) AS s FROM events WHERE country <> 'DE'
               GROUP BY page ORDER BY s DESC, page LIMIT 5"""
        ).fetchall()
        assert [(r["page"], r["added"]) for r in top[0]["result"]] == want
        # granularity all: the query interval clipped to the data, i.e. the first row (Druid)
        first = con.execute("SELECT min(__time) FROM events").fetchone()
        assert first is not None and top[0]["timestamp"] == iso(first[0])

        # groupBy two dimensions (nulls included)
        gb = await query(
            {
                **base,
                "queryType": "groupBy",
                "granularity": "all",
                "dimensions": ["country", "page"],
                "aggregations": [
                    {"type": "count", "name": "n"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                ],
            }
        )
        want = con.execute(
            "SELECT country, page, count(*), sum(added) FROM events GROUP BY ALL"
        ).fetchall()
        got_gb = [(e["country"], e["page"], e["n"], e["added"]) for e in (r["event"] for r in gb)]
        assert sorted(got_gb, key=repr) == sorted(want, key=repr)

        # groupBy on a multi-value dimension: one group per value
        mv = await query(
            {
                **base,
                "queryType": "groupBy",
                "granularity": "day",
                "dimensions": ["tags"],
                "aggregations": [{"type": "count", "name": "n"}],
            }
        )
        want = con.execute(
            f"""SELECT (__time // {DAY}) * {DAY} AS b, t, count(*) FROM
                (SELECT __time, unnest(tags) AS t FROM events) GROUP BY ALL ORDER BY b, t"""
        ).fetchall()
        assert [(r["timestamp"], r["event"]["tags"], r["event"]["n"]) for r in mv] == [
            (iso(b), t, n) for b, t, n in want
        ]

        # scan, time-ordered with a limit
        scan = await query(
            {
                **base,
                "queryType": "scan",
                "columns": ["__time", "page", "added"],
                "order": "ascending",
                "limit": 7,
                "resultFormat": "compactedList",
            }
        )
        events = [e for batch in scan for e in batch["events"]]
        want = con.execute(
            "SELECT __time, page, added FROM events ORDER BY __time LIMIT 7"
        ).fetchall()
        assert [tuple(e) for e in events] == want

        # timeBoundary, dataSourceMetadata, segmentMetadata
        lo, hi = con.execute("SELECT min(__time), max(__time) FROM events").fetchone()  # type: ignore[misc]
        tb = await query({"queryType": "timeBoundary", "dataSource": "events"})
        assert tb[0]["result"] == {"minTime": iso(lo), "maxTime": iso(hi)}
        dsm = await query({"queryType": "dataSourceMetadata", "dataSource": "events"})
        assert dsm[0]["result"]["maxIngestedEventTime"] == iso(hi)
        sm = await query({"queryType": "segmentMetadata", "dataSource": "events"})
        assert sorted((a["id"], a["numRows"]) for a in sm) == sorted(
            (str(s.id), t.num_rows)
            for s, t in [
                (s0, day0),
                (s1_new, day1_new),
                (s2_p0, day2_p0),
                (s2_p1, day2_p1),
                (s3, day3),
            ]
        )

        # h2 stops: day 1 (replicated on h1) stays complete; day 2 p1 and day 3 are missing.
        await c.stop("h2")
        count = {**base, "queryType": "timeseries", "granularity": "day"}
        count["aggregations"] = [{"type": "count", "name": "n"}]
        resp = await c.http.post(
            f"{broker.url}/druid/v2", json={**count, "intervals": ["2024-01-02/2024-01-03"]}
        )
        assert resp.status_code == 200
        assert [r["result"]["n"] for r in resp.json()] == [day1_new.num_rows]
        assert orjson.loads(resp.headers[RESPONSE_CONTEXT_HEADER]) == {}

        resp = await c.http.post(f"{broker.url}/druid/v2", json=count)
        assert resp.status_code == 200
        assert [r["result"]["n"] for r in resp.json()] == [
            day0.num_rows,
            day1_new.num_rows,
            day2_p0.num_rows,
        ]
        missing = orjson.loads(resp.headers[RESPONSE_CONTEXT_HEADER])["missingSegments"]
        assert sorted((m["itvl"], m["part"]) for m in missing) == [
            (str(s2_p1.interval), 1),
            (str(s3.interval), 0),
        ]
