"""k8s/: both kustomizations render (Python renderer, and kubectl where installed) to manifests
that pass kubernetes-validate --strict."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.kustomize import KustomizeError, image_name, key_of, render, strategic_merge
from tests.deploy.manifests import OVERLAYS, ROOT, rendered
from tests.deploy.tools import kubectl_too_old

# The oldest Kubernetes minor still maintained upstream when this was written, and the newest
# the installed kubernetes-validate knows.
VERSIONS = sorted({"1.31.0", kubernetes_validate.latest_version()})


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_manifest_is_valid_strictly(overlay: str, version: str) -> None:
    resources = rendered(overlay)
    assert resources
    for res in resources:
        try:
            kubernetes_validate.validate(res, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {key_of(res)} invalid for Kubernetes {version}: {exc}")


def test_base_renders_the_expected_objects() -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for r in rendered("base")}
    assert kinds == {
        ("Namespace", "kdruid"),
        ("ServiceAccount", "kdruid"),
        ("Role", "kdruid"),
        ("RoleBinding", "kdruid"),
        ("ConfigMap", "kdruid-common"),
        ("Deployment", "kdruid-coordinator"),
        ("Deployment", "kdruid-overlord"),
        ("Deployment", "kdruid-broker"),
        ("Deployment", "kdruid-peon"),
        ("StatefulSet", "kdruid-historical"),
        ("Service", "kdruid-coordinator"),
        ("Service", "kdruid-overlord"),
        ("Service", "kdruid-broker"),
        ("Service", "kdruid-historical"),
        ("PodDisruptionBudget", "kdruid-coordinator"),
        ("PodDisruptionBudget", "kdruid-overlord"),
        ("PodDisruptionBudget", "kdruid-historical"),
    }
    assert all(
        r["metadata"].get("namespace") == "kdruid"
        for r in rendered("base")
        if r["kind"] != "Namespace"
    )


def test_kind_overlay_adds_its_dependencies_and_the_local_image() -> None:
    base = {key_of(r) for r in rendered("base")}
    kind = {key_of(r) for r in rendered("kind")}
    assert base < kind
    assert {(k, n) for k, _, n in kind - base} == {
        ("Secret", "kdruid-credentials"),
        ("Deployment", "postgres"),
        ("Service", "postgres"),
        ("PersistentVolumeClaim", "postgres-data"),
        ("Deployment", "minio"),
        ("Service", "minio"),
        ("PersistentVolumeClaim", "minio-data"),
        ("Job", "minio-create-bucket"),
        ("Deployment", "kafka"),
        ("Service", "kafka"),
        ("Deployment", "sample-feed"),
    }
    images = {
        c["image"]
        for r in rendered("kind")
        if r["kind"] in ("Deployment", "StatefulSet", "Job")
        for c in r["spec"]["template"]["spec"]["containers"]
    }
    assert "kdruid:dev" in images
    assert not any(image_name(i) == "kdruid" and i != "kdruid:dev" for i in images)
    for r in rendered("kind"):
        if r["kind"] in ("Deployment", "StatefulSet", "Job"):
            for c in r["spec"]["template"]["spec"]["containers"]:
                # Loaded with `kind load docker-image`: never pulled from a registry.
                assert c["imagePullPolicy"] == "IfNotPresent", (key_of(r), c["name"])


def _normalise(resources: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    return {key_of(r): r for r in resources}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_renderer_matches_kubectl_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the Python renderer stands alone")
    if (too_old := kubectl_too_old(kubectl)) is not None:
        pytest.skip(too_old)
    out = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS[overlay])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    theirs = _normalise([d for d in yaml.safe_load_all(out.stdout) if d])
    ours = _normalise(list(rendered(overlay)))
    assert ours == theirs


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Any) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="commonLabels"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(KustomizeError, match="does not exist"):
        render(tmp_path)


def test_strategic_merge_merges_named_lists_and_deletes_nulls() -> None:
    base = {
        "containers": [{"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]}],
        "keep": 1,
        "drop": 2,
    }
    patch = {
        "containers": [{"name": "a", "env": [{"name": "L", "value": "2"}]}, {"name": "b"}],
        "drop": None,
    }
    assert strategic_merge(base, patch) == {
        "containers": [
            {"name": "b"},
            {
                "name": "a",
                "image": "x",
                "env": [{"name": "L", "value": "2"}, {"name": "K", "value": "1"}],
            },
        ],
        "keep": 1,
    }


def test_image_name_strips_tag_and_digest_but_not_a_registry_port() -> None:
    assert image_name("kdruid") == "kdruid"
    assert image_name("kdruid:dev") == "kdruid"
    assert image_name("registry:5000/kdruid:1.0") == "registry:5000/kdruid"
    assert image_name("registry:5000/kdruid") == "registry:5000/kdruid"
    assert image_name("kdruid@sha256:abc") == "kdruid"


def test_kind_config_names_the_cluster_kind_up_uses() -> None:
    cfg = yaml.safe_load((ROOT / "k8s" / "kind-config.yaml").read_text())
    assert cfg["kind"] == "Cluster"
    assert cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert cfg["nodes"] and all(n["role"] in ("control-plane", "worker") for n in cfg["nodes"])
    script = (ROOT / "scripts" / "kind-up").read_text()
    assert f'CLUSTER="${{KDRUID_KIND_CLUSTER:-{cfg["name"]}}}"' in script
