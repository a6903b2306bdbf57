"""Settings: typed groups built from a Druid ``runtime.properties`` file plus environment overrides.

Keys are Druid's (``druid.discovery.type``) with Druid's defaults where Druid has the same thing.
Sources, later wins: role defaults, the properties file, explicit overrides (tests, quickstart),
then the environment. An environment variable names a key in either of two forms:

* ``DRUID_DISCOVERY_TYPE``: upper case, dots as underscores;
* ``druid_discovery_type``: the form Druid's Docker image turns into properties (case kept).

Unknown keys in a file, in overrides or in the ``druid_`` form stop start-up with a message naming
the key. Unknown upper-case ``DRUID_*`` variables are ignored, because Kubernetes injects
``<SERVICE>_SERVICE_HOST``-style variables for every Service (a Service named ``druid-broker``
gives every pod ``DRUID_BROKER_SERVICE_HOST``) and those must not crash a pod.

Durations are ISO 8601 (``PT60S``, ``PT10M``, ``P1D``) or integer milliseconds, held as float
seconds. Sizes are bytes with an optional unit: ``k``/``m``/``g``/``t`` are powers of 1000 and
``KiB``/``MiB``/``GiB``/``TiB`` powers of 1024, as Druid's ``HumanReadableBytes``.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from common.auth.config import SecuritySettings, parse_security
from common.auth.config import owns as owns_security_key
from common.errors import ConfigError

Role = Literal["coordinator", "broker", "historical", "overlord", "peon"]
#: Java's ``Integer.MAX_VALUE``: Druid's bound for int settings and query parameters.
JAVA_INT_MAX = 2**31 - 1

ROLES: tuple[Role, ...] = ("coordinator", "broker", "historical", "overlord", "peon")

#: Druid's ``druid.tlsPort`` defaults; a peon has none (set it with ``druid.enableTlsPort``).
DEFAULT_TLS_PORTS: dict[str, int] = {
    "coordinator": 8281,
    "broker": 8282,
    "historical": 8283,
    "overlord": 8290,
}
DEFAULT_PORTS: dict[str, int] = {
    "coordinator": 8081,
    "broker": 8082,
    "historical": 8083,
    "overlord": 8090,
    "peon": 8100,
}

# --------------------------------------------------------------------------------------------
# value parsers

_DURATION_RE = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: Any) -> float:
    """ISO 8601 duration (``PT1M30S``) or milliseconds (``90000``) -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value) / 1000.0
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text) / 1000.0
    m = _DURATION_RE.match(text.upper())
    if not m or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        raise ValueError(
            f"not an ISO 8601 duration: {value!r} (write it as Druid does, e.g. PT60S, PT10M, P1D)"
        )
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return (
        parts["w"] * 604800 + parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    )


_BYTES_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "p": 1000**5,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}


def parse_bytes(value: Any) -> int:
    """``10g`` -> 10_000_000_000, ``10GiB`` -> 10 * 2**30, ``1234`` -> 1234."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(-?\d+)\s*([A-Za-z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _BYTES_UNITS:
        raise ValueError(f"not a size in bytes: {value!r} (e.g. 500000000, 500m, 10GiB)")
    return int(m.group(1)) * _BYTES_UNITS[m.group(2).lower()]


def _json_if_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    return value


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return _json_if_text(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Bytes = Annotated[int, BeforeValidator(parse_bytes)]
StrList = Annotated[list[str], BeforeValidator(_split_list)]


def _doc(text: str, **kw: Any) -> Any:
    return Field(description=text, **kw)


# --------------------------------------------------------------------------------------------
# groups


class Group(BaseModel):
    """A set of keys under one prefix; field aliases are the key's remainder after the prefix."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    PREFIX: ClassVar[str]


class NodeSettings(Group):
    PREFIX = "druid."

    host: str = _doc("Host other nodes use to reach this one. Default: this machine's hostname.")
    plaintext_port: int = Field(
        alias="plaintextPort", description="HTTP port. Default: the role's (8081..8100)."
    )
    service: str = _doc("Service name, e.g. druid/broker. Default: druid/<role>.")
    bind_on_host: bool = Field(
        alias="bindOnHost",
        default=False,
        description="Listen only on druid.host's address. Default false: every interface.",
    )


class ServerSettings(Group):
    PREFIX = "druid.server."

    hidden_properties: StrList = Field(
        alias="hiddenProperties",
        default_factory=lambda: [
            "druid.s3.accessKey",
            "druid.s3.secretKey",
            "druid.metadata.storage.connector.password",
            "password",
            "key",
            "token",
            "pwd",
        ],
        description="Substrings (case-insensitive) of keys /status/properties leaves out.",
    )
    tier: str = _doc("Historical tier. Default _default_tier.", default="_default_tier")
    priority: int = _doc("Historical priority within its tier. Default 0.", default=0)
    max_size: Bytes = Field(
        alias="maxSize",
        default=0,
        description="Bytes of segments this historical may serve; 0 = sum of cache locations.",
    )


class ServerHttpSettings(Group):
    PREFIX = "druid.server.http."

    default_query_timeout: Duration = Field(
        alias="defaultQueryTimeout", default=300.0, description="Query timeout, ms. Default 300000."
    )
    max_query_timeout: Duration = Field(
        alias="maxQueryTimeout",
        default=float(2**63 - 1) / 1000.0,
        description="Upper bound of a query's context timeout, ms.",
    )
    num_threads: int = Field(
        alias="numThreads", default=40, description="Concurrent queries served. Default 40."
    )
    max_scatter_gather_bytes: Bytes = Field(
        alias="maxScatterGatherBytes",
        default=0,
        description="Bytes of data-node partials a broker holds for one query; over it, 400 "
        "Resource limit exceeded. 0 = unlimited (Druid's default is Long.MAX_VALUE).",
    )
    max_subquery_rows: int = Field(
        alias="maxSubqueryRows",
        default=100_000,
        ge=1,
        description="Rows the broker materialises for the subqueries of one SQL query (all of "
        "them together); over it, 400 Resource limit exceeded. Default 100000. The query "
        "context key maxSubqueryRows overrides it.",
    )


class ProcessingSettings(Group):
    PREFIX = "druid.processing."

    num_threads: int | None = Field(
        alias="numThreads",
        default=None,
        ge=1,
        description="Segments a data node computes at once. Default: the number of CPUs.",
    )


class DiscoverySettings(Group):
    PREFIX = "druid.discovery."

    type: Literal["metadata", "k8s"] = _doc(
        "Discovery backend: metadata (the SQL store: local runs, compose) or k8s. "
        "Default metadata.",
        default="metadata",
    )
    initialization_timeout: Duration = Field(
        alias="initializationTimeout",
        default=30.0,
        description="A watcher whose first list has not succeeded by then initializes as timed "
        "out (Druid's BaseNodeRoleWatcher: 30 s). Default PT30S.",
    )


class K8sDiscoverySettings(Group):
    PREFIX = "druid.discovery.k8s."

    cluster_identifier: str | None = Field(
        alias="clusterIdentifier",
        default=None,
        description="Required with druid.discovery.type=k8s; [a-z0-9][a-z0-9-]*[a-z0-9].",
    )
    pod_name_env_key: str = Field(alias="podNameEnvKey", default="POD_NAME")
    pod_namespace_env_key: str = Field(alias="podNamespaceEnvKey", default="POD_NAMESPACE")
    coordinator_leader_election_config_map_namespace: str | None = Field(
        alias="coordinatorLeaderElectionConfigMapNamespace", default=None
    )
    overlord_leader_election_config_map_namespace: str | None = Field(
        alias="overlordLeaderElectionConfigMapNamespace", default=None
    )
    lease_duration: Duration = Field(alias="leaseDuration", default=60.0, description="PT60S.")
    renew_deadline: Duration = Field(alias="renewDeadline", default=17.0, description="PT17S.")
    retry_period: Duration = Field(alias="retryPeriod", default=5.0, description="PT5S.")
    leader_election_lock: Literal["configmap", "lease"] = Field(
        alias="leaderElectionLock",
        default="configmap",
        description="Lock object: a ConfigMap annotation (Druid) or a coordination.k8s.io Lease.",
    )
    require_ready: bool = Field(
        alias="requireReady",
        default=False,
        description="Only pods whose containers are all Ready count as discovered.",
    )
    kubeconfig: str | None = _doc(
        "Kubeconfig path used outside a cluster. Default: in-cluster config, else ~/.kube/config.",
        default=None,
    )


class MetadataDiscoverySettings(Group):
    PREFIX = "druid.discovery.metadata."

    heartbeat_period: Duration = Field(
        alias="heartbeatPeriod",
        default=2.0,
        description="How often a node refreshes its row. PT2S.",
    )
    node_ttl: Duration = Field(
        alias="nodeTtl",
        default=10.0,
        description="A node row older than this is gone (the crash detector). PT10S.",
    )
    poll_period: Duration = Field(
        alias="pollPeriod", default=0.5, description="How often watchers re-read node rows. PT0.5S."
    )
    # Shorter than the k8s defaults (60/17/5 s): this backend runs on one machine or in compose,
    # where a crashed leader should be replaced in seconds, not a minute.
    lease_duration: Duration = Field(alias="leaseDuration", default=15.0, description="PT15S.")
    renew_deadline: Duration = Field(alias="renewDeadline", default=10.0, description="PT10S.")
    retry_period: Duration = Field(alias="retryPeriod", default=2.0, description="PT2S.")


class MetadataStorageSettings(Group):
    PREFIX = "druid.metadata.storage."

    type: Literal["sqlite", "postgresql"] = _doc(
        "Metadata store. Default sqlite.", default="sqlite"
    )
    connect_uri: str = Field(
        alias="connector.connectURI",
        default="var/druid/metadata.db",
        description="SQLite: a file path or sqlite:// URL. PostgreSQL: jdbc:postgresql://h:p/db or "
        "postgresql://user@h:p/db. Default var/druid/metadata.db.",
    )
    user: str | None = Field(alias="connector.user", default=None)
    password: str | None = Field(alias="connector.password", default=None)
    tables_base: str = Field(alias="tables.base", default="druid", description="Table prefix.")


class StorageSettings(Group):
    PREFIX = "druid.storage."

    type: Literal["local", "s3"] = _doc("Deep storage. Default local.", default="local")
    storage_directory: str = Field(
        alias="storageDirectory", default="var/druid/segments", description="Local deep storage."
    )
    bucket: str | None = _doc("S3 bucket.", default=None)
    base_key: str = Field(alias="baseKey", default="", description="S3 key prefix.")


class S3Settings(Group):
    PREFIX = "druid.s3."

    access_key: str | None = Field(alias="accessKey", default=None)
    secret_key: str | None = Field(alias="secretKey", default=None)
    endpoint_url: str | None = Field(alias="endpoint.url", default=None)
    endpoint_signing_region: str | None = Field(alias="endpoint.signingRegion", default=None)
    enable_path_style_access: bool = Field(alias="enablePathStyleAccess", default=False)


class SegmentCacheLocation(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    path: str
    max_size: Bytes = Field(alias="maxSize", default=0)


class SegmentCacheSettings(Group):
    PREFIX = "druid.segmentCache."

    locations: Annotated[list[SegmentCacheLocation], BeforeValidator(_json_if_text)] = _doc(
        'JSON list of {"path","maxSize"}. Default [{"path":"var/druid/segment-cache",'
        '"maxSize":"10GiB"}].',
        default_factory=lambda: [
            SegmentCacheLocation(path="var/druid/segment-cache", max_size=10 * 2**30)
        ],
    )
    num_loading_threads: int = Field(
        alias="numLoadingThreads",
        default_factory=lambda: max(1, (os.cpu_count() or 1) // 6),
        description="Parallel segment loads. Default max(1, cores/6).",
    )
    num_bootstrap_threads: int | None = Field(
        alias="numBootstrapThreads",
        default=None,
        ge=1,
        description="Parallel segment loads in TURBO loading mode. Default: numLoadingThreads.",
    )
    drop_segment_delay_millis: int = Field(alias="dropSegmentDelayMillis", default=30000)
    status_queue_max_size: int = Field(alias="statusQueueMaxSize", default=100)


CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def cgroup_cpu_limit(cpu_max: str | None) -> int | None:
    """Whole processors allowed by a cgroup v2 ``cpu.max`` (``"<quota> <period>"``, rounded
    up), or None when unlimited (``"max ..."``) or unknown."""
    parts = (cpu_max or "").split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, -(-quota // period))


def available_processors() -> int:
    """Processors this process may use, as Java's ``availableProcessors`` counts them in a
    container: its CPU affinity, capped by the cgroup's CPU quota (a pod's CPU limit)."""
    try:
        n = len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open(CGROUP_CPU_MAX) as f:
            limit = cgroup_cpu_limit(f.read())
    except OSError:
        limit = None
    return min(n, limit) if limit is not None else n


def default_worker_capacity(processors: int) -> int:
    """Druid's ``WorkerConfig`` default for ``druid.worker.capacity``: one slot per processor
    but one, at least one."""
    return max(1, processors - 1)


class WorkerSettings(Group):
    PREFIX = "druid.worker."

    capacity: int = Field(
        default_factory=lambda: default_worker_capacity(available_processors()),
        ge=1,
        description="Tasks a peon runs at once (task slots). Default: Druid's "
        "max(1, available processors - 1).",
    )
    category: str = _doc("Worker category.", default="_default_worker_category")
    version: str = _doc("Worker version.", default="0")


class IndexerTaskSettings(Group):
    PREFIX = "druid.indexer.task."

    base_task_dir: str = Field(
        alias="baseTaskDir", default="var/druid/task", description="Peon task directories."
    )
    graceful_shutdown_timeout: Duration = Field(
        alias="gracefulShutdownTimeout",
        default=300.0,
        description="How long a stopping peon waits for its streaming tasks to persist what "
        "they hold in memory (and finish a publish under way) before it cancels them. "
        "Default PT5M.",
    )


class IndexerRunnerSettings(Group):
    PREFIX = "druid.indexer.runner."

    type: Literal["httpRemote"] = _doc(
        "Only httpRemote: tasks on peons over HTTP.", default="httpRemote"
    )
    task_assignment_timeout: Duration = Field(alias="taskAssignmentTimeout", default=300.0)
    task_cleanup_timeout: Duration = Field(alias="taskCleanupTimeout", default=900.0)
    sync_request_timeout: Duration = Field(alias="syncRequestTimeout", default=180.0)


class SegmentHandoffSettings(Group):
    PREFIX = "druid.segment.handoff."

    poll_duration: Duration = Field(
        alias="pollDuration",
        default=60.0,
        description="How often a task asks the coordinator whether its segments were handed "
        "off. Default PT1M.",
    )


class CoordinatorSettings(Group):
    PREFIX = "druid.coordinator."

    period: Duration = _doc("Duty cycle. Default PT60S.", default=60.0)
    # Druid waits PT300S for ZooKeeper-era inventory to settle; here duties wait for the inventory
    # view to be initialized instead, so no fixed delay is needed by default.
    start_delay: Duration = Field(alias="startDelay", default=0.0, description="Default PT0S.")
    load_queue_host_timeout: Duration = Field(
        alias="loadqueuepeon.http.hostTimeout",
        default=300.0,
        description="How long a historical may hold a change-request batch. Default PT5M.",
    )
    load_queue_repeat_delay: Duration = Field(
        alias="loadqueuepeon.http.repeatDelay",
        default=60.0,
        description="Wait after a failed change-request batch. Default PT1M.",
    )
    load_queue_batch_size: int | None = Field(
        alias="loadqueuepeon.http.batchSize",
        default=None,
        ge=1,
        description="Change requests per batch. Default: the historical's numLoadingThreads.",
    )
    indexing_period: Duration = Field(
        alias="period.indexingPeriod",
        default=1800.0,
        description="How often the indexing-service duties (kill) run. Default PT1800S.",
    )
    kill_on: bool = Field(
        alias="kill.on",
        default=False,
        description="Submit kill tasks for unused segments (KillUnusedSegments). Default false.",
    )
    kill_period: Duration = Field(
        alias="kill.period",
        default=86400.0,
        description="At most one kill round per this period; >= indexingPeriod. Default P1D.",
    )
    kill_duration_to_retain: Duration = Field(
        alias="kill.durationToRetain",
        default=90 * 86400.0,
        description="Only segments ending before now minus this are killed. Default P90D.",
    )
    kill_ignore_duration_to_retain: bool = Field(
        alias="kill.ignoreDurationToRetain",
        default=False,
        description="Kill unused segments whatever their interval end. Default false.",
    )
    kill_buffer_period: Duration = Field(
        alias="kill.bufferPeriod",
        default=30 * 86400.0,
        description="Only segments marked unused at least this long ago are killed. Default P30D.",
    )
    kill_max_segments: int = Field(
        alias="kill.maxSegments",
        default=100,
        ge=1,
        description="Most segments one kill task deletes. Default 100.",
    )

    @model_validator(mode="after")
    def _kill_period_covers_indexing_period(self) -> CoordinatorSettings:
        if self.kill_on and self.kill_period < self.indexing_period:
            raise ValueError(
                "druid.coordinator.kill.period must be greater than or equal to "
                "druid.coordinator.period.indexingPeriod"
            )
        return self


class ServerViewSettings(Group):
    PREFIX = "druid.serverview."

    type: Literal["http"] = _doc("Only http: long polling of every data node.", default="http")


class ServerViewHttpSettings(Group):
    PREFIX = "druid.serverview.http."

    server_timeout: Duration = Field(
        alias="serverTimeout", default=240.0, description="Long-poll hold. Default PT4M."
    )
    server_unstability_timeout: Duration = Field(
        alias="serverUnstabilityTimeout", default=60.0, description="Default PT1M."
    )


class BrokerSettings(Group):
    PREFIX = "druid.broker."

    max_queued_requests: int = Field(
        alias="http.maxQueuedRequests",
        default=1000,
        description="Queries waiting beyond this get 429. Default 1000.",
    )


class LookupSettings(Group):
    """Which lookups this node loads (brokers, historicals, peons)."""

    PREFIX = "druid.lookup."

    tier: str = _doc("The lookup tier this node loads. Default __default.", default="__default")
    lookup_tier_is_datasource: bool = Field(
        alias="lookupTierIsDatasource",
        default=False,
        description="Peons: use the task's datasource as the tier. Default false.",
    )
    polling_period: Duration = Field(
        alias="pollingPeriod",
        default=30.0,
        description="kdruid: how often a node re-reads its tier from the coordinator. PT30S.",
    )

    @field_validator("lookup_tier_is_datasource")
    @classmethod
    def _tier_is_datasource(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "not supported: a kdruid peon serves many tasks; set druid.lookup.tier"
            )
        return value


class ZkSettings(Group):
    """Accepted so a Druid properties file carries over; ZooKeeper is never used."""

    PREFIX = "druid.zk.service."

    enabled: bool = _doc("Must be false: kdruid has no ZooKeeper.", default=False)

    @field_validator("enabled")
    @classmethod
    def _never(cls, value: bool) -> bool:
        if value:
            raise ValueError("kdruid runs without ZooKeeper; set it to false or leave it out")
        return value


class ExtensionsSettings(Group):
    """Accepted so a Druid properties file carries over; everything is built in."""

    PREFIX = "druid.extensions."

    load_list: StrList = Field(alias="loadList", default_factory=list)


GROUPS: dict[str, type[Group]] = {
    "node": NodeSettings,
    "server": ServerSettings,
    "server_http": ServerHttpSettings,
    "processing": ProcessingSettings,
    "discovery": DiscoverySettings,
    "k8s": K8sDiscoverySettings,
    "metadata_discovery": MetadataDiscoverySettings,
    "metadata": MetadataStorageSettings,
    "storage": StorageSettings,
    "s3": S3Settings,
    "segment_cache": SegmentCacheSettings,
    "worker": WorkerSettings,
    "indexer_task": IndexerTaskSettings,
    "indexer_runner": IndexerRunnerSettings,
    "coordinator": CoordinatorSettings,
    "segment_handoff": SegmentHandoffSettings,
    "serverview": ServerViewSettings,
    "serverview_http": ServerViewHttpSettings,
    "broker": BrokerSettings,
    "lookup": LookupSettings,
    "zk": ZkSettings,
    "extensions": ExtensionsSettings,
}


def _all_keys() -> dict[str, tuple[str, str]]:
    """Every known full key -> (group attribute, field name)."""
    keys: dict[str, tuple[str, str]] = {}
    for attr, group in GROUPS.items():
        for name, info in group.model_fields.items():
            keys[group.PREFIX + (info.alias or name)] = (attr, name)
    return keys


KNOWN_KEYS = _all_keys()
_ENV_NAMES = {key.upper().replace(".", "_"): key for key in KNOWN_KEYS}
_DOCKER_ENV_NAMES = {key.replace(".", "_"): key for key in KNOWN_KEYS}


class Settings(BaseModel):
    """All settings of one process. Build with ``load_settings``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    role: Role
    properties: dict[str, str] = Field(description="The keys that were set, as given.")
    node: NodeSettings
    server: ServerSettings
    server_http: ServerHttpSettings
    processing: ProcessingSettings
    discovery: DiscoverySettings
    k8s: K8sDiscoverySettings
    metadata_discovery: MetadataDiscoverySettings
    metadata: MetadataStorageSettings
    storage: StorageSettings
    s3: S3Settings
    segment_cache: SegmentCacheSettings
    worker: WorkerSettings
    indexer_task: IndexerTaskSettings
    indexer_runner: IndexerRunnerSettings
    coordinator: CoordinatorSettings
    segment_handoff: SegmentHandoffSettings
    serverview: ServerViewSettings
    serverview_http: ServerViewHttpSettings
    broker: BrokerSettings
    lookup: LookupSettings
    zk: ZkSettings
    extensions: ExtensionsSettings
    security: SecuritySettings = Field(
        default_factory=SecuritySettings,
        description="druid.auth.*, druid.escalator.* and TLS (common/auth/config.py).",
    )

    @property
    def tls(self) -> bool:
        """Serve (and announce) the TLS port (``druid.enableTlsPort``)."""
        return self.security.tls.enable_tls_port

    @property
    def tls_port(self) -> int:
        port = self.security.tls.tls_port
        return port if port is not None else DEFAULT_TLS_PORTS.get(self.role, -1)

    @property
    def host_and_port(self) -> str:
        """Druid's ``getHostAndPortToUse``: the TLS port when TLS is on."""
        port = self.tls_port if self.tls else self.node.plaintext_port
        return f"{self.node.host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host_and_port}"

    def visible_properties(self) -> dict[str, str]:
        """The set properties without those whose key contains a hidden substring."""
        hidden = [h.lower() for h in self.server.hidden_properties]
        return {k: v for k, v in self.properties.items() if not any(h in k.lower() for h in hidden)}

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with more keys set (validated like any other source)."""
        props: dict[str, Any] = dict(self.properties)
        props.update({k: v for k, v in overrides.items()})
        return load_settings(self.role, properties=props, environ={})


def read_properties(path: str | Path) -> dict[str, str]:
    """Parse a Java-style ``.properties`` file.

    ``key=value`` or ``key: value`` lines, ``#``/``!`` comments, trailing-backslash continuations.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    result: dict[str, str] = {}
    pending = ""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped[0] in "#!"):
            continue  # Java never continues a comment line, even one ending in a backslash
        line = pending + stripped
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        pending = ""
        if not line:
            continue
        m = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if not m:
            raise ConfigError(f"{p}:{lineno}: not a 'key=value' line: {line!r}")
        result[m.group(1)] = m.group(2)
    return result


def load_settings(
    role: str,
    *,
    config_path: str | Path | None = None,
    properties: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings of ``role`` from (in rising precedence) role defaults, ``config_path``,
    ``properties`` and ``environ`` (default: ``os.environ``).

    Raises ``ConfigError`` naming the offending key.
    """
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    given: dict[str, Any] = {}
    if config_path is not None:
        given.update(read_properties(config_path))
    if properties:
        given.update(properties)
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if name in _ENV_NAMES:
            given[_ENV_NAMES[name]] = value
        elif name in _DOCKER_ENV_NAMES:
            given[_DOCKER_ENV_NAMES[name]] = value
        elif name.startswith("druid_") and owns_security_key(name.replace("_", ".")):
            given[name.replace("_", ".")] = value
        elif name.startswith("druid_"):
            raise ConfigError(
                f"unknown property {name.replace('_', '.')!r} (from environment {name})"
            )

    values: dict[str, dict[str, Any]] = {attr: {} for attr in GROUPS}
    security_props: dict[str, Any] = {}
    for key, value in given.items():
        if owns_security_key(key):
            security_props[key] = value
            continue
        if key not in KNOWN_KEYS:
            raise ConfigError(f"unknown property {key!r}{_suggest(key)}")
        attr, name = KNOWN_KEYS[key]
        values[attr][name] = value

    node = values["node"]
    node.setdefault("host", socket.gethostname())
    node.setdefault("plaintext_port", DEFAULT_PORTS[role])
    node.setdefault("service", f"druid/{role}")

    groups: dict[str, Group] = {}
    for attr, group in GROUPS.items():
        try:
            groups[attr] = group.model_validate(values[attr])
        except ValidationError as exc:
            raise ConfigError(_explain(group, exc)) from None
    try:
        security = parse_security(security_props, {**os.environ, **env})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    settings = Settings(
        role=role,
        properties={k: str(v) for k, v in given.items()},
        security=security,
        **groups,
    )
    _check_cross_field(settings)
    return settings


def _explain(group: type[Group], exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    info = group.model_fields.get(field)
    key = group.PREFIX + (info.alias or field if info else field)
    got = first.get("input")
    msg = first["msg"].removeprefix("Value error, ")
    return f"invalid value for {key}: {msg} (got {got!r})"


def _suggest(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.8)
    return f"; did you mean {close[0]!r}?" if close else ""


_CLUSTER_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]*[a-z0-9]")


def _check_cross_field(s: Settings) -> None:
    if s.tls and s.tls_port <= 0:
        raise ConfigError(f"druid.tlsPort is required with druid.enableTlsPort on a {s.role}")
    if not 0 < s.node.plaintext_port < 65536 and s.node.plaintext_port != 0:
        raise ConfigError(f"invalid value for druid.plaintextPort: {s.node.plaintext_port}")
    if s.discovery.type == "k8s":
        cid = s.k8s.cluster_identifier
        if not cid:
            raise ConfigError(
                "druid.discovery.k8s.clusterIdentifier is required with druid.discovery.type=k8s"
            )
        if not _CLUSTER_ID_RE.fullmatch(cid):
            raise ConfigError(
                f"invalid value for druid.discovery.k8s.clusterIdentifier: {cid!r} must match "
                "[a-z0-9][a-z0-9-]*[a-z0-9]"
            )
    groups: tuple[tuple[str, K8sDiscoverySettings | MetadataDiscoverySettings], ...] = (
        ("druid.discovery.k8s.", s.k8s),
        ("druid.discovery.metadata.", s.metadata_discovery),
    )
    for prefix, group in groups:
        lease, renew, retry = group.lease_duration, group.renew_deadline, group.retry_period
        if not lease > renew > retry > 0:
            raise ConfigError(
                f"{prefix}leaseDuration > renewDeadline > retryPeriod > 0 is required "
                f"(got {lease}s, {renew}s, {retry}s)"
            )
    if s.storage.type == "s3" and not s.storage.bucket:
        raise ConfigError("druid.storage.bucket is required with druid.storage.type=s3")
