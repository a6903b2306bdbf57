"""Helpers for cluster tests on real processes (``ProcCluster``): the usual five roles, the
overlord's task API, broker queries and direct reads of the SQLite metadata store.

The metadata reads go straight to the SQLite file with ``sqlite3`` so that a test checks what is
stored, not what the product's own store code says is stored.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from common.aio import wait_until
from tests.support.cluster import FAST_DISCOVERY
from tests.support.procs import ProcCluster

TASK = "/druid/indexer/v1/task"
COORD = "/druid/coordinator/v1"


def proc_properties(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "druid.metadata.storage.type": "sqlite",
        "druid.metadata.storage.connector.connectURI": str(tmp / "metadata.db"),
        "druid.storage.storageDirectory": str(tmp / "deep"),
        "druid.indexer.task.baseTaskDir": str(tmp / "task"),
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(tmp / "cache"), "maxSize": 10**10}]
        ),
        "druid.coordinator.period": "PT1S",
        "druid.segment.handoff.pollDuration": "PT0.2S",
        "druid.segmentCache.dropSegmentDelayMillis": "100",
        **FAST_DISCOVERY,
        **extra,
    }


@contextmanager
def proc_cluster(tmp: Path, properties: Mapping[str, str]) -> Iterator[ProcCluster]:
    cluster = ProcCluster(tmp, properties)
    try:
        yield cluster
    finally:
        cluster.close()


async def start_all(procs: ProcCluster, names: list[str]) -> None:
    for name in names:
        procs.start(name)
    for name in names:
        await asyncio.to_thread(procs.wait_healthy, name, 60.0)


async def wait_ready(http: httpx.AsyncClient, procs: ProcCluster, workers: int) -> None:
    """Both leaders elected, ``workers`` peons known to the overlord, and the ``_default`` rule
    set to one replica (the cluster has one historical)."""
    overlord = procs.procs["overlord"].url
    coordinator = procs.procs["coordinator"].url

    async def ready() -> bool:
        try:
            w = await http.get(overlord + "/druid/indexer/v1/workers")
            c = await http.get(coordinator + f"{COORD}/isLeader")
        except httpx.HTTPError:
            return False
        return w.status_code == c.status_code == 200 and len(w.json()) == workers

    await wait_until(ready, within=60, what=f"leaders and {workers} worker(s)")
    rules = [{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}]
    r = await http.post(coordinator + f"{COORD}/rules/_default", json=rules)
    assert r.status_code == 200, r.text


async def submit(http: httpx.AsyncClient, procs: ProcCluster, task: dict[str, Any]) -> str:
    r = await http.post(procs.procs["overlord"].url + TASK, json=task)
    assert r.status_code == 200, r.text
    return str(r.json()["task"])


async def task_status(http: httpx.AsyncClient, procs: ProcCluster, task_id: str) -> dict[str, Any]:
    r = await http.get(procs.procs["overlord"].url + f"{TASK}/{task_id}/status")
    assert r.status_code == 200, r.text
    return dict(r.json()["status"])


async def wait_task(
    http: httpx.AsyncClient, procs: ProcCluster, task_id: str, within: float = 90.0
) -> dict[str, Any]:
    """The task's final status (it must end within ``within`` seconds)."""
    final: dict[str, Any] = {}

    async def done() -> bool:
        final.update(await task_status(http, procs, task_id))
        return final["status"] != "RUNNING"

    await wait_until(done, within=within, interval=0.2, what=f"task {task_id} to end")
    return final


async def run_task(
    http: httpx.AsyncClient, procs: ProcCluster, task: dict[str, Any], within: float = 90.0
) -> str:
    task_id = await submit(http, procs, task)
    status = await wait_task(http, procs, task_id, within)
    assert status["status"] == "SUCCESS", f"{status}\n{procs.warnings()}"
    return task_id


async def native(http: httpx.AsyncClient, procs: ProcCluster, query: dict[str, Any]) -> Any:
    r = await http.post(procs.procs["broker"].url + "/druid/v2", json=query)
    assert r.status_code == 200, r.text
    return r.json()


async def sql(http: httpx.AsyncClient, procs: ProcCluster, query: str) -> httpx.Response:
    return await http.post(procs.procs["broker"].url + "/druid/v2/sql", json={"query": query})


class Metadata:
    """Read-only looks at the SQLite metadata store of a ``proc_properties`` cluster."""

    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "metadata.db"

    def _rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return list(conn.execute(query, args).fetchall())
        finally:
            conn.close()

    def segments(self, ds: str) -> list[tuple[str, bool, dict[str, Any]]]:
        """``(id, used, payload)`` of every row of ``ds`` in ``druid_segments``."""
        rows = self._rows('SELECT id, used, payload FROM druid_segments WHERE "dataSource" = ?', ds)
        return [(str(i), bool(u), json.loads(bytes(p))) for i, u, p in rows]

    def used(self, ds: str) -> list[dict[str, Any]]:
        return [p for _, used, p in self.segments(ds) if used]

    def pending(self, ds: str) -> list[str]:
        rows = self._rows('SELECT id FROM "druid_pendingSegments" WHERE "dataSource" = ?', ds)
        return [str(r[0]) for r in rows]

    def locks(self) -> list[str]:
        return [str(r[0]) for r in self._rows("SELECT task_id FROM druid_tasklocks")]

    def active_tasks(self) -> list[str]:
        return [str(r[0]) for r in self._rows("SELECT id FROM druid_tasks WHERE active = 1")]


def deep_storage_files(tmp: Path, ds: str) -> list[Path]:
    root = tmp / "deep" / ds
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


class Watch:
    """Calls ``probe`` over and over in the background while the ``async with`` block runs and
    keeps every answer in ``seen`` (to check that queries never see a partial state)."""

    def __init__(self, probe: Callable[[], Awaitable[Any]], period: float = 0.1) -> None:
        self.probe = probe
        self.period = period
        self.seen: list[Any] = []
        self._job: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            self.seen.append(await self.probe())
            await asyncio.sleep(self.period)

    async def __aenter__(self) -> Watch:
        self._job = asyncio.ensure_future(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._job is not None
        self._job.cancel()
        await asyncio.gather(self._job, return_exceptions=True)
        self.seen.append(await self.probe())  # and once more, after the block
