"""``DiscoveryDruidNode`` and its services, serialised exactly as Druid does.

Druid's JSON for a node (``DiscoveryDruidNode.java``)::

    {"druidNode": {"service", "host", "bindOnHost", "plaintextPort", "port": -1, "tlsPort",
                   "enablePlaintextPort", "enableTlsPort"},
     "nodeType": "historical",
     "services": {"dataNodeService": {"type": "dataNodeService", "tier", "maxSize",
                                      "type": "historical", "serverType": "historical", "priority"},
                  "lookupNodeService": {"type": "lookupNodeService", "lookupTier": "__default"}},
     "startTime": "2024-01-01T00:00:00.000Z"}

Druid writes ``dataNodeService`` with a second, duplicate ``type`` key holding the server type (for
backward compatibility). ``to_json`` writes that quirk; ``from_json`` reads it, whichever ``type`` a
JSON parser keeps, because the subtype is taken from the ``services`` map key. Unknown services are
dropped with a warning (rolling upgrades), as Druid does.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.errors import InvalidInput

log = logging.getLogger(__name__)

NodeRole = Literal[
    "coordinator", "historical", "broker", "overlord", "peon", "router", "middleManager", "indexer"
]
NODE_ROLES: tuple[NodeRole, ...] = (
    "coordinator",
    "historical",
    "broker",
    "overlord",
    "peon",
    "router",
    "middleManager",
    "indexer",
)

DATA_NODE_SERVICE = "dataNodeService"
LOOKUP_NODE_SERVICE = "lookupNodeService"
WORKER_NODE_SERVICE = "workerNodeService"

# Which roles a service view watches (Druid's SERVICE_TO_NODE_TYPES). Druid lists MIDDLE_MANAGER and
# INDEXER for workerNodeService; here the peon is the worker, so it is watched too.
SERVICE_TO_NODE_ROLES: dict[str, tuple[NodeRole, ...]] = {
    LOOKUP_NODE_SERVICE: ("broker", "historical", "peon", "indexer"),
    DATA_NODE_SERVICE: ("historical", "peon", "indexer", "broker"),
    WORKER_NODE_SERVICE: ("middleManager", "indexer", "peon"),
}

DEFAULT_TIER = "_default_tier"
DEFAULT_LOOKUP_TIER = "__default"
DEFAULT_WORKER_CATEGORY = "_default_worker_category"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class DruidNode(_Model):
    service: str
    host: str
    bind_on_host: bool = Field(default=False, alias="bindOnHost")
    plaintext_port: int = Field(default=-1, alias="plaintextPort")
    port: int = -1
    tls_port: int = Field(default=-1, alias="tlsPort")
    enable_plaintext_port: bool = Field(default=True, alias="enablePlaintextPort")
    enable_tls_port: bool = Field(default=False, alias="enableTlsPort")

    @property
    def host_and_port(self) -> str:
        """Druid's ``getHostAndPortToUse``: the TLS port when TLS is on, else the plaintext one."""
        port = self.tls_port if self.enable_tls_port and self.tls_port >= 0 else self.plaintext_port
        return f"{self.host}:{port}"

    @property
    def scheme(self) -> str:
        return "https" if self.enable_tls_port and self.tls_port >= 0 else "http"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://10.1.2.3:8081`` (the leader identity Druid uses)."""
        return f"{self.scheme}://{self.host_and_port}"


class DataNodeService(_Model):
    KEY: ClassVar[str] = DATA_NODE_SERVICE
    tier: str = DEFAULT_TIER
    max_size: int = Field(default=0, alias="maxSize")
    server_type: str = Field(alias="serverType")
    priority: int = 0


class LookupNodeService(_Model):
    KEY: ClassVar[str] = LOOKUP_NODE_SERVICE
    lookup_tier: str = Field(default=DEFAULT_LOOKUP_TIER, alias="lookupTier")


class WorkerNodeService(_Model):
    KEY: ClassVar[str] = WORKER_NODE_SERVICE
    ip: str
    capacity: int
    version: str = "0"
    category: str = DEFAULT_WORKER_CATEGORY


DruidService = DataNodeService | LookupNodeService | WorkerNodeService
_SERVICE_TYPES: dict[str, type[DataNodeService | LookupNodeService | WorkerNodeService]] = {
    DATA_NODE_SERVICE: DataNodeService,
    LOOKUP_NODE_SERVICE: LookupNodeService,
    WORKER_NODE_SERVICE: WorkerNodeService,
}


def _parse_service(key: str, raw: dict[str, Any]) -> DruidService | None:
    cls = _SERVICE_TYPES.get(key)
    if cls is None:
        log.warning("ignoring unknown service %r in node announcement", key)
        return None
    data = dict(raw)
    if cls is DataNodeService and "serverType" not in data:
        # Only the duplicate "type" survived the JSON parser: it holds the server type.
        if data.get("type") not in (None, DATA_NODE_SERVICE):
            data["serverType"] = data["type"]
    data.pop("type", None)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        log.warning("ignoring unparseable service %r in node announcement: %s", key, exc)
        return None


def _service_json(key: str, service: DruidService) -> bytes:
    body = service.model_dump(by_alias=True)
    if isinstance(service, DataNodeService):
        # Druid's DruidServiceSerializer: type, tier, maxSize, duplicate type, serverType, priority.
        return (
            b'{"type":"dataNodeService","tier":'
            + orjson.dumps(service.tier)
            + b',"maxSize":'
            + orjson.dumps(service.max_size)
            + b',"type":'
            + orjson.dumps(service.server_type)
            + b',"serverType":'
            + orjson.dumps(service.server_type)
            + b',"priority":'
            + orjson.dumps(service.priority)
            + b"}"
        )
    return orjson.dumps({"type": key, **body})


def format_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class DiscoveryDruidNode(_Model):
    druid_node: DruidNode = Field(alias="druidNode")
    node_role: NodeRole = Field(alias="nodeType")
    services: dict[str, DruidService] = Field(default_factory=dict)
    start_time: datetime = Field(default_factory=lambda: datetime.now(UTC), alias="startTime")

    @property
    def host_and_port(self) -> str:
        return self.druid_node.host_and_port

    @property
    def url(self) -> str:
        return self.druid_node.url

    def service(self, key: str) -> DruidService | None:
        return self.services.get(key)

    def same_as(self, other: DiscoveryDruidNode) -> bool:
        """Druid's equality: druidNode, role and services (not the start time)."""
        return (
            self.druid_node == other.druid_node
            and self.node_role == other.node_role
            and self.services == other.services
        )

    def to_json(self) -> str:
        """Druid's JSON text, duplicate ``type`` key of ``dataNodeService`` included."""
        services = b",".join(
            orjson.dumps(key) + b":" + _service_json(key, svc) for key, svc in self.services.items()
        )
        return (
            b'{"druidNode":'
            + orjson.dumps(self.druid_node.model_dump(by_alias=True))
            + b',"nodeType":'
            + orjson.dumps(self.node_role)
            + b',"services":{'
            + services
            + b'},"startTime":'
            + orjson.dumps(format_time(self.start_time))
            + b"}"
        ).decode()

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> DiscoveryDruidNode:
        """Parse Druid's JSON; raises ``InvalidInput`` when it is not a node announcement."""
        try:
            raw = orjson.loads(text) if isinstance(text, str | bytes) else text
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"node announcement is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise InvalidInput("node announcement is not a JSON object")
        services: dict[str, DruidService] = {}
        raw_services = raw.get("services") or {}
        if not isinstance(raw_services, dict):
            raise InvalidInput("node announcement 'services' is not a JSON object")
        for key, value in raw_services.items():
            if isinstance(value, dict):
                parsed = _parse_service(key, value)
                if parsed is not None:
                    services[key] = parsed
        data = {k: v for k, v in raw.items() if k != "services"}
        try:
            return cls.model_validate({**data, "services": services})
        except ValidationError as exc:
            raise InvalidInput(f"invalid node announcement: {exc.errors()[0]['msg']}") from None


def java_string_hash(text: str) -> int:
    """Java ``String.hashCode()`` (UTF-16 code units), as a signed 32-bit int."""
    h = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def id_hash(host_and_port: str) -> str:
    """Druid's ``hashEncodeStringForLabelValue``: abs(String.hashCode()) in decimal.

    Java's ``Integer.MIN_VALUE`` stays negative, which would be an invalid label value; it is
    mapped to its absolute value here so the label is always valid.
    """
    return str(abs(java_string_hash(host_and_port)))
