"""The command-line tools the deployment tests use, and what to do when one is missing or old.

A local run (no ``CI``) skips a test whose tool is missing and cannot be installed, saying why;
CI (``CI=true``, as GitHub Actions and most CI systems set it) fails instead: there
``scripts/ci-deps`` must have installed it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

#: ``patches:`` in a kustomization (k8s/overlays/kind) needs the kustomize of kubectl >= 1.21.
KUBECTL_MIN = (1, 21)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def docker_compose() -> str:
    """The docker-compose executable; skip (local run) or fail (CI) when it is not installed."""
    exe = shutil.which("docker-compose")
    if exe is not None:
        return exe
    if in_ci():
        pytest.fail(
            "docker-compose is not installed although CI is set: scripts/ci-deps installs it"
        )
    pytest.skip(
        "docker-compose is not installed and scripts/ci-deps could not install it here "
        "(no apt-get, or no root/sudo); CI runs this test"
    )


def parse_kubectl_version(text: str) -> tuple[int, int] | None:
    """(major, minor) from ``kubectl version --client`` in any of its formats, or None."""
    m = re.search(r"GitVersion:\s*\"v(\d+)\.(\d+)", text) or re.search(
        r"Client Version:\s*v(\d+)\.(\d+)", text
    )
    return (int(m.group(1)), int(m.group(2))) if m else None


def kubectl_too_old(kubectl: str) -> str | None:
    """Why ``kubectl kustomize`` cannot render the overlays, or None when it is new enough."""
    out = subprocess.run(
        [kubectl, "version", "--client"], capture_output=True, text=True, timeout=30, check=False
    )
    version = parse_kubectl_version(out.stdout)
    if version is None:
        return f"cannot tell kubectl's version from `kubectl version --client`: {out.stdout!r}"
    if version < KUBECTL_MIN:
        return (
            f"kubectl {version[0]}.{version[1]} is too old: the overlays' `patches:` needs "
            f"kubectl >= {KUBECTL_MIN[0]}.{KUBECTL_MIN[1]}"
        )
    return None
