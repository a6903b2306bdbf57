"""``free_port`` picks ports the kernel never hands out to outgoing connections."""

from __future__ import annotations

import socket

from services import localkafka
from services.localkafka import _ephemeral_range, free_port


def test_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    low, _ = _ephemeral_range()
    ports = {free_port() for _ in range(20)}
    assert all(1024 <= p < low for p in ports), ports
    assert len(ports) > 1  # random, so two test processes rarely pick the same one
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


def test_a_taken_port_is_never_returned(monkeypatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(localkafka, "_ephemeral_range", lambda: (port + 1, 60999))
        # randrange(20_000, port + 1) is forced onto the taken port when the range is one wide
        monkeypatch.setattr(localkafka.random.SystemRandom, "randrange", lambda self, a, b: port)
        got = free_port()
    assert got != port


def test_without_a_low_range_the_kernel_chooses(monkeypatch) -> None:
    monkeypatch.setattr(localkafka, "_ephemeral_range", lambda: (1024, 65535))
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
