"""scripts/ci-deps and scripts/kind-up with tools missing or too old: a local run goes on (the
tests that need the tool skip), CI fails, and kind-up says when kubectl is too old."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy import tools
from tests.deploy.manifests import ROOT
from tests.deploy.tools import parse_kubectl_version

#: What the scripts need from the system, without docker, docker-compose, kind, kubectl, apt-get.
BASICS = ("bash", "dirname", "grep", "head", "tr", "id", "env", "printf")


def sandbox_path(tmp_path: Path, fakes: dict[str, str]) -> str:
    """A PATH with only the basics and the given fake tools (name -> shell script body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASICS:
        real = shutil.which(tool)
        if real is not None:
            (bin_dir / tool).symlink_to(real)
    for name, body in fakes.items():
        script = bin_dir / name
        script.write_text(f"#!{shutil.which('bash')}\n{body}\n")
        script.chmod(0o755)
    return str(bin_dir)


def run(script: str, path: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = path
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [shutil.which("bash") or "bash", str(ROOT / "scripts" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_ci_deps_goes_on_locally_without_apt(tmp_path: Path) -> None:
    result = run("ci-deps", sandbox_path(tmp_path, {}), ci=None)
    assert result.returncode == 0, result.stderr
    assert "no apt-get" in result.stderr
    assert "docker-compose tests will skip" in result.stderr


@pytest.mark.parametrize("ci", ["true", "1"])
def test_ci_deps_fails_in_ci_without_apt(tmp_path: Path, ci: str) -> None:
    result = run("ci-deps", sandbox_path(tmp_path, {}), ci=ci)
    assert result.returncode == 1
    assert "no apt-get" in result.stderr


def test_ci_deps_does_nothing_when_docker_compose_is_there(tmp_path: Path) -> None:
    result = run("ci-deps", sandbox_path(tmp_path, {"docker-compose": "exit 0"}), ci="true")
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0\n", (1, 32)),
        ("Client Version: v1.21.0\n", (1, 21)),
        (
            'Client Version: version.Info{Major:"1", Minor:"20+", GitVersion:"v1.20.15-eks-1"}\n',
            (1, 20),
        ),
        ("error: unknown flag\n", None),
    ],
)
def test_kubectl_version_is_read_from_every_format(
    output: str, version: tuple[int, int] | None
) -> None:
    assert parse_kubectl_version(output) == version


def test_kind_up_refuses_an_old_kubectl_saying_why(tmp_path: Path) -> None:
    old = 'echo \'Client Version: version.Info{Major:"1", Minor:"20", GitVersion:"v1.20.4"}\''
    result = run("kind-up", sandbox_path(tmp_path, {"kubectl": old}), ci=None)
    assert result.returncode == 1
    assert "kubectl 1.20 is too old" in result.stderr
    assert "needs kubectl >= 1.21" in result.stderr


def test_kind_up_accepts_a_new_kubectl(tmp_path: Path) -> None:
    new = "echo 'Client Version: v1.29.1'; echo 'Kustomize Version: v5.0.4'"
    # No docker and no kind in this PATH: it stops at the missing tools, past the version check.
    result = run("kind-up", sandbox_path(tmp_path, {"kubectl": new}), ci=None)
    assert result.returncode == 1
    assert "too old" not in result.stderr
    assert "missing: docker kind" in result.stderr


def test_missing_docker_compose_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="CI runs this test"):
        tools.docker_compose()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="scripts/ci-deps installs it"):
        tools.docker_compose()
