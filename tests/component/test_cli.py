"""The ``kdruid`` command: help, configuration errors, and one role run from a properties file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from common.config import ROLES
from tests.support.procs import listening_addresses

REPO = Path(__file__).resolve().parents[2]
KDRUID = Path(sys.executable).parent / "kdruid"


def clean_env() -> dict[str, str]:
    """The caller's environment without Druid settings (they would change what is tested)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DRUID_", "druid_"))}


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_bad_key_in_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    conf = tmp_path / "runtime.properties"
    conf.write_text("druid.host=localhost\ndruid.segmentCache.locaitons=[]\n")
    result = run_cli("historical", "--config", str(conf))
    assert result.returncode == 2, result.stderr
    assert "druid.segmentCache.locaitons" in result.stderr
    assert "did you mean 'druid.segmentCache.locations'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_value_in_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    conf = tmp_path / "runtime.properties"
    conf.write_text("druid.discovery.k8s.leaseDuration=60 seconds\n")
    result = run_cli("coordinator", "--config", str(conf))
    assert result.returncode == 2
    assert "druid.discovery.k8s.leaseDuration" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist.properties"
    result = run_cli("broker", "--config", str(missing))
    assert result.returncode == 2
    assert "cannot read config file" in result.stderr
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_env_key_exits_2_naming_it() -> None:
    env = {**clean_env(), "druid_broker_maxQueuedRequests": "5"}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "broker"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "druid_broker_maxQueuedRequests" in result.stderr


@pytest.mark.skipif(not KDRUID.exists(), reason=f"entry point not installed at {KDRUID}")
def test_kdruid_help_lists_roles_and_quickstart() -> None:
    result = subprocess.run(
        [str(KDRUID), "--help"],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    for command in (*ROLES, "quickstart"):
        assert command in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("router")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_role_help_shows_config_option() -> None:
    result = run_cli("peon", "--help")
    assert result.returncode == 0
    assert "--config" in result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("bind_on_host", "listens_on"), [(None, "0.0.0.0"), ("true", "127.0.0.1"), ("false", "0.0.0.0")]
)
def test_role_runs_from_config_and_stops_cleanly_on_sigterm(
    tmp_path: Path, bind_on_host: str | None, listens_on: str
) -> None:
    port = free_port()
    conf = tmp_path / "runtime.properties"
    conf.write_text(
        ("" if bind_on_host is None else f"druid.bindOnHost={bind_on_host}\n")
        + "druid.host=127.0.0.1\n"
        f"druid.plaintextPort={port}\n"
        "druid.metadata.storage.type=sqlite\n"
        f"druid.metadata.storage.connector.connectURI={tmp_path / 'metadata.db'}\n"
        "druid.metadata.storage.connector.password=hunter2\n"
    )
    log = tmp_path / "broker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "broker", "--config", str(conf)],
            cwd=REPO,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            discovered = None
            with httpx.Client(timeout=2.0) as http:
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        resp = http.get(f"http://127.0.0.1:{port}/status/selfDiscovered")
                    except httpx.HTTPError:
                        resp = None
                    if resp is not None and resp.status_code == 200:
                        discovered = resp
                        break
                    time.sleep(0.1)  # polling a subprocess: no event to await
                assert discovered is not None, log.read_text()
                props = http.get(f"http://127.0.0.1:{port}/status/properties").json()
                assert props["druid.plaintextPort"] == str(port)
                assert "druid.metadata.storage.connector.password" not in props
            # Druid's druid.bindOnHost: only druid.host's address, else every interface.
            assert listening_addresses(port) == {listens_on}
            proc.send_signal(signal.SIGTERM)
            # uvicorn re-raises the signal after its clean shutdown, so the process ends "killed
            # by SIGTERM" (exit 143 in a container, as a JVM does); anything else is a failure.
            assert proc.wait(20) in (0, -signal.SIGTERM), log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert "Traceback" not in text
    assert "broker stopped" in text


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        conf = tmp_path / "runtime.properties"
        conf.write_text(
            "druid.host=127.0.0.1\n"
            f"druid.plaintextPort={port}\n"
            f"druid.metadata.storage.connector.connectURI={tmp_path / 'metadata.db'}\n"
        )
        result = run_cli("broker", "--config", str(conf))
    assert result.returncode != 0
    assert f"cannot listen on 0.0.0.0:{port}" in result.stderr
    assert "Traceback" not in result.stderr
