"""The peon's process: a worker that runs ``index_kafka`` tasks and serves their realtime data.

Start order (after ``NodeService`` opens discovery): the task manager re-loads its persisted
tasks and re-runs the assigned ones, then the node is announced with ``workerNodeService`` (and
``dataNodeService``, serverType ``indexer-executor``, while tasks run: their sinks are announced as
segments at ``/druid-internal/v1/segments`` and answer ``/druid/v2``). Shutdown releases parked
long polls first, then asks every ``index_kafka`` task to stop for a restart: each persists what
it holds in memory (and finishes a publish under way) within
``druid.indexer.task.gracefulShutdownTimeout``; whatever still runs then (batch tasks, a task
past the timeout) is cancelled. Every task stays assigned, so a restarted peon resumes them, the
streaming ones from their persists.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.lowlevel
import httpx
import pyarrow as pa

from common.config import Settings
from common.discovery.leader_client import LeaderClient
from common.discovery.node import DataNodeService, DruidService, WorkerNodeService
from common.ingest.batch_input.compact import COMPACT_TYPE, parse_compact_task
from common.ingest.batch_input.spec import BATCH_TASK_TYPES, parse_batch_task
from common.metrics import Sample
from common.procinfo import lean_allocators
from common.query.datanode import SegmentGetter, segment_lookup
from common.segments.deep_storage import DeepStorage
from common.segments.segment import DataSegment, SegmentId
from common.server import NodeService
from common.serverview.announcer import SegmentAnnouncer
from services.peon.batch_task import BatchDeps, BatchIndexTask
from services.peon.clients import (
    COORDINATOR_PREFIX,
    OVERLORD_PREFIX,
    HandoffClient,
    TaskActionClient,
)
from services.peon.compact_task import resolve
from services.peon.publish import TaskDeps
from services.peon.runner import KafkaIndexTaskRunner
from services.peon.taskspec import parse_task
from services.peon.worker import WorkerTaskManager

log = logging.getLogger(__name__)

SERVER_TYPE = "indexer-executor"
GIL_SWITCH_INTERVAL = 0.0005
#: Final reports of completed batch tasks kept for the overlord's ``/task/{id}/reports``.
MAX_KEPT_BATCH_REPORTS = 200


class PeonService(NodeService):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.announcer = SegmentAnnouncer()
        self.runners: dict[str, KafkaIndexTaskRunner] = {}
        self.batch_runners: dict[str, BatchIndexTask] = {}
        self._batch_reports: OrderedDict[str, dict[str, Any]] = OrderedDict()
        #: ``druid.segment.handoff.pollDuration`` (seconds); Druid's default PT1M.
        self.handoff_poll_period = settings.segment_handoff.poll_duration
        self.graceful_shutdown_timeout = settings.indexer_task.graceful_shutdown_timeout
        n, tls = settings.node, settings.security.tls
        self.manager = WorkerTaskManager(
            settings.indexer_task.base_task_dir,
            n.host,
            n.plaintext_port if tls.enable_plaintext_port else -1,
            self._run_task,
            tls_port=settings.tls_port if tls.enable_tls_port else -1,
        )
        self.manager.on_change = self._tasks_changed
        self._http: httpx.AsyncClient | None = None
        self._serving_data = False
        self._reannounce: asyncio.Task[None] | None = None
        self._register_ingest_metrics()
        self.shutdown_hooks.append(self.announcer.close)
        self.shutdown_hooks.append(self._close_history)

    def node_services(self) -> dict[str, DruidService]:
        w = self.settings.worker
        services: dict[str, DruidService] = {
            WorkerNodeService.KEY: WorkerNodeService(
                ip=self.settings.node.host,
                capacity=w.capacity,
                version=w.version,
                category=w.category,
            )
        }
        if self._serving_data:
            s = self.settings.server
            services[DataNodeService.KEY] = DataNodeService(
                tier=s.tier, max_size=0, server_type=SERVER_TYPE, priority=s.priority
            )
        return services

    def _register_ingest_metrics(self) -> None:
        """Druid's ingestion metrics per running task (``dataSource``, ``taskId``): Kafka tasks
        and batch tasks (which have no handoffs)."""

        def per_task(read: Callable[[Runner], int | None]) -> Callable[[], list[Sample]]:
            def samples() -> list[Sample]:
                runners: list[tuple[str, Runner]] = [
                    *self.runners.items(),
                    *self.batch_runners.items(),
                ]
                out: list[Sample] = []
                for task_id, r in runners:
                    value = read(r)
                    if value is not None:
                        labels = {"dataSource": r.spec.data_source, "taskId": task_id}
                        out.append((labels, float(value)))
                return out

            return samples

        labels = ["dataSource", "taskId"]
        for name, doc, read in (
            ("ingest/events/processed", "Rows ingested.", _processed),
            ("ingest/events/processedWithError", "Rows ingested with errors.", _with_error),
            ("ingest/events/unparseable", "Records that could not be parsed.", _unparseable),
            ("ingest/events/thrownAway", "Rows filtered out or outside the windows.", _thrown),
            ("ingest/persists/count", "Persists of in-memory rows to disk.", _persists),
            ("ingest/handoff/count", "Segments handed off to historicals.", _handoffs),
        ):
            self.metrics.gauge_callback(name, doc, per_task(read), labels)

    async def on_start(self) -> None:
        # Parsing and index building run in worker threads but hold the GIL; Python's default
        # 5 ms switch interval lets them keep the event loop waiting for tens of ms per request.
        # A shorter interval keeps status, chat and long-poll answers prompt at full speed.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        # Freed Kafka responses and per-poll Arrow buffers go back to the OS (RSS).
        lean_allocators()
        # Paid here rather than in the middle of a task's first seconds of reading, where each
        # held the event loop and the GIL for tens of ms: Arrow's group-by (realtime queries,
        # rollup) imports its Acero engine on first use, and the first outgoing request (the
        # first segment allocation) loads anyio's asyncio backend.
        import pyarrow.acero  # noqa: F401

        await anyio.lowlevel.checkpoint()

        self._http = self.security.clients.new(timeout=30.0)
        self._serving_data = False
        self.manager.start(self.tasks)
        self._serving_data = bool(self.manager.tasks)

    async def on_close(self) -> None:
        await self._stop_streaming_tasks()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _stop_streaming_tasks(self) -> None:
        """Druid's ``stopGracefully`` of restorable tasks on a stop: persist, stay assigned."""
        runners = list(self.runners.values())
        if not runners:
            return
        for runner in runners:
            runner.stop_for_restart()
        log.info("stopping %d streaming tasks for a restart", len(runners))
        late = await self.manager.wait_stopped(
            [r.spec.id for r in runners], self.graceful_shutdown_timeout
        )
        if late:
            log.warning(
                "tasks %s did not persist within %.0fs (gracefulShutdownTimeout); cancelled: "
                "a restart re-reads them from their last persist",
                late,
                self.graceful_shutdown_timeout,
            )

    def _close_history(self) -> None:
        self.manager.close()

    # ------------------------------------------------------------------ tasks

    @staticmethod
    def validate_task(task: dict[str, Any]) -> None:
        if task.get("type") in BATCH_TASK_TYPES:
            parse_batch_task(task)
        elif task.get("type") == COMPACT_TYPE:
            parse_compact_task(task)
        else:
            parse_task(task)

    async def _run_task(
        self, task: dict[str, Any], task_dir: Path, task_log: logging.Logger
    ) -> dict[str, Any] | None:
        if task.get("type") in (*BATCH_TASK_TYPES, COMPACT_TYPE):
            return await self._run_batch_task(task, task_dir, task_log)
        spec = parse_task(task)
        assert self._http is not None
        overlord = LeaderClient(self.provider, "overlord", OVERLORD_PREFIX, self._http)
        # The overlord leader is looked up while the task starts: its first action (the first
        # segment allocation) does not wait for the lookup.
        warming = asyncio.create_task(overlord.warm())
        deps = TaskDeps(
            actions=TaskActionClient(overlord, task),
            handoff=HandoffClient(
                LeaderClient(self.provider, "coordinator", COORDINATOR_PREFIX, self._http)
            ),
            deep_storage=DeepStorage.from_settings(self.settings),
            announce=lambda s: self.announcer.announce([s]),
            unannounce=lambda s: self.announcer.unannounce([s]),
            handoff_poll_period=self.handoff_poll_period,
        )
        runner = KafkaIndexTaskRunner(spec, task_dir, deps, task_log)
        self.runners[spec.id] = runner
        try:
            return await runner.run()
        finally:
            warming.cancel()
            self.runners.pop(spec.id, None)
            self.announcer.unannounce(
                [runner.sink_segment(s) for s in runner.appenderator.sinks.values()]
            )
            await asyncio.wait([warming])  # no lookup outlives the task

    async def _run_batch_task(
        self, task: dict[str, Any], task_dir: Path, task_log: logging.Logger
    ) -> dict[str, Any]:
        assert self._http is not None
        overlord = LeaderClient(self.provider, "overlord", OVERLORD_PREFIX, self._http)
        compaction_state = None
        if task.get("type") == COMPACT_TYPE:
            planned = await resolve(
                parse_compact_task(task),
                TaskActionClient(overlord, task),
                DeepStorage.from_settings(self.settings),
                task_dir,
            )
            task, compaction_state = planned.task, planned.compaction_state
        spec = parse_batch_task(task)
        deps = BatchDeps(
            actions=TaskActionClient(overlord, task),
            handoff=HandoffClient(
                LeaderClient(self.provider, "coordinator", COORDINATOR_PREFIX, self._http)
            ),
            deep_storage=DeepStorage.from_settings(self.settings),
            overlord=overlord,
            http=self._http,
            self_url=self.settings.base_url,
            handoff_poll_period=min(self.handoff_poll_period, 10.0),
            s3=self.settings.s3,
        )
        runner = BatchIndexTask(spec, task_dir, deps, task_log, task)
        runner.compaction_state = compaction_state
        self.batch_runners[spec.id] = runner
        try:
            return await runner.run()
        finally:
            # Kept before the completion is announced: the overlord fetches the final report
            # when it sees the task complete.
            self._batch_reports[spec.id] = runner.report()
            while len(self._batch_reports) > MAX_KEPT_BATCH_REPORTS:
                self._batch_reports.popitem(last=False)
            self.batch_runners.pop(spec.id, None)

    def batch_report(self, task_id: str) -> dict[str, Any] | None:
        """A batch task's report: live while it runs, the final one afterwards."""
        runner = self.batch_runners.get(task_id)
        if runner is not None:
            return runner.report()
        return self._batch_reports.get(task_id)

    def get_batch_runner(self, task_id: str) -> BatchIndexTask | None:
        return self.batch_runners.get(task_id)

    def get_runner(self, task_id: str) -> KafkaIndexTaskRunner | None:
        return self.runners.get(task_id)

    def _tasks_changed(self) -> None:
        serving = bool(self.manager.tasks)
        if serving != self._serving_data and self._announced_ready():
            self._serving_data = serving
            self._reannounce = self.tasks.start(self.reannounce(), "reannounce")
        else:
            self._serving_data = serving

    def _announced_ready(self) -> bool:
        return not self.tasks.closed

    # ------------------------------------------------------------------ realtime queries

    def served_segments(self) -> list[DataSegment]:
        return self.announcer.served

    def segment_table(self, sid: SegmentId) -> tuple[DataSegment, pa.Table]:
        for runner in list(self.runners.values()):
            sink = runner.appenderator.sinks.get(sid)
            if sink is not None:
                metrics = [m.name for m in runner.spec.schema.metricsSpec]
                return runner.sink_segment(sink), sink.query_table(metrics)
        raise KeyError(str(sid))

    def segment_getter(self) -> SegmentGetter:
        return segment_lookup(self.served_segments, self.segment_table)


Runner = KafkaIndexTaskRunner | BatchIndexTask


def _processed(r: Runner) -> int:
    return r.meters.processed


def _with_error(r: Runner) -> int:
    return r.meters.processed_with_error


def _unparseable(r: Runner) -> int:
    return r.meters.unparseable


def _thrown(r: Runner) -> int:
    return r.meters.thrown_away


def _persists(r: Runner) -> int:
    if isinstance(r, BatchIndexTask):
        return r.persists
    return r.appenderator.persists


def _handoffs(r: Runner) -> int | None:
    return None if isinstance(r, BatchIndexTask) else r.publisher.handoffs
