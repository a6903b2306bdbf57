"""Shared helpers of the deployment tests: rendered manifests, containers, their settings."""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.auth.config import owns as owns_security_key
from common.config import KNOWN_KEYS, ROLES, Settings, load_settings
from tests.deploy.kustomize import Resource, pod_spec, render

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "k8s" / "base"
KIND = ROOT / "k8s" / "overlays" / "kind"
SECURE = ROOT / "k8s" / "overlays" / "secure"
OVERLAYS = {"base": BASE, "kind": KIND, "secure": SECURE}

#: Secrets the base expects the cluster to provide, with the keys it reads (docs/deploy.md).
EXTERNAL_SECRETS = {
    "kdruid-credentials": {
        "druid_metadata_storage_connector_password",
        "druid_s3_accessKey",
        "druid_s3_secretKey",
    }
}

#: Values the Downward API would give, for resolving a container's environment offline.
FIELD_VALUES = {"metadata.name": "kdruid-pod-0", "status.podIP": "10.244.0.7"}

#: Environment-variable name of every settings key, in both accepted spellings.
SETTING_ENV_NAMES = {k.upper().replace(".", "_") for k in KNOWN_KEYS} | {
    k.replace(".", "_") for k in KNOWN_KEYS
}


def is_setting_env(name: str) -> bool:
    """A settings key in environment form: a fixed key, or a security key (``druid_auth_*``,
    ``druid_escalator_*``, TLS), whose names include the operator's authenticator names."""
    return name in SETTING_ENV_NAMES or (
        name.startswith("druid_") and owns_security_key(name.replace("_", "."))
    )


@functools.cache
def rendered(name: str) -> tuple[Resource, ...]:
    return tuple(render(OVERLAYS[name]))


def by_kind(resources: tuple[Resource, ...], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def find(resources: tuple[Resource, ...], kind: str, name: str) -> Resource | None:
    return next((r for r in by_kind(resources, kind) if r["metadata"]["name"] == name), None)


def workloads(resources: tuple[Resource, ...]) -> list[Resource]:
    return [r for r in resources if pod_spec(r) is not None]


def kdruid_role_containers(
    resources: tuple[Resource, ...],
) -> Iterator[tuple[Resource, dict[str, Any], str]]:
    """(workload, container, role) for every container that runs ``kdruid <role>``."""
    for res in workloads(resources):
        spec = pod_spec(res)
        assert spec is not None
        for c in spec["containers"]:
            args = c.get("args") or []
            if "command" not in c and args and args[0] in ROLES:
                yield res, c, args[0]


def secret_data(secret: Resource) -> dict[str, str]:
    data = dict(secret.get("stringData", {}))
    for k, v in secret.get("data", {}).items():
        data[k] = base64.b64decode(v).decode()
    return data


def container_environ(
    resources: tuple[Resource, ...], container: dict[str, Any], namespace: str
) -> dict[str, str]:
    """The environment Kubernetes would give ``container`` (envFrom first, then env wins)."""
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            cm = find(resources, "ConfigMap", src["configMapRef"]["name"])
            assert cm is not None, f"ConfigMap {src['configMapRef']['name']} is not rendered"
            env.update(cm.get("data", {}))
        elif "secretRef" in src:
            name = src["secretRef"]["name"]
            secret = find(resources, "Secret", name)
            if secret is not None:
                env.update(secret_data(secret))
            else:
                assert name in EXTERNAL_SECRETS, f"Secret {name} is neither rendered nor documented"
                env.update({k: "external-secret" for k in EXTERNAL_SECRETS[name]})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "fieldRef" in ref:
            path = ref["fieldRef"]["fieldPath"]
            env[item["name"]] = namespace if path == "metadata.namespace" else FIELD_VALUES[path]
        elif "secretKeyRef" in ref:
            secret = find(resources, "Secret", ref["secretKeyRef"]["name"])
            key = ref["secretKeyRef"]["key"]
            env[item["name"]] = secret_data(secret)[key] if secret else "external-secret"
        elif "configMapKeyRef" in ref:
            cm = find(resources, "ConfigMap", ref["configMapKeyRef"]["name"])
            assert cm is not None
            env[item["name"]] = cm["data"][ref["configMapKeyRef"]["key"]]
    return env


def container_settings(
    resources: tuple[Resource, ...], workload: Resource, container: dict[str, Any], role: str
) -> Settings:
    env = container_environ(resources, container, workload["metadata"]["namespace"])
    return load_settings(role, environ=env)


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's target port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    raise AssertionError(f"container {container['name']} has no port named {port!r}")


def parse_quantity(text: str) -> int:
    """A Kubernetes storage quantity (``12Gi``, ``500M``) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6}
    units |= {"G": 10**9, "T": 10**12}
    for unit, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)
