"""The overlord's metadata operations on SQLite and PostgreSQL: tasks, locks, segment allocation
(idempotency, partition numbering) and the exactly-once publish (compare-and-swap rules)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.config import MetadataStorageSettings
from common.ingest.metadata import DataSourceMetadata
from common.metadata import MetadataStore
from common.metadata.pending import AllocateRequest
from common.metadata.tasks import TaskRow
from common.segments.intervals import Interval
from common.segments.segment import DataSegment

PG_URI = "postgresql://postgres@127.0.0.1:5432/test"
HOUR = Interval.parse("2024-01-01T10:00:00Z/2024-01-01T11:00:00Z")
DAY = Interval.parse("2024-01-01/2024-01-02")


def _require_pg() -> None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1.0):
            return
    except OSError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable (CI=true: required)")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    if request.param == "postgresql":
        _require_pg()
        settings = MetadataStorageSettings.model_validate(
            {
                "type": "postgresql",
                "connect_uri": PG_URI,
                "tables_base": f"t_{uuid.uuid4().hex[:8]}",
            }
        )
    else:
        settings = MetadataStorageSettings.model_validate(
            {"type": "sqlite", "connect_uri": str(tmp_path / "metadata.db")}
        )
    s = await MetadataStore.connect(settings)
    try:
        yield s
    finally:
        if s.dialect == "postgresql":
            async with s.transaction("drop test tables") as conn:
                await conn.run_sync(s.tables.metadata.drop_all)
        await s.close()


def _req(
    seq: str = "seq0",
    *,
    task: str = "t1",
    group: str = "g1",
    row: Interval = HOUR,
    preferred: Interval = HOUR,
    prev: str | None = None,
    skip: bool = True,
    lock_type: str = "EXCLUSIVE",
) -> AllocateRequest:
    return AllocateRequest(task, group, "wiki", row, preferred, seq, prev, skip, lock_type)


def _segment(interval: Interval, version: str, partition: int, core: int = 0) -> DataSegment:
    return DataSegment.model_validate(
        {
            "dataSource": "wiki",
            "interval": str(interval),
            "version": version,
            "loadSpec": {"type": "local", "path": "/x"},
            "shardSpec": {"type": "numbered", "partitionNum": partition, "partitions": core},
            "size": 1,
        }
    )


def _end(offsets: dict[int, int]) -> DataSourceMetadata:
    return DataSourceMetadata.end("topic", offsets)


def _start(offsets: dict[int, int]) -> DataSourceMetadata:
    return DataSourceMetadata.start("topic", offsets)


async def test_task_rows(store: MetadataStore) -> None:
    row = TaskRow("a", "2024-01-01T00:00:00.000Z", "wiki", {"id": "a"}, {"id": "a"}, True, "x", "a")
    assert await store.insert_task(row)
    assert not await store.insert_task(row)  # duplicate id
    assert [r.id for r in await store.list_tasks(active=True)] == ["a"]
    assert await store.set_task_status("a", {"id": "a", "status": "SUCCESS"}, active=False)
    assert not await store.set_task_status("a", {"id": "a", "status": "FAILED"}, active=False)
    got = await store.get_task("a")
    assert got is not None and got.status["status"] == "SUCCESS" and not got.active
    assert await store.list_tasks(active=True) == []
    assert [r.id for r in await store.get_tasks(["a", "zz"])] == ["a"]


async def test_allocation_is_idempotent_and_numbers_partitions(store: MetadataStore) -> None:
    a = await store.allocate_segment(_req("seq0"))
    assert a is not None and a.partition_num == 0 and a.interval == HOUR
    again = await store.allocate_segment(_req("seq0"))
    assert again == a
    b = await store.allocate_segment(_req("seq1"))
    assert b is not None and (b.version, b.partition_num) == (a.version, 1)
    # A replica (same group, another task) gets the same segment for the same sequence.
    assert await store.allocate_segment(_req("seq0", task="t2")) == a
    c = await store.allocate_segment(_req("seq2", task="t2"))
    assert c is not None and c.partition_num == 2
    assert len(await store.pending_segments("wiki")) == 3
    # The lock was taken implicitly, with the allocated version.
    locks = await store.task_locks(["t1"])
    assert [(lk.interval, lk.version) for lk in locks] == [(HOUR, a.version)]
    assert a.to_json()["shardSpec"] == {"type": "numbered", "partitionNum": 0, "partitions": 0}


async def test_a_groups_pending_segments_go_once_none_of_its_tasks_is_active(
    store: MetadataStore,
) -> None:
    def task(task_id: str, group: str, active: bool) -> TaskRow:
        return TaskRow(task_id, "2024-01-01T00:00:00.000Z", "wiki", {}, {}, active, "x", group)

    assert await store.insert_task(task("t1", "g1", True))
    assert await store.insert_task(task("t2", "g1", True))
    assert await store.insert_task(task("t3", "g2", True))
    assert await store.allocate_segment(_req("a", task="t1", group="g1"))
    assert await store.allocate_segment(_req("b", task="t2", group="g1"))
    other = await store.allocate_segment(_req("c", task="t3", group="g2", lock_type="SHARED"))
    assert other is None  # g1 holds the chunk's exclusive lock: g2 allocates another day
    day2 = Interval.parse("2024-01-02T10:00:00Z/2024-01-02T11:00:00Z")
    assert await store.allocate_segment(_req("c", task="t3", group="g2", row=day2, preferred=day2))
    assert len(await store.pending_segments("wiki")) == 3

    await store.set_task_status("t1", {"id": "t1", "status": "SUCCESS"}, active=False)
    assert await store.delete_pending_of_finished_allocator("wiki", "g1") == 0  # t2 is active
    await store.set_task_status("t2", {"id": "t2", "status": "FAILED"}, active=False)
    assert await store.delete_pending_of_finished_allocator("wiki", "g1") == 2
    assert [p.interval for p in await store.pending_segments("wiki")] == [day2]


async def test_allocation_with_lineage_check(store: MetadataStore) -> None:
    first = await store.allocate_segment(_req("s", skip=False))
    assert first is not None
    nxt = await store.allocate_segment(_req("s", prev=first.id, skip=False))
    assert nxt is not None and nxt.partition_num == 1
    assert await store.allocate_segment(_req("s", prev=first.id, skip=False)) == nxt


async def test_allocation_follows_used_segments(store: MetadataStore) -> None:
    await store.insert_segments([_segment(DAY, "2023-12-31T00:00:00.000Z", 0, core=2)])
    await store.insert_segments([_segment(DAY, "2023-12-31T00:00:00.000Z", 1, core=2)])
    got = await store.allocate_segment(_req(preferred=HOUR))
    assert got is not None
    assert (got.interval, got.version, got.partition_num, got.partitions) == (
        DAY,
        "2023-12-31T00:00:00.000Z",
        2,
        2,
    )


async def test_allocation_conflicting_lock_is_refused(store: MetadataStore) -> None:
    assert await store.allocate_segment(_req(task="t1", group="g1")) is not None
    assert await store.allocate_segment(_req("other", task="t9", group="g9")) is None
    # APPEND locks of different groups share the chunk (and its version).
    day1 = Interval.parse("2024-02-01/2024-02-02")
    x = await store.allocate_segment(
        _req("a", task="x", group="gx", row=day1, preferred=day1, lock_type="APPEND")
    )
    y = await store.allocate_segment(
        _req("b", task="y", group="gy", row=day1, preferred=day1, lock_type="APPEND")
    )
    assert x is not None and y is not None
    assert (y.version, y.partition_num) == (x.version, 1)


async def test_concurrent_allocations_get_distinct_partitions(store: MetadataStore) -> None:
    results = await asyncio.gather(
        *(store.allocate_segment(_req(f"seq{i}", task=f"t{i}")) for i in range(6))
    )
    assert all(r is not None for r in results)
    assert sorted(r.partition_num for r in results if r) == list(range(6))


async def test_publish_first_commit_then_match(store: MetadataStore) -> None:
    seg = _segment(HOUR, "v1", 0)
    r = await store.commit_segments_and_metadata([seg], "sup", _start({0: 0}), _end({0: 10}))
    assert r.success and r.segments == [seg]
    assert await store.get_datasource_metadata("sup") == _end({0: 10}).to_json()
    assert [s.identifier for s in await store.used_segments("wiki")] == [seg.identifier]
    seg2 = _segment(HOUR, "v1", 1)
    r = await store.commit_segments_and_metadata(
        [seg2], "sup", _start({0: 10, 1: 0}), _end({0: 20, 1: 5})
    )
    assert r.success
    assert await store.get_datasource_metadata("sup") == _end({0: 20, 1: 5}).to_json()


async def test_publish_ahead_is_retryable_and_writes_nothing(store: MetadataStore) -> None:
    assert (
        await store.commit_segments_and_metadata([], "sup", _start({0: 0}), _end({0: 10}))
    ).success
    seg = _segment(HOUR, "v1", 0)
    r = await store.commit_segments_and_metadata([seg], "sup", _start({0: 15}), _end({0: 20}))
    assert not r.success and r.retryable
    assert "ahead of the last committed" in (r.error_msg or "")
    assert await store.used_segments("wiki") == []
    assert await store.get_datasource_metadata("sup") == _end({0: 10}).to_json()


async def test_publish_mismatch_fails_for_good(store: MetadataStore) -> None:
    await store.commit_segments_and_metadata([], "sup", _start({0: 0}), _end({0: 10}))
    r = await store.commit_segments_and_metadata(
        [_segment(HOUR, "v1", 0)], "sup", _start({0: 5}), _end({0: 20})
    )
    assert not r.success and not r.retryable
    assert "Inconsistency between stored metadata state" in (r.error_msg or "")
    assert "Try resetting the supervisor." in (r.error_msg or "")
    assert await store.used_segments("wiki") == []


async def test_republishing_what_is_already_published_succeeds(store: MetadataStore) -> None:
    """A task that crashed after its publish committed publishes the same thing again on
    restart: the segments and offsets are already there, so that is a success, not a failure."""
    seg = _segment(HOUR, "v1", 0)
    assert (
        await store.commit_segments_and_metadata([seg], "sup", _start({0: 0}), _end({0: 10}))
    ).success
    again = await store.commit_segments_and_metadata([seg], "sup", _start({0: 0}), _end({0: 10}))
    assert again.success and again.segments == [seg]
    assert await store.get_datasource_metadata("sup") == _end({0: 10}).to_json()
    # ...but a different segment with stale offsets is still the inconsistency it was.
    other = _segment(HOUR, "v1", 1)
    r = await store.commit_segments_and_metadata([other], "sup", _start({0: 0}), _end({0: 10}))
    assert not r.success and not r.retryable


async def test_concurrent_publishes_one_wins_other_retryable(store: MetadataStore) -> None:
    await store.commit_segments_and_metadata([], "sup", _start({0: 0}), _end({0: 10}))
    results = await asyncio.gather(
        store.commit_segments_and_metadata(
            [_segment(HOUR, "v1", 0)], "sup", _start({0: 10}), _end({0: 20})
        ),
        store.commit_segments_and_metadata(
            [_segment(HOUR, "v1", 1)], "sup", _start({0: 10}), _end({0: 20})
        ),
    )
    assert sorted(r.success for r in results) == [False, True]
    loser = next(r for r in results if not r.success)
    # Serialised (SQLite) the loser sees the new row and is "ahead"; on PostgreSQL the CAS
    # UPDATE matches no row. Either way the replica retries and then finds its work committed.
    assert not loser.success
    assert len(await store.used_segments("wiki")) == 1
    assert await store.get_datasource_metadata("sup") == _end({0: 20}).to_json()


async def test_cas_loser_on_stale_sha_is_retryable(store: MetadataStore) -> None:
    from common.metadata import datasource_metadata as dsm

    await store.commit_segments_and_metadata([], "sup", _start({0: 0}), _end({0: 10}))
    async with store.transaction("cas") as conn:
        ok = await dsm.write_row(conn, store.tables, "sup", _end({0: 99}).to_json(), "BAD", "x")
    assert not ok
    assert await store.get_datasource_metadata("sup") == _end({0: 10}).to_json()


async def test_reset_datasource_metadata(store: MetadataStore) -> None:
    await store.commit_segments_and_metadata([], "sup", _start({0: 0}), _end({0: 10, 1: 4}))
    assert await store.reset_datasource_metadata("sup", _end({1: 0}).to_json())
    assert await store.get_datasource_metadata("sup") == _end({0: 10, 1: 0}).to_json()
    assert await store.reset_datasource_metadata("sup", None)
    assert await store.get_datasource_metadata("sup") is None
    assert not await store.reset_datasource_metadata("sup", None)
    assert await store.reset_datasource_metadata("new", _end({3: 3}).to_json())
    assert await store.get_datasource_metadata("new") == _end({3: 3}).to_json()


async def test_locks_acquire_release(store: MetadataStore) -> None:
    lk = await store.acquire_lock("t1", "g1", "wiki", DAY, "EXCLUSIVE")
    assert lk is not None
    assert await store.acquire_lock("t1", "g1", "wiki", DAY, "EXCLUSIVE") == lk
    assert await store.acquire_lock("t2", "g2", "wiki", HOUR, "EXCLUSIVE") is None
    shared = await store.acquire_lock("t3", "g1", "wiki", DAY, "EXCLUSIVE")
    assert shared is not None and shared.version == lk.version
    assert await store.release_lock("t1", DAY) == 1
    assert await store.release_lock("t3") == 1
    assert await store.acquire_lock("t2", "g2", "wiki", HOUR, "EXCLUSIVE") is not None
