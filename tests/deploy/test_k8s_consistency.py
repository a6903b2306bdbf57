"""k8s/: labels, selectors, ports, probes, ServiceAccount, ConfigMap/Secret references and the
settings every kdruid container starts with agree across the rendered resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.config import ROLES, load_settings
from common.metadata.uri import parse_connect_uri
from services.cli import app_factory
from tests.deploy.kustomize import Resource, key_of, pod_spec
from tests.deploy.manifests import (
    EXTERNAL_SECRETS,
    OVERLAYS,
    by_kind,
    container_environ,
    container_port,
    container_settings,
    find,
    is_setting_env,
    kdruid_role_containers,
    parse_quantity,
    rendered,
    secret_data,
    workloads,
)

OVERLAY_NAMES = sorted(OVERLAYS)

READINESS = {
    "coordinator": "/status/selfDiscovered",
    "overlord": "/status/selfDiscovered",
    "broker": "/druid/broker/v1/readiness",  # its segment view is initialized
    "historical": "/druid/historical/v1/readiness",
    "peon": "/status/selfDiscovered",
}


def template_labels(res: Resource) -> dict[str, str]:
    return dict(res["spec"]["template"]["metadata"].get("labels", {}))


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_role_runs_in_exactly_one_workload(overlay: str) -> None:
    roles = [role for _, _, role in kdruid_role_containers(rendered(overlay))]
    assert sorted(roles) == sorted(ROLES)
    kinds = {role: w["kind"] for w, _, role in kdruid_role_containers(rendered(overlay))}
    assert kinds["historical"] == "StatefulSet"
    replicas = {
        role: w["spec"]["replicas"] for w, _, role in kdruid_role_containers(rendered(overlay))
    }
    assert replicas["coordinator"] >= 2 and replicas["overlord"] >= 2  # a standby leader each


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_workload_selectors_match_their_own_template_only(overlay: str) -> None:
    all_workloads = workloads(rendered(overlay))
    for w in all_workloads:
        if w["kind"] == "Job":
            continue
        selector = w["spec"]["selector"]["matchLabels"]
        matched = [key_of(o) for o in all_workloads if selects(selector, template_labels(o))]
        assert matched == [key_of(w)], (key_of(w), matched)


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_service_selects_exactly_its_workload_on_the_right_port(overlay: str) -> None:
    resources = rendered(overlay)
    for svc in by_kind(resources, "Service"):
        selector = svc["spec"]["selector"]
        matched = [w for w in workloads(resources) if selects(selector, template_labels(w))]
        assert len(matched) == 1, (svc["metadata"]["name"], [key_of(m) for m in matched])
        workload = matched[0]
        spec = pod_spec(workload)
        assert spec is not None
        component = selector.get("app.kubernetes.io/component")
        if component is not None:
            assert workload["metadata"]["name"] == svc["metadata"]["name"]
            assert template_labels(workload)["app.kubernetes.io/component"] == component
        container_ports = {
            int(p["containerPort"]) for c in spec["containers"] for p in c.get("ports", [])
        }
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            resolved = {
                container_port(c, target)
                for c in spec["containers"]
                if isinstance(target, int) or any(p.get("name") == target for p in c["ports"])
            }
            assert len(resolved) == 1 and resolved <= container_ports, (svc["metadata"], port)


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_kdruid_ports_and_probes_agree_with_the_settings(overlay: str) -> None:
    resources = rendered(overlay)
    for w, c, role in kdruid_role_containers(resources):
        settings = container_settings(resources, w, c, role)
        port = settings.tls_port if settings.tls else settings.node.plaintext_port
        assert [p["containerPort"] for p in c["ports"]] == [port], role
        scheme = "HTTPS" if settings.tls else "HTTP"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = c[probe]["httpGet"]
            assert container_port(c, get["port"]) == port, (role, probe)
            assert get.get("scheme", "HTTP") == scheme, (role, probe)
        assert c["livenessProbe"]["httpGet"]["path"] == "/status/health"
        assert c["startupProbe"]["httpGet"]["path"] == "/status/health"
        assert c["readinessProbe"]["httpGet"]["path"] == READINESS[role]
        svc = find(resources, "Service", w["metadata"]["name"])
        if svc is not None:
            assert [p["port"] for p in svc["spec"]["ports"]] == [port], role
        # A pod counts as discovered only once Ready would deadlock a selfDiscovered readiness.
        if settings.k8s.require_ready:
            assert READINESS[role] != "/status/selfDiscovered", role


def test_every_probe_path_is_served_by_the_role() -> None:
    for w, c, role in kdruid_role_containers(rendered("kind")):
        settings = container_settings(rendered("kind"), w, c, role)
        paths = app_factory(role)(settings).openapi()["paths"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = c[probe]["httpGet"]["path"]
            assert "get" in paths.get(path, {}), f"{role} does not serve GET {path}"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_kdruid_pods_use_the_bound_service_account(overlay: str) -> None:
    resources = rendered(overlay)
    (binding,) = by_kind(resources, "RoleBinding")
    (role,) = by_kind(resources, "Role")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    bound = {(s["name"], s["namespace"]) for s in binding["subjects"]}
    for w, _, name in kdruid_role_containers(resources):
        spec = pod_spec(w)
        assert spec is not None
        account = spec.get("serviceAccountName")
        assert account == "kdruid", name
        assert find(resources, "ServiceAccount", account) is not None
        assert (account, w["metadata"]["namespace"]) in bound


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_pod_identity_comes_from_the_downward_api(overlay: str) -> None:
    resources = rendered(overlay)
    for w, c, role in kdruid_role_containers(resources):
        settings = container_settings(resources, w, c, role)
        refs = {
            e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
            for e in c["env"]
            if "fieldRef" in e.get("valueFrom", {})
        }
        assert refs[settings.k8s.pod_name_env_key] == "metadata.name", role
        assert refs[settings.k8s.pod_namespace_env_key] == "metadata.namespace", role
        assert refs["DRUID_HOST"] == "status.podIP", role
        assert settings.node.host == "10.244.0.7"  # the pod IP reached druid.host
        spec = pod_spec(w)
        assert spec is not None and spec["enableServiceLinks"] is False


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_config_map_and_secret_references_resolve(overlay: str) -> None:
    resources = rendered(overlay)
    config_map = find(resources, "ConfigMap", "kdruid-common")
    assert config_map is not None
    for w in workloads(resources):
        spec = pod_spec(w)
        assert spec is not None
        for c in spec["containers"]:
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert find(resources, "ConfigMap", src["configMapRef"]["name"]), key_of(w)
                if "secretRef" in src:
                    name = src["secretRef"]["name"]
                    assert find(resources, "Secret", name) or (
                        overlay == "base" and name in EXTERNAL_SECRETS
                    ), (key_of(w), name)
            for item in c.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = find(resources, "Secret", ref["name"])
                    assert secret is not None and ref["key"] in secret_data(secret), key_of(w)
    for _, c, role in kdruid_role_containers(resources):
        names = [s.get("configMapRef", {}).get("name") for s in c["envFrom"]]
        assert "kdruid-common" in names, role


def test_the_kind_secret_has_the_keys_the_base_documents() -> None:
    for name, keys in EXTERNAL_SECRETS.items():
        secret = find(rendered("kind"), "Secret", name)
        assert secret is not None and set(secret_data(secret)) == keys


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_setting_in_the_manifests_is_a_known_key_and_accepted(overlay: str) -> None:
    resources = rendered(overlay)
    cm = find(resources, "ConfigMap", "kdruid-common")
    assert cm is not None
    unknown = sorted(k for k in cm["data"] if not is_setting_env(k))
    assert not unknown, f"not kdruid settings: {unknown}"
    for w, c, role in kdruid_role_containers(resources):
        env = container_environ(resources, c, w["metadata"]["namespace"])
        # Unknown upper-case DRUID_* names are ignored at start-up: a typo would go unnoticed.
        typos = [n for n in env if n.lower().startswith("druid_") and not is_setting_env(n)]
        assert not typos, (role, typos)
        settings = load_settings(role, environ=env)
        assert settings.discovery.type == "k8s"
        assert settings.k8s.cluster_identifier == "kdruid"
        assert settings.serverview.type == "http"
        assert settings.indexer_runner.type == "httpRemote"
        assert settings.zk.enabled is False
        assert settings.metadata.type == "postgresql"
        assert settings.metadata.password is not None
        parse_connect_uri("postgresql", settings.metadata.connect_uri)
        assert settings.storage.type == "s3" and settings.storage.bucket


def test_kind_settings_point_at_the_services_of_the_overlay() -> None:
    resources = rendered("kind")
    for w, c, role in kdruid_role_containers(resources):
        s = container_settings(resources, w, c, role)
        target = parse_connect_uri("postgresql", s.metadata.connect_uri, s.metadata.user)
        pg = find(resources, "Service", target.url.host or "")
        assert pg is not None and target.url.port in [p["port"] for p in pg["spec"]["ports"]]
        assert s.s3.endpoint_url == "http://minio:9000" and s.s3.enable_path_style_access
        minio = find(resources, "Service", "minio")
        assert minio is not None and [p["port"] for p in minio["spec"]["ports"]] == [9000]
        secret = secret_data(find(resources, "Secret", "kdruid-credentials") or {})
        assert s.s3.access_key == secret["druid_s3_accessKey"]
        assert s.metadata.password == secret["druid_metadata_storage_connector_password"]
    postgres = find(resources, "Deployment", "postgres")
    assert postgres is not None
    pg_env = {e["name"]: e for e in postgres["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert pg_env["POSTGRES_USER"]["value"] == "druid" == s.metadata.user
    assert pg_env["POSTGRES_DB"]["value"] == target.url.database


def _mounts(container: dict[str, Any]) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_volumes_back_the_data_directories(overlay: str) -> None:
    resources = rendered(overlay)
    for w, c, role in kdruid_role_containers(resources):
        spec = pod_spec(w)
        assert spec is not None
        claims = {t["metadata"]["name"]: t for t in w["spec"].get("volumeClaimTemplates", [])}
        declared = {v["name"] for v in spec.get("volumes", [])} | set(claims)
        mounts = _mounts(c)
        assert set(mounts.values()) <= declared, role
        assert "/tmp" in mounts  # the root file system is read-only
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        s = container_settings(resources, w, c, role)
        if role == "historical":
            (location,) = s.segment_cache.locations
            volume = mounts[location.path]
            assert volume in claims, "the segment cache must outlive the pod"
            size = parse_quantity(claims[volume]["spec"]["resources"]["requests"]["storage"])
            assert 0 < location.max_size <= size
        if role == "peon":
            assert s.indexer_task.base_task_dir in mounts


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_resources_are_bounded_and_pods_run_as_non_root(overlay: str) -> None:
    resources = rendered(overlay)
    for w, c, role in kdruid_role_containers(resources):
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), role
        assert "memory" in c["resources"]["limits"], role
        spec = pod_spec(w)
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_disruption_budgets_cover_the_historicals(overlay: str) -> None:
    resources = rendered(overlay)
    budgets = by_kind(resources, "PodDisruptionBudget")
    covered = {}
    for pdb in budgets:
        matched = [
            w
            for w in workloads(resources)
            if selects(pdb["spec"]["selector"]["matchLabels"], template_labels(w))
        ]
        assert len(matched) == 1, pdb["metadata"]["name"]
        covered[matched[0]["metadata"]["name"]] = pdb["spec"]
    assert covered["kdruid-historical"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": template_labels(
                find(resources, "StatefulSet", "kdruid-historical") or {}
            )
        },
    }


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_statefulset_uses_its_headless_service(overlay: str) -> None:
    resources = rendered(overlay)
    for sts in by_kind(resources, "StatefulSet"):
        svc = find(resources, "Service", sts["spec"]["serviceName"])
        assert svc is not None and svc["spec"].get("clusterIP") == "None"
        assert selects(svc["spec"]["selector"], template_labels(sts))


def test_secure_overlay_turns_on_basic_security_and_tls_from_secrets() -> None:
    resources = rendered("secure")
    for w, c, role in kdruid_role_containers(resources):
        s = container_settings(resources, w, c, role)
        sec = s.security
        assert sec.enabled and sec.authenticator_chain == ["basic"], role
        assert sec.authenticators["basic"].initial_admin_password is not None
        assert sec.escalator.type == "basic" and sec.escalator.internal_client_password is not None
        assert (
            s.tls
            and not sec.tls.enable_plaintext_port
            and s.tls_port == c["ports"][0]["containerPort"]
        )
        mounts = _mounts(c)
        volumes = {v["name"]: v for v in (pod_spec(w) or {})["volumes"]}
        for path in (sec.tls.cert_path, sec.tls.key_path, sec.tls.client_ca_path):
            assert path is not None
            mount = mounts[str(Path(path).parent)]
            assert volumes[mount]["secret"]["secretName"] == "kdruid-tls", (role, path)
        # the passwords are not in the ConfigMap
        cm = find(resources, "ConfigMap", "kdruid-common")
        assert cm is not None and not [k for k in cm["data"] if "Password" in k]
