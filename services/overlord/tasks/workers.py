"""What the HTTP task runner knows of each peon, and its pure decisions (Druid's ``WorkerHolder``
and the ``HttpRemoteTaskRunner`` rules of 3.6).

* ``select_worker``: Druid's equal-distribution strategy: an enabled, present worker with enough
  free capacity that does not already run a task of the same availability group, least used
  first.
* ``no_slot_reason``: why ``select_worker`` found no worker, in words a user can act on (Druid
  only logs it; here pending tasks and their supervisor report it).
* ``disappeared``: tasks a worker used to report as not complete and no longer reports.
* ``housekeeping``: which assigned tasks missed ``taskAssignmentTimeout`` and which vanished
  workers are gone for longer than ``taskCleanupTimeout``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.overlord.tasks.model import availability_group, required_capacity

DISAPPEARED = (
    "This task disappeared on the worker where it was assigned. See overlord logs for more details."
)


def assignment_timeout_msg(timeout: float) -> str:
    return (
        f"The worker that this task is assigned did not start it in timeout[PT{timeout:g}S]. "
        "See overlord and peon logs for more details."
    )


def cleanup_timeout_msg(host: str, timeout: float) -> str:
    return (
        f"The worker[{host}] that this task was assigned disappeared and did not report "
        f"cleanup within timeout[PT{timeout:g}S]. See overlord and peon logs for more details."
    )


@dataclass
class WorkerState:
    """One peon: its announced capacity, what it reports, and what we assigned to it."""

    host: str  # host:port
    url: str
    capacity: int
    ip: str = ""
    version: str = "0"
    category: str = "_default_worker_category"
    disabled: bool = False
    #: task id -> TaskAnnouncement JSON, as the worker last reported it.
    announcements: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: task id -> payload, of tasks assigned here that the worker has not reported yet.
    assigned: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed_at: float | None = None
    last_completed_task_time: str | None = None

    def running_announcements(self) -> list[dict[str, Any]]:
        return [a for a in self.announcements.values() if a.get("status") == "RUNNING"]

    def used_capacity(self) -> int:
        used = sum(
            int((a.get("taskResource") or {}).get("requiredCapacity") or 1)
            for a in self.running_announcements()
        )
        return used + sum(
            required_capacity(p)
            for tid, p in self.assigned.items()
            if tid not in self.announcements
        )

    def availability_groups(self) -> set[str]:
        groups = {
            str((a.get("taskResource") or {}).get("availabilityGroup") or a.get("id"))
            for a in self.running_announcements()
        }
        return groups | {availability_group(p) for p in self.assigned.values()}

    def running_task_ids(self) -> list[str]:
        ids = {a["id"] for a in self.running_announcements()} | set(self.assigned)
        return sorted(ids)

    def to_json(self) -> dict[str, Any]:
        """Druid's ``ImmutableWorkerInfo`` JSON (``GET /workers``)."""
        return {
            "worker": {
                "scheme": self.url.split("://", 1)[0],
                "host": self.host,
                "ip": self.ip,
                "capacity": self.capacity,
                "version": "" if self.disabled else self.version,
                "category": self.category,
            },
            "currCapacityUsed": self.used_capacity(),
            "currParallelIndexCapacityUsed": 0,
            "availabilityGroups": sorted(self.availability_groups()),
            "runningTasks": self.running_task_ids(),
            "lastCompletedTaskTime": self.last_completed_task_time,
            "blacklistedUntil": None,
        }


def select_worker(workers: Iterable[WorkerState], payload: Mapping[str, Any]) -> WorkerState | None:
    need = required_capacity(dict(payload))
    group = availability_group(dict(payload))
    fits = [
        w
        for w in workers
        if not w.disabled
        and w.removed_at is None
        and w.capacity - w.used_capacity() >= need
        and group not in w.availability_groups()
    ]
    if not fits:
        return None
    return min(fits, key=lambda w: (w.used_capacity(), w.host))


def no_slot_reason(workers: Iterable[WorkerState], payload: Mapping[str, Any]) -> str:
    """Why no worker can take the task now (``select_worker`` answered None)."""
    present = [w for w in workers if w.removed_at is None]
    if not present:
        return "No worker is running: the task waits until a peon announces itself"
    enabled = [w for w in present if not w.disabled]
    if not enabled:
        return f"All {len(present)} worker(s) are disabled: the task waits until one is enabled"
    need = required_capacity(dict(payload))
    total = sum(w.capacity for w in enabled)
    used = sum(w.used_capacity() for w in enabled)
    if not any(w.capacity - w.used_capacity() >= need for w in enabled):
        return (
            f"No free task slot: {used} of {total} slot(s) in use on {len(enabled)} worker(s) "
            f"(druid.worker.capacity), the task needs {need}; it waits until a slot frees up "
            "or a peon with capacity joins"
        )
    group = availability_group(dict(payload))
    return (
        f"Every worker with a free slot already runs a task of availabilityGroup [{group}] "
        "(a replica of the same task group); the task waits for another worker"
    )


def disappeared(before: Mapping[str, Mapping[str, Any]], after_ids: Iterable[str]) -> list[str]:
    """Ids reported as not complete ``before`` that are missing from ``after_ids``."""
    now = set(after_ids)
    return sorted(
        tid for tid, ann in before.items() if ann.get("status") == "RUNNING" and tid not in now
    )


def housekeeping(
    workers: Iterable[WorkerState],
    assigned_at: Mapping[str, tuple[str, float]],
    now: float,
    assignment_timeout: float,
    cleanup_timeout: float,
) -> tuple[list[tuple[str, str]], list[str]]:
    """``(tasks to fail with their reason, workers to forget)``.

    ``assigned_at`` maps a task assigned but never reported to (worker host, time assigned).
    """
    failures: list[tuple[str, str]] = []
    drop: list[str] = []
    by_host = {w.host: w for w in workers}
    for tid, (host, at) in sorted(assigned_at.items()):
        worker = by_host.get(host)
        if worker is not None and tid in worker.announcements:
            continue
        if now - at > assignment_timeout:
            failures.append((tid, assignment_timeout_msg(assignment_timeout)))
    failed = {tid for tid, _ in failures}
    for w in by_host.values():
        if w.removed_at is None or now - w.removed_at <= cleanup_timeout:
            continue
        drop.append(w.host)
        for tid in w.running_task_ids():
            if tid not in failed:
                failures.append((tid, cleanup_timeout_msg(w.host, cleanup_timeout)))
                failed.add(tid)
    return failures, drop
