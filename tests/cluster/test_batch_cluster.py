"""Native batch ingestion end to end: coordinator, overlord, historical, broker and a peon in this
process (SQLite metadata, local deep storage).

``index_parallel`` tasks load a local JSON directory (hashed partitions) and a CSV file served
over HTTP; the status, reports and log endpoints answer as Airflow's Druid hook polls them; the
coordinator loads the segments onto the historical and the broker answers native and SQL queries
over them. Re-ingesting one day with other data publishes a newer version that overshadows the
old one (marked unused, answers change for that day only); a ``druid`` input source re-indexes
the datasource into another one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.aio import wait_until
from services.coordinator.service import CoordinatorService
from tests.cluster.test_ingest_e2e import cluster_props, start_cluster
from tests.support.cluster import Cluster, cluster
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, moto_endpoint, put_objects

__all__ = ["moto_endpoint"]

pytestmark = pytest.mark.slow

TASK = "/druid/indexer/v1/task"
SCHEMA: dict[str, Any] = {
    "timestampSpec": {"column": "ts", "format": "iso"},
    "dimensionsSpec": {"dimensions": ["page", "user"]},
    "metricsSpec": [
        {"type": "count", "name": "count"},
        {"type": "longSum", "name": "added", "fieldName": "added"},
    ],
}


def schema(ds: str, intervals: list[str], **gran: Any) -> dict[str, Any]:
    return {
        **SCHEMA,
        "dataSource": ds,
        "granularitySpec": {
            "segmentGranularity": "DAY",
            "queryGranularity": "NONE",
            "rollup": False,
            "intervals": intervals,
            **gran,
        },
    }


def index_parallel(
    data_schema: dict[str, Any],
    source: dict[str, Any],
    fmt: dict[str, Any] | None,
    tuning: dict[str, Any] | None = None,
) -> dict[str, Any]:
    io: dict[str, Any] = {"type": "index_parallel", "inputSource": source}
    if fmt is not None:
        io["inputFormat"] = fmt
    return {
        "type": "index_parallel",
        "spec": {
            "dataSchema": data_schema,
            "ioConfig": io,
            "tuningConfig": {"type": "index_parallel", **(tuning or {})},
        },
    }


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def submit_and_wait(c: Cluster, task: dict[str, Any]) -> str:
    """Airflow's DruidHook flow: POST the task, read ``task`` from the answer, poll
    ``/task/{id}/status`` until ``status.status`` leaves RUNNING."""
    answer: dict[str, Any] = {}

    async def submitted() -> bool:
        # 503 only while the overlord (re)gains its lease on a loaded machine
        resp = await c.http.post(c.nodes["overlord"].url + TASK, json=task)
        assert resp.status_code in (200, 503), resp.text
        answer.update(resp.json() if resp.status_code == 200 else {})
        return resp.status_code == 200

    await wait_until(submitted, within=30, what="task submitted")
    task_id = str(answer["task"])
    state: dict[str, str] = {}

    async def done() -> bool:
        r = await c.get("overlord", f"{TASK}/{task_id}/status")
        assert r.status_code == 200, r.text
        state["s"] = r.json()["status"]["status"]
        return state["s"] != "RUNNING"

    await wait_until(done, within=60, what=f"task {task_id} finished")
    assert state["s"] == "SUCCESS", (await c.get("overlord", f"{TASK}/{task_id}/status")).text
    return task_id


async def report(c: Cluster, task_id: str) -> dict[str, Any]:
    holder: dict[str, Any] = {}

    async def fetched() -> bool:
        r = await c.get("overlord", f"{TASK}/{task_id}/reports")
        if r.status_code == 200:
            holder["r"] = r.json()["ingestionStatsAndErrors"]["payload"]
        return "r" in holder and holder["r"]["ingestionState"] == "COMPLETED"

    await wait_until(fetched, within=10, what="final report")
    return dict(holder["r"])


async def native_totals(c: Cluster, ds: str, interval: str) -> tuple[int, int]:
    query = {
        "queryType": "timeseries",
        "dataSource": ds,
        "intervals": [interval],
        "granularity": "all",
        "aggregations": [
            {"type": "longSum", "name": "rows", "fieldName": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
        ],
    }
    r = await c.http.post(c.nodes["broker"].url + "/druid/v2", json=query)
    assert r.status_code == 200, r.text
    result = r.json()
    if not result:
        return 0, 0
    return int(result[0]["result"]["rows"] or 0), int(result[0]["result"]["added"] or 0)


async def sql(c: Cluster, query: str) -> list[dict[str, Any]]:
    r = await c.http.post(c.nodes["broker"].url + "/druid/v2/sql", json={"query": query})
    assert r.status_code == 200, r.text
    return list(r.json())


def json_rows(day: int, n: int, added: int) -> str:
    return "\n".join(
        json.dumps(
            {
                "ts": f"2024-01-0{day}T{i % 24:02d}:00:00Z",
                "page": f"p{i % 5}",
                "user": f"u{i % 3}",
                "added": added,
            }
        )
        for i in range(n)
    )


async def test_index_parallel_json_and_csv_then_overwrite_and_reindex(
    tmp_path: Path, http_dir: tuple[str, Path]
) -> None:
    base_url, www = http_dir
    json_dir = tmp_path / "input"
    json_dir.mkdir()
    (json_dir / "day1.json").write_text(json_rows(1, 40, 1))
    # a row outside the intervals (thrown away) and a bad line (unparseable) in day 2's file
    (json_dir / "day2.json").write_text(
        json_rows(2, 30, 2) + '\n{"ts": "2023-06-01T00:00:00Z", "page": "x", "added": 9}\nnope\n'
    )
    (json_dir / "ignored.txt").write_text("not matched by the filter")
    (www / "day3.csv").write_text(
        "ts,page,user,added\n"
        + "".join(f"2024-01-03T0{i % 9}:00:00Z,p{i % 4},u,3\n" for i in range(20))
    )

    async with cluster(cluster_props(tmp_path)) as c:
        await start_cluster(c, tmp_path)
        json_task = index_parallel(
            schema("wiki", ["2024-01-01/2024-01-03"]),
            {"type": "local", "baseDir": str(json_dir), "filter": "*.json"},
            {"type": "json"},
            {
                "forceGuaranteedRollup": True,
                "partitionsSpec": {
                    "type": "hashed",
                    "numShards": 2,
                    "partitionDimensions": ["page"],
                },
                "maxSavedParseExceptions": 5,
            },
        )
        json_id = await submit_and_wait(c, json_task)
        csv_task = index_parallel(
            schema("wiki", ["2024-01-03/2024-01-04"]),
            {"type": "http", "uris": [f"{base_url}/day3.csv"]},
            {"type": "csv", "findColumnsFromHeader": True},
            {
                "partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 8},
                "awaitSegmentAvailabilityTimeoutMillis": 30000,
            },
        )
        csv_id = await submit_and_wait(c, csv_task)
        csv_report = await report(c, csv_id)
        # the task waited for the historical to load its segments before it succeeded
        assert csv_report["segmentAvailabilityConfirmed"] is True

        payload = await report(c, json_id)
        assert payload["rowStats"]["buildSegments"]["processed"] == 70
        assert payload["rowStats"]["buildSegments"]["thrownAway"] == 1
        assert payload["rowStats"]["buildSegments"]["unparseable"] == 1
        (event,) = payload["unparseableEvents"]["buildSegments"]
        assert event["input"] == "nope" and event["errorType"] == "unparseable"
        assert payload["errorMsg"] is None
        assert csv_report["rowStats"]["buildSegments"]["processed"] == 20
        log = await c.get("overlord", f"{TASK}/{json_id}/log")
        assert log.status_code == 200 and json_id in log.text

        coord = c.nodes["coordinator"].service
        assert isinstance(coord, CoordinatorService)
        used = await coord.store.used_segments("wiki")
        shard_types = sorted(s.to_json()["shardSpec"]["type"] for s in used)
        # day 1 and 2: hashed on page, 2 buckets each; day 3: 20 rows in segments of 8
        assert shard_types == ["hashed"] * 4 + ["numbered"] * 3

        async def loaded() -> bool:
            status = (await c.get("coordinator", "/druid/coordinator/v1/loadstatus")).json()
            return bool(status.get("wiki") == 100.0)

        await wait_until(loaded, within=40, what="batch segments loaded on the historical")
        everything = "2024-01-01/2024-01-04"
        await wait_until(
            lambda: native_totals(c, "wiki", everything),  # type: ignore[arg-type]
            within=20,
            what="broker sees the segments",
        )

        async def totals_are(expected: tuple[int, int], interval: str = everything) -> bool:
            return await native_totals(c, "wiki", interval) == expected

        await wait_until(
            lambda: totals_are((90, 40 + 60 + 60)), within=20, what="all 90 rows queryable"
        )
        by_day = await sql(
            c,
            "SELECT TIME_FLOOR(__time, 'P1D') AS d, COUNT(*) AS n, SUM(added) AS a FROM wiki "
            "GROUP BY 1 ORDER BY 1",
        )
        assert [(r["n"], r["a"]) for r in by_day] == [(40, 40), (30, 60), (20, 60)]

        # Re-ingest day 1 with other data: a new version overshadows the old one.
        old_day1 = {s.identifier for s in used if s.interval.start == 1704067200000}
        redo = index_parallel(
            schema("wiki", ["2024-01-01/2024-01-02"]),
            {"type": "inline", "data": json_rows(1, 10, 7)},
            {"type": "json"},
        )
        await submit_and_wait(c, redo)

        async def overshadowed() -> bool:
            now_used = {s.identifier for s in await coord.store.used_segments("wiki")}
            return not (old_day1 & now_used) and await totals_are((60, 70 + 60 + 60))

        await wait_until(overshadowed, within=40, what="old day 1 overshadowed and replaced")
        assert await totals_are((10, 70), "2024-01-01/2024-01-02")
        assert await totals_are((50, 120), "2024-01-02/2024-01-04")

        # Re-index wiki into wiki2 with the druid input source (rolled up per day and page).
        reindex = index_parallel(
            {
                "dataSource": "wiki2",
                "timestampSpec": {"column": "__time", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["page"]},
                "metricsSpec": [
                    {"type": "longSum", "name": "count", "fieldName": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "MONTH",
                    "queryGranularity": "DAY",
                    "rollup": True,
                },
            },
            {"type": "druid", "dataSource": "wiki", "interval": everything},
            None,
        )
        reindex_id = await submit_and_wait(c, reindex)
        assert (await report(c, reindex_id))["rowStats"]["buildSegments"]["processed"] == 60
        (seg,) = await coord.store.used_segments("wiki2")
        assert str(seg.interval) == "2024-01-01T00:00:00.000Z/2024-02-01T00:00:00.000Z"

        async def wiki2() -> bool:
            return await native_totals(c, "wiki2", everything) == (60, 190)

        await wait_until(wiki2, within=40, what="wiki2 queryable with the same totals")
        rows = await sql(c, "SELECT COUNT(*) AS n FROM wiki2")
        assert rows == [{"n": 5 + 5 + 4}]  # day x page groups after rollup

        # dropExisting over days 2-3 with rows for day 2 only: day 3 is dropped in the same
        # publish (its segments marked unused), day 1 untouched.
        drop = index_parallel(
            schema("wiki", ["2024-01-02/2024-01-04"]),
            {"type": "inline", "data": json_rows(2, 6, 5)},
            {"type": "json"},
        )
        drop["spec"]["ioConfig"]["dropExisting"] = True
        await submit_and_wait(c, drop)
        left = await coord.store.used_segments("wiki")
        assert sorted({str(s.interval)[:10] for s in left}) == ["2024-01-01", "2024-01-02"]

        async def dropped() -> bool:
            return await totals_are((16, 70 + 30))

        await wait_until(dropped, within=40, what="day 3 dropped, day 2 replaced")


async def test_parallel_sub_tasks_publish_once_and_append_adds_partitions(
    tmp_path: Path,
    moto_endpoint: str,
) -> None:
    files = tmp_path / "parallel"
    files.mkdir()
    for day in (1, 2, 3):
        (files / f"day{day}.json").write_text(json_rows(day, 12, day) + "\nbroken\n")
    put_objects(
        moto_endpoint,
        "raw",
        {f"wiki/{p.name}": p.read_bytes() for p in files.iterdir()} | {"wiki/skip.csv": b"x"},
    )
    async with cluster(cluster_props(tmp_path)) as c:
        await start_cluster(c, tmp_path)
        parallel = index_parallel(
            schema("par", ["2024-01-01/2024-01-04"]),
            {"type": "local", "baseDir": str(files), "filter": "*.json"},
            {"type": "json"},
            {
                "maxNumConcurrentSubTasks": 2,
                "maxSavedParseExceptions": 10,
                "partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 5},
            },
        )
        sup_id = await submit_and_wait(c, parallel)
        payload = await report(c, sup_id)
        totals = payload["rowStats"]["buildSegments"]
        assert (totals["processed"], totals["unparseable"]) == (36, 3)
        assert len(payload["unparseableEvents"]["buildSegments"]) == 3

        tasks = await c.get("overlord", "/druid/indexer/v1/tasks", params={"state": "complete"})
        subs = [t for t in tasks.json() if t["type"] == "single_phase_sub_task"]
        assert len(subs) == 3 and all(t["status"] == "SUCCESS" for t in subs)
        assert {t["groupId"] for t in subs} == {sup_id}

        coord = c.nodes["coordinator"].service
        assert isinstance(coord, CoordinatorService)
        used = await coord.store.used_segments("par")
        # 12 rows a day in segments of 5 rows: 3 per day, one version, a complete core set
        assert len(used) == 9 and len({s.version for s in used}) == 1
        for day in {s.interval for s in used}:
            specs = sorted(
                (s.partition_num, s.shard_spec.core_partitions) for s in used if s.interval == day
            )
            assert specs == [(0, 3), (1, 3), (2, 3)]

        # The same files from S3 (listed under a prefix, one sub-task per object, the client
        # configured by the spec alone), persisting every 4 rows: the same rows and answers.
        from_s3 = index_parallel(
            schema("par_s3", ["2024-01-01/2024-01-04"], rollup=True),
            {
                "type": "s3",
                "prefixes": ["s3://raw/wiki/"],
                "objectGlob": "**.json",
                "properties": {
                    "accessKeyId": ACCESS_KEY,
                    "secretAccessKey": {"type": "default", "password": SECRET_KEY},
                },
                "endpointConfig": {"url": moto_endpoint, "signingRegion": REGION},
                "clientConfig": {"enablePathStyleAccess": True},
            },
            {"type": "json"},
            {"maxNumConcurrentSubTasks": 3, "maxRowsInMemory": 4},
        )
        s3_payload = await report(c, await submit_and_wait(c, from_s3))
        s3_totals = s3_payload["rowStats"]["buildSegments"]
        assert (s3_totals["processed"], s3_totals["unparseable"]) == (36, 3)
        assert s3_payload["persists"] >= 6  # 12 rows per sub-task, 4 at a time
        tasks = await c.get("overlord", "/druid/indexer/v1/tasks", params={"state": "complete"})
        s3_subs = [t for t in tasks.json() if t.get("groupId") != sup_id and "_sub_" in t["id"]]
        assert len(s3_subs) == 3

        async def same_answers() -> bool:
            everything = "2024-01-01/2024-01-04"
            return await native_totals(c, "par_s3", everything) == (36, 12 * 6)

        await wait_until(same_answers, within=40, what="rows read from S3 queryable")

        # appendToExisting: day 3 gets more rows as extra partitions of the same version
        append = index_parallel(
            schema("par", ["2024-01-03/2024-01-04"]),
            {"type": "inline", "data": json_rows(3, 4, 100)},
            {"type": "json"},
        )
        append["spec"]["ioConfig"]["appendToExisting"] = True
        await submit_and_wait(c, append)
        day3 = [
            s for s in await coord.store.used_segments("par") if s.interval.start == 1704240000000
        ]
        assert sorted(s.partition_num for s in day3) == [0, 1, 2, 3]
        assert len({s.version for s in day3}) == 1

        async def appended() -> bool:
            return await native_totals(c, "par", "2024-01-01/2024-01-04") == (40, 12 * 6 + 400)

        await wait_until(appended, within=40, what="appended rows queryable")

        # Parquet input, and a task failing on maxParseExceptions with its reason reported
        table = pa.table(
            {
                "ts": pa.array(
                    [1704067200000 + i * 3_600_000 for i in range(5)], pa.timestamp("ms")
                ),
                "page": [f"q{i}" for i in range(5)],
                "added": list(range(5)),
            }
        )
        pq.write_table(table, tmp_path / "rows.parquet")
        pschema = schema("pq", ["2024-01-01/2024-01-02"])
        pschema["timestampSpec"] = {"column": "ts", "format": "millis"}
        pq_task = index_parallel(
            pschema,
            {"type": "local", "files": [str(tmp_path / "rows.parquet")]},
            {"type": "parquet"},
        )
        pq_id = await submit_and_wait(c, pq_task)
        assert (await report(c, pq_id))["rowStats"]["buildSegments"]["processed"] == 5
        (pq_seg,) = await coord.store.used_segments("pq")
        assert pq_seg.dimensions == ("page", "user")

        strict = index_parallel(
            schema("strict", ["2024-01-01/2024-01-02"]),
            {"type": "inline", "data": json_rows(1, 3, 1) + "\nbroken"},
            {"type": "json"},
            {"maxParseExceptions": 0},
        )
        r = await c.http.post(c.nodes["overlord"].url + TASK, json=strict)
        strict_id = r.json()["task"]

        async def failed() -> bool:
            s = (await c.get("overlord", f"{TASK}/{strict_id}/status")).json()["status"]
            return bool(s["status"] == "FAILED")

        await wait_until(failed, within=30, what="strict task failed")
        status = (await c.get("overlord", f"{TASK}/{strict_id}/status")).json()["status"]
        assert "Max parse exceptions[0] exceeded" in status["errorMsg"]
        assert await coord.store.used_segments("strict") == []


async def test_sql_insert_and_replace_through_the_broker(tmp_path: Path) -> None:
    csv_file = tmp_path / "edits.csv"
    csv_file.write_text(
        "ts,page,added\n"
        + "".join(f"2024-01-0{1 + i % 2}T0{i % 9}:00:00Z,p{i % 3},{i}\n" for i in range(12))
    )
    source = json.dumps({"type": "local", "files": [str(csv_file)]})
    fmt = json.dumps({"type": "csv", "findColumnsFromHeader": True})
    sig = json.dumps(
        [
            {"name": "ts", "type": "string"},
            {"name": "page", "type": "string"},
            {"name": "added", "type": "long"},
        ]
    )
    extern = f"TABLE(EXTERN('{source}', '{fmt}', '{sig}'))"
    async with cluster(cluster_props(tmp_path)) as c:
        await start_cluster(c, tmp_path)
        broker = c.nodes["broker"].url

        async def run(sql_text: str) -> str:
            r = await c.http.post(f"{broker}/druid/v2/sql/task", json={"query": sql_text})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["state"] == "RUNNING" and body["taskId"].startswith("query-")
            task_id = str(body["taskId"])
            final: dict[str, Any] = {}

            async def done() -> bool:
                s = await c.get("overlord", f"{TASK}/{task_id}/status")
                final.update(s.json()["status"])
                return final["status"] != "RUNNING"

            await wait_until(done, within=60, what=f"SQL task {task_id}")
            assert final["status"] == "SUCCESS", final
            return task_id

        await run(
            f'INSERT INTO "edits" SELECT TIME_PARSE(ts) AS __time, page, added FROM {extern} '
            "WHERE page <> 'p2' PARTITIONED BY DAY"
        )

        async def rows_are(expected: list[dict[str, Any]]) -> bool:
            r = await c.http.post(
                f"{broker}/druid/v2/sql",
                json={
                    "query": "SELECT TIME_FLOOR(__time, 'P1D') AS d, COUNT(*) AS n, "
                    "SUM(added) AS s FROM edits GROUP BY 1 ORDER BY 1"
                },
            )
            return r.status_code == 200 and [(x["n"], x["s"]) for x in r.json()] == [
                (e["n"], e["s"]) for e in expected
            ]

        # p2 rows (i = 2, 5, 8, 11) filtered out; day 1 has the even i, day 2 the odd ones
        day1 = [i for i in range(0, 12, 2) if i % 3 != 2]
        day2 = [i for i in range(1, 12, 2) if i % 3 != 2]
        expected = [{"n": len(day1), "s": sum(day1)}, {"n": len(day2), "s": sum(day2)}]
        await wait_until(lambda: rows_are(expected), within=40, what="inserted rows queryable")

        # REPLACE day 2 only: day 2 now holds every row of the file for that day
        await run(
            "REPLACE INTO edits OVERWRITE WHERE __time >= TIMESTAMP '2024-01-02' AND "
            f"__time < TIMESTAMP '2024-01-03' SELECT TIME_PARSE(ts) AS __time, page, added "
            f"FROM {extern} PARTITIONED BY DAY"
        )
        all2 = list(range(1, 12, 2))
        expected = [{"n": len(day1), "s": sum(day1)}, {"n": len(all2), "s": sum(all2)}]
        await wait_until(lambda: rows_are(expected), within=40, what="day 2 replaced")

        # PARTITIONED BY ALL TIME: one segment over all time
        await run(
            f'INSERT INTO "edits_all" SELECT TIME_PARSE(ts) AS __time, page, added FROM {extern} '
            "PARTITIONED BY ALL TIME"
        )
        coord = c.nodes["coordinator"].service
        assert isinstance(coord, CoordinatorService)
        (whole,) = await coord.store.used_segments("edits_all")
        assert whole.interval.start < 0 < 1704067200000 < whole.interval.end

        async def all_rows() -> bool:
            r = await c.http.post(
                f"{broker}/druid/v2/sql",
                json={"query": "SELECT COUNT(*) AS n, SUM(added) AS s FROM edits_all"},
            )
            return r.status_code == 200 and r.json() == [{"n": 12, "s": sum(range(12))}]

        await wait_until(all_rows, within=40, what="ALL TIME segment queryable")

        bad = await c.http.post(
            f"{broker}/druid/v2/sql/task",
            json={
                "query": f"INSERT INTO edits SELECT UPPER(page) AS p FROM {extern} "
                "PARTITIONED BY DAY"
            },
        )
        assert bad.status_code == 400
        assert "only EXTERN columns" in bad.text
