"""A datasource's whole life on real processes (coordinator, overlord, historical, broker, peon,
each ``python -m services.cli <role>``), SQLite metadata, local deep storage, a tansu broker:

1. ``index_parallel`` loads a 1,000,000-row JSON file (generated here, narrow rows) in DAY
   segments; native and SQL answers are exact;
2. the datasource is re-indexed from itself (``druid`` input source) into one MONTH segment with
   ``dropExisting``: the DAY segments end up unused, and a query polled all along answers the
   same every time;
3. a Kafka supervisor streams rows of a later month beside it (HOUR segments), then is
   terminated: its tasks publish and hand off, and their pending segments go;
4. ``compact`` merges the streamed hours into one segment: the same answers all along;
5. a ``dropForever`` rule marks everything unused and the historical unloads it: the broker
   answers nothing;
6. a kill task (through the coordinator's API) deletes the rows and files: no segment or pending
   segment row is left for the datasource, no file in deep storage, no lock, no active task.

``KDRUID_LIFECYCLE_ROWS`` changes the batch size (default 1,000,000).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from common.aio import wait_until
from tests.cluster.test_ingest_e2e import supervisor_spec
from tests.support.kafka import (
    KafkaBroker,
    create_topic,
    kafka_broker,  # noqa: F401  (the fixture)
    produce,
    unique_topic,
)
from tests.support.proc_cluster import (
    COORD,
    Metadata,
    Watch,
    deep_storage_files,
    native,
    proc_cluster,
    proc_properties,
    run_task,
    sql,
    start_all,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROWS = int(os.environ.get("KDRUID_LIFECYCLE_ROWS", "1000000"))
STREAMED = 240
DS = "life"
JAN = 1_704_067_200_000  # 2024-01-01
FEB = 1_706_745_600_000  # 2024-02-01
#: The batch rows cover ten days of January: one row every 864 ms.
STEP = 864_000_000 // ROWS if ROWS <= 864_000_000 else 1
ROLES = ["coordinator", "overlord", "historical", "broker", "peon"]
EVERYTHING = "2024-01-01/2024-03-01"

SCHEMA: dict[str, Any] = {
    "dataSource": DS,
    "timestampSpec": {"column": "ts", "format": "millis"},
    "dimensionsSpec": {"dimensions": ["k"]},
    "metricsSpec": [
        {"type": "count", "name": "count"},
        {"type": "longSum", "name": "v", "fieldName": "v"},
    ],
}


def batch_sum(n: int) -> int:
    return (n // 1000) * sum(range(1000)) + sum(range(n % 1000))


def write_batch_file(path: Path, n: int) -> None:
    """``n`` JSON lines: ``{"ts", "k" (16 values), "v" = i % 1000}``."""
    with open(path, "w") as f:
        chunk = 100_000
        for lo in range(0, n, chunk):
            f.write(
                "".join(
                    f'{{"ts":{JAN + i * STEP},"k":"k{i & 15}","v":{i % 1000}}}\n'
                    for i in range(lo, min(n, lo + chunk))
                )
            )


def index_task(path: Path) -> dict[str, Any]:
    return {
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                **SCHEMA,
                "granularitySpec": {
                    "segmentGranularity": "DAY",
                    "queryGranularity": "NONE",
                    "rollup": False,
                    "intervals": ["2024-01-01/2024-01-11"],
                },
            },
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": {"type": "local", "files": [str(path)]},
                "inputFormat": {"type": "json"},
            },
            "tuningConfig": {"type": "index_parallel"},
        },
    }


def reindex_task() -> dict[str, Any]:
    return {
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": DS,
                "timestampSpec": {"column": "__time", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["k"]},
                "metricsSpec": [
                    {"type": "longSum", "name": "count", "fieldName": "count"},
                    {"type": "longSum", "name": "v", "fieldName": "v"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "MONTH",
                    "queryGranularity": "NONE",
                    "rollup": False,
                    "intervals": ["2024-01-01/2024-02-01"],
                },
            },
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": {
                    "type": "druid",
                    "dataSource": DS,
                    "interval": "2024-01-01/2024-02-01",
                },
                "dropExisting": True,
            },
            "tuningConfig": {"type": "index_parallel"},
        },
    }


def streamed_rows() -> list[tuple[int, bytes]]:
    """Four hours of February, one row a minute, ``v`` = i."""
    return [
        (0, orjson.dumps({"ts": FEB + i * 60_000, "k": f"k{i & 15}", "v": i}))
        for i in range(STREAMED)
    ]


TOTALS: dict[str, Any] = {
    "queryType": "timeseries",
    "dataSource": DS,
    "intervals": [EVERYTHING],
    "granularity": "all",
    "aggregations": [
        {"type": "longSum", "name": "rows", "fieldName": "count"},
        {"type": "longSum", "name": "v", "fieldName": "v"},
    ],
}
SQL_TOTALS = f'SELECT COUNT(*) AS n, SUM("count") AS c, SUM(v) AS v FROM {DS}'


#: What Druid answers for TOTALS when no segment holds a row: one row of null sums (a
#: ``granularity: all`` timeseries always has its row, unless ``skipEmptyBuckets``).
NOTHING = [{"timestamp": "2024-01-01T00:00:00.000Z", "result": {"rows": None, "v": None}}]


async def totals(http: httpx.AsyncClient, procs: Any) -> tuple[int, int] | None:
    """The broker's (rows, sum of v); None when no segment holds a row."""
    result = await native(http, procs, TOTALS)
    if result == NOTHING:
        return None
    r = result[0]["result"]
    return int(r["rows"]), int(r["v"])


async def test_batch_reindex_stream_compact_drop_kill(
    tmp_path: Path,
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    topic = unique_topic("life")
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, streamed_rows())
    batch_file = tmp_path / "batch.json"
    write_batch_file(batch_file, ROWS)
    expected_batch = (ROWS, batch_sum(ROWS))
    expected_all = (ROWS + STREAMED, batch_sum(ROWS) + sum(range(STREAMED)))
    meta = Metadata(tmp_path)

    props = proc_properties(
        tmp_path,
        **{
            "druid.worker.capacity": "3",
            "druid.indexer.runner.taskCleanupTimeout": "PT10S",
        },
    )
    with proc_cluster(tmp_path, props) as procs:
        for role in ROLES:
            procs.add(role)
        await start_all(procs, ROLES)
        async with httpx.AsyncClient(timeout=30.0) as http:
            await wait_ready(http, procs, workers=1)
            coordinator = procs.procs["coordinator"].url
            overlord = procs.procs["overlord"].url

            async def totals_are(want: tuple[int, int] | None) -> bool:
                return await totals(http, procs) == want

            async def sql_totals() -> list[dict[str, Any]]:
                r = await sql(http, procs, SQL_TOTALS)
                assert r.status_code == 200, r.text
                return list(r.json())

            # 1. Batch load.
            await run_task(http, procs, index_task(batch_file), within=180)
            day_segments = {s["identifier"] for s in meta.used(DS)}
            assert len(day_segments) == 10, sorted(day_segments)
            await wait_until(
                lambda: totals_are(expected_batch), within=60, what="the batch rows queryable"
            )
            assert await sql_totals() == [{"n": ROWS, "c": ROWS, "v": expected_batch[1]}], (
                "SQL over the DAY segments"
            )

            # 2. Re-index from itself into one MONTH segment, dropping what was there; queries
            # answer the same all along.
            async with Watch(lambda: totals(http, procs)) as watch:
                await run_task(http, procs, reindex_task(), within=180)
                (month,) = [s for s in meta.used(DS) if s["identifier"] not in day_segments]
                assert month["interval"] == "2024-01-01T00:00:00.000Z/2024-02-01T00:00:00.000Z"

                def days_unused() -> bool:
                    return not day_segments & {s["identifier"] for s in meta.used(DS)}

                # The month overshadows the days: the coordinator marks them unused once it is
                # loaded (not the publish, or queries would find January empty meanwhile).
                await wait_until(days_unused, within=60, interval=0.2, what="the days unused")

                async def only_month_served() -> bool:
                    r = await http.get(coordinator + f"{COORD}/datasources/{DS}/segments")
                    return r.status_code == 200 and r.json() == [month["identifier"]]

                await wait_until(only_month_served, within=60, what="the DAY segments unloaded")
            assert set(watch.seen) == {expected_batch}, set(watch.seen)
            assert await sql_totals() == [{"n": ROWS, "c": ROWS, "v": expected_batch[1]}]

            # 3. Stream a later month beside it, then terminate the supervisor.
            spec = supervisor_spec(kafka_broker, topic, taskDuration="PT3S")
            spec["spec"]["dataSchema"] = {
                **SCHEMA,
                "granularitySpec": {
                    "segmentGranularity": "HOUR",
                    "queryGranularity": "NONE",
                    "rollup": False,
                },
            }
            r = await http.post(overlord + "/druid/indexer/v1/supervisor", json=spec)
            assert r.status_code == 200, r.text
            await wait_until(
                lambda: totals_are(expected_all), within=60, what="the streamed rows queryable"
            )
            assert meta.pending(DS), "the streaming tasks allocated their segments"
            r = await http.post(overlord + f"/druid/indexer/v1/supervisor/{DS}/terminate")
            assert r.status_code == 200, r.text

            def streamed_published() -> bool:
                feb = [s for s in meta.used(DS) if s["interval"].startswith("2024-02-01")]
                return len({s["interval"] for s in feb}) == 4 and not meta.active_tasks()

            await wait_until(
                streamed_published, within=60, what="the streaming tasks published and ended"
            )
            await wait_until(
                lambda: totals_are(expected_all), within=60, what="the hours handed off"
            )
            # Their last task ended: the group's pending segments go (Druid's TaskLockbox).
            await wait_until(
                lambda: not meta.pending(DS), within=10, interval=0.2, what="no pending segment"
            )

            # 4. Compact the streamed hours into one segment.
            compact = {
                "type": "compact",
                "dataSource": DS,
                "ioConfig": {
                    "type": "compact",
                    "inputSpec": {"type": "interval", "interval": "2024-02-01/2024-03-01"},
                },
                "granularitySpec": {"segmentGranularity": "MONTH"},
            }
            async with Watch(lambda: totals(http, procs)) as watch:
                await run_task(http, procs, compact)

                def compacted() -> bool:
                    feb = [s for s in meta.used(DS) if s["interval"].startswith("2024-02-01")]
                    return len(feb) == 1 and feb[0]["lastCompactionState"] is not None

                await wait_until(compacted, within=60, what="the hours marked unused")
            assert set(watch.seen) == {expected_all}, set(watch.seen)
            assert await sql_totals() == [
                {"n": ROWS + STREAMED, "c": ROWS + STREAMED, "v": expected_all[1]}
            ]

            # 5. Drop everything with a rule: unused, unloaded, nothing answers.
            r = await http.post(coordinator + f"{COORD}/rules/{DS}", json=[{"type": "dropForever"}])
            assert r.status_code == 200, r.text
            await wait_until(
                lambda: not meta.used(DS), within=60, interval=0.2, what="all segments unused"
            )
            await wait_until(
                lambda: totals_are(None), within=60, what="the broker to answer nothing"
            )
            assert deep_storage_files(tmp_path, DS), "unused segments keep their files"

            # 6. Kill: no row, no pending segment, no file left.
            r = await http.delete(
                coordinator + f"{COORD}/datasources/{DS}/intervals/2024-01-01_2024-03-01"
            )
            assert r.status_code == 200, r.text
            await wait_until(
                lambda: not meta.segments(DS), within=60, interval=0.2, what="segment rows gone"
            )
            await wait_until(
                lambda: not meta.active_tasks(), within=30, interval=0.2, what="the kill task ends"
            )
            assert meta.pending(DS) == []
            assert deep_storage_files(tmp_path, DS) == []
            assert meta.locks() == []
            assert await totals(http, procs) is None
            scan = {"queryType": "scan", "dataSource": DS, "intervals": [EVERYTHING], "limit": 5}
            assert await native(http, procs, scan) == []
            r = await sql(http, procs, SQL_TOTALS)
            assert r.status_code == 400 and f"Object '{DS}' not found" in r.text, r.text
