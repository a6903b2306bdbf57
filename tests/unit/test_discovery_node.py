"""DiscoveryDruidNode JSON exactly as Druid writes and reads it, and the k8s id-hash label."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from common.discovery.node import (
    DATA_NODE_SERVICE,
    LOOKUP_NODE_SERVICE,
    WORKER_NODE_SERVICE,
    DataNodeService,
    DiscoveryDruidNode,
    DruidNode,
    LookupNodeService,
    WorkerNodeService,
    id_hash,
    java_string_hash,
)
from common.errors import InvalidInput

# The peon example of druid-internals.md section 2.3 (Druid's own doc sample), verbatim.
DRUID_PEON_EXAMPLE = """\
{"druidNode":{"service":"druid/middleManager","host":"localhost","bindOnHost":false,"plaintextPort":8100,
  "port":-1,"tlsPort":-1,"enablePlaintextPort":true,"enableTlsPort":false},
 "nodeType":"peon",
 "services":{"dataNodeService":{"type":"dataNodeService","tier":"_default_tier","maxSize":0,
     "type":"indexer-executor","serverType":"indexer-executor","priority":0},
   "lookupNodeService":{"type":"lookupNodeService","lookupTier":"__default"}}}
"""

START = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def historical() -> DiscoveryDruidNode:
    return DiscoveryDruidNode(
        druid_node=DruidNode(service="druid/historical", host="10.0.0.5", plaintext_port=8083),
        node_role="historical",
        services={
            DATA_NODE_SERVICE: DataNodeService(
                tier="hot", max_size=10_000_000_000, server_type="historical", priority=3
            ),
            LOOKUP_NODE_SERVICE: LookupNodeService(),
        },
        start_time=START,
    )


def test_to_json_is_druids_text_with_duplicate_type_key() -> None:
    expected = (
        '{"druidNode":{"service":"druid/historical","host":"10.0.0.5","bindOnHost":false,'
        '"plaintextPort":8083,"port":-1,"tlsPort":-1,"enablePlaintextPort":true,'
        '"enableTlsPort":false},'
        '"nodeType":"historical",'
        '"services":{"dataNodeService":{"type":"dataNodeService","tier":"hot",'
        '"maxSize":10000000000,"type":"historical","serverType":"historical","priority":3},'
        '"lookupNodeService":{"type":"lookupNodeService","lookupTier":"__default"}},'
        '"startTime":"2024-01-02T03:04:05.678Z"}'
    )
    assert historical().to_json() == expected


def test_worker_node_service_json() -> None:
    node = DiscoveryDruidNode(
        druid_node=DruidNode(service="druid/peon", host="p1", plaintext_port=8100),
        node_role="peon",
        services={WORKER_NODE_SERVICE: WorkerNodeService(ip="10.0.0.9", capacity=3)},
        start_time=datetime(2024, 1, 2, tzinfo=UTC),
    )
    body = orjson.loads(node.to_json())
    assert body["services"] == {
        "workerNodeService": {
            "type": "workerNodeService",
            "ip": "10.0.0.9",
            "capacity": 3,
            "version": "0",
            "category": "_default_worker_category",
        }
    }
    assert body["startTime"] == "2024-01-02T00:00:00.000Z"


def test_start_time_is_written_in_utc_with_millis() -> None:
    plus2 = timezone(timedelta(hours=2))
    node = historical().model_copy(update={"start_time": datetime(2024, 6, 1, 2, 0, tzinfo=plus2)})
    assert orjson.loads(node.to_json())["startTime"] == "2024-06-01T00:00:00.000Z"


def test_from_json_reads_druids_peon_example() -> None:
    node = DiscoveryDruidNode.from_json(DRUID_PEON_EXAMPLE)
    assert node.node_role == "peon"
    assert node.druid_node.service == "druid/middleManager"
    assert node.druid_node.host == "localhost"
    assert node.druid_node.plaintext_port == 8100
    assert node.host_and_port == "localhost:8100"
    assert node.url == "http://localhost:8100"
    data = node.service(DATA_NODE_SERVICE)
    assert isinstance(data, DataNodeService)
    assert data.server_type == "indexer-executor"
    assert data.tier == "_default_tier"
    assert data.max_size == 0
    assert data.priority == 0
    lookup = node.service(LOOKUP_NODE_SERVICE)
    assert isinstance(lookup, LookupNodeService)
    assert lookup.lookup_tier == "__default"


def test_from_json_of_example_writes_the_same_services_back() -> None:
    node = DiscoveryDruidNode.from_json(DRUID_PEON_EXAMPLE)
    written = node.to_json()
    # The example text, without whitespace, is a prefix of what we write (we add startTime).
    compact = "".join(DRUID_PEON_EXAMPLE.split())
    assert written.startswith(compact[:-1] + ',"startTime":')


def test_round_trip() -> None:
    node = historical()
    back = DiscoveryDruidNode.from_json(node.to_json())
    assert back.same_as(node)
    assert back.start_time == START.replace(microsecond=678000)
    assert back.to_json() == node.to_json()


def test_from_json_accepts_bytes_and_dict() -> None:
    text = historical().to_json()
    assert DiscoveryDruidNode.from_json(text.encode()).same_as(historical())
    assert DiscoveryDruidNode.from_json(orjson.loads(text)).same_as(historical())


def test_missing_server_type_is_recovered_from_duplicate_type() -> None:
    # A JSON library that keeps only the last duplicate key, and a writer without serverType.
    raw = {
        "druidNode": {"service": "druid/historical", "host": "h", "plaintextPort": 8083},
        "nodeType": "historical",
        "services": {
            "dataNodeService": {"type": "historical", "tier": "t1", "maxSize": 5, "priority": 1}
        },
    }
    node = DiscoveryDruidNode.from_json(orjson.dumps(raw))
    data = node.service(DATA_NODE_SERVICE)
    assert isinstance(data, DataNodeService)
    assert (data.server_type, data.tier, data.max_size, data.priority) == ("historical", "t1", 5, 1)


def test_unknown_services_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    raw = orjson.loads(historical().to_json())
    raw["services"]["fancyNewService"] = {"type": "fancyNewService", "x": 1}
    with caplog.at_level(logging.WARNING):
        node = DiscoveryDruidNode.from_json(orjson.dumps(raw))
    assert set(node.services) == {DATA_NODE_SERVICE, LOOKUP_NODE_SERVICE}
    assert "fancyNewService" in caplog.text


def test_unparseable_known_service_is_dropped_not_fatal() -> None:
    raw = orjson.loads(historical().to_json())
    raw["services"]["workerNodeService"] = {"type": "workerNodeService", "capacity": "many"}
    node = DiscoveryDruidNode.from_json(orjson.dumps(raw))
    assert WORKER_NODE_SERVICE not in node.services
    assert DATA_NODE_SERVICE in node.services


def test_equality_ignores_start_time() -> None:
    a = historical()
    b = a.model_copy(update={"start_time": START + timedelta(days=1)})
    assert a.same_as(b)
    c = a.model_copy(update={"services": {LOOKUP_NODE_SERVICE: LookupNodeService()}})
    assert not a.same_as(c)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "",
        "[1, 2]",
        '"a string"',
        '{"nodeType": "historical"}',
        '{"druidNode": {"service": "s", "host": "h"}, "nodeType": "wizard"}',
        '{"druidNode": "h:1", "nodeType": "peon"}',
    ],
)
def test_invalid_announcement_raises_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput):
        DiscoveryDruidNode.from_json(text)


@pytest.mark.parametrize("services", ['["dataNodeService"]', '"dataNodeService"', "3"])
def test_services_not_an_object_raises_invalid_input(services: str) -> None:
    text = (
        '{"druidNode":{"service":"druid/peon","host":"h","plaintextPort":8100},'
        f'"nodeType":"peon","services":{services}}}'
    )
    with pytest.raises(InvalidInput):
        DiscoveryDruidNode.from_json(text)


def test_tls_node_uses_tls_port_and_https() -> None:
    node = DruidNode(
        service="druid/broker",
        host="b",
        plaintext_port=8082,
        tls_port=8282,
        enable_tls_port=True,
        enable_plaintext_port=False,
    )
    assert node.host_and_port == "b:8282"
    assert node.url == "https://b:8282"


# ---------------------------------------------------------------------------------------------
# id-hash label (Java String.hashCode, absolute value)


def reference_java_hash(text: str) -> int:
    """Java String.hashCode, written independently: UTF-16 code units, int32 wrap-around."""
    h = 0
    for ch in text:
        cp = ord(ch)
        if cp >= 0x10000:
            cp -= 0x10000
            units = [0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)]
        else:
            units = [cp]
        for unit in units:
            h = h * 31 + unit
            h = (h + 2**31) % 2**32 - 2**31
    return h


def test_id_hash_matches_druids_test_value() -> None:
    assert id_hash("test-host:80") == "1429561393"


@pytest.mark.parametrize(
    ("text", "java"),
    [
        ("", 0),
        ("hello", 99162322),  # well-known Java value
        ("Aa", 2112),
        ("BB", 2112),
        ("polygenelubricants", -(2**31)),  # Integer.MIN_VALUE
    ],
)
def test_java_string_hash_known_values(text: str, java: int) -> None:
    assert java_string_hash(text) == java
    assert reference_java_hash(text) == java


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.5:8083",
        "druid-historical-0.druid-historical.default.svc.cluster.local:8083",
        "héllo-wörld:8081",
        "日本語ホスト:8082",
        "emoji-😀-host:8100",
        "[::1]:8090",
    ],
)
def test_id_hash_matches_independent_java_reimplementation(text: str) -> None:
    expected = reference_java_hash(text)
    assert java_string_hash(text) == expected
    assert id_hash(text) == str(abs(expected))


def test_id_hash_is_a_valid_label_value_even_for_min_value() -> None:
    value = id_hash("polygenelubricants")
    assert value == "2147483648"
    assert value.isdigit() and len(value) <= 63
