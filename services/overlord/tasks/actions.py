"""Task actions (``POST /druid/indexer/v1/action``): what a running task asks the overlord to do.

Body ``{"task": <task JSON, at least its id>, "action": {"type": ...}}`` -> ``{"result": ...}``.
Only active tasks may act; the group and datasource are taken from the stored task, not from the
body. ``segmentTransactionalInsert`` takes Druid's ``segmentsToBeDropped`` too (marked unused in
the publish transaction; they must be covered by the task's locks). Types: ``segmentAllocate``,
``segmentTransactionalInsert``, ``checkPointDataSourceMetadata``,
``timeChunkLockAcquire``/``lockAcquire`` (and their ``Try`` forms), ``lockRelease``, ``lockList``,
``segmentListUsed`` (used segments of any datasource, for the ``druid`` input source).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from common.errors import InvalidInput, KdruidError, NotFound
from common.ingest.metadata import DataSourceMetadata
from common.metadata import MetadataStore
from common.metadata.pending import AllocateRequest
from common.segments.errors import InvalidTime
from common.segments.granularity import parse_granularity
from common.segments.intervals import Interval
from common.segments.isotime import to_millis
from common.segments.segment import DataSegment
from services.overlord.tasks.model import TaskInfo

CheckpointHandler = Callable[[str, int, DataSourceMetadata], Awaitable[bool]]
LOCK_TYPES = ("EXCLUSIVE", "SHARED", "APPEND", "REPLACE")


class ActionFailed(KdruidError):
    """The action could not be performed (Druid answers 500 with the message)."""


def _field(action: dict[str, Any], key: str) -> Any:
    if action.get(key) is None:
        raise InvalidInput(f"{action.get('type')}: '{key}' is required")
    return action[key]


def _interval(action: dict[str, Any]) -> Interval:
    try:
        return Interval.parse(str(_field(action, "interval")))
    except InvalidTime as exc:
        raise InvalidInput(f"{action.get('type')}: {exc}") from None


def _lock_type(action: dict[str, Any], key: str, default: str = "EXCLUSIVE") -> str:
    value = str(action.get(key) or default).upper()
    if value not in LOCK_TYPES:
        raise InvalidInput(f"{action.get('type')}: unknown {key} [{value}]")
    return value


def _supervisor_id(task: TaskInfo, action: dict[str, Any]) -> str:
    context = task.payload.get("context") or {}
    io = task.payload.get("ioConfig") or {}
    return str(
        action.get("supervisorId")
        or context.get("supervisorId")
        or io.get("supervisorId")
        or task.data_source
    )


def _metadata(action: dict[str, Any], key: str) -> DataSourceMetadata | None:
    raw = action.get(key)
    if raw is None:
        return None
    try:
        return DataSourceMetadata.from_json(raw)
    except InvalidInput as exc:
        raise InvalidInput(f"{action.get('type')}.{key}: {exc.message}") from None


class TaskActions:
    def __init__(
        self,
        get_store: Callable[[], MetadataStore],
        get_task: Callable[[str], TaskInfo | None],
        checkpoint_handler: Callable[[], CheckpointHandler | None],
    ) -> None:
        self._get_store = get_store
        self._get_task = get_task
        self._checkpoint_handler = checkpoint_handler

    @property
    def store(self) -> MetadataStore:
        return self._get_store()

    async def perform(self, body: Any) -> Any:
        if not isinstance(body, dict):
            raise InvalidInput("Task action body must be an object {task, action}")
        task_obj, action = body.get("task"), body.get("action")
        task_id = task_obj.get("id") if isinstance(task_obj, dict) else task_obj
        if not isinstance(task_id, str) or not task_id:
            raise InvalidInput("Task action needs 'task' with an 'id'")
        if not isinstance(action, dict) or not isinstance(action.get("type"), str):
            raise InvalidInput("Task action needs 'action' with a 'type'")
        task = self._get_task(task_id)
        if task is None:
            raise NotFound(f"Task[{task_id}] is not active; only running tasks may submit actions")
        kind = action["type"]
        handler = self._handlers().get(kind)
        if handler is None:
            raise InvalidInput(
                f"Could not resolve type id '{kind}' as a subtype of TaskAction: known type ids = "
                f"{sorted(self._handlers())}"
            )
        ds = action.get("dataSource")
        if ds is not None and ds != task.data_source and kind != "segmentListUsed":
            raise InvalidInput(f"{kind}: dataSource [{ds}] is not the task's [{task.data_source}]")
        return await handler(task, action)

    def _handlers(self) -> dict[str, Callable[[TaskInfo, dict[str, Any]], Awaitable[Any]]]:
        return {
            "segmentAllocate": self.segment_allocate,
            "segmentTransactionalInsert": self.segment_transactional_insert,
            "checkPointDataSourceMetadata": self.checkpoint,
            "timeChunkLockAcquire": self.lock_acquire,
            "timeChunkLockTryAcquire": self.lock_acquire,
            "lockAcquire": self.lock_acquire,
            "lockTryAcquire": self.lock_acquire,
            "lockRelease": self.lock_release,
            "lockList": self.lock_list,
            "segmentListUsed": self.segment_list_used,
        }

    async def segment_allocate(self, task: TaskInfo, action: dict[str, Any]) -> Any:
        lock_granularity = str(action.get("lockGranularity") or "TIME_CHUNK")
        if lock_granularity != "TIME_CHUNK":
            raise InvalidInput(f"segmentAllocate: lockGranularity [{lock_granularity}] unsupported")
        try:
            ts = to_millis(_field(action, "timestamp"))
            query_gran = parse_granularity(action.get("queryGranularity") or "none")
            seg_gran = parse_granularity(_field(action, "preferredSegmentGranularity"))
        except InvalidTime as exc:
            raise InvalidInput(f"segmentAllocate: {exc}") from None
        row_interval = query_gran.bucket(ts)
        preferred = seg_gran.bucket(ts)
        if not preferred.contains(row_interval):
            preferred = row_interval
        sequence = _field(action, "sequenceName")
        previous = action.get("previousSegmentId")
        request = AllocateRequest(
            task_id=task.id,
            group_id=task.group_id,
            data_source=task.data_source,
            row_interval=row_interval,
            preferred_interval=preferred,
            sequence_name=str(sequence),
            previous_segment_id=str(previous) if previous else None,
            skip_lineage_check=bool(action.get("skipSegmentLineageCheck", False)),
            lock_type=_lock_type(action, "taskLockType"),
        )
        segment = await self.store.allocate_segment(request)
        return None if segment is None else segment.to_json()

    async def segment_transactional_insert(self, task: TaskInfo, action: dict[str, Any]) -> Any:
        raw = action.get("segments") or []
        if not isinstance(raw, list):
            raise InvalidInput("segmentTransactionalInsert: 'segments' must be a list")
        try:
            segments = [DataSegment.from_json(s) for s in raw]
        except ValueError as exc:
            raise InvalidInput(f"segmentTransactionalInsert: bad segment: {exc}") from None
        for s in segments:
            if s.data_source != task.data_source:
                raise InvalidInput(
                    f"segmentTransactionalInsert: segment {s.identifier} is not of the task's "
                    f"dataSource [{task.data_source}]"
                )
        try:
            drop = [DataSegment.from_json(s) for s in action.get("segmentsToBeDropped") or []]
        except ValueError as exc:
            raise InvalidInput(
                f"segmentTransactionalInsert: bad segmentsToBeDropped: {exc}"
            ) from None
        await self._check_locks_cover(task, [*segments, *drop])
        start, end = _metadata(action, "startMetadata"), _metadata(action, "endMetadata")
        result = await self.store.commit_segments_and_metadata(
            segments, _supervisor_id(task, action) if start else None, start, end, drop
        )
        return result.to_json()

    async def _check_locks_cover(self, task: TaskInfo, segments: list[DataSegment]) -> None:
        if not segments:
            return
        locks = await self.store.task_locks([task.id])
        uncovered = [
            s.identifier
            for s in segments
            if not any(
                lk.data_source == s.data_source and lk.interval.contains(s.interval) for lk in locks
            )
        ]
        if uncovered:
            raise ActionFailed(
                f"Segments{uncovered} are not covered by locks"
                f"{[str(lk.interval) for lk in locks]} for task[{task.id}]"
            )

    async def checkpoint(self, task: TaskInfo, action: dict[str, Any]) -> Any:
        metadata = _metadata(action, "checkpointMetadata") or _metadata(
            action, "previousCheckPoint"
        )
        if metadata is None:
            raise InvalidInput("checkPointDataSourceMetadata: 'checkpointMetadata' is required")
        group = action.get("taskGroupId")
        if group is None or isinstance(group, bool) or not isinstance(group, int | str):
            raise InvalidInput("checkPointDataSourceMetadata: 'taskGroupId' must be an integer")
        try:
            group_id = int(group)
        except ValueError:
            raise InvalidInput(
                "checkPointDataSourceMetadata: 'taskGroupId' must be an integer"
            ) from None
        handler = self._checkpoint_handler()
        if handler is None:
            return False
        return bool(await handler(_supervisor_id(task, action), group_id, metadata))

    async def segment_list_used(self, task: TaskInfo, action: dict[str, Any]) -> Any:
        """Druid's ``RetrieveUsedSegmentsAction``: used segments of ``dataSource`` overlapping
        ``intervals`` (any datasource: the ``druid`` input source re-indexes another one)."""
        ds = str(_field(action, "dataSource"))
        raw = action.get("intervals") or ([action["interval"]] if action.get("interval") else [])
        if not isinstance(raw, list) or not raw:
            raise InvalidInput("segmentListUsed: 'intervals' is required")
        try:
            intervals = [Interval.parse(str(i)) for i in raw]
        except InvalidTime as exc:
            raise InvalidInput(f"segmentListUsed: {exc}") from None
        segments = await self.store.used_segments(ds)
        return [s.to_json() for s in segments if any(s.interval.overlaps(i) for i in intervals)]

    async def lock_acquire(self, task: TaskInfo, action: dict[str, Any]) -> Any:
        lock = await self.store.acquire_lock(
            task.id,
            task.group_id,
            task.data_source,
            _interval(action),
            _lock_type(action, "lockType"),
        )
        return None if lock is None else lock.to_json()

    async def lock_release(self, task: TaskInfo, action: dict[str, Any]) -> Any:
        await self.store.release_lock(task.id, _interval(action))
        return None

    async def lock_list(self, task: TaskInfo, action: dict[str, Any]) -> Any:
        return [lk.to_json() for lk in await self.store.task_locks([task.id])]
