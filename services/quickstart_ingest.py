"""The quickstart's sample ingestion: a Kafka supervisor for the sample stream, and the queries
printed for the user once its first rows are queryable.

With the bundled broker (in memory), a restarted quickstart faces an empty topic while the
metadata store still holds the offsets committed last time; the supervisor is reset first so it
reads the new topic from the start. What was published before stays on the historical and stays
queryable. With ``--kafka`` (a broker that keeps its data) the supervisor resumes from its offsets.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

SUPERVISOR_PATH = "/druid/indexer/v1/supervisor"
DATASOURCE = "wikipedia"
ALL_TIME = "2000-01-01/2100-01-01"


def supervisor_spec(bootstrap: str, topic: str) -> dict[str, Any]:
    return {
        "type": "kafka",
        "spec": {
            "dataSchema": {
                "dataSource": DATASOURCE,
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
                "topic": topic,
                "inputFormat": {"type": "json"},
                "consumerProperties": {"bootstrap.servers": bootstrap},
                "taskCount": 1,
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

COUNT_QUERY = {
    "queryType": "timeseries",
    "dataSource": DATASOURCE,
    "intervals": [ALL_TIME],
    "granularity": "all",
    "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}],
}


async def submit(
    http: httpx.AsyncClient, overlord: str, bootstrap: str, topic: str, reset_offsets: bool
) -> None:
    """Submit (or update) the sample supervisor, first resetting its offsets if asked."""
    if reset_offsets:
        resp = await http.post(f"{overlord}{SUPERVISOR_PATH}/{DATASOURCE}/reset")
        if resp.status_code not in (200, 404):
            raise RuntimeError(f"resetting the sample supervisor failed: {resp.text}")
    # A spec posted again replaces the stored one: this also resumes a supervisor that the last
    # run suspended on its way out.
    resp = await http.post(overlord + SUPERVISOR_PATH, json=supervisor_spec(bootstrap, topic))
    if resp.status_code != 200:
        raise RuntimeError(f"submitting the sample supervisor failed: {resp.text}")


async def queryable_rows(http: httpx.AsyncClient, broker: str) -> int:
    try:
        resp = await http.post(broker + "/druid/v2", json=COUNT_QUERY)
    except httpx.HTTPError:
        return 0
    if resp.status_code != 200 or not resp.json():
        return 0
    return int(resp.json()[0]["result"]["rows"] or 0)


async def wait_first_rows(
    http: httpx.AsyncClient, broker: str, stopping: asyncio.Event, within: float
) -> int:
    """Rows the broker can query, once there are any (0 if ``within`` passed or stopping)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not stopping.is_set() and loop.time() < deadline:
        rows = await queryable_rows(http, broker)
        if rows > 0:
            return rows
        try:
            await asyncio.wait_for(stopping.wait(), 0.25)
        except TimeoutError:
            pass
    return 0


def curl_commands(broker: str, overlord: str) -> list[tuple[str, str]]:
    post = "curl -s -XPOST -H 'Content-Type: application/json'"
    return [
        (
            f"{post} {broker}/druid/v2 -d '{json.dumps(NATIVE_QUERY)}'",
            "native topN: the most edited pages",
        ),
        (
            f"{post} {broker}/druid/v2/sql -d '{json.dumps(SQL_QUERY)}'",
            "Druid SQL: edits per channel",
        ),
        (f"curl -s {overlord}{SUPERVISOR_PATH}/{DATASOURCE}/status", "the supervisor, with lag"),
    ]


async def publish_and_suspend(http: httpx.AsyncClient, overlord: str, within: float) -> bool:
    """Suspend the sample supervisor (its tasks publish what they read and hand it off) and
    wait until none of its tasks runs; True if that happened within ``within`` seconds."""
    resp = await http.post(f"{overlord}{SUPERVISOR_PATH}/{DATASOURCE}/suspend")
    if resp.status_code not in (200, 400):  # 400: already suspended
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        await asyncio.sleep(0.5)
        running = await http.get(
            f"{overlord}/druid/indexer/v1/tasks", params={"datasource": DATASOURCE}
        )
        if running.status_code == 200 and not [
            t for t in running.json() if t.get("statusCode") == "RUNNING"
        ]:
            return True
    return False
