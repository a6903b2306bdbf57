"""``MetadataStore``: the one object the roles hold to talk to the metadata database.

It owns the engine and the ``Tables`` of one table base, creates the schema on ``connect``, and
offers the operations the roles need; each method is one transaction and turns driver failures
into ``MetadataStoreError``. Later features add query functions in their own modules of this
package (``f(conn, tables, ...)``, like ``nodes.py``) and run them through ``transaction()``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.config import MetadataStorageSettings
from common.errors import CompareAndSwapFailed, ConfigError
from common.ingest.metadata import DataSourceMetadata
from common.metadata import configs, leases, nodes
from common.metadata import datasource_metadata as dsm_sql
from common.metadata import locks as locks_sql
from common.metadata import pending as pending_sql
from common.metadata import rules as rules_sql
from common.metadata import segments as segments_sql
from common.metadata import supervisors as supervisors_sql
from common.metadata import tasks as tasks_sql
from common.metadata import unused as unused_sql
from common.metadata.engine import (
    ensure_schema,
    make_engine,
    read_connection,
    translate_errors,
    write_transaction,
)
from common.metadata.leases import LeaseRow
from common.metadata.nodes import NodeRow
from common.metadata.rules import iso_millis
from common.metadata.schema import Tables
from common.metadata.segments import SegmentRow
from common.metadata.tasks import TaskRow
from common.metadata.uri import ConnectTarget, Dialect, parse_connect_uri
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, SegmentIdWithShardSpec

log = logging.getLogger(__name__)

TABLES_BASE_KEY = "druid.metadata.storage.tables.base"


class MetadataStore:
    """The metadata database of the cluster (SQLite or PostgreSQL). Build with ``connect``."""

    def __init__(self, engine: AsyncEngine, tables: Tables, target: ConnectTarget) -> None:
        self._engine = engine
        self.tables = tables
        self._target = target

    @classmethod
    async def connect(cls, settings: MetadataStorageSettings) -> MetadataStore:
        """Open the database named by the settings and create any missing tables."""
        target = parse_connect_uri(
            settings.type, settings.connect_uri, settings.user, settings.password
        )
        try:
            tables = Tables(settings.tables_base)
        except ValueError as exc:
            raise ConfigError(f"{TABLES_BASE_KEY}: {exc}", key=TABLES_BASE_KEY) from None
        where = target.describe()
        with translate_errors("opening the metadata store", uri=where):
            engine = make_engine(target)
        store = cls(engine, tables, target)
        try:
            with translate_errors("creating the metadata tables", uri=where, base=tables.base):
                await ensure_schema(
                    engine, tables, lambda c: rules_sql.seed_default_rules(c, tables, _now())
                )
        except BaseException:
            await engine.dispose()
            raise
        log.info("metadata store ready: %s, tables %s_*", where, tables.base)
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def dialect(self) -> Dialect:
        return self._target.dialect

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def describe(self) -> str:
        """The database URL without its password."""
        return self._target.describe()

    @asynccontextmanager
    async def transaction(self, operation: str = "transaction") -> AsyncIterator[AsyncConnection]:
        """A connection in one write transaction; committed at the end, rolled back on error.

        Driver failures inside the block become ``MetadataStoreError`` naming ``operation``.
        """
        with translate_errors(operation, uri=self.describe()):
            async with write_transaction(self._engine) as conn:
                yield conn

    @asynccontextmanager
    async def reading(self, operation: str = "read") -> AsyncIterator[AsyncConnection]:
        """A connection for reads only (no write lock taken on SQLite)."""
        with translate_errors(operation, uri=self.describe()):
            async with read_connection(self._engine) as conn:
                yield conn

    # --- nodes (the `metadata` discovery backend)

    async def upsert_node(
        self, role: str, host_and_port: str, payload: str, heartbeat: float
    ) -> None:
        async with self.transaction("upsert node") as conn:
            await nodes.upsert_node(conn, self.tables, role, host_and_port, payload, heartbeat)

    async def delete_node(self, role: str, host_and_port: str) -> None:
        async with self.transaction("delete node") as conn:
            await nodes.delete_node(conn, self.tables, role, host_and_port)

    async def list_nodes(self, role: str | None = None) -> list[NodeRow]:
        async with self.reading("list nodes") as conn:
            return await nodes.list_nodes(conn, self.tables, role)

    # --- leader leases

    async def read_lease(self, name: str) -> LeaseRow | None:
        async with self.reading("read lease") as conn:
            return await leases.read_lease(conn, self.tables, name)

    async def create_lease(self, name: str, payload: str) -> bool:
        """Create the lease at version 1; False if it exists already (someone else won)."""
        async with self.transaction("create lease") as conn:
            return await leases.create_lease(conn, self.tables, name, payload)

    async def update_lease(self, name: str, payload: str, expected_version: int) -> bool:
        """Compare-and-swap: False if the stored version is not ``expected_version``."""
        async with self.transaction("update lease") as conn:
            return await leases.update_lease(conn, self.tables, name, payload, expected_version)

    # --- druid_config

    async def get_config(self, name: str) -> bytes | None:
        async with self.reading("get config") as conn:
            return await configs.get_config(conn, self.tables, name)

    async def set_config(self, name: str, payload: bytes) -> None:
        async with self.transaction("set config") as conn:
            await configs.set_config(conn, self.tables, name, payload)

    async def compare_and_swap_config(self, name: str, old: bytes | None, new: bytes) -> bool:
        """Set ``name`` to ``new`` if it still holds ``old`` (None: absent); False otherwise."""
        async with self.transaction("compare and swap config") as conn:
            return await configs.compare_and_swap_config(conn, self.tables, name, old, new)

    # --- rules and audit

    async def get_rules(self) -> dict[str, list[dict[str, Any]]]:
        async with self.reading("get rules") as conn:
            return await rules_sql.get_rules(conn, self.tables)

    async def set_rules(
        self, data_source: str, rules: list[dict[str, Any]], author: str = "", comment: str = ""
    ) -> None:
        """Append a new version of ``data_source``'s rules and its audit row, atomically."""
        async with self.transaction("set rules") as conn:
            await rules_sql.set_rules(
                conn, self.tables, data_source, rules, author, comment, _now()
            )

    async def rules_history(
        self, data_source: str | None = None, count: int | None = None
    ) -> list[dict[str, Any]]:
        async with self.reading("rules history") as conn:
            return await rules_sql.rules_history(conn, self.tables, data_source, count)

    # --- published segments (druid_segments)
    async def insert_segments(self, segments: Sequence[DataSegment], used: bool = True) -> int:
        async with self.transaction("insert segments") as conn:
            return await segments_sql.insert_segments(
                conn, self.tables, segments, iso_millis(_now()), used
            )

    async def list_segments(
        self,
        data_source: str | None = None,
        used: bool | None = True,
        interval: Interval | None = None,
    ) -> list[SegmentRow]:
        async with self.reading("list segments") as conn:
            return await segments_sql.list_segments(conn, self.tables, data_source, used, interval)

    async def used_segments(self, data_source: str | None = None) -> list[DataSegment]:
        return [r.segment for r in await self.list_segments(data_source, used=True)]

    async def get_segment(self, segment_id: str) -> SegmentRow | None:
        async with self.reading("get segment") as conn:
            return await segments_sql.get_segment(conn, self.tables, segment_id)

    async def set_segments_used(
        self,
        data_source: str,
        used: bool,
        *,
        segment_ids: Sequence[str] | None = None,
        interval: Interval | None = None,
        versions: Sequence[str] | None = None,
    ) -> int:
        """Mark segments used/unused by ids or by an interval containing them; count changed."""
        async with self.transaction("mark segments used" if used else "mark unused") as conn:
            return await segments_sql.set_used(
                conn,
                self.tables,
                data_source,
                used,
                iso_millis(_now()),
                segment_ids=segment_ids,
                interval=interval,
                versions=versions,
            )

    async def unused_segment_rows(self, data_source: str) -> list[SegmentRow]:
        """Every unused segment of a datasource, with its ``used_status_last_updated``."""
        async with self.reading("list unused segments") as conn:
            return await unused_sql.unused_rows(conn, self.tables, data_source)

    async def nuke_segments(self, data_source: str, segment_ids: Sequence[str]) -> list[str]:
        """Delete the rows of the named segments that are still unused (a kill task's nuke)."""
        async with self.transaction("nuke segments") as conn:
            return await unused_sql.nuke_segments(conn, self.tables, data_source, segment_ids)

    async def segments_change_stamp(self) -> tuple[int, str]:
        async with self.reading("segments change stamp") as conn:
            return await segments_sql.change_stamp(conn, self.tables)

    async def data_source_names(self, include_unused: bool = False) -> list[str]:
        async with self.reading("datasource names") as conn:
            return await segments_sql.data_source_names(conn, self.tables, include_unused)

    # --- supervisor specs (druid_supervisors)
    async def insert_supervisor_spec(self, spec_id: str, payload: dict[str, Any]) -> None:
        """Append a spec (or a ``NoopSupervisorSpec`` tombstone) to ``spec_id``'s history."""
        async with self.transaction("insert supervisor spec") as conn:
            await supervisors_sql.insert_spec(
                conn, self.tables, spec_id, payload, iso_millis(_now())
            )

    async def latest_supervisor_specs(self) -> dict[str, dict[str, Any]]:
        """The spec in force per supervisor id, tombstones included."""
        async with self.reading("latest supervisor specs") as conn:
            return await supervisors_sql.latest_specs(conn, self.tables)

    async def supervisor_history(
        self, spec_id: str | None = None, count: int | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        async with self.reading("supervisor history") as conn:
            return await supervisors_sql.spec_history(conn, self.tables, spec_id, count)

    # --- tasks (druid_tasks) and their locks (druid_tasklocks)

    async def insert_task(self, row: TaskRow) -> bool:
        """Store a new task; False when a task with that id exists already."""
        async with self.transaction("insert task") as conn:
            return await tasks_sql.insert_task(conn, self.tables, row)

    async def set_task_status(self, task_id: str, status: dict[str, Any], active: bool) -> bool:
        """Store a status; a completed task (``active=False``) also loses its locks."""
        async with self.transaction("set task status") as conn:
            changed = await tasks_sql.set_status(conn, self.tables, task_id, status, active)
            if not active:
                await locks_sql.remove_locks(conn, self.tables, task_id)
            return changed

    async def get_task(self, task_id: str) -> TaskRow | None:
        async with self.reading("get task") as conn:
            return await tasks_sql.get_task(conn, self.tables, task_id)

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRow]:
        async with self.reading("get tasks") as conn:
            return await tasks_sql.get_tasks(conn, self.tables, task_ids)

    async def list_tasks(
        self,
        *,
        active: bool | None = None,
        datasource: str | None = None,
        task_type: str | None = None,
        created_after: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRow]:
        async with self.reading("list tasks") as conn:
            return await tasks_sql.list_tasks(
                conn,
                self.tables,
                active=active,
                datasource=datasource,
                task_type=task_type,
                created_after=created_after,
                limit=limit,
            )

    async def task_locks(self, task_ids: Sequence[str] | None = None) -> list[locks_sql.TaskLock]:
        async with self.reading("list task locks") as conn:
            return await locks_sql.list_locks(conn, self.tables, task_ids)

    async def acquire_lock(
        self, task_id: str, group_id: str, data_source: str, interval: Interval, lock_type: str
    ) -> locks_sql.TaskLock | None:
        """A time-chunk lock for the task, or None when another task's lock conflicts."""
        async with self.transaction("acquire task lock") as conn:
            await locks_sql.serialize_datasource(conn, self.tables, data_source)
            lock, fresh = locks_sql.decide_lock(
                await locks_sql.list_locks(conn, self.tables),
                task_id=task_id,
                group_id=group_id,
                data_source=data_source,
                interval=interval,
                lock_type=lock_type,
                new_version=iso_millis(_now()),
            )
            if lock is not None and fresh:
                await locks_sql.add_lock(conn, self.tables, lock)
            return lock

    async def release_lock(self, task_id: str, interval: Interval | None = None) -> int:
        async with self.transaction("release task lock") as conn:
            return await locks_sql.remove_locks(conn, self.tables, task_id, interval)

    # --- segment allocation and the transactional publish (druid_pendingSegments, dataSource)

    async def allocate_segment(
        self, request: pending_sql.AllocateRequest, attempts: int = 10
    ) -> SegmentIdWithShardSpec | None:
        """Druid's segmentAllocate in one transaction, retried when a concurrent one won."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction("allocate segment") as conn:
                    return await pending_sql.allocate_segment(
                        conn, self.tables, request, iso_millis(_now())
                    )
            except CompareAndSwapFailed:
                if attempt == attempts:
                    raise
        return None

    async def pending_segments(
        self, data_source: str, interval: Interval | None = None
    ) -> list[SegmentIdWithShardSpec]:
        async with self.reading("list pending segments") as conn:
            return await pending_sql.list_pending(conn, self.tables, data_source, interval)

    async def delete_pending_segments(
        self, data_source: str, interval: Interval | None = None
    ) -> int:
        async with self.transaction("delete pending segments") as conn:
            return await pending_sql.delete_pending(conn, self.tables, data_source, interval)

    async def delete_pending_of_finished_allocator(
        self, data_source: str, allocator_id: str
    ) -> int:
        """Pending segments of task group ``allocator_id`` once none of its tasks is active."""
        async with self.transaction("delete pending segments of a finished task group") as conn:
            return await pending_sql.delete_pending_of_finished_allocator(
                conn, self.tables, data_source, allocator_id
            )

    async def commit_segments_and_metadata(
        self,
        segments: Sequence[DataSegment],
        supervisor_id: str | None,
        start: DataSourceMetadata | None,
        end: DataSourceMetadata | None,
        drop: Sequence[DataSegment] = (),
    ) -> dsm_sql.PublishResult:
        """Segments and the new offsets in one transaction, compare-and-swap on the offsets;
        ``drop`` (Druid's ``segmentsToBeDropped``) are marked unused in the same transaction."""
        now = iso_millis(_now())
        async with self.transaction("commit segments and metadata") as conn:
            result = await dsm_sql.commit_segments_and_metadata(
                conn, self.tables, segments, supervisor_id, start, end, now
            )
            if result.success and drop:
                for ds in {s.data_source for s in drop}:
                    ids = [s.identifier for s in drop if s.data_source == ds]
                    await segments_sql.set_used(conn, self.tables, ds, False, now, segment_ids=ids)
            return result

    async def get_datasource_metadata(self, supervisor_id: str) -> dict[str, Any] | None:
        """The committed DataSourceMetadata JSON of a supervisor, or None."""
        async with self.reading("get datasource metadata") as conn:
            return await dsm_sql.get_metadata(conn, self.tables, supervisor_id)

    async def reset_datasource_metadata(
        self, supervisor_id: str, partitions: dict[str, Any] | None
    ) -> bool:
        """Delete the committed offsets (None) or overwrite those of the given partitions."""
        async with self.transaction("reset datasource metadata") as conn:
            return await dsm_sql.reset_metadata(
                conn, self.tables, supervisor_id, partitions, iso_millis(_now())
            )


def _now() -> datetime:
    return datetime.now(UTC)
