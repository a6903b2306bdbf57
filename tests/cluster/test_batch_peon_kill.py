"""``kill -9`` of a peon running ``index_parallel`` sub-tasks, on real processes (coordinator,
overlord, historical, broker and two peons of two slots each).

The input is four JSON files served over HTTP by this test; the server holds every answer until
the test has killed the peon, so the sub-tasks are surely mid-read when it dies. The peon
chosen runs a sub-task but not the supervisor task. The overlord fails its sub-tasks once it has
been gone for ``taskCleanupTimeout``, and then, as Druid's ``TaskMonitor``:

* with the default ``maxRetry`` (3 tries per split) the supervisor runs the split again on the
  other peon and succeeds: every row exactly once;
* with ``maxRetry: 1`` the supervisor stops its other sub-tasks and fails with an error naming
  the split and the lost worker: nothing is published.

Either way the locks are released, no task stays active, and a query polled all along sees each
time chunk either empty or whole, never part of it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.aio import wait_until
from tests.support.proc_cluster import (
    TASK,
    Metadata,
    Watch,
    native,
    proc_cluster,
    proc_properties,
    start_all,
    submit,
    task_status,
    wait_ready,
    wait_task,
)
from tests.support.procs import ProcCluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PARTS = 4
ROWS_PER_PART = 20_000
DAY = 86_400_000
JAN = 1_704_067_200_000
ROLES = ["coordinator", "overlord", "historical", "broker", "peon1", "peon2"]


def part(n: int) -> bytes:
    """Rows spread over two days, so every sub-task writes a segment into both chunks."""
    return "".join(
        f'{{"ts":{JAN + (i * 2 * DAY) // ROWS_PER_PART + n},"k":"k{i % 7}","v":{i % 100}}}\n'
        for i in range(ROWS_PER_PART)
    ).encode()


#: Each day's (rows, sum of v): half of every part.
DAY_TOTALS = (PARTS * ROWS_PER_PART // 2, PARTS * sum(i % 100 for i in range(ROWS_PER_PART // 2)))
EVERY_ROW = (DAY_TOTALS, DAY_TOTALS)


class GatedFiles:
    """An HTTP server for the parts that holds each answer until ``gate`` is set."""

    def __init__(self) -> None:
        self.files = {f"/part-{n}.json": part(n) for n in range(PARTS)}
        self.gate = threading.Event()
        self.requests: list[str] = []
        files, gate, requests = self.files, self.gate, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                requests.append(self.path)
                gate.wait(60)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the reader was killed

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def uris(self) -> list[str]:
        port = self.server.server_address[1]
        return [f"http://127.0.0.1:{port}{path}" for path in sorted(self.files)]


@pytest.fixture
def gated_files() -> Iterator[GatedFiles]:
    files = GatedFiles()
    files.thread.start()
    try:
        yield files
    finally:
        files.gate.set()
        files.server.shutdown()
        files.server.server_close()
        files.thread.join()


def parallel_task(ds: str, uris: list[str], **tuning: Any) -> dict[str, Any]:
    return {
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": ds,
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["k"]},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "v", "fieldName": "v"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "DAY",
                    "queryGranularity": "NONE",
                    "rollup": False,
                    "intervals": ["2024-01-01/2024-01-03"],
                },
            },
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": {"type": "http", "uris": uris},
                "inputFormat": {"type": "json"},
            },
            "tuningConfig": {
                "type": "index_parallel",
                "maxNumConcurrentSubTasks": 2,
                "partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 15_000},
                **tuning,
            },
        },
    }


async def days(http: httpx.AsyncClient, procs: ProcCluster, ds: str) -> tuple[Any, ...]:
    """(rows, sum of v) of each of the two days at the broker, None for a day with no row."""
    query = {
        "queryType": "timeseries",
        "dataSource": ds,
        "intervals": ["2024-01-01/2024-01-03"],
        "granularity": "day",
        "aggregations": [
            {"type": "longSum", "name": "rows", "fieldName": "count"},
            {"type": "longSum", "name": "v", "fieldName": "v"},
        ],
    }
    by_day = {
        r["timestamp"][:10]: (int(r["result"]["rows"]), int(r["result"]["v"]))
        for r in await native(http, procs, query)
        if r["result"]["rows"]
    }
    return by_day.get("2024-01-01"), by_day.get("2024-01-02")


async def sub_tasks(
    http: httpx.AsyncClient, procs: ProcCluster, supervisor: str, state: str
) -> list[dict[str, Any]]:
    r = await http.get(procs.procs["overlord"].url + "/druid/indexer/v1/tasks?state=" + state)
    assert r.status_code == 200, r.text
    return [t for t in r.json() if t["groupId"] == supervisor and t["id"] != supervisor]


async def kill_a_sub_task_peon(
    http: httpx.AsyncClient, procs: ProcCluster, files: GatedFiles, supervisor: str
) -> str:
    """Once two sub-tasks are reading, ``kill -9`` a peon that runs one of them but not the
    supervisor. Returns the killed peon's name."""
    by_port = {p.port: name for name, p in procs.procs.items() if name.startswith("peon")}
    where: dict[str, Any] = {}

    async def two_reading() -> bool:
        running = [
            t for t in await sub_tasks(http, procs, supervisor, "running") if t["location"]["host"]
        ]
        sup = await task_status(http, procs, supervisor)
        where["supervisor"] = by_port.get((sup.get("location") or {}).get("port"))
        where["subs"] = {by_port.get(t["location"]["port"]) for t in running}
        return len(running) == 2 and len(files.requests) >= 2 and where["supervisor"] is not None

    await wait_until(two_reading, within=60, interval=0.1, what="two sub-tasks reading")
    victims = sorted(where["subs"] - {where["supervisor"]})
    assert victims, f"every sub-task runs beside the supervisor: {where}"
    procs.kill(victims[0])
    return victims[0]


async def test_kill_9_of_a_sub_task_peon_retries_or_fails_cleanly(
    tmp_path: Path, gated_files: GatedFiles
) -> None:
    meta = Metadata(tmp_path)
    props = proc_properties(
        tmp_path,
        **{
            "druid.worker.capacity": "2",
            "druid.indexer.runner.taskCleanupTimeout": "PT5S",
        },
    )
    with proc_cluster(tmp_path, props) as procs:
        for role in ROLES:
            if role.startswith("peon"):  # each peon its own task directory
                task_dir = str(tmp_path / f"task-{role}")
                procs.add("peon", role, **{"druid.indexer.task.baseTaskDir": task_dir})
            else:
                procs.add(role)
        await start_all(procs, ROLES)
        async with httpx.AsyncClient(timeout=30.0) as http:
            await wait_ready(http, procs, workers=2)

            # 1. Default maxRetry: the lost split runs again on the other peon.
            async with Watch(lambda: days(http, procs, "retried")) as watch:
                sup = await submit(http, procs, parallel_task("retried", gated_files.uris))
                victim = await kill_a_sub_task_peon(http, procs, gated_files, sup)
                gated_files.gate.set()
                status = await wait_task(http, procs, sup, within=120)
                assert status["status"] == "SUCCESS", f"{status}\n{procs.warnings()}"
                await wait_until(
                    lambda: bool(watch.seen) and watch.seen[-1] == EVERY_ROW,
                    within=60,
                    what="every row queryable",
                )
            # Each time chunk is visible whole or not at all (its segments come from several
            # sub-tasks, one of them retried); the two chunks load one after the other.
            seen_days = {day for answer in watch.seen for day in answer}
            assert seen_days == {None, DAY_TOTALS}, sorted(map(str, seen_days))
            assert watch.seen[0] == (None, None) and watch.seen[-1] == EVERY_ROW
            done = await sub_tasks(http, procs, sup, "complete")
            failed = [t for t in done if t["status"] == "FAILED"]
            victim_port = str(procs.procs[victim].port)
            assert failed and all(
                f"worker[127.0.0.1:{victim_port}]" in str(t["errorMsg"])
                and "disappeared" in str(t["errorMsg"])
                for t in failed
            ), failed
            succeeded = [t for t in done if t["status"] == "SUCCESS"]
            # one succeeded sub-task per split (ids are <supervisor>_sub_<split>_<try>_<run>)
            splits = sorted(t["id"][len(sup) :].split("_")[2] for t in succeeded)
            assert splits == [str(n) for n in range(PARTS)], [t["id"] for t in done]
            assert all(t["location"]["port"] != int(victim_port) for t in succeeded)
            assert meta.locks() == []
            assert meta.active_tasks() == []

            # 2. maxRetry 1: the supervisor fails, names the split, stops its other sub-tasks
            # (the reads stay held until then, so one is surely still running).
            procs.start(victim)  # back (its stale sub-tasks are shut down by the overlord)
            await asyncio.to_thread(procs.wait_healthy, victim, 60.0)
            await wait_ready(http, procs, workers=2)

            async def idle() -> bool:
                r = await http.get(procs.procs["overlord"].url + "/druid/indexer/v1/workers")
                return all(w["currCapacityUsed"] == 0 for w in r.json())

            # With both peons idle the placement is known: the supervisor and one sub-task on
            # one peon, the other sub-task alone on the other (the one killed).
            await wait_until(idle, within=30, interval=0.2, what="the stale sub-tasks stopped")
            gated_files.gate.clear()
            gated_files.requests.clear()
            async with Watch(lambda: days(http, procs, "failed")) as watch:
                sup = await submit(
                    http, procs, parallel_task("failed", gated_files.uris, maxRetry=1)
                )
                victim = await kill_a_sub_task_peon(http, procs, gated_files, sup)
                status = await wait_task(http, procs, sup, within=120)
                await wait_until(
                    lambda: not meta.active_tasks(),
                    within=30,
                    interval=0.2,
                    what="the other sub-task stopped",
                )
                gated_files.gate.set()
            assert status["status"] == "FAILED", status
            stopped = [
                t
                for t in await sub_tasks(http, procs, sup, "complete")
                if t["errorMsg"] == "Shutdown request from user"
            ]
            assert len(stopped) == 1, await sub_tasks(http, procs, sup, "complete")
            error = str(status["errorMsg"])
            assert error.startswith("Failed in phase[single_phase_sub_task]: the split [http://"), (
                error
            )
            assert "failed [1] time(s) (tuningConfig.maxRetry)" in error, error
            assert f"worker[127.0.0.1:{procs.procs[victim].port}]" in error, error
            assert "disappeared" in error, error
            assert set(watch.seen) == {(None, None)}, set(watch.seen)
            assert meta.used("failed") == []
            assert meta.locks() == []
            r = await http.get(procs.procs["overlord"].url + f"{TASK}/{sup}/reports")
            assert r.status_code == 200, r.text
            report = r.json()["ingestionStatsAndErrors"]["payload"]
            assert report["errorMsg"] == error
