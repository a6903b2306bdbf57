"""Druid's ``kill`` task (``KillUnusedSegmentsTask``): delete unused segments for good.

Spec (``POST /druid/indexer/v1/task``)::

    {"type": "kill", "id"?, "dataSource", "interval", "versions"?, "batchSize"? (100),
     "limit"?, "maxUsedStatusLastUpdatedTime"?, "markAsUnused"? (false, deprecated), "context"?}

Run, under an exclusive time-chunk lock on ``interval`` (the task waits while another task holds
an overlapping lock): optionally mark the used segments the interval contains unused first
(``markAsUnused``), then batch by batch (at most ``batchSize`` segments, at most ``limit`` in
all) list the unused segments the interval contains (of ``versions``, marked unused no later than
``maxUsedStatusLastUpdatedTime``), delete their metadata rows, then their files in deep storage.
Metadata goes first, as in Druid: a row always has its file, never the other way round. The
report is Druid's ``KillTaskReport`` under ``killUnusedSegments``.

Kill tasks need no ingestion slot: they run on the overlord leader itself (``local.py``), and a
leader that takes over re-runs active ones (a kill is idempotent).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.errors import InvalidInput
from common.metadata import MetadataStore
from common.metadata.unused import kill_candidates
from common.segments.deep_storage import DeepStorage
from common.segments.intervals import Interval
from common.segments.isotime import format_iso, parse_iso

KILL_TYPE = "kill"
REPORT_KEY = "killUnusedSegments"
#: Druid's ``KillUnusedSegmentsTask.DEFAULT_SEGMENT_NUKE_BATCH_SIZE``.
DEFAULT_BATCH_SIZE = 100
#: How often a kill task waiting for its lock tries again.
LOCK_RETRY_SECONDS = 0.5
_KNOWN = {
    "type",
    "id",
    "groupId",
    "dataSource",
    "interval",
    "versions",
    "batchSize",
    "limit",
    "maxUsedStatusLastUpdatedTime",
    "markAsUnused",
    "context",
    "resource",
}


@dataclass(frozen=True)
class KillSpec:
    task_id: str
    group_id: str
    data_source: str
    interval: Interval
    versions: list[str] | None
    batch_size: int
    limit: int | None
    max_used_status_last_updated: int | None
    mark_as_unused: bool


def _positive_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"Invalid kill task: {key}[{value}] must be a positive integer")
    return value


def parse_kill(obj: dict[str, Any]) -> KillSpec:
    """Validate a kill task; ``InvalidInput`` (400) naming the bad field."""
    unknown = sorted(set(obj) - _KNOWN)
    if unknown:
        raise InvalidInput(f"Invalid kill task: unknown field(s) {unknown}")
    ds = obj.get("dataSource")
    if not isinstance(ds, str) or not ds:
        raise InvalidInput("Invalid kill task: 'dataSource' is required")
    raw_interval = obj.get("interval")
    if not isinstance(raw_interval, str):
        raise InvalidInput("Invalid kill task: 'interval' is required (ISO 8601 start/end)")
    interval = Interval.parse(raw_interval)
    versions = obj.get("versions")
    if versions is not None and (
        not isinstance(versions, list) or not all(isinstance(v, str) for v in versions)
    ):
        raise InvalidInput("Invalid kill task: 'versions' must be a list of strings")
    batch_size = _positive_int(obj, "batchSize") or DEFAULT_BATCH_SIZE
    limit = _positive_int(obj, "limit")
    mark = obj.get("markAsUnused", False)
    if not isinstance(mark, bool):
        raise InvalidInput("Invalid kill task: 'markAsUnused' must be true or false")
    if mark and limit is not None:
        raise InvalidInput("Invalid kill task: limit cannot be provided when markAsUnused is true")
    if mark and versions is not None:
        raise InvalidInput(
            "Invalid kill task: versions cannot be provided when markAsUnused is true"
        )
    raw_max = obj.get("maxUsedStatusLastUpdatedTime")
    if raw_max is not None and not isinstance(raw_max, str):
        raise InvalidInput("Invalid kill task: 'maxUsedStatusLastUpdatedTime' must be ISO 8601")
    max_updated = parse_iso(raw_max) if raw_max is not None else None
    task_id = obj.get("id") or (
        f"{KILL_TYPE}_{ds}_{format_iso(interval.start)}_{format_iso(interval.end)}_"
        f"{secrets.token_hex(4)}"
    )
    if not isinstance(task_id, str) or "/" in task_id or any(ch.isspace() for ch in task_id):
        raise InvalidInput(f"Invalid task id [{task_id}]: no '/' or whitespace allowed")
    group_id = obj.get("groupId") or task_id
    return KillSpec(
        task_id, str(group_id), ds, interval, versions, batch_size, limit, max_updated, mark
    )


def kill_payload(obj: dict[str, Any]) -> dict[str, Any]:
    """The payload to store for a submitted kill task (id, groupId and resource filled in)."""
    spec = parse_kill(obj)
    context = obj.get("context")
    if context is not None and not isinstance(context, dict):
        raise InvalidInput("Invalid task: 'context' must be an object")
    payload = dict(obj)
    payload["id"] = spec.task_id
    payload["groupId"] = spec.group_id
    payload["resource"] = {"availabilityGroup": spec.task_id, "requiredCapacity": 1}
    payload["batchSize"] = spec.batch_size
    return payload


def kill_report(task_id: str, killed: int, batches: int, marked: int) -> dict[str, Any]:
    return {
        REPORT_KEY: {
            "type": REPORT_KEY,
            "taskId": task_id,
            "payload": {
                "numSegmentsKilled": killed,
                "numBatchesProcessed": batches,
                "numSegmentsMarkedAsUnused": marked,
            },
        }
    }


class KillRun:
    """One kill task's work; ``progress`` is called with the report after every batch."""

    def __init__(
        self,
        spec: KillSpec,
        store: MetadataStore,
        deep_storage: DeepStorage,
        progress: Callable[[dict[str, Any]], None],
    ) -> None:
        self.spec = spec
        self.store = store
        self.deep_storage = deep_storage
        self.progress = progress
        self.killed = 0
        self.batches = 0
        self.marked = 0

    def report(self) -> dict[str, Any]:
        return kill_report(self.spec.task_id, self.killed, self.batches, self.marked)

    async def acquire_lock(self) -> None:
        s = self.spec
        while True:
            lock = await self.store.acquire_lock(
                s.task_id, s.group_id, s.data_source, s.interval, "EXCLUSIVE"
            )
            if lock is not None:
                return
            # Locks live in the metadata store (other overlords' tasks too): poll it.
            await asyncio.sleep(LOCK_RETRY_SECONDS)

    async def run(self) -> None:
        s = self.spec
        if s.mark_as_unused:
            self.marked = await self.store.set_segments_used(
                s.data_source, False, interval=s.interval
            )
        self.progress(self.report())
        while s.limit is None or self.killed < s.limit:
            size = s.batch_size if s.limit is None else min(s.batch_size, s.limit - self.killed)
            batch = kill_candidates(
                await self.store.unused_segment_rows(s.data_source),
                s.interval,
                versions=s.versions,
                limit=size,
                max_used_status_last_updated=s.max_used_status_last_updated,
            )
            if not batch:
                break
            nuked = set(
                await self.store.nuke_segments(s.data_source, [x.identifier for x in batch])
            )
            gone = [x for x in batch if x.identifier in nuked]
            for segment in gone:
                if segment.load_spec:
                    await asyncio.to_thread(self.deep_storage.delete, dict(segment.load_spec))
            self.killed += len(gone)
            self.batches += 1
            self.progress(self.report())
            if not gone:
                break  # everything listed was marked used again meanwhile
