"""What the supervisor needs from the overlord's task queue, and a tolerant view of its tasks.

The task queue is engineer A's (``service.task_queue``, see the ingest contract); the supervisor
only relies on ``submit``, ``shutdown``, ``active_tasks`` and ``status``. Task infos and statuses
are read through ``view`` / ``status_code`` so that either objects or Druid-shaped dicts work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from services.overlord.supervisor.decisions import TASK_TYPE

RUNNING = "RUNNING"
SUCCESS = "SUCCESS"
FAILED = "FAILED"


class TaskQueue(Protocol):
    async def submit(self, task: dict[str, Any]) -> str: ...

    async def shutdown(self, task_id: str, reason: str) -> Any: ...

    def active_tasks(self, datasource: str | None = None) -> list[Any]: ...

    async def status(self, task_id: str) -> Any: ...


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def status_code(status: Any) -> str | None:
    """``RUNNING`` / ``SUCCESS`` / ``FAILED`` from a TaskStatus (dict or object), a TaskStatusPlus
    wrapper ``{"task", "status"}``, a plain string or an enum; ``None`` if unknown."""
    if status is None:
        return None
    if isinstance(status, str):
        return status.upper()
    if isinstance(status, Mapping) and isinstance(status.get("status"), Mapping):
        status = status["status"]
    code = _get(status, "statusCode") or _get(status, "status")
    if code is None:
        return None
    code = getattr(code, "value", code)
    return str(code).upper()


@dataclass(frozen=True)
class TaskView:
    id: str
    type: str
    data_source: str | None
    payload: Mapping[str, Any]
    status: str | None
    location: str | None  # base URL of the task's chat endpoints
    #: Why the task has no worker yet (no free slot...); None once it has one.
    pending_reason: str | None = None

    @property
    def io_config(self) -> Mapping[str, Any]:
        io = self.payload.get("ioConfig")
        return io if isinstance(io, Mapping) else {}

    @property
    def supervisor_id(self) -> str | None:
        ctx = self.payload.get("context")
        value = ctx.get("supervisorId") if isinstance(ctx, Mapping) else None
        return value if isinstance(value, str) else None

    def belongs_to(self, supervisor_id: str, data_source: str) -> bool:
        if self.type != TASK_TYPE:
            return False
        owner = self.supervisor_id
        return owner == supervisor_id if owner is not None else self.data_source == data_source


def location_of(info: Any) -> str | None:
    """The task's base URL (Druid's ``TaskLocation.makeURL``: HTTPS when it has a TLS port)."""
    loc = _get(info, "location")
    if loc is None:
        return None
    host, port = _get(loc, "host"), _get(loc, "port")
    tls = _get(loc, "tlsPort") if isinstance(loc, Mapping) else _get(loc, "tls_port")
    if not host:
        return None
    if isinstance(tls, int) and tls > 0:
        return f"https://{host}:{tls}"
    if not isinstance(port, int) or port <= 0:
        return None
    return f"http://{host}:{port}"


def view(info: Any) -> TaskView:
    payload = _get(info, "payload") or {}
    return TaskView(
        id=str(_get(info, "id")),
        type=str(_get(info, "type") or payload.get("type") or ""),
        data_source=_get(info, "dataSource")
        or _get(info, "data_source")
        or payload.get("dataSource"),
        payload=payload,
        status=status_code(_get(info, "status")),
        location=location_of(info),
        pending_reason=_get(info, "pending_reason"),
    )
