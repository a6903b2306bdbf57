"""The quickstart's sample ingestion: Kafka supervisors for the sample streams, and the queries
printed for the user once their first rows are queryable.

Three samples: ``wikipedia`` (one task) and two more datasources of two tasks each whose names
have a space, ``%`` and non-ASCII letters (names Druid allows, as its own Kafka integration test
uses), each from its own two-partition topic. The peon gets slots for all of them (``slots``).

With the bundled broker (in memory), a restarted quickstart faces an empty topic while the
metadata store still holds the offsets committed last time; the supervisor is reset first so it
reads the new topic from the start. What was published before stays on the historical and stays
queryable. With ``--kafka`` (a broker that keeps its data) the supervisor resumes from its offsets.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from common.aio import wait_event
from common.ids import url_id

SUPERVISOR_PATH = "/druid/indexer/v1/supervisor"
DATASOURCE = "wikipedia"
ALL_TIME = "2000-01-01/2100-01-01"


@dataclass(frozen=True)
class Sample:
    """One sample stream and the supervisor that ingests it."""

    datasource: str
    topic: str
    task_count: int
    partitions: int
    rate: float  # edits per second


SAMPLES = (
    Sample(DATASOURCE, "wikipedia", task_count=1, partitions=1, rate=20.0),
    Sample("wikipedia Россия", "wikipedia-ru", task_count=2, partitions=2, rate=5.0),
    Sample("wikipedia 한국 中国 %!?", "wikipedia-ko-zh", task_count=2, partitions=2, rate=5.0),
)


def slots(samples: tuple[Sample, ...] = SAMPLES, spare_supervisors: int = 2) -> int:
    """Task slots for the peon: every reading task of the samples and of ``spare_supervisors``
    more two-task supervisors of the user's, doubled because at a rollover each task group's
    publishing task keeps its slot until handoff while the next reading task starts."""
    reading = sum(s.task_count for s in samples) + 2 * spare_supervisors
    return 2 * reading


def supervisor_spec(bootstrap: str, sample: Sample) -> dict[str, Any]:
    return {
        "type": "kafka",
        "spec": {
            "dataSchema": {
                "dataSource": sample.datasource,
                "timestampSpec": {"column": "timestamp", "format": "iso"},
                "dimensionsSpec": {
                    "dimensions": ["channel", "page", "user", "countryName", "isRobot", "isNew"]
                },
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                    {"type": "longSum", "name": "deleted", "fieldName": "deleted"},
                    {"type": "longSum", "name": "delta", "fieldName": "delta"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "hour",
                    "queryGranularity": "none",
                    "rollup": False,
                },
            },
            "ioConfig": {
                "topic": sample.topic,
                "inputFormat": {"type": "json"},
                "consumerProperties": {"bootstrap.servers": bootstrap},
                "taskCount": sample.task_count,
                "replicas": 1,
                "taskDuration": "PT10M",
                "startDelay": "PT0S",
                "period": "PT5S",
                "useEarliestOffset": True,
            },
            "tuningConfig": {"type": "kafka"},
        },
    }


NATIVE_QUERY = {
    "queryType": "topN",
    "dataSource": DATASOURCE,
    "intervals": [ALL_TIME],
    "granularity": "all",
    "dimension": "page",
    "metric": "edits",
    "threshold": 5,
    "aggregations": [
        {"type": "count", "name": "edits"},
        {"type": "longSum", "name": "added", "fieldName": "added"},
    ],
}

SQL_QUERY = {
    "query": "SELECT channel, COUNT(*) AS edits, SUM(added) AS added FROM wikipedia "
    "GROUP BY channel ORDER BY edits DESC"
}


def sql_identifier(name: str) -> str:
    """``name`` as a Druid SQL identifier (double quotes, inner ones doubled)."""
    return '"' + name.replace('"', '""') + '"'


def extra_sql_query(sample: Sample) -> dict[str, str]:
    return {
        "query": f"SELECT page, COUNT(*) AS edits FROM {sql_identifier(sample.datasource)} "
        "GROUP BY page ORDER BY edits DESC LIMIT 3"
    }


def count_query(datasource: str) -> dict[str, Any]:
    return {
        "queryType": "timeseries",
        "dataSource": datasource,
        "intervals": [ALL_TIME],
        "granularity": "all",
        "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}],
    }


COUNT_QUERY = count_query(DATASOURCE)


def supervisor_path(overlord: str, datasource: str, action: str) -> str:
    return f"{overlord}{SUPERVISOR_PATH}/{url_id(datasource)}/{action}"


async def submit(
    http: httpx.AsyncClient, overlord: str, bootstrap: str, sample: Sample, reset_offsets: bool
) -> None:
    """Submit (or update) a sample supervisor, first resetting its offsets if asked."""
    name = sample.datasource
    if reset_offsets:
        resp = await http.post(supervisor_path(overlord, name, "reset"))
        if resp.status_code not in (200, 404):
            raise RuntimeError(f"resetting the supervisor [{name}] failed: {resp.text}")
    # A spec posted again replaces the stored one: this also resumes a supervisor that the last
    # run suspended on its way out.
    resp = await http.post(overlord + SUPERVISOR_PATH, json=supervisor_spec(bootstrap, sample))
    if resp.status_code != 200:
        raise RuntimeError(f"submitting the supervisor [{name}] failed: {resp.text}")


async def queryable_rows(http: httpx.AsyncClient, broker: str, datasource: str = DATASOURCE) -> int:
    try:
        resp = await http.post(broker + "/druid/v2", json=count_query(datasource))
    except httpx.HTTPError:
        return 0
    if resp.status_code != 200 or not resp.json():
        return 0
    return int(resp.json()[0]["result"]["rows"] or 0)


async def wait_first_rows(
    http: httpx.AsyncClient,
    broker: str,
    stopping: asyncio.Event,
    within: float,
    datasource: str = DATASOURCE,
) -> int:
    """Rows the broker can query, once there are any (0 if ``within`` passed or stopping)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not stopping.is_set() and loop.time() < deadline:
        rows = await queryable_rows(http, broker, datasource)
        if rows > 0:
            return rows
        await wait_event(stopping, 0.25)
    return 0


def curl_commands(broker: str, overlord: str) -> list[tuple[str, str]]:
    post = "curl -s -XPOST -H 'Content-Type: application/json'"
    extra = SAMPLES[-1]
    sql = json.dumps(extra_sql_query(extra), ensure_ascii=False).replace("'", "'\\''")
    return [
        (
            f"{post} {broker}/druid/v2 -d '{json.dumps(NATIVE_QUERY)}'",
            "native topN: the most edited pages",
        ),
        (
            f"{post} {broker}/druid/v2/sql -d '{json.dumps(SQL_QUERY)}'",
            "Druid SQL: edits per channel",
        ),
        (
            f"{post} {broker}/druid/v2/sql -d '{sql}'",
            "Druid SQL on a datasource whose name has a space, '%' and non-ASCII letters",
        ),
        (f"curl -s {supervisor_path(overlord, DATASOURCE, 'status')}", "the supervisor, with lag"),
    ]


async def publish_and_suspend(
    http: httpx.AsyncClient, overlord: str, within: float, datasources: list[str] | None = None
) -> bool:
    """Suspend the sample supervisors (their tasks publish what they read and hand it off) and
    wait until none of their tasks runs; True if that happened within ``within`` seconds."""
    names = datasources if datasources is not None else [s.datasource for s in SAMPLES]
    for name in names:
        resp = await http.post(supervisor_path(overlord, name, "suspend"))
        if resp.status_code not in (200, 400):  # 400: already suspended
            return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        await asyncio.sleep(0.5)
        if not [n for n in names if await _has_active_tasks(http, overlord, n)]:
            return True
    return False


async def _has_active_tasks(http: httpx.AsyncClient, overlord: str, datasource: str) -> bool:
    """True while a task of ``datasource`` runs or waits (or when the overlord cannot say)."""
    resp = await http.get(f"{overlord}/druid/indexer/v1/tasks", params={"datasource": datasource})
    if resp.status_code != 200:
        return True
    return any(t.get("statusCode") == "RUNNING" for t in resp.json())
