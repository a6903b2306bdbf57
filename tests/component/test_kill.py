"""Kill tasks on a real overlord (SQLite metadata, local deep storage): unused segments leave
deep storage and ``druid_segments``, used ones stay; the task waits for its time-chunk lock;
the coordinator's kill endpoints and its kill duty submit kill tasks to the overlord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from common.aio import wait_until
from common.metadata import MetadataStore
from common.segments.deep_storage import DeepStorage
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from services.coordinator.service import CoordinatorService
from services.overlord.service import OverlordService
from tests.support.cluster import Cluster, cluster, sqlite_properties
from tests.support.segments import V2, make_segment

V1_API = "/druid/indexer/v1"
COORD = "/druid/coordinator/v1"


async def start_overlord(c: Cluster) -> OverlordService:
    await c.start("overlord")

    async def leading() -> bool:
        return (await c.get("overlord", f"{V1_API}/isLeader")).status_code == 200

    await wait_until(leading, within=10, what="overlord leads")
    service = c.nodes["overlord"].service
    assert isinstance(service, OverlordService)
    await wait_until(lambda: service.leading_queue is not None, within=10, what="queue")
    return service


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(sqlite_properties(tmp_path)) as cl:
        yield cl


async def submit(c: Cluster, body: dict[str, Any]) -> str:
    r = await c.http.post(c.nodes["overlord"].url + f"{V1_API}/task", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["task"])


async def finished(c: Cluster, task_id: str) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def done() -> bool:
        r = await c.get("overlord", f"{V1_API}/task/{task_id}/status")
        status: dict[str, Any] = r.json()["status"]
        seen.append(status)
        return bool(status["statusCode"] != "RUNNING")

    await wait_until(done, within=20, what=f"task {task_id} finishes")
    return seen[-1]


async def report(c: Cluster, task_id: str) -> dict[str, Any]:
    r = await c.get("overlord", f"{V1_API}/task/{task_id}/reports")
    assert r.status_code == 200, r.text
    payload: dict[str, Any] = r.json()["killUnusedSegments"]["payload"]
    return payload


async def present(store: MetadataStore, deep: DeepStorage, s: DataSegment) -> tuple[bool, bool]:
    """(row in druid_segments, file in deep storage)."""
    return (await store.get_segment(s.identifier)) is not None, deep.exists(s.load_spec)


async def test_kill_task_deletes_unused_segments_only(c: Cluster, tmp_path: Path) -> None:
    overlord = await start_overlord(c)
    store = overlord.store
    deep = DeepStorage("local", storage_directory=str(tmp_path / "deep"))
    day = [make_segment(tmp_path, d) for d in range(4)]
    newer = make_segment(tmp_path, 1, V2)
    await store.insert_segments([*day, newer])
    await store.set_segments_used(
        "wiki", False, segment_ids=[s.identifier for s in (day[0], day[1], day[2], newer)]
    )

    task_id = await submit(
        c,
        {
            "type": "kill",
            "dataSource": "wiki",
            "interval": "2024-01-01/2024-01-03",
            "versions": [day[0].version],
            "batchSize": 1,
        },
    )
    status = await finished(c, task_id)
    assert (status["statusCode"], status["type"], status["dataSource"]) == (
        "SUCCESS",
        "kill",
        "wiki",
    )
    assert await report(c, task_id) == {
        "numSegmentsKilled": 2,
        "numBatchesProcessed": 2,
        "numSegmentsMarkedAsUnused": 0,
    }
    assert await present(store, deep, day[0]) == (False, False)
    assert await present(store, deep, day[1]) == (False, False)
    # another version, outside the interval, or used: all kept
    assert await present(store, deep, newer) == (True, True)
    assert await present(store, deep, day[2]) == (True, True)
    assert await present(store, deep, day[3]) == (True, True)
    assert await store.task_locks() == []

    # limit: one at a time; markAsUnused kills a used segment too
    task_id = await submit(
        c, {"type": "kill", "dataSource": "wiki", "interval": "2024-01-01/2024-01-10", "limit": 1}
    )
    assert (await finished(c, task_id))["statusCode"] == "SUCCESS"
    assert (await report(c, task_id))["numSegmentsKilled"] == 1
    assert await present(store, deep, newer) == (False, False)
    assert await present(store, deep, day[2]) == (True, True)
    task_id = await submit(
        c,
        {
            "type": "kill",
            "dataSource": "wiki",
            "interval": "2024-01-03/2024-01-05",
            "markAsUnused": True,
        },
    )
    assert (await finished(c, task_id))["statusCode"] == "SUCCESS"
    assert await report(c, task_id) == {
        "numSegmentsKilled": 2,
        "numBatchesProcessed": 1,
        "numSegmentsMarkedAsUnused": 1,
    }
    assert await store.list_segments("wiki", used=None) == []
    assert not (tmp_path / "deep" / "wiki").exists()


async def test_kill_waits_for_a_conflicting_lock(c: Cluster, tmp_path: Path) -> None:
    overlord = await start_overlord(c)
    store = overlord.store
    seg = make_segment(tmp_path, 0)
    await store.insert_segments([seg], used=False)
    other = await store.acquire_lock(
        "other", "other", "wiki", Interval.parse("2024-01-01/2024-01-02"), "EXCLUSIVE"
    )
    assert other is not None
    task_id = await submit(
        c, {"type": "kill", "id": "k1", "dataSource": "wiki", "interval": "2024-01-01/P1D"}
    )

    async def waiting() -> bool:
        r = await c.get("overlord", f"{V1_API}/task/k1/status")
        return bool(r.json()["status"]["runnerStatusCode"] == "WAITING")

    await wait_until(waiting, within=10, what="kill task waits for its lock")
    assert await store.get_segment(seg.identifier) is not None
    await store.release_lock("other")
    assert (await finished(c, task_id))["statusCode"] == "SUCCESS"
    assert await store.get_segment(seg.identifier) is None


async def test_invalid_kill_tasks_are_400(c: Cluster) -> None:
    await start_overlord(c)
    url = c.nodes["overlord"].url + f"{V1_API}/task"
    for body, word in (
        ({"type": "kill", "dataSource": "wiki"}, "interval"),
        ({"type": "kill", "dataSource": "wiki", "interval": "2024/2025", "batchSize": 0}, "batch"),
        ({"type": "nope", "dataSource": "wiki"}, "kill"),
    ):
        r = await c.http.post(url, json=body)
        assert r.status_code == 400 and word in r.json()["errorMessage"], r.text


async def start_coordinator(c: Cluster, **overrides: Any) -> CoordinatorService:
    node = await c.start("coordinator", **overrides)

    async def leads() -> bool:
        return (await c.get("coordinator", f"{COORD}/isLeader")).status_code == 200

    await wait_until(leads, within=20, what="coordinator leadership")
    assert isinstance(node.service, CoordinatorService)
    return node.service


async def test_coordinator_kill_endpoints_submit_kill_tasks(c: Cluster, tmp_path: Path) -> None:
    overlord = await start_overlord(c)
    await start_coordinator(c)
    store = overlord.store
    day = [make_segment(tmp_path, d) for d in range(3)]
    await store.insert_segments(day, used=False)
    url = c.nodes["coordinator"].url + COORD

    r = await c.http.delete(url + "/datasources/wiki/intervals/2024-01-01_2024-01-02")
    assert r.status_code == 200 and r.content == b""
    r = await c.http.delete(
        url + "/datasources/wiki", params={"kill": "true", "interval": "2024-01-02/2024-01-03"}
    )
    assert r.status_code == 200
    bad = await c.http.delete(url + "/datasources/wiki/intervals/not-an-interval")
    assert bad.status_code == 400

    async def killed() -> bool:
        return [r.segment for r in await store.list_segments("wiki", used=None)] == [day[2]]

    await wait_until(killed, within=20, what="two days killed")
    seen: list[dict[str, Any]] = []

    async def both_succeeded() -> bool:
        r = await c.get("overlord", f"{V1_API}/tasks", params={"type": "kill"})
        seen[:] = r.json()
        return len(seen) == 2 and {t["statusCode"] for t in seen} == {"SUCCESS"}

    await wait_until(both_succeeded, within=20, what="both kill tasks complete")
    assert all(t["id"].startswith("api-issued_kill_wiki_") for t in seen)


async def test_kill_duty_kills_old_unused_segments(c: Cluster, tmp_path: Path) -> None:
    overlord = await start_overlord(c)
    store = overlord.store
    deep = DeepStorage("local", storage_directory=str(tmp_path / "deep"))
    day = [make_segment(tmp_path, d) for d in range(3)]
    await store.insert_segments(day)
    await store.set_segments_used("wiki", False, segment_ids=[day[0].identifier])
    coordinator = await start_coordinator(
        c,
        **{
            "druid.coordinator.kill.on": "true",
            "druid.coordinator.kill.period": "PT0.5S",
            "druid.coordinator.period.indexingPeriod": "PT0.5S",
            "druid.coordinator.kill.durationToRetain": "PT0S",
            "druid.coordinator.kill.bufferPeriod": "PT0S",
        },
    )

    async def gone() -> bool:
        return await present(store, deep, day[0]) == (False, False)

    await wait_until(gone, within=20, what="the duty kills the unused segment")
    assert await present(store, deep, day[1]) == (True, True)
    duty = coordinator.kill_duty
    assert duty is not None and duty.submitted
    assert all(t.startswith("coordinator-issued_kill_wiki_") for t in duty.submitted)


async def test_segments_are_marked_unused_through_the_overlord(
    c: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Druid's coordinator marks drop-rule and overshadowed segments unused via the overlord."""
    overlord = await start_overlord(c)
    coordinator = await start_coordinator(c)
    day = [make_segment(tmp_path, d) for d in range(2)]
    await overlord.store.insert_segments(day)
    calls: list[tuple[str, bool, Any]] = []
    real = overlord.store.set_segments_used

    async def recording(ds: str, used: bool, **kw: Any) -> int:
        calls.append((ds, used, kw.get("segment_ids")))
        return await real(ds, used, **kw)

    monkeypatch.setattr(overlord.store, "set_segments_used", recording)
    await wait_until(
        lambda: bool(coordinator.provider.get_for_node_role("overlord").get_all_nodes()),
        within=10,
        what="the coordinator discovers the overlord",
    )
    assert await coordinator.mark_segments_unused("wiki", [day[0].identifier]) == 1
    assert calls == [("wiki", False, [day[0].identifier])]
    row = await overlord.store.get_segment(day[0].identifier)
    assert row is not None and not row.used

    # a drop rule: the duty cycle marks through the overlord too
    rules = [{"type": "dropForever"}]
    r = await c.http.post(c.nodes["coordinator"].url + f"{COORD}/rules/wiki", json=rules)
    assert r.status_code == 200

    async def dropped() -> bool:
        return await overlord.store.used_segments("wiki") == []

    await wait_until(dropped, within=20, what="the drop rule marks day 1 unused")
    assert calls[-1] == ("wiki", False, [day[1].identifier])


async def test_a_new_overlord_leader_runs_an_unfinished_kill_task(
    c: Cluster, tmp_path: Path
) -> None:
    first = await start_overlord(c)
    seg = make_segment(tmp_path, 0)
    await first.store.insert_segments([seg], used=False)
    day = Interval.parse("2024-01-01/2024-01-02")
    assert await first.store.acquire_lock("other", "other", "wiki", day, "EXCLUSIVE")
    await submit(c, {"type": "kill", "id": "k2", "dataSource": "wiki", "interval": str(day)})

    async def waiting() -> bool:
        r = await c.get("overlord", f"{V1_API}/task/k2/status")
        return bool(r.json()["status"]["runnerStatusCode"] == "WAITING")

    await wait_until(waiting, within=10, what="kill task waits for its lock")
    await c.stop("overlord")  # the task is still active in druid_tasks
    second = await start_overlord(c)
    await second.store.release_lock("other")
    assert (await finished(c, "k2"))["statusCode"] == "SUCCESS"
    assert await second.store.get_segment(seg.identifier) is None
    deep = DeepStorage("local", storage_directory=str(tmp_path / "deep"))
    assert not deep.exists(seg.load_spec)
