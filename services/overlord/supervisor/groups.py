"""The supervisor's in-memory picture of its tasks, and the status report built from it.

A ``Group`` is Druid's ``TaskGroup``: the replicas that read the same partitions from the same
start offsets under one ``baseSequenceName``, their checkpoints (sequence id -> start offsets),
and, once rolled over, the end offsets and completion deadline of a group pending completion.
``build_report`` is Druid's ``SeekableStreamSupervisorReportPayload`` over this picture (pure).
As Druid's (``@JsonInclude(NON_NULL)``), the report leaves out what it does not have: the offsets
and lags before the first look at Kafka, and always the time lags (``minimumLagMillis``,
``aggregateLagMillis``, a task's ``lagMillis``), which a Kafka supervisor only computes with
``emitTimeLagMetrics`` (refused here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.ingest.partitions import PartitionId, sorted_ids
from services.overlord.supervisor import decisions
from services.overlord.supervisor.spec import KafkaSupervisorSpec
from services.overlord.supervisor.state import StateManager
from services.overlord.supervisor.taskview import FAILED, RUNNING, SUCCESS


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    d = datetime.fromtimestamp(ts, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class TaskData:
    status: str = RUNNING
    start_time: float | None = None
    current_offsets: dict[PartitionId, int] = field(default_factory=dict)


@dataclass
class Group:
    group_id: int
    starts: dict[PartitionId, int]
    base_name: str
    created: float
    checkpoints: dict[int, dict[PartitionId, int]] = field(default_factory=dict)
    tasks: dict[str, TaskData] = field(default_factory=dict)
    end_offsets: dict[PartitionId, int] | None = None
    completion_deadline: float | None = None
    # minimumMessageTime / maximumMessageTime of the group's tasks (ISO), fixed at creation
    message_times: tuple[str | None, str | None] = (None, None)

    def __post_init__(self) -> None:
        if not self.checkpoints:
            self.checkpoints = {0: dict(self.starts)}

    @property
    def partitions(self) -> list[PartitionId]:
        return sorted_ids(self.starts)

    def start_time(self) -> float:
        """When the group began reading: its earliest task start, else when it was created."""
        known = [t.start_time for t in self.tasks.values() if t.start_time is not None]
        return min(known) if known else self.created

    def latest_checkpoint(self) -> dict[PartitionId, int]:
        return self.checkpoints[max(self.checkpoints)]

    def live(self) -> list[str]:
        return [tid for tid, t in self.tasks.items() if t.status == RUNNING]

    def succeeded(self) -> bool:
        return any(t.status == SUCCESS for t in self.tasks.values())

    def all_failed(self) -> bool:
        return all(t.status == FAILED for t in self.tasks.values())


def _task_report(
    tid: str, t: TaskData, g: Group, kind: str, now: float, duration: float, latest: Any
) -> dict[str, Any]:
    per_lag = decisions.lag(latest, t.current_offsets)[0] if t.current_offsets else None
    report = {
        "id": tid,
        "startingOffsets": decisions.offsets_to_json(g.starts),
        "startTime": iso(t.start_time),
        "remainingSeconds": (
            int(decisions.remaining_seconds(g.start_time(), now, duration))
            if kind == "ACTIVE"
            else int(max(0.0, (g.completion_deadline or now) - now))
        ),
        "type": kind,
        "currentOffsets": decisions.offsets_to_json(t.current_offsets),
        "lag": None if per_lag is None else decisions.offsets_to_json(per_lag),
    }
    return _non_null(report, ("lag",))


def _non_null(obj: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """``obj`` without those of ``keys`` whose value is None (Jackson's ``NON_NULL``)."""
    for k in keys:
        if obj.get(k, 0) is None:
            del obj[k]
    return obj


def build_report(
    spec: KafkaSupervisorSpec,
    state: StateManager,
    partitions: list[PartitionId],
    active: Iterable[Group],
    publishing: Iterable[Group],
    latest: Mapping[PartitionId, int] | None,
    committed: Mapping[PartitionId, int] | None,
    offsets_last_updated: float | None,
    now: float,
) -> dict[str, Any]:
    active, publishing = list(active), list(publishing)
    duration = spec.io.task_duration
    latest_map = dict(latest or {})
    active_tasks = [
        _task_report(tid, t, g, "ACTIVE", now, duration, latest_map)
        for g in active
        for tid, t in g.tasks.items()
    ]
    publishing_tasks = [
        _task_report(tid, t, g, "PUBLISHING", now, duration, latest_map)
        for g in publishing
        for tid, t in g.tasks.items()
    ]
    minimum_lag: dict[str, int] | None = None
    aggregate_lag: int | None = None
    if latest is not None:
        positions = decisions.reading_positions(
            (t.current_offsets for g in active for t in g.tasks.values()), committed
        )
        per, aggregate_lag = decisions.lag(latest_map, positions)
        minimum_lag = decisions.offsets_to_json(per)
    payload = {
        "id": spec.id,
        "dataSource": spec.data_source,
        "stream": spec.io.stream,
        "partitions": len(partitions),
        "replicas": spec.io.replicas,
        "durationSeconds": int(duration),
        "activeTasks": active_tasks,
        "publishingTasks": publishing_tasks,
        "latestOffsets": None if latest is None else decisions.offsets_to_json(latest_map),
        "minimumLag": minimum_lag,
        "aggregateLag": aggregate_lag,
        "offsetsLastUpdated": iso(offsets_last_updated),
        "suspended": spec.suspended,
        "healthy": state.healthy,
        "state": state.state,
        "detailedState": state.detailed_state,
        "recentErrors": state.recent_errors(),
    }
    _non_null(payload, ("latestOffsets", "minimumLag", "aggregateLag", "offsetsLastUpdated"))
    return {"id": spec.id, "generationTime": iso(now), "payload": payload}
