"""Task JSON, ``TaskStatus`` and ``TaskStatusPlus`` as Druid writes them, and submit validation.

Pure: no I/O. ``validate_task`` turns a submitted task into the stored payload (id generated if
absent, ``groupId`` and ``resource`` filled in) or raises ``InvalidInput`` (HTTP 400) naming the
problem. Types run on peons: ``index_kafka`` and the native batch ``index_parallel`` / ``index``;
``kill`` runs on the overlord itself (``kill.py``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from common.errors import InvalidInput
from common.ids import validate_id
from common.ingest.batch_input.compact import COMPACT_TYPE, parse_compact_task
from common.ingest.batch_input.spec import BATCH_TASK_TYPES, parse_batch_task
from common.ingest.metadata import SequenceNumbers
from common.ingest.spec import parse_data_schema, parse_input_format
from services.overlord.tasks.kill import KILL_TYPE, kill_payload

TASK_TYPES = ("index_kafka", *BATCH_TASK_TYPES, COMPACT_TYPE)
TaskState = Literal["RUNNING", "SUCCESS", "FAILED"]
RunnerState = Literal["WAITING", "PENDING", "RUNNING", "NONE"]
#: Druid truncates error messages of a TaskStatus at 1024 characters.
MAX_ERROR_MSG = 1024


@dataclass(frozen=True)
class Location:
    host: str | None = None
    port: int = -1
    tls_port: int = -1

    @property
    def base_url(self) -> str:
        """Druid's ``TaskLocation.makeURL``: HTTPS on the TLS port when the task has one."""
        if self.tls_port > 0:
            return f"https://{self.host}:{self.tls_port}"
        return f"http://{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "tlsPort": self.tls_port}

    @classmethod
    def from_json(cls, obj: Any) -> Location:
        if not isinstance(obj, dict):
            return UNKNOWN_LOCATION
        port = obj.get("port")
        tls = obj.get("tlsPort")
        return cls(obj.get("host"), int(port) if port is not None else -1, int(tls) if tls else -1)


UNKNOWN_LOCATION = Location()


def task_status(
    task_id: str,
    state: TaskState,
    *,
    duration: int = -1,
    error: str | None = None,
    location: Location = UNKNOWN_LOCATION,
) -> dict[str, Any]:
    """Druid's ``TaskStatus`` JSON."""
    return {
        "id": task_id,
        "status": state,
        "duration": duration,
        "errorMsg": error[:MAX_ERROR_MSG] if error else None,
        "location": location.to_json(),
    }


def is_complete(status: dict[str, Any]) -> bool:
    return status.get("status") in ("SUCCESS", "FAILED")


@dataclass
class TaskInfo:
    """An active or recently seen task as the queue knows it."""

    id: str
    type: str
    group_id: str
    data_source: str
    payload: dict[str, Any]
    status: dict[str, Any]
    created_time: str
    queue_insertion_time: str
    runner_state: RunnerState = "PENDING"
    location: Location = field(default=UNKNOWN_LOCATION)
    #: Why the runner has not given the task to a worker yet (no free slot...), else None.
    pending_reason: str | None = None

    @property
    def state(self) -> str:
        return str(self.status.get("status", "RUNNING"))

    def status_plus(self) -> dict[str, Any]:
        """Druid's ``TaskStatusPlus``."""
        location = (
            self.location if self.location.host else Location.from_json(self.status.get("location"))
        )
        return {
            "id": self.id,
            "groupId": self.group_id,
            "type": self.type,
            "createdTime": self.created_time,
            "queueInsertionTime": self.queue_insertion_time,
            "statusCode": self.state,
            "status": self.state,
            "runnerStatusCode": "NONE" if is_complete(self.status) else self.runner_state,
            "duration": self.status.get("duration", -1),
            "location": location.to_json(),
            "dataSource": self.data_source,
            "errorMsg": self.status.get("errorMsg") or self._waiting_for(),
        }

    def _waiting_for(self) -> str | None:
        # Druid leaves errorMsg null while a task waits; here it says why it waits.
        if self.runner_state == "PENDING" and not is_complete(self.status):
            return self.pending_reason
        return None

    @classmethod
    def from_payload(
        cls, payload: dict[str, Any], status: dict[str, Any], created: str
    ) -> TaskInfo:
        return cls(
            id=payload["id"],
            type=payload["type"],
            group_id=payload.get("groupId") or payload["id"],
            data_source=payload["dataSource"],
            payload=payload,
            status=status,
            created_time=created,
            queue_insertion_time=created,
        )


def required_capacity(payload: dict[str, Any]) -> int:
    resource = payload.get("resource") or {}
    return int(resource.get("requiredCapacity") or 1)


def availability_group(payload: dict[str, Any]) -> str:
    resource = payload.get("resource") or {}
    return str(resource.get("availabilityGroup") or payload["id"])


def _require_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}: '{key}' is required and must be a non-empty string")
    return value


def _validate_kafka_io(io: Any) -> None:
    if not isinstance(io, dict):
        raise InvalidInput("Invalid task: 'ioConfig' is required and must be an object")
    if io.get("type", "kafka") != "kafka":
        raise InvalidInput(f"Invalid ioConfig: type must be 'kafka', got {io.get('type')!r}")
    starts = io.get("startSequenceNumbers")
    if not (isinstance(starts, dict) and isinstance(starts.get("stream"), str)):
        _require_str(io, "topic", "Invalid ioConfig")
    props = io.get("consumerProperties")
    if not isinstance(props, dict) or not props.get("bootstrap.servers"):
        raise InvalidInput("Invalid ioConfig: consumerProperties.bootstrap.servers is required")
    parse_input_format(io.get("inputFormat"))
    for key, kind in (("startSequenceNumbers", "start"), ("endSequenceNumbers", "end")):
        raw = io.get(key, io.get(key.replace("SequenceNumbers", "Partitions")))
        if raw is None:
            raise InvalidInput(f"Invalid ioConfig: '{key}' is required")
        try:
            SequenceNumbers.from_json(raw, default_kind=kind)  # type: ignore[arg-type]
        except InvalidInput as exc:
            raise InvalidInput(f"Invalid ioConfig.{key}: {exc.message}") from None


def validate_task(obj: Any) -> dict[str, Any]:
    """The payload to store for a submitted task; ``InvalidInput`` when it cannot run."""
    if not isinstance(obj, dict):
        raise InvalidInput("Task must be a JSON object")
    task_type = obj.get("type")
    if task_type == KILL_TYPE:
        return kill_payload(obj)
    if task_type not in TASK_TYPES:
        raise InvalidInput(
            f"Could not resolve type id '{task_type}' as a subtype of Task: known type ids = "
            f"{[*TASK_TYPES, KILL_TYPE]}"
        )
    if task_type == COMPACT_TYPE:
        return _compact_payload(obj)
    batch = task_type in BATCH_TASK_TYPES
    nested = obj.get("spec")
    spec: dict[str, Any] = nested if batch and isinstance(nested, dict) else obj
    schema = parse_data_schema(spec.get("dataSchema"))
    data_source = obj.get("dataSource") or schema.dataSource
    if data_source != schema.dataSource:
        raise InvalidInput(
            f"Invalid task: dataSource [{data_source}] differs from dataSchema.dataSource "
            f"[{schema.dataSource}]"
        )
    task_id = obj.get("id") or f"{task_type}_{data_source}_{secrets.token_hex(4)}"
    validate_id("Task ID", task_id)
    if batch:
        parse_batch_task({**obj, "id": task_id})
    else:
        _validate_kafka_io(obj.get("ioConfig"))
    return _with_defaults(obj, task_id, data_source)


def _compact_payload(obj: dict[str, Any]) -> dict[str, Any]:
    """A ``compact`` task runs on a peon as the batch task it plans (``compact.py``)."""
    data_source = obj.get("dataSource")
    if not isinstance(data_source, str) or not data_source:
        raise InvalidInput("Invalid compact task: 'dataSource' is required")
    task_id = obj.get("id") or f"{COMPACT_TYPE}_{data_source}_{secrets.token_hex(4)}"
    validate_id("Task ID", task_id)
    parse_compact_task({**obj, "id": task_id})
    return _with_defaults(obj, task_id, data_source)


def _with_defaults(obj: dict[str, Any], task_id: str, data_source: str) -> dict[str, Any]:
    payload = dict(obj)
    payload["id"] = task_id
    payload["dataSource"] = data_source
    payload["groupId"] = obj.get("groupId") or task_id
    resource = dict(obj.get("resource") or {})
    resource.setdefault("availabilityGroup", task_id)
    resource.setdefault("requiredCapacity", 1)
    if not isinstance(resource["requiredCapacity"], int) or resource["requiredCapacity"] < 1:
        raise InvalidInput("Invalid task: resource.requiredCapacity must be a positive integer")
    payload["resource"] = resource
    context = obj.get("context")
    if context is not None and not isinstance(context, dict):
        raise InvalidInput("Invalid task: 'context' must be an object")
    return payload
