"""docker/Dockerfile (a static check) and docker/healthcheck.py (how it finds the role)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from common.config import DEFAULT_PORTS
from tests.deploy.manifests import ROOT

DOCKERFILE = ROOT / "docker" / "Dockerfile"


def final_stage() -> list[str]:
    """The instructions after the last FROM, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    last_from = max(i for i, ln in enumerate(lines) if ln.upper().startswith("FROM "))
    return lines[last_from:]


def instruction(stage: list[str], name: str) -> list[str]:
    return [ln[len(name) + 1 :].strip() for ln in stage if ln.upper().startswith(name + " ")]


def test_runtime_image_is_small_non_root_and_runs_kdruid() -> None:
    stage = final_stage()
    # Both stages build FROM the BASE_IMAGE argument, python:3.11-slim unless given.
    assert stage[0] == "FROM ${BASE_IMAGE}"
    args = re.findall(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert args == ["python:3.11-slim"]
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), re.M)
    assert froms == ["${BASE_IMAGE}", "${BASE_IMAGE}"], "same base: the venv's paths stay valid"
    (user,) = instruction(stage, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root user (runAsNonRoot can check it)"
    assert json.loads(instruction(stage, "ENTRYPOINT")[0]) == ["kdruid"]
    (health,) = instruction(stage, "HEALTHCHECK")
    assert "CMD" in health and "/opt/kdruid/healthcheck.py" in health
    exposed = {int(p) for line in instruction(stage, "EXPOSE") for p in line.split()}
    assert exposed == set(DEFAULT_PORTS.values())
    assert json.loads(instruction(stage, "VOLUME")[0]) == ["/var/druid"]


def test_everything_copied_exists_and_is_not_ignored() -> None:
    text = DOCKERFILE.read_text()
    sources = [
        src
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for src in line.split()[1:-1]
    ]
    assert sources
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = [ln[1:].removesuffix("/**") for ln in ignore if ln.startswith("!")]
    for src in sources:
        assert (ROOT / src).exists(), src
        assert src in allowed, f"{src} is excluded from the build context"


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kdruid_healthcheck", ROOT / "docker" / "healthcheck.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/usr/local/bin/python", "/usr/local/bin/kdruid", "broker"], ("broker", None)),
        (
            ["kdruid", "historical", "--config", "/c/rt.properties"],
            ("historical", "/c/rt.properties"),
        ),
        (["kdruid", "--log-level", "DEBUG", "peon", "--config=/x"], ("peon", "/x")),
        (["python", "/usr/local/bin/kdruid", "quickstart"], None),
        (["kdruid", "--help"], None),
        (["python", "/opt/kdruid/healthcheck.py"], None),
        (["postgres", "broker"], None),
    ],
)
def test_healthcheck_reads_role_and_config_from_argv(
    argv: list[str], expected: tuple[str, str | None] | None
) -> None:
    assert load_healthcheck().role_and_config(argv) == expected


def test_healthcheck_finds_the_server_process_behind_an_init(tmp_path: Path) -> None:
    hc = load_healthcheck()
    for pid, argv in {
        "1": [b"/sbin/docker-init", b"--", b"kdruid", b"overlord"],
        "7": None,
    }.items():
        (tmp_path / pid).mkdir()
        if argv is not None:
            (tmp_path / pid / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
    (tmp_path / "self").mkdir()
    assert hc.find_server(tmp_path) == ("overlord", None)
    (tmp_path / "1" / "cmdline").write_bytes(b"/sbin/docker-init\0--\0sleep\0")
    assert hc.find_server(tmp_path) is None
