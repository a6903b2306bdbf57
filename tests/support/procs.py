"""Run kdruid roles as real OS processes (``python -m services.cli <role> --config FILE``).

For tests that need what only processes give: ``kill -9`` (no shutdown hook runs, nothing is
unannounced, leases are not released) and restarts on the same port and data directories.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from services.localkafka import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    name: str
    role: str
    port: int
    config: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class ProcCluster:
    """Roles as child processes sharing one set of properties (plus per-node extras)."""

    def __init__(self, base_dir: Path, properties: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.properties = dict(properties)
        self.procs: dict[str, Proc] = {}

    def add(self, role: str, name: str | None = None, **extra: str) -> Proc:
        name = name or role
        port = free_port()
        props = {
            **self.properties,
            **extra,
            "druid.host": "127.0.0.1",
            "druid.plaintextPort": str(port),
        }
        config = self.base_dir / "conf" / f"{name}.properties"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        proc = Proc(name, role, port, config, self.base_dir / "log" / f"{name}.log")
        self.procs[name] = proc
        return proc

    def start(self, name: str) -> Proc:
        proc = self.procs[name]
        proc.log_path.parent.mkdir(parents=True, exist_ok=True)
        proc.log_file = open(proc.log_path, "ab")  # closed in stop()/kill()
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("DRUID_")}
        env["PYTHONPATH"] = str(REPO)
        proc.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", proc.role, "--config", str(proc.config)],
            stdout=proc.log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.base_dir,
        )
        return proc

    def wait_healthy(self, name: str, within: float = 30.0) -> None:
        proc = self.procs[name]
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if proc.process is not None and proc.process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.process.returncode}:\n{proc.log_tail()}"
                )
            try:
                if httpx.get(proc.url + "/status/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{name} not healthy within {within}s:\n{proc.log_tail()}")

    def kill(self, name: str) -> None:
        """``kill -9``: no shutdown hook runs."""
        proc = self.procs[name]
        if proc.process is not None and proc.process.poll() is None:
            proc.process.send_signal(signal.SIGKILL)
            proc.process.wait()
        self._close_log(proc)

    def stop(self, name: str, timeout: float = 15.0) -> None:
        proc = self.procs[name]
        if proc.process is not None and proc.process.poll() is None:
            proc.process.send_signal(signal.SIGTERM)
            try:
                proc.process.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait()
        self._close_log(proc)

    def _close_log(self, proc: Proc) -> None:
        if proc.log_file is not None:
            proc.log_file.close()
            proc.log_file = None

    def close(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)

    def warnings(self, per_process: int = 12) -> str:
        """The last WARNING/ERROR lines of every process, for failure messages."""
        out = []
        for name, proc in self.procs.items():
            lines = [
                line[:300]
                for line in proc.log_tail(2000).splitlines()
                if " WARNING " in line or " ERROR " in line
            ]
            if lines:
                out.append(f"--- {name}:\n" + "\n".join(lines[-per_process:]))
        return "\n".join(out)

    def tracebacks(self) -> dict[str, str]:
        """Per process, log lines around any Python traceback (for failure messages)."""
        found = {}
        for name, proc in self.procs.items():
            text = proc.log_tail(400)
            if "Traceback" in text:
                found[name] = text[text.index("Traceback") :][:3000]
        return found


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a TCP socket listens on at ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].split(":")
        if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found
