"""docker/docker-compose.yml: `docker-compose config` accepts it; the services of the issue are
there; every kdruid container's settings load; volumes and dependencies make sense."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import ROLES, Settings, load_settings, read_properties
from common.metadata.uri import parse_connect_uri
from tests.deploy.manifests import ROOT, SETTING_ENV_NAMES
from tests.deploy.tools import docker_compose

COMPOSE = ROOT / "docker" / "docker-compose.yml"
KDRUID_SERVICES = {
    "coordinator": "coordinator",
    "overlord": "overlord",
    "broker": "broker",
    "historical-1": "historical",
    "historical-2": "historical",
    "peon": "peon",
}


@functools.cache
def compose_config() -> dict[str, Any]:
    exe = docker_compose()
    out = subprocess.run(
        [exe, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)  # type: ignore[no-any-return]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> source (a named volume or a host path), from either syntax."""
    result = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v["source"], v["target"]
        result[target] = source
    return result


def settings_of(name: str) -> Settings:
    service = compose_config()["services"][name]
    command = service["command"]
    assert command[0] == KDRUID_SERVICES[name] and command[1] == "--config"
    host_file = mounts(service)[command[2]]
    env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
    typos = [n for n in env if n.lower().startswith("druid_") and n not in SETTING_ENV_NAMES]
    assert not typos, (name, typos)
    return load_settings(command[0], config_path=host_file, environ=env)


def test_compose_config_passes_and_has_the_issue_services() -> None:
    services = compose_config()["services"]
    assert set(services) == {"postgres", "kafka", *KDRUID_SERVICES}
    assert sorted(set(KDRUID_SERVICES.values())) == sorted(ROLES)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["kafka"]["image"].startswith("apache/kafka:")


@pytest.mark.parametrize("name", sorted(KDRUID_SERVICES))
def test_kdruid_service_is_built_from_the_repository(name: str) -> None:
    service = compose_config()["services"][name]
    assert Path(service["build"]["context"]).resolve() == ROOT
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert service["image"] == "kdruid:dev"
    assert service["healthcheck"]["test"] == ["CMD", "python", "/opt/kdruid/healthcheck.py"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", sorted(KDRUID_SERVICES))
def test_kdruid_settings_load_with_metadata_discovery_on_postgresql(name: str) -> None:
    s = settings_of(name)
    assert s.discovery.type == "metadata"
    assert s.metadata.type == "postgresql"
    target = parse_connect_uri("postgresql", s.metadata.connect_uri, s.metadata.user)
    services = compose_config()["services"]
    assert target.url.host in services
    pg_env = services[target.url.host]["environment"]
    assert pg_env["POSTGRES_USER"] == s.metadata.user
    assert pg_env["POSTGRES_PASSWORD"] == s.metadata.password
    assert pg_env["POSTGRES_DB"] == target.url.database
    # Other containers reach this one by its service name.
    assert s.node.host == name


def test_deep_storage_is_one_shared_volume_and_caches_are_separate() -> None:
    services = compose_config()["services"]
    deep = {}
    for name in KDRUID_SERVICES:
        s = settings_of(name)
        assert s.storage.type == "local"
        deep[name] = mounts(services[name]).get(s.storage.storage_directory)
    assert set(deep.values()) == {"deep-storage"}
    assert "deep-storage" in compose_config()["volumes"]
    caches = []
    for name in ("historical-1", "historical-2"):
        (location,) = settings_of(name).segment_cache.locations
        caches.append(mounts(services[name])[location.path])
    assert len(set(caches)) == 2 and all(c in compose_config()["volumes"] for c in caches)
    peon = settings_of("peon")
    assert peon.indexer_task.base_task_dir in mounts(services["peon"])


def test_dependencies_have_healthchecks() -> None:
    services = compose_config()["services"]
    for name, service in services.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert cond["condition"] == "service_healthy", (name, dep)
            assert "healthcheck" in services[dep], dep
    for name in ("overlord", "peon"):  # the roles that talk to Kafka
        assert "kafka" in services[name]["depends_on"]


def test_runtime_properties_holds_only_known_keys() -> None:
    props = read_properties(ROOT / "docker" / "runtime.properties")
    for role in ROLES:
        load_settings(role, properties=props, environ={})
    assert yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"
    ].startswith("PLAINTEXT://kafka:9092")
