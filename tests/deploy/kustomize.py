"""A small, exact renderer for the subset of kustomize that k8s/ uses (no kubectl needed in CI).

Supported kustomization keys: ``resources`` (files and directories), ``namespace``, ``images``
and ``patches`` given by ``path`` (strategic merge patches addressed by the patch's own kind and
name). Anything else is refused, so a kustomization that grows past this subset fails the tests
loudly instead of being rendered wrong. ``test_kustomize_matches_kubectl`` compares the output
with ``kubectl kustomize`` wherever kubectl is installed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
}

# Lists that a strategic merge patch merges item by item, and the key that identifies an item.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not implement, or is inconsistent."""


def load_yaml_docs(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def key_of(res: Resource) -> tuple[str, str, str]:
    meta = res.get("metadata", {})
    return (res["kind"], meta.get("namespace", ""), meta["name"])


def render(directory: Path) -> list[Resource]:
    """The resources ``kubectl kustomize <directory>`` would output (in file order)."""
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported keys {sorted(unknown)}")

    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(render(target))
        elif target.is_file():
            resources.extend(load_yaml_docs(target))
        else:
            raise KustomizeError(f"{kfile}: resource {entry!r} does not exist")
    seen: set[tuple[str, str, str]] = set()
    for res in resources:
        k = key_of(res)
        if k in seen:
            raise KustomizeError(f"{kfile}: {k} defined twice")
        seen.add(k)

    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{kfile}: only patches given by 'path' are supported")
        for patch in load_yaml_docs(directory / patch_entry["path"]):
            _apply_patch(resources, patch, kfile)

    for image in spec.get("images", []):
        _set_image(resources, image, kfile)

    namespace = spec.get("namespace")
    if namespace:
        for res in resources:
            _set_namespace(res, namespace)
    return resources


def _apply_patch(resources: list[Resource], patch: Resource, kfile: Path) -> None:
    name = patch.get("metadata", {}).get("name")
    targets = [r for r in resources if r["kind"] == patch["kind"] and r["metadata"]["name"] == name]
    if len(targets) != 1:
        raise KustomizeError(f"{kfile}: patch {patch['kind']}/{name} matches {len(targets)}")
    merged = strategic_merge(targets[0], patch)
    targets[0].clear()
    targets[0].update(merged)


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Strategic merge of ``patch`` into ``base`` for the list kinds in ``MERGE_KEYS``."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = strategic_merge(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        # Items matched by key merge in place; new items go first, in the patch's order, as
        # ``kubectl kustomize`` (kyaml) orders them.
        mkey = MERGE_KEYS[field]
        out_list = copy.deepcopy(base)
        new: list[Any] = []
        for item in patch:
            idx = next((i for i, b in enumerate(out_list) if b.get(mkey) == item.get(mkey)), None)
            if idx is None:
                new.append(copy.deepcopy(item))
            else:
                out_list[idx] = strategic_merge(out_list[idx], item)
        return new + out_list
    return copy.deepcopy(patch)


def pod_spec(res: Resource) -> dict[str, Any] | None:
    """The pod spec inside a workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod)."""
    kind = res["kind"]
    if kind == "Pod":
        return res["spec"]  # type: ignore[no-any-return]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return res["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if kind == "CronJob":
        return res["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def image_name(image: str) -> str:
    """``repo/name:tag`` or ``name@sha256:...`` -> the name without tag or digest."""
    if "@" in image:
        return image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        return image[: len(image) - len(last)] + last.split(":", 1)[0]
    return image


def _set_image(resources: list[Resource], image: dict[str, str], kfile: Path) -> None:
    if not set(image) <= {"name", "newName", "newTag", "digest"} or "name" not in image:
        raise KustomizeError(f"{kfile}: unsupported images entry {image}")
    for res in resources:
        spec = pod_spec(res)
        if spec is None:
            continue
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            if image_name(c["image"]) != image["name"]:
                continue
            new = image.get("newName", image["name"])
            if "digest" in image:
                c["image"] = f"{new}@{image['digest']}"
            elif "newTag" in image:
                c["image"] = f"{new}:{image['newTag']}"
            else:
                old = c["image"]
                c["image"] = new + old[len(image_name(old)) :]


def _set_namespace(res: Resource, namespace: str) -> None:
    if res["kind"] not in CLUSTER_SCOPED:
        res.setdefault("metadata", {})["namespace"] = namespace
    if res["kind"] in ("RoleBinding", "ClusterRoleBinding"):
        for subject in res.get("subjects", []):
            if subject.get("kind") == "ServiceAccount" and not subject.get("namespace"):
                subject["namespace"] = namespace
