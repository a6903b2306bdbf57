"""k8s/base/rbac.yaml: valid against the Kubernetes schemas (strict) and least privilege."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

RBAC = Path(__file__).resolve().parents[2] / "k8s" / "base" / "rbac.yaml"


def docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def test_rbac_is_valid_kubernetes_strictly() -> None:
    version = kubernetes_validate.latest_version()
    for doc in docs():
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError


def test_rbac_grants_exactly_what_the_k8s_backend_calls() -> None:
    by_kind = {d["kind"]: d for d in docs()}
    assert set(by_kind) == {"ServiceAccount", "Role", "RoleBinding"}
    granted = {
        (group, resource, verb)
        for rule in by_kind["Role"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods", "patch"),
        ("", "configmaps", "get"),
        ("", "configmaps", "create"),
        ("", "configmaps", "update"),
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
    }
    binding = by_kind["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": by_kind["Role"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": by_kind["ServiceAccount"]["metadata"]["name"]}
    ]
    assert by_kind["ServiceAccount"]["metadata"]["name"] == "kdruid"
