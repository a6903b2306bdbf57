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
    assert set(services) == {"postgres", "kafka", "sample-feed", *KDRUID_SERVICES}
    assert sorted(set(KDRUID_SERVICES.values())) == sorted(ROLES)
    # Public images by default; scripts/container-smoke names local stand-ins instead.
    assert services["postgres"]["image"] == "postgres:16-alpine"
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    text = COMPOSE.read_text()
    assert "${KDRUID_POSTGRES_IMAGE:-postgres:16-alpine}" in text
    assert "${KDRUID_KAFKA_IMAGE:-apache/kafka:3.9.1}" in text


def test_the_image_is_built_once_and_never_pulled() -> None:
    services = compose_config()["services"]
    built = {name for name, service in services.items() if "build" in service}
    assert built == {"coordinator"}
    build = services["coordinator"]["build"]
    assert Path(build["context"]).resolve() == ROOT
    assert build["dockerfile"] == "docker/Dockerfile"
    for name in [*KDRUID_SERVICES, "sample-feed"]:
        assert services[name]["image"] == "kdruid:dev", name
        assert services[name]["pull_policy"] == ("build" if name in built else "never"), name


@pytest.mark.parametrize("name", sorted(KDRUID_SERVICES))
def test_kdruid_service_runs_the_image_with_its_healthcheck(name: str) -> None:
    service = compose_config()["services"][name]
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


def test_sample_feed_reaches_the_overlord_and_kafka_by_service_name() -> None:
    services = compose_config()["services"]
    feed = services["sample-feed"]
    assert feed["entrypoint"] == ["python", "-m", "services.sample_feed"]
    args = feed["command"]
    overlord = args[args.index("--overlord") + 1]
    kafka = args[args.index("--kafka") + 1]
    port = settings_of("overlord").node.plaintext_port
    assert overlord == f"http://overlord:{port}"
    assert kafka == "kafka:9092"
    assert services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].startswith(
        f"PLAINTEXT://{kafka}"
    )
    assert set(feed["depends_on"]) == {"kafka", "overlord"}
    # Not a kdruid server (no /status/health): the image's HEALTHCHECK is switched off.
    assert feed["healthcheck"] == {"test": ["NONE"]}
