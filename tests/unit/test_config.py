"""Settings from runtime.properties + environment: parsing, precedence, validation, hiding."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import (
    DEFAULT_PORTS,
    ROLES,
    Settings,
    available_processors,
    cgroup_cpu_limit,
    default_worker_capacity,
    load_settings,
    parse_bytes,
    parse_duration,
    read_properties,
)
from common.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "runtime.properties") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(
    role: str = "broker",
    *,
    properties: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    return load_settings(
        role,
        properties=properties,
        environ={} if environ is None else environ,
        config_path=config_path,
    )


def config_error(**kwargs: object) -> str:
    with pytest.raises(ConfigError) as info:
        load(**kwargs)  # type: ignore[arg-type]
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# the properties file


def test_properties_file_comments_separators_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# a comment\n"
        "! another comment\n"
        "\n"
        "   \n"
        "druid.host=example.org\n"
        "druid.service : druid/custom\n"
        "druid.plaintextPort:9999\n"
        "  druid.storage.type = local  \n"
        "druid.storage.baseKey=\n"
        "druid.storage.storageDirectory=/a=b:c\n",
    )
    assert read_properties(path) == {
        "druid.host": "example.org",
        "druid.service": "druid/custom",
        "druid.plaintextPort": "9999",
        "druid.storage.type": "local",
        "druid.storage.baseKey": "",
        "druid.storage.storageDirectory": "/a=b:c",
    }


def test_properties_file_whitespace_separator(tmp_path: Path) -> None:
    path = write(tmp_path, "druid.host example.org\n")
    assert read_properties(path) == {"druid.host": "example.org"}


def test_properties_file_continuation_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "druid.extensions.loadList=a, \\\n    b, \\\n    c\ndruid.host=h\n",
    )
    props = read_properties(path)
    assert props == {"druid.extensions.loadList": "a, b, c", "druid.host": "h"}
    settings = load(config_path=path)
    assert settings.extensions.load_list == ["a", "b", "c"]


def test_comment_ending_in_backslash_does_not_swallow_next_line(tmp_path: Path) -> None:
    path = write(tmp_path, "# C:\\druid\\\ndruid.host=kept\n")
    assert read_properties(path) == {"druid.host": "kept"}


def test_properties_file_garbage_line_is_rejected_with_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "druid.host=a\n=nokey\n")
    with pytest.raises(ConfigError, match=r"runtime\.properties:2"):
        read_properties(path)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.properties"
    with pytest.raises(ConfigError, match="cannot read config file") as info:
        load(config_path=missing)
    assert str(missing) in str(info.value)


# ---------------------------------------------------------------------------------------------
# sources and precedence


def test_precedence_file_then_properties_then_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "druid.host=from-file\ndruid.service=druid/from-file\ndruid.worker.capacity=2\n",
    )
    s = load(
        "peon",
        config_path=path,
        properties={"druid.service": "druid/from-props", "druid.worker.capacity": "3"},
        environ={"DRUID_WORKER_CAPACITY": "4"},
    )
    assert s.node.host == "from-file"
    assert s.node.service == "druid/from-props"
    assert s.worker.capacity == 4


def test_both_environment_forms_are_read() -> None:
    s = load(
        environ={
            "DRUID_DISCOVERY_TYPE": "k8s",
            "DRUID_DISCOVERY_K8S_CLUSTERIDENTIFIER": "prod-1",
            "druid_metadata_storage_connector_connectURI": "postgresql://u@db:5432/druid",
        }
    )
    assert s.discovery.type == "k8s"
    assert s.k8s.cluster_identifier == "prod-1"
    assert s.metadata.connect_uri == "postgresql://u@db:5432/druid"
    assert s.properties["druid.discovery.type"] == "k8s"


def test_lowercase_environment_form_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "druid.discovery.type=k8s\ndruid.discovery.k8s.clusterIdentifier=x1\n")
    s = load(config_path=path, environ={"druid_discovery_type": "metadata"})
    assert s.discovery.type == "metadata"


def test_unknown_uppercase_druid_env_is_ignored() -> None:
    # What Kubernetes injects into every pod for a Service named druid-broker / druid.
    s = load(
        environ={
            "DRUID_BROKER_SERVICE_HOST": "10.0.0.7",
            "DRUID_BROKER_SERVICE_PORT": "8082",
            "DRUID_BROKER_PORT": "tcp://10.0.0.7:8082",
            "DRUID_PORT_8082_TCP_ADDR": "10.0.0.7",
            "PATH": "/usr/bin",
        }
    )
    assert s.node.plaintext_port == 8082
    assert not any("BROKER" in k or "broker.service" in k for k in s.properties)


def test_unknown_lowercase_druid_env_is_rejected_naming_the_key() -> None:
    msg = config_error(environ={"druid_discovery_tpye": "k8s"})
    assert "druid.discovery.tpye" in msg
    assert "druid_discovery_tpye" in msg


def test_unknown_file_key_is_rejected_naming_it_with_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "druid.host=a\ndruid.discovery.tpye=k8s\n")
    msg = config_error(config_path=path)
    assert "druid.discovery.tpye" in msg
    assert "did you mean 'druid.discovery.type'" in msg


def test_unknown_key_far_from_any_known_key_has_no_suggestion() -> None:
    msg = config_error(properties={"druid.completely.unrelated.thing": "1"})
    assert "druid.completely.unrelated.thing" in msg
    assert "did you mean" not in msg


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(ConfigError, match="router"):
        load_settings("router", environ={})


# ---------------------------------------------------------------------------------------------
# malformed values name the key


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("druid.discovery.k8s.leaseDuration", "60s"),
        ("druid.discovery.k8s.leaseDuration", "PT"),
        ("druid.coordinator.period", "P1DT"),
        ("druid.coordinator.period", "1.5"),
        ("druid.server.maxSize", "10xb"),
        ("druid.server.maxSize", "1.5g"),
        ("druid.segmentCache.locations", '[{"path":'),
        ("druid.segmentCache.locations", '[{"path":"/x","bogus":1}]'),
        ("druid.discovery.type", "zk"),
        ("druid.metadata.storage.type", "mysql"),
        ("druid.storage.type", "hdfs"),
        ("druid.plaintextPort", "abc"),
        ("druid.plaintextPort", "70000"),
        ("druid.worker.capacity", "0"),
        ("druid.zk.service.enabled", "true"),
    ],
)
def test_malformed_value_is_rejected_naming_the_key(key: str, value: str) -> None:
    msg = config_error(properties={key: value})
    assert key in msg


def test_malformed_env_value_names_the_key() -> None:
    msg = config_error(environ={"DRUID_SERVER_MAXSIZE": "lots"})
    assert "druid.server.maxSize" in msg
    assert "lots" in msg


# ---------------------------------------------------------------------------------------------
# durations and sizes


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT60S", 60.0),
        ("PT0.5S", 0.5),
        ("PT10M", 600.0),
        ("PT1H30M", 5400.0),
        ("P1D", 86400.0),
        ("P1W", 604800.0),
        ("P1DT2H", 93600.0),
        ("pt17s", 17.0),
        ("60000", 60.0),
        ("250", 0.25),
        (1500, 1.5),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "60s", "1 minute", "P1.5D", True])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_settings_are_seconds() -> None:
    s = load(
        properties={
            "druid.discovery.k8s.leaseDuration": "PT30S",
            "druid.discovery.k8s.renewDeadline": "10000",
            "druid.discovery.k8s.retryPeriod": "PT0.5S",
        }
    )
    assert (s.k8s.lease_duration, s.k8s.renew_deadline, s.k8s.retry_period) == (30.0, 10.0, 0.5)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10g", 10_000_000_000),
        ("10GiB", 10 * 2**30),
        ("10gib", 10 * 2**30),
        ("500m", 500_000_000),
        ("500MiB", 500 * 2**20),
        ("1234", 1234),
        ("2k", 2000),
        ("3KiB", 3072),
        ("1t", 10**12),
        (42, 42),
    ],
)
def test_parse_bytes(text: object, size: int) -> None:
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["", "ten", "1.5g", "10 zb", "g", False])
def test_parse_bytes_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_segment_cache_locations_json_with_sizes() -> None:
    s = load(
        "historical",
        properties={
            "druid.segmentCache.locations": '[{"path":"/a","maxSize":"1GiB"},{"path":"/b"}]'
        },
    )
    locs = s.segment_cache.locations
    assert [(loc.path, loc.max_size) for loc in locs] == [("/a", 2**30), ("/b", 0)]


# ---------------------------------------------------------------------------------------------
# role defaults


@pytest.mark.parametrize("role", ROLES)
def test_role_default_port_and_service(role: str) -> None:
    s = load(role)
    assert s.node.plaintext_port == DEFAULT_PORTS[role]
    assert s.node.service == f"druid/{role}"
    assert s.base_url == f"http://{s.node.host}:{DEFAULT_PORTS[role]}"
    assert s.role == role


def test_druid_default_ports() -> None:
    assert DEFAULT_PORTS == {
        "coordinator": 8081,
        "broker": 8082,
        "historical": 8083,
        "overlord": 8090,
        "peon": 8100,
    }


def test_druid_defaults_where_druid_has_them() -> None:
    s = load()
    assert s.discovery.type == "metadata"
    assert (s.k8s.lease_duration, s.k8s.renew_deadline, s.k8s.retry_period) == (60.0, 17.0, 5.0)
    assert s.k8s.pod_name_env_key == "POD_NAME"
    assert s.k8s.pod_namespace_env_key == "POD_NAMESPACE"
    assert s.worker.capacity == max(1, available_processors() - 1)
    assert s.server.tier == "_default_tier"
    assert s.properties == {}


def test_worker_capacity_default_is_druids_processors_minus_one() -> None:
    assert [default_worker_capacity(n) for n in (1, 2, 3, 8)] == [1, 1, 2, 7]
    # A container's CPU limit counts, as Java's availableProcessors does (cgroup v2 cpu.max).
    assert cgroup_cpu_limit("max 100000") is None
    assert cgroup_cpu_limit("200000 100000") == 2
    assert cgroup_cpu_limit("150000 100000") == 2
    assert cgroup_cpu_limit("50000 100000") == 1
    assert cgroup_cpu_limit(None) is None and cgroup_cpu_limit("garbage") is None


def test_explicit_port_overrides_role_default() -> None:
    s = load("coordinator", properties={"druid.plaintextPort": "18081", "druid.host": "c1"})
    assert s.host_and_port == "c1:18081"


# ---------------------------------------------------------------------------------------------
# cross-field rules


def test_k8s_requires_cluster_identifier() -> None:
    msg = config_error(properties={"druid.discovery.type": "k8s"})
    assert "druid.discovery.k8s.clusterIdentifier" in msg


@pytest.mark.parametrize("cid", ["Bad_Id", "-lead", "trail-", "UPPER", "a.b", "x"])
def test_k8s_cluster_identifier_is_validated(cid: str) -> None:
    msg = config_error(
        properties={"druid.discovery.type": "k8s", "druid.discovery.k8s.clusterIdentifier": cid}
    )
    assert "druid.discovery.k8s.clusterIdentifier" in msg
    assert repr(cid) in msg


@pytest.mark.parametrize("cid", ["druid", "prod-cluster-1", "a1", "00"])
def test_k8s_cluster_identifier_accepted(cid: str) -> None:
    s = load(
        properties={"druid.discovery.type": "k8s", "druid.discovery.k8s.clusterIdentifier": cid}
    )
    assert s.k8s.cluster_identifier == cid


@pytest.mark.parametrize(
    ("prefix", "lease", "renew", "retry"),
    [
        ("druid.discovery.k8s.", "PT10S", "PT10S", "PT1S"),
        ("druid.discovery.k8s.", "PT10S", "PT20S", "PT1S"),
        ("druid.discovery.k8s.", "PT10S", "PT5S", "PT5S"),
        ("druid.discovery.k8s.", "PT10S", "PT5S", "0"),
        ("druid.discovery.metadata.", "PT3S", "PT4S", "PT1S"),
    ],
)
def test_lease_renew_retry_order_enforced(prefix: str, lease: str, renew: str, retry: str) -> None:
    msg = config_error(
        properties={
            prefix + "leaseDuration": lease,
            prefix + "renewDeadline": renew,
            prefix + "retryPeriod": retry,
        }
    )
    assert prefix + "leaseDuration" in msg


def test_s3_deep_storage_needs_bucket() -> None:
    msg = config_error(properties={"druid.storage.type": "s3"})
    assert "druid.storage.bucket" in msg
    s = load(properties={"druid.storage.type": "s3", "druid.storage.bucket": "segs"})
    assert s.storage.bucket == "segs"


# ---------------------------------------------------------------------------------------------
# hidden properties


def test_visible_properties_hides_secrets() -> None:
    s = load(
        properties={
            "druid.host": "h",
            "druid.metadata.storage.connector.password": "hunter2",
            "druid.metadata.storage.connector.user": "druid",
            "druid.s3.secretKey": "s3cret",
            "druid.s3.accessKey": "AKIA",
        }
    )
    visible = s.visible_properties()
    assert visible == {"druid.host": "h", "druid.metadata.storage.connector.user": "druid"}
    assert "hunter2" not in repr(visible)


def test_visible_properties_hides_env_supplied_secret() -> None:
    s = load(environ={"DRUID_METADATA_STORAGE_CONNECTOR_PASSWORD": "pw"})
    assert s.metadata.password == "pw"
    assert "druid.metadata.storage.connector.password" not in s.visible_properties()


def test_hidden_properties_match_case_insensitively() -> None:
    s = load(
        properties={
            "druid.server.hiddenProperties": '["S3.SECRETKEY", "STORAGEDIRECTORY"]',
            "druid.s3.secretKey": "s3cret",
            "druid.storage.storageDirectory": "/segments",
            "druid.metadata.storage.connector.password": "pw",
            "druid.host": "h",
        }
    )
    visible = s.visible_properties()
    assert "druid.s3.secretKey" not in visible
    assert "druid.storage.storageDirectory" not in visible
    # The configured list replaces the default one, as in Druid.
    assert visible["druid.metadata.storage.connector.password"] == "pw"
    assert visible["druid.host"] == "h"


def test_with_overrides_validates_and_keeps_existing() -> None:
    s = load(properties={"druid.host": "h"})
    t = s.with_overrides({"druid.plaintextPort": 1234})
    assert t.host_and_port == "h:1234"
    with pytest.raises(ConfigError, match=r"druid\.bogus"):
        s.with_overrides({"druid.bogus": "1"})
