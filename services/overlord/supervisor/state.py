"""Supervisor states: Druid's ``SupervisorStateManager`` + ``SeekableStreamSupervisorStateManager``.

A pure state machine fed by the run loop (``now`` passed in):

* before the first successful run the state is ``PENDING``, and the detailed state tells where the
  first run is: ``CONNECTING_TO_STREAM``, ``DISCOVERING_INITIAL_TASKS``, ``CREATING_TASKS``;
* a stream failure is ``UNABLE_TO_CONNECT_TO_STREAM`` if the stream was never reached, else
  ``LOST_CONTACT_WITH_STREAM`` (basic state ``UNHEALTHY_SUPERVISOR``) once
  ``unhealthinessThreshold`` runs in a row failed;
* ``UNHEALTHY_SUPERVISOR`` after that many failed runs for other reasons;
* ``UNHEALTHY_TASKS`` after ``taskUnhealthinessThreshold`` task groups failed in a row;
* ``healthinessThreshold`` good runs (or ``taskHealthinessThreshold`` successful tasks) in a row
  make it ``RUNNING`` again; ``SUSPENDED`` and ``STOPPING`` override everything else.

Druid's defaults are 3 for every threshold; ``recentErrors`` keeps the last 3 exceptions.

Beyond Druid (which only logs it): a task of the supervisor that no worker can take (no free task
slot) is an entry of ``recentErrors`` (``exceptionClass`` ``NoTaskSlot``), once per task and
reason, so ``GET /supervisor/{id}/status`` says why the supervisor's tasks do not run. It does
not change the state or health: the supervisor itself works, and the task runs when a slot frees.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# BasicState
UNHEALTHY_SUPERVISOR = "UNHEALTHY_SUPERVISOR"
UNHEALTHY_TASKS = "UNHEALTHY_TASKS"
PENDING = "PENDING"
RUNNING = "RUNNING"
SUSPENDED = "SUSPENDED"
STOPPING = "STOPPING"
# SeekableStreamState
UNABLE_TO_CONNECT_TO_STREAM = "UNABLE_TO_CONNECT_TO_STREAM"
LOST_CONTACT_WITH_STREAM = "LOST_CONTACT_WITH_STREAM"
CONNECTING_TO_STREAM = "CONNECTING_TO_STREAM"
DISCOVERING_INITIAL_TASKS = "DISCOVERING_INITIAL_TASKS"
CREATING_TASKS = "CREATING_TASKS"

_BASIC_OF = {
    UNABLE_TO_CONNECT_TO_STREAM: UNHEALTHY_SUPERVISOR,
    LOST_CONTACT_WITH_STREAM: UNHEALTHY_SUPERVISOR,
    CONNECTING_TO_STREAM: PENDING,
    DISCOVERING_INITIAL_TASKS: PENDING,
    CREATING_TASKS: PENDING,
}
_UNHEALTHY = {
    UNHEALTHY_SUPERVISOR,
    UNHEALTHY_TASKS,
    UNABLE_TO_CONNECT_TO_STREAM,
    LOST_CONTACT_WITH_STREAM,
}


def _iso(now: float) -> str:
    d = datetime.fromtimestamp(now, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


@dataclass
class StateManager:
    threshold: int = 3
    max_errors: int = 3
    suspended: bool = False
    stopping: bool = False
    detailed: str = PENDING
    first_run_done: bool = False
    stream_reached: bool = False
    failed_runs: int = 0
    good_runs: int = 0
    failed_groups: int = 0
    good_tasks: int = 0
    tasks_unhealthy: bool = False
    supervisor_unhealthy: bool = False
    stream_failing: bool = False
    errors: deque[dict[str, Any]] = field(default_factory=deque)
    #: task id -> the reason it waits for a worker, as last recorded.
    waiting: dict[str, str] = field(default_factory=dict)

    # ---- events from the run loop
    def begin_step(self, detailed: str) -> None:
        """A phase of the first run began (the detailed state while ``PENDING``)."""
        if not self.first_run_done:
            self.detailed = detailed

    def stream_ok(self) -> None:
        self.stream_reached = True
        self.stream_failing = False

    def record_error(self, exc: BaseException, now: float, stream: bool = False) -> None:
        if stream:
            self.stream_failing = True
        self._add_error(now, type(exc).__name__, str(exc), stream)

    def _add_error(self, now: float, cls: str, message: str, stream: bool) -> None:
        self.errors.append(
            {
                "timestamp": _iso(now),
                "exceptionClass": cls,
                "message": message,
                "streamException": stream,
            }
        )
        while len(self.errors) > self.max_errors:
            self.errors.popleft()

    def tasks_waiting(self, reasons: dict[str, str], now: float) -> None:
        """The supervisor's tasks that no worker took yet (task id -> why): each new one (or
        new reason) becomes a ``recentErrors`` entry; tasks that got a worker are forgotten."""
        for task_id, reason in sorted(reasons.items()):
            if self.waiting.get(task_id) != reason:
                self._add_error(
                    now,
                    "NoTaskSlot",
                    f"Task [{task_id}] is waiting for a worker: {reason}",
                    stream=False,
                )
        self.waiting = dict(reasons)

    def run_finished(self, ok: bool) -> None:
        if ok:
            self.first_run_done = True
            self.failed_runs = 0
            self.good_runs += 1
            if self.good_runs >= self.threshold:
                self.supervisor_unhealthy = False
        else:
            self.good_runs = 0
            self.failed_runs += 1
            if self.failed_runs >= self.threshold:
                self.supervisor_unhealthy = True

    def group_failed(self) -> None:
        self.good_tasks = 0
        self.failed_groups += 1
        if self.failed_groups >= self.threshold:
            self.tasks_unhealthy = True

    def task_succeeded(self) -> None:
        self.failed_groups = 0
        self.good_tasks += 1
        if self.good_tasks >= self.threshold:
            self.tasks_unhealthy = False

    # ---- what the report shows
    @property
    def detailed_state(self) -> str:
        if self.stopping:
            return STOPPING
        if self.supervisor_unhealthy:
            if not self.stream_failing:
                return UNHEALTHY_SUPERVISOR
            if self.stream_reached:
                return LOST_CONTACT_WITH_STREAM
            return UNABLE_TO_CONNECT_TO_STREAM
        if self.tasks_unhealthy:
            return UNHEALTHY_TASKS
        if self.suspended:
            return SUSPENDED
        if not self.first_run_done:
            return self.detailed
        return RUNNING

    @property
    def state(self) -> str:
        detailed = self.detailed_state
        return _BASIC_OF.get(detailed, detailed)

    @property
    def healthy(self) -> bool:
        return self.detailed_state not in _UNHEALTHY

    def recent_errors(self) -> list[dict[str, Any]]:
        return list(self.errors)
