"""One Kafka supervisor's run loop (Druid's ``SeekableStreamSupervisor`` + ``KafkaSupervisor``).

A single coroutine owns all the supervisor's state and handles notices one at a time: ``run``
(de-duplicated; at most once per second, and every ``period`` after ``startDelay``),
``checkpoint``, ``reset``, ``resetOffsets`` and ``gracefulShutdown``. A run follows Druid's order:
update partitions and latest offsets from Kafka, discover tasks, update task status, check task
duration (roll over), check pending-completion groups, check current task state, then create new
tasks (or, when suspended, finish the reading groups gracefully). The decisions are in
``decisions``; the task queue is reached through ``taskview.TaskQueue`` and tasks through the chat
client.

Partitions are read from Kafka on every run; with ``topicPattern`` they are those of every topic
whose whole name matches (``topic:partition`` ids). A partition seen after the first look starts
at its earliest offset, and a changed partition set makes the reading groups stop early, after
``repartitionTransitionDuration``, so that the next generation reads the new partitions (Druid's
``earlyStopTime``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from common.aio import bounded
from common.ingest.kafka import KafkaRecordSupplier, RecordSupplierError
from common.ingest.metadata import DataSourceMetadata
from common.ingest.partitions import PartitionId
from services.overlord.supervisor import decisions, state
from services.overlord.supervisor.groups import Group, TaskData, build_report, parse_iso
from services.overlord.supervisor.spec import KafkaSupervisorSpec
from services.overlord.supervisor.task_client import TaskChatClient, TaskChatError
from services.overlord.supervisor.taskview import (
    FAILED,
    RUNNING,
    SUCCESS,
    TaskQueue,
    TaskView,
    status_code,
    view,
)

log = logging.getLogger(__name__)

MIN_RUN_INTERVAL = 1.0  # Druid's MAX_RUN_FREQUENCY_MILLIS
PUBLISHING = "PUBLISHING"


class OffsetStore(Protocol):
    """The committed offsets in ``druid_dataSource`` (engineer A's metadata store methods)."""

    async def get_datasource_metadata(self, supervisor_id: str) -> dict[str, Any] | None: ...

    async def reset_datasource_metadata(
        self, supervisor_id: str, partitions: dict[str, Any] | None
    ) -> Any: ...

    async def delete_pending_segments(self, data_source: str) -> int: ...


@dataclass
class Notice:
    kind: str
    args: tuple[Any, ...] = ()
    done: asyncio.Future[None] | None = None


class KafkaSupervisor:
    def __init__(
        self,
        spec: KafkaSupervisorSpec,
        queue: TaskQueue,
        offsets: OffsetStore,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self._queue = queue
        self._offsets = offsets
        self._clock = clock
        self._rng = rng or random.Random()
        self._locations: dict[str, str] = {}
        self.chat = TaskChatClient(http, self._locate, spec.chat, self._rng)
        self.state = state.StateManager(suspended=spec.suspended)
        self.groups: dict[int, Group] = {}
        self.pending: dict[int, list[Group]] = {}
        self.next_offsets: dict[PartitionId, int] = {}
        self.partitions: list[PartitionId] = []
        #: Partitions that appeared after the first look at the stream: they start at earliest.
        self.discovered_later: set[PartitionId] = set()
        #: When the reading groups stop early after a partition set change (epoch seconds).
        self.early_stop_time: float | None = None
        self.latest: dict[PartitionId, int] | None = None
        self.committed: dict[PartitionId, int] | None = None
        self.offsets_last_updated: float | None = None
        self._supplier: KafkaRecordSupplier | None = None
        #: The consumer connecting ahead of the first run (``connect``), taken by it.
        self._opening: asyncio.Task[KafkaRecordSupplier] | None = None
        self._notices: deque[Notice] = deque()
        self._run_requested = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    # ---- lifecycle (called by the manager)
    def start(self, spawn: Callable[[Any, str], asyncio.Task[None]]) -> None:
        self._task = spawn(self._loop(), f"supervisor-{self.id}")

    async def stop(self, graceful: bool) -> None:
        """Stop the loop; ``graceful`` first finishes the reading groups (they publish)."""
        if graceful and self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await self.submit("gracefulShutdown", wait=self.spec.chat.shutdown_timeout)
        self.state.stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close_supplier()

    def request_run(self) -> None:
        self._run_requested = True
        self._wake.set()

    async def submit(self, kind: str, *args: Any, wait: float | None = None) -> None:
        """Queue a notice; with ``wait``, until it has been handled (or ``wait`` seconds)."""
        done: asyncio.Future[None] | None = None
        if wait is not None:
            done = asyncio.get_running_loop().create_future()
        self._notices.append(Notice(kind, args, done))
        self._wake.set()
        if done is not None:
            await bounded(asyncio.shield(done), wait)

    def report(self) -> dict[str, Any]:
        return build_report(
            self.spec,
            self.state,
            self.partitions,
            self.groups.values(),
            (g for gs in self.pending.values() for g in gs),
            self.latest,
            self.committed,
            self.offsets_last_updated,
            self._clock(),
        )

    # ---- the loop
    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        first_run_at = loop.time() + self.spec.io.start_delay
        next_run = first_run_at
        last_run = float("-inf")
        while True:
            if not self._notices:
                due = max(next_run, last_run + MIN_RUN_INTERVAL)
                if self._run_requested:
                    due = max(first_run_at, last_run + MIN_RUN_INTERVAL)
                timeout = due - loop.time()
                if timeout > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await self._wake.wait()
                    continue
            if self._notices:
                await self._handle(self._notices.popleft())
                continue
            self._run_requested = False
            last_run = loop.time()
            next_run = last_run + self.spec.io.period
            await self._run_once()

    async def _handle(self, notice: Notice) -> None:
        try:
            if notice.kind == "checkpoint":
                await self._checkpoint_notice(*notice.args)
            elif notice.kind == "reset":
                await self._reset(*notice.args)
            elif notice.kind == "gracefulShutdown":
                await self._graceful_shutdown()
            else:
                raise ValueError(f"unknown notice {notice.kind!r}")
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("supervisor [%s]: %s notice failed", self.id, notice.kind)
            self.state.record_error(e, self._clock())
        finally:
            if notice.done is not None and not notice.done.done():
                notice.done.set_result(None)

    async def _run_once(self) -> None:
        ok = True
        try:
            self.state.begin_step(state.CONNECTING_TO_STREAM)
            await self._update_partitions()
            self.state.begin_step(state.DISCOVERING_INITIAL_TASKS)
            mine = self._my_tasks()
            await self._discover_tasks(mine)
            await self._update_task_status(mine)
            await self._check_task_duration(force=False)
            await self._check_pending_completion()
            await self._check_current_task_state()
            if self.spec.suspended:
                await self._graceful_shutdown()
            else:
                self.state.begin_step(state.CREATING_TASKS)
                await self._create_new_tasks()
            await self._update_current_offsets()
        except asyncio.CancelledError:
            raise
        except RecordSupplierError as e:
            ok = False
            log.warning("supervisor [%s]: stream error: %s", self.id, e)
            self.state.record_error(e, self._clock(), stream=True)
            await self._close_supplier()
        except Exception as e:
            ok = False
            log.exception("supervisor [%s]: run failed", self.id)
            self.state.record_error(e, self._clock())
        self.state.run_finished(ok)

    # ---- stream
    def connect(self) -> None:
        """Start connecting to the stream now (the manager calls it while it stores the spec);
        the first run takes the consumer, or the error, from there."""
        if self._supplier is None and self._opening is None:
            self._opening = asyncio.create_task(self._open_supplier())

    async def _open_supplier(self) -> KafkaRecordSupplier:
        io = self.spec.io
        supplier = KafkaRecordSupplier(io.consumer_properties, io.stream, io.multi_topic)
        await supplier.start()
        return supplier

    async def _close_supplier(self) -> None:
        opening, self._opening = self._opening, None
        if opening is not None:
            opening.cancel()
            await asyncio.wait([opening])
            if not opening.cancelled() and opening.exception() is None:
                with contextlib.suppress(Exception):
                    await opening.result().close()
        supplier, self._supplier = self._supplier, None
        if supplier is not None:
            with contextlib.suppress(Exception):
                await supplier.close()

    async def _update_partitions(self) -> None:
        if self._supplier is None:
            opening, self._opening = self._opening, None
            self._supplier = await (opening or self._open_supplier())
        found = await self._supplier.partitions()
        self._partitions_changed(found)
        self.partitions = found
        self.latest = await self._supplier.latest_offsets(self.partitions)
        self.offsets_last_updated = self._clock()
        self.state.stream_ok()
        self.committed = await self._committed()

    def _partitions_changed(self, found: list[PartitionId]) -> None:
        """Druid's ``updatePartitionDataFromStream`` bookkeeping of a new partition set."""
        before = set(self.partitions)
        now_set = set(found)
        if not before or now_set == before:
            return
        new = now_set - before
        self.discovered_later |= new
        log.info(
            "supervisor [%s]: partition set of [%s] changed: %d new %s, %d gone",
            self.id,
            self.spec.io.stream,
            len(new),
            sorted(map(str, new))[:20],
            len(before - now_set),
        )
        if any(g.tasks for g in self.groups.values()):
            self.early_stop_time = self._clock() + self.spec.chat.repartition_transition
            log.info(
                "supervisor [%s]: reading tasks stop early in %.0fs to take the new partition set",
                self.id,
                self.spec.chat.repartition_transition,
            )

    async def _committed(self) -> dict[PartitionId, int] | None:
        raw = await self._offsets.get_datasource_metadata(self.id)
        if raw is None:
            return None
        md = DataSourceMetadata.from_json(raw)
        if md.stream != self.spec.io.stream:
            # Druid refuses to guess: the operator must reset the supervisor.
            raise ValueError(
                f"topic [{md.stream}] in metadata storage does not match the supervisor's topic "
                f"[{self.spec.io.stream}]; reset the supervisor"
            )
        return dict(md.offsets)

    # ---- tasks
    def _my_tasks(self) -> dict[str, TaskView]:
        views = (view(i) for i in self._queue.active_tasks(self.spec.data_source))
        mine = {v.id: v for v in views if v.belongs_to(self.id, self.spec.data_source)}
        self._locations = {v.id: v.location for v in mine.values() if v.location is not None}
        return mine

    def _locate(self, task_id: str) -> str | None:
        """Where the task's chat endpoints are now, asked from the task queue each time (a
        task gets its location when a peon runs it, and may move)."""
        for info in self._queue.active_tasks(self.spec.data_source):
            v = view(info)
            if v.id == task_id:
                if v.location is not None:
                    self._locations[task_id] = v.location
                return v.location
        return None

    def _all_groups(self) -> list[Group]:
        return [*self.groups.values(), *(g for gs in self.pending.values() for g in gs)]

    async def _kill(self, task_id: str, reason: str) -> None:
        log.info("supervisor [%s]: killing task [%s]: %s", self.id, task_id, reason)
        try:
            await self._queue.shutdown(task_id, reason)
        except Exception as e:
            log.warning("supervisor [%s]: shutting down [%s] failed: %s", self.id, task_id, e)

    async def _kill_group(self, group: Group, reason: str) -> None:
        for tid in list(group.tasks):
            if group.tasks[tid].status == RUNNING:
                await self._kill(tid, reason)
        group.tasks.clear()

    async def _discover_tasks(self, mine: dict[str, TaskView]) -> None:
        known = {tid for g in self._all_groups() for tid in g.tasks}
        groups_of = decisions.partition_groups(self.partitions, self.spec.io.task_count)
        for v in mine.values():
            if v.id in known:
                continue
            io = v.io_config
            gid = io.get("taskGroupId")
            base = io.get("baseSequenceName")
            times = _message_times(io)
            starts_raw = io.get("startSequenceNumbers")
            starts = decisions.offsets_from_json(
                starts_raw.get("partitionSequenceNumberMap")
                if isinstance(starts_raw, dict)
                else None
            )
            current = (
                isinstance(gid, int)
                and bool(starts)
                and set(starts) <= set(groups_of.get(gid, []))
                and base == decisions.base_sequence_name(self.spec, starts, *times)
            )
            if not current or not isinstance(gid, int) or not isinstance(base, str):
                await self._kill(v.id, "task does not match the supervisor's current spec")
                continue
            try:
                status = await self.chat.status(v.id, retry=False)
            except TaskChatError:
                status = None  # not started yet: it will read from its start offsets
            if status == PUBLISHING:
                await self._adopt_publishing(v.id, gid, base, starts)
                continue
            group = self.groups.get(gid)
            if group is None:
                group = Group(gid, starts, base, self._clock(), self._checkpoints_of(v))
                group.message_times = times
                with contextlib.suppress(TaskChatError):
                    if status is not None:
                        group.checkpoints = await self.chat.checkpoints(v.id) or group.checkpoints
                self.groups[gid] = group
            if group.base_name != base:
                await self._kill(v.id, "another generation of its task group is reading")
                continue
            group.tasks[v.id] = TaskData()
            log.info("supervisor [%s]: adopted task [%s] in group %d", self.id, v.id, gid)

    def _checkpoints_of(self, v: TaskView) -> dict[int, dict[PartitionId, int]]:
        ctx = v.payload.get("context")
        raw = ctx.get("checkpoints") if isinstance(ctx, dict) else None
        if not isinstance(raw, dict):
            return {}
        return {int(k): decisions.offsets_from_json(o) for k, o in raw.items()}

    async def _adopt_publishing(
        self, task_id: str, gid: int, base: str, starts: dict[PartitionId, int]
    ) -> None:
        groups = self.pending.setdefault(gid, [])
        group = next((g for g in groups if g.base_name == base), None)
        if group is None:
            now = self._clock()
            group = Group(gid, starts, base, now)
            group.completion_deadline = now + self.spec.io.completion_timeout
            with contextlib.suppress(TaskChatError):
                group.end_offsets = await self.chat.end_offsets(task_id)
                self.next_offsets.update(group.end_offsets)
            groups.append(group)
        group.tasks[task_id] = TaskData()

    async def _update_task_status(self, mine: dict[str, TaskView]) -> None:
        waiting = {tid: v.pending_reason for tid, v in mine.items() if v.pending_reason}
        self.state.tasks_waiting(waiting, self._clock())
        for group in self._all_groups():
            for tid, td in group.tasks.items():
                v = mine.get(tid)
                if v is not None:
                    # WAITING / PENDING / RUNNING are all still alive.
                    td.status = v.status if v.status in (SUCCESS, FAILED) else RUNNING
                else:
                    code = status_code(await self._queue.status(tid))
                    td.status = code if code in (RUNNING, SUCCESS) else FAILED
                if td.status == RUNNING and td.start_time is None and tid in self._locations:
                    with contextlib.suppress(TaskChatError):
                        td.start_time = parse_iso(await self.chat.start_time(tid))

    async def _update_current_offsets(self) -> None:
        async def one(tid: str, td: TaskData) -> None:
            with contextlib.suppress(TaskChatError):
                td.current_offsets = await self.chat.current_offsets(tid, retry=False)

        jobs = [
            one(tid, td)
            for g in self.groups.values()
            for tid, td in g.tasks.items()
            if td.status == RUNNING and tid in self._locations
        ]
        await asyncio.gather(*jobs)

    # ---- checkpoints and rollover
    async def _checkpoint_group(
        self, group: Group, finalize: bool
    ) -> dict[PartitionId, int] | None:
        """Pause every replica, take the max offsets, set them as end offsets (Druid 4.3)."""
        if finalize:
            if group.succeeded():
                for tid in group.live():
                    await self._kill(tid, "a replica of its group already succeeded")
                return None
            for tid in group.live():
                if self._locate(tid) is None:
                    await self._kill(tid, "not started before its group was finalized")
                    group.tasks[tid].status = FAILED
        live = group.live()
        results = await asyncio.gather(*(self.chat.pause(t) for t in live), return_exceptions=True)
        paused: dict[str, dict[PartitionId, int]] = {}
        for tid, r in zip(live, results, strict=True):
            if isinstance(r, BaseException) or not r:
                await self._kill(tid, f"failed to pause: {r}")
                group.tasks[tid].status = FAILED
            else:
                paused[tid] = r
        if not paused:
            return None
        ends = decisions.max_offsets(paused.values())
        sets = await asyncio.gather(
            *(self.chat.set_end_offsets(t, ends, finalize) for t in paused),
            return_exceptions=True,
        )
        for tid, err in zip(paused, sets, strict=True):
            if isinstance(err, BaseException):
                await self._kill(tid, f"failed to set end offsets: {err}")
                group.tasks[tid].status = FAILED
        if not any(group.tasks[t].status == RUNNING for t in paused):
            return None
        if not finalize:
            group.checkpoints[max(group.checkpoints) + 1] = dict(ends)
        return ends

    async def _finalize(self, gid: int, group: Group) -> None:
        ends = await self._checkpoint_group(group, finalize=True)
        del self.groups[gid]
        if ends:
            group.end_offsets = ends
            group.completion_deadline = self._clock() + self.spec.io.completion_timeout
            self.pending.setdefault(gid, []).append(group)
            self.next_offsets.update(ends)
        else:
            await self._kill_group(group, "its group could not be finalized")
            for p in group.partitions:
                self.next_offsets.pop(p, None)

    async def _check_task_duration(self, force: bool) -> None:
        now = self._clock()
        early = self.early_stop_time is not None and self.early_stop_time <= now
        if early:
            log.info(
                "supervisor [%s]: stopping the reading groups early (partitions changed)", self.id
            )
            self.early_stop_time = None
        for gid, group in list(self.groups.items()):
            expired = decisions.is_expired(group.start_time(), now, self.spec.io.task_duration)
            if force or early or expired:
                await self._finalize(gid, group)

    async def _check_pending_completion(self) -> None:
        now = self._clock()
        for gid, groups in list(self.pending.items()):
            for i, group in enumerate(list(groups)):
                if group.succeeded():
                    for tid in group.live():
                        await self._kill(tid, "a replica of its group already published")
                    groups.remove(group)
                    self.state.task_succeeded()
                    continue
                timed_out = (
                    group.completion_deadline is not None and now >= group.completion_deadline
                )
                if not group.all_failed() and not timed_out:
                    continue
                why = (
                    f"No task in pending completion taskGroup[{gid}] succeeded before the "
                    "completion timeout elapsed"
                    if timed_out
                    else f"All tasks in pending completion taskGroup[{gid}] failed"
                )
                self.state.record_error(RuntimeError(why), now)
                self.state.group_failed()
                # Later generations started from offsets that will now never be committed.
                for later in groups[i:]:
                    await self._kill_group(later, why)
                if gid in self.groups:
                    await self._kill_group(self.groups.pop(gid), why)
                for p in group.partitions:
                    self.next_offsets.pop(p, None)
                groups.clear()
                break
            if not groups:
                del self.pending[gid]

    async def _check_current_task_state(self) -> None:
        for gid, group in list(self.groups.items()):
            if group.succeeded():
                for tid in group.live():
                    await self._kill(tid, "a replica of its group already succeeded")
                del self.groups[gid]
                self.state.task_succeeded()
                for p in group.partitions:
                    self.next_offsets.pop(p, None)
                continue
            failed = [tid for tid, t in group.tasks.items() if t.status == FAILED]
            for tid in failed:
                del group.tasks[tid]
                self.state.group_failed()
                self.state.record_error(RuntimeError(f"task [{tid}] failed"), self._clock())
            if failed and not group.tasks:
                # The whole group failed: restart it from the committed offsets.
                del self.groups[gid]
                if gid not in self.pending:
                    for p in group.partitions:
                        self.next_offsets.pop(p, None)

    async def _create_new_tasks(self) -> None:
        io = self.spec.io
        wanted = decisions.partition_groups(self.partitions, io.task_count)
        missing = [p for gid, ps in wanted.items() if gid not in self.groups for p in ps]
        if missing:
            assert self._supplier is not None
            need_stream = [
                p
                for p in missing
                if p not in self.next_offsets
                and (self.committed is None or p not in self.committed)
            ]
            first = [
                p
                for p in need_stream
                if decisions.needs_earliest(p, io.use_earliest_offset, self.discovered_later)
            ]
            last = [p for p in need_stream if p not in first]
            earliest = await self._supplier.earliest_offsets(first) if first else {}
            latest = await self._supplier.latest_offsets(last) if last else {}
            for gid, ps in wanted.items():
                if gid in self.groups:
                    continue
                starts = decisions.start_offsets(
                    ps,
                    self.next_offsets,
                    self.committed,
                    earliest,
                    latest,
                    io.use_earliest_offset,
                    self.discovered_later,
                )
                times = decisions.message_time_bounds(io, self._clock())
                base = decisions.base_sequence_name(self.spec, starts, *times)
                self.groups[gid] = Group(gid, starts, base, self._clock(), message_times=times)
        for group in self.groups.values():
            for _ in range(io.replicas - len(group.live())):
                task = decisions.task_json(
                    self.spec,
                    group.group_id,
                    group.base_name,
                    group.starts,
                    group.checkpoints,
                    decisions.random_suffix(self._rng),
                    group.message_times,
                )
                tid = await self._queue.submit(task)
                group.tasks[str(tid or task["id"])] = TaskData()
                log.info("supervisor [%s]: submitted task [%s]", self.id, task["id"])

    async def _graceful_shutdown(self) -> None:
        await self._check_task_duration(force=True)

    # ---- notices from outside
    async def _checkpoint_notice(self, gid: int, metadata: DataSourceMetadata) -> None:
        group = self.groups.get(gid)
        if group is None:
            log.warning("supervisor [%s]: checkpoint for unknown task group %d", self.id, gid)
            return
        starts = {p: o for p, o in metadata.offsets.items() if p in group.starts}
        if starts != group.latest_checkpoint():
            if any(starts == c for c in group.checkpoints.values()):
                return  # a replica already asked for this checkpoint
            raise ValueError(
                f"checkpoint {starts} of task group {gid} matches none of its checkpoints "
                f"{group.checkpoints}"
            )
        if await self._checkpoint_group(group, finalize=False) is None:
            del self.groups[gid]
            await self._kill_group(group, "checkpoint failed")

    async def _reset(self, metadata: DataSourceMetadata | None) -> None:
        if metadata is None:
            await self._offsets.reset_datasource_metadata(self.id, None)
            for group in list(self.groups.values()):
                await self._kill_group(group, "supervisor reset")
            # Reading from scratch, the next tasks may get the very sequence names of earlier
            # ones (same spec, same start offsets, e.g. on a re-created topic); their pending
            # segments, some already published, must not be handed out again.
            deleted = await self._offsets.delete_pending_segments(self.spec.data_source)
            log.info("supervisor [%s]: reset; %d pending segments deleted", self.id, deleted)
            self.groups.clear()
            self.next_offsets.clear()
            self.committed = None
            return
        current_raw = await self._offsets.get_datasource_metadata(self.id)
        reset = metadata.as_end()
        new = (
            reset if current_raw is None else DataSourceMetadata.from_json(current_raw).plus(reset)
        )
        await self._offsets.reset_datasource_metadata(self.id, new.to_json())
        self.committed = dict(new.offsets)
        for p in reset.offsets:
            gid = decisions.task_group_id(p, self.spec.io.task_count)
            if gid in self.groups:
                group = self.groups.pop(gid)
                await self._kill_group(group, "offsets reset")
                for q in group.partitions:
                    self.next_offsets.pop(q, None)
            self.next_offsets.pop(p, None)


def _message_times(io: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A task's ``minimumMessageTime`` / ``maximumMessageTime`` as its ioConfig carries them."""
    low, high = io.get("minimumMessageTime"), io.get("maximumMessageTime")
    return (
        low if isinstance(low, str) else None,
        high if isinstance(high, str) else None,
    )
