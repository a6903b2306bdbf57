"""Druid's Kafka supervisor spec (``KafkaSupervisorSpec``), validated when it is submitted.

Accepted in Druid's two shapes: ``{"type": "kafka", "spec": {"dataSchema", "ioConfig",
"tuningConfig"}, "context", "suspended"}`` and the same keys at top level without ``spec``. The
``id`` defaults to ``dataSchema.dataSource``. Every problem is an ``InvalidInput`` (HTTP 400)
naming the field. ``to_json`` gives the normalised spec (defaults filled in) that is stored in
``druid_supervisors`` and returned by ``GET /supervisor/{id}``.

Exactly one of ``topic`` and ``topicPattern`` (multi-topic ingestion: a regex every whole
topic name is matched against) is required; ``stream`` is whichever is set, as Druid's
``getStream``. Beyond Druid, ``tuningConfig.chatRetryMinWait`` / ``chatRetryMaxWait`` (ISO
durations, default PT2S / PT10S, Druid's fixed ``MIN_RETRY_WAIT_SECONDS`` /
``MAX_RETRY_WAIT_SECONDS``) let tests shorten the chat retry wait, and
``tuningConfig.repartitionTransitionDuration`` (default PT2M, the fixed value Druid's Kafka
supervisor uses; Druid reads the key for Kinesis only) how long after a partition set change the
reading tasks stop early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from common.config import parse_duration
from common.errors import InvalidInput
from common.ids import id_problem
from common.ingest.partitions import compile_topic_pattern
from common.ingest.spec import DataSchema, parse_data_schema, parse_input_format
from common.segments.isotime import parse_iso

KAFKA = "kafka"
NOOP = "NoopSupervisorSpec"

IO_DEFAULTS: dict[str, Any] = {
    "taskCount": 1,
    "replicas": 1,
    "taskDuration": "PT1H",
    "startDelay": "PT5S",
    "period": "PT30S",
    "useEarliestOffset": False,
    "completionTimeout": "PT30M",
    "pollTimeout": 100,
}
TUNING_DEFAULTS: dict[str, Any] = {
    "chatRetries": 8,
    "httpTimeout": "PT10S",
    "shutdownTimeout": "PT80S",
    "offsetFetchPeriod": "PT30S",
}
CHAT_WAIT_DEFAULTS = {"chatRetryMinWait": "PT2S", "chatRetryMaxWait": "PT10S"}
#: Druid's ``DEFAULT_REPARTITION_TRANSITION_DURATION`` (PT2M; fixed for Kafka in Druid).
REPARTITION_TRANSITION_DEFAULT = "PT2M"


def _bad(field_path: str, message: str) -> InvalidInput:
    return InvalidInput(f"Invalid supervisor spec: {field_path}: {message}")


def _object(value: Any, field_path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(field_path, f"must be a JSON object, got {type(value).__name__}")
    return dict(value)


def _int(obj: Mapping[str, Any], key: str, where: str, minimum: int) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{where}.{key}", f"must be an integer, got {value!r}")
    if value < minimum:
        raise _bad(f"{where}.{key}", f"must be >= {minimum}, got {value}")
    return value


def _seconds(obj: Mapping[str, Any], key: str, where: str, positive: bool = False) -> float:
    try:
        seconds = parse_duration(obj[key])
    except ValueError as e:
        raise _bad(f"{where}.{key}", str(e)) from None
    if seconds < 0 or (positive and seconds == 0):
        raise _bad(f"{where}.{key}", f"must be {'> 0' if positive else '>= 0'}, got {obj[key]!r}")
    return seconds


@dataclass(frozen=True)
class IOConfig:
    """``KafkaSupervisorIOConfig``; durations in seconds. One of ``topic`` and ``topic_pattern``
    is set."""

    topic: str | None
    consumer_properties: dict[str, Any]
    input_format: dict[str, Any]
    task_count: int
    replicas: int
    task_duration: float
    start_delay: float
    period: float
    use_earliest_offset: bool
    completion_timeout: float
    poll_timeout_ms: int
    raw: dict[str, Any]
    late_rejection_period: float | None = None
    early_rejection_period: float | None = None
    late_rejection_start_ms: int | None = None
    topic_pattern: str | None = None

    @property
    def stream(self) -> str:
        """The topic, or the topic pattern of a multi-topic supervisor (Druid's ``getStream``)."""
        stream = self.topic if self.topic_pattern is None else self.topic_pattern
        assert stream is not None
        return stream

    @property
    def multi_topic(self) -> bool:
        return self.topic_pattern is not None


@dataclass(frozen=True)
class ChatSettings:
    """The chat client's settings from the supervisor's ``tuningConfig`` (Druid 4.1)."""

    retries: int = 8
    http_timeout: float = 10.0
    min_wait: float = 2.0
    max_wait: float = 10.0
    shutdown_timeout: float = 80.0
    offset_fetch_period: float = 30.0
    repartition_transition: float = 120.0


@dataclass(frozen=True)
class KafkaSupervisorSpec:
    id: str
    data_schema: DataSchema
    data_schema_json: dict[str, Any]
    io: IOConfig
    tuning_json: dict[str, Any]
    chat: ChatSettings
    context: dict[str, Any] = field(default_factory=dict)
    suspended: bool = False

    @property
    def data_source(self) -> str:
        return self.data_schema.dataSource

    def with_suspended(self, suspended: bool) -> KafkaSupervisorSpec:
        return replace(self, suspended=suspended)

    def to_json(self) -> dict[str, Any]:
        inner = {
            "dataSchema": self.data_schema_json,
            "ioConfig": self.io.raw,
            "tuningConfig": self.tuning_json,
        }
        return {
            "type": KAFKA,
            "id": self.id,
            "spec": inner,
            **inner,
            "context": self.context,
            "suspended": self.suspended,
        }


def _io_config(raw_in: Any) -> IOConfig:
    where = "ioConfig"
    if raw_in is None:
        raise _bad(where, "is required")
    raw = {**IO_DEFAULTS, **_object(raw_in, where)}
    if raw.get("type", KAFKA) != KAFKA:
        raise _bad(f"{where}.type", f"must be 'kafka', got {raw['type']!r}")
    raw["type"] = KAFKA
    topic, pattern = raw.get("topic"), raw.get("topicPattern")
    if topic is not None and pattern is not None:
        raise _bad(where, "only one of topic and topicPattern may be set")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise _bad(f"{where}.topicPattern", "must be a non-empty string (a regex)")
        try:
            compile_topic_pattern(pattern)
        except InvalidInput as e:
            raise _bad(f"{where}.topicPattern", e.message) from None
    elif not isinstance(topic, str) or not topic:
        raise _bad(f"{where}.topic", "is required (a non-empty string) unless topicPattern is set")
    if raw.get("emitTimeLagMetrics") not in (None, False):
        raise _bad(
            f"{where}.emitTimeLagMetrics",
            "time lag (minimumLagMillis, aggregateLagMillis, a task's lagMillis) is not "
            "supported; the record lag (minimumLag, aggregateLag, lag) is always reported",
        )
    props = _object(raw.get("consumerProperties"), f"{where}.consumerProperties")
    if not props.get("bootstrap.servers"):
        raise _bad(f"{where}.consumerProperties", "must contain bootstrap.servers")
    raw["consumerProperties"] = props
    if raw.get("inputFormat") is None:
        raise _bad(f"{where}.inputFormat", "is required")
    parse_input_format(raw["inputFormat"])
    if not isinstance(raw["useEarliestOffset"], bool):
        raise _bad(f"{where}.useEarliestOffset", "must be true or false")
    late, early, late_start = _rejection(raw, where)
    return IOConfig(
        topic=topic,
        consumer_properties=props,
        input_format=dict(raw["inputFormat"]),
        task_count=_int(raw, "taskCount", where, 1),
        replicas=_int(raw, "replicas", where, 1),
        task_duration=_seconds(raw, "taskDuration", where, positive=True),
        start_delay=_seconds(raw, "startDelay", where),
        period=_seconds(raw, "period", where, positive=True),
        use_earliest_offset=raw["useEarliestOffset"],
        completion_timeout=_seconds(raw, "completionTimeout", where, positive=True),
        poll_timeout_ms=_int(raw, "pollTimeout", where, 0),
        raw=raw,
        late_rejection_period=late,
        early_rejection_period=early,
        late_rejection_start_ms=late_start,
        topic_pattern=pattern,
    )


def _rejection(raw: Mapping[str, Any], where: str) -> tuple[float | None, float | None, int | None]:
    """``lateMessageRejectionPeriod`` / ``earlyMessageRejectionPeriod`` (ISO durations) and
    ``lateMessageRejectionStartDateTime`` (an ISO instant; not together with the late period)."""
    late = None
    if raw.get("lateMessageRejectionPeriod") is not None:
        late = _seconds(raw, "lateMessageRejectionPeriod", where)
    early = None
    if raw.get("earlyMessageRejectionPeriod") is not None:
        early = _seconds(raw, "earlyMessageRejectionPeriod", where)
    start = raw.get("lateMessageRejectionStartDateTime")
    if start is None:
        return late, early, None
    if late is not None:
        raise _bad(
            where,
            "lateMessageRejectionStartDateTime and lateMessageRejectionPeriod are mutually "
            "exclusive",
        )
    try:
        return None, early, parse_iso(str(start))
    except ValueError as e:
        raise _bad(f"{where}.lateMessageRejectionStartDateTime", str(e)) from None


def _tuning(raw_in: Any) -> tuple[dict[str, Any], ChatSettings]:
    where = "tuningConfig"
    raw = {**TUNING_DEFAULTS, **_object(raw_in, where)}
    if raw.get("type", KAFKA) != KAFKA:
        raise _bad(f"{where}.type", f"must be 'kafka', got {raw['type']!r}")
    raw["type"] = KAFKA
    waits = {**CHAT_WAIT_DEFAULTS, **{k: raw[k] for k in CHAT_WAIT_DEFAULTS if k in raw}}
    waits["repartitionTransitionDuration"] = raw.get(
        "repartitionTransitionDuration", REPARTITION_TRANSITION_DEFAULT
    )
    chat = ChatSettings(
        retries=_int(raw, "chatRetries", where, 0),
        http_timeout=_seconds(raw, "httpTimeout", where, positive=True),
        min_wait=_seconds(waits, "chatRetryMinWait", where),
        max_wait=_seconds(waits, "chatRetryMaxWait", where),
        shutdown_timeout=_seconds(raw, "shutdownTimeout", where, positive=True),
        offset_fetch_period=_seconds(raw, "offsetFetchPeriod", where, positive=True),
        repartition_transition=_seconds(waits, "repartitionTransitionDuration", where),
    )
    if chat.max_wait < chat.min_wait:
        raise _bad(f"{where}.chatRetryMaxWait", "must not be less than chatRetryMinWait")
    return raw, chat


def parse_supervisor_spec(obj: Any) -> KafkaSupervisorSpec:
    """A validated Kafka supervisor spec; ``InvalidInput`` (400) naming the bad field."""
    if not isinstance(obj, Mapping):
        raise InvalidInput("Invalid supervisor spec: the body must be a JSON object")
    kind = obj.get("type", KAFKA)
    if kind != KAFKA:
        raise _bad("type", f"unsupported supervisor type {kind!r} (supported: 'kafka')")
    inner = _object(obj.get("spec"), "spec")
    schema_raw = inner.get("dataSchema", obj.get("dataSchema"))
    if schema_raw is None:
        raise _bad("dataSchema", "is required")
    schema = parse_data_schema(schema_raw)
    io = _io_config(inner.get("ioConfig", obj.get("ioConfig")))
    tuning, chat = _tuning(inner.get("tuningConfig", obj.get("tuningConfig")))
    sup_id = obj.get("id", inner.get("id")) or schema.dataSource
    problem = id_problem("id", sup_id)
    if problem is not None:
        raise InvalidInput(problem)
    suspended = obj.get("suspended", False)
    if not isinstance(suspended, bool):
        raise _bad("suspended", "must be true or false")
    return KafkaSupervisorSpec(
        id=sup_id,
        data_schema=schema,
        data_schema_json=dict(schema_raw),
        io=io,
        tuning_json=tuning,
        chat=chat,
        context=_object(obj.get("context"), "context"),
        suspended=suspended,
    )


ILLEGAL_SOURCE_UPDATE = (
    "Update of the input source stream from [{old}] to [{new}] is not supported for a running "
    "supervisor.\nTo perform the update safely, follow these steps:\n(1) Suspend this "
    "supervisor, reset its offsets and then terminate it. \n(2) Create a new supervisor with the "
    "new input source stream.\nNote that doing the reset can cause data duplication or loss if "
    "any topic used in the old supervisor is included in the new one too."
)


def check_spec_update(old: KafkaSupervisorSpec, new: KafkaSupervisorSpec) -> None:
    """Druid's ``validateSpecUpdateTo``: a supervisor keeps its stream (its committed offsets
    are keyed by it); switching between topic and topicPattern, or to another topic or pattern,
    is a 400 until the supervisor is terminated."""

    def name(spec: KafkaSupervisorSpec) -> str:
        return f"({'multi-topic' if spec.io.multi_topic else 'single-topic'}) {spec.io.stream}"

    if old.io.multi_topic != new.io.multi_topic:
        raise InvalidInput(ILLEGAL_SOURCE_UPDATE.format(old=name(old), new=name(new)))
    if old.io.stream != new.io.stream:
        raise InvalidInput(ILLEGAL_SOURCE_UPDATE.format(old=old.io.stream, new=new.io.stream))


def noop_spec(supervisor_id: str, data_sources: list[str]) -> dict[str, Any]:
    """Druid's ``NoopSupervisorSpec``: the tombstone ``terminate`` appends to the history."""
    return {"type": NOOP, "id": supervisor_id, "dataSources": data_sources, "suspended": False}


def is_tombstone(payload: Mapping[str, Any]) -> bool:
    return payload.get("type") == NOOP
