"""Where the quickstart's roles listen (``kdruid quickstart --bind``): 127.0.0.1 unless asked.

The quickstart runs every role on this machine with no authentication, so by default nothing is
reachable from other machines. ``--bind 0.0.0.0`` listens on every interface (the roles still
announce and call each other at ``localhost``); ``--bind ADDRESS`` listens on one address of this
machine and announces it. Each role gets the choice as Druid settings in the environment (Druid's
Docker form, so it wins over a kept config file): ``druid.host`` and ``druid.bindOnHost``.
"""

from __future__ import annotations

import ipaddress
import socket

DEFAULT_BIND = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"


def bind_environment(bind: str) -> dict[str, str]:
    """What each role gets for ``--bind`` (Druid's Docker env form, over the config file): the
    host it announces and whether it listens on that host only (``druid.bindOnHost``)."""
    if bind == ALL_INTERFACES:
        return {"druid_host": "localhost", "druid_bindOnHost": "false"}
    host = "localhost" if bind in ("localhost", DEFAULT_BIND) else bind
    return {"druid_host": host, "druid_bindOnHost": "true"}


def check_bind(bind: str) -> str | None:
    """Why ``--bind`` is refused, or None: an IPv4 address (or ``localhost``) of this machine."""
    if bind == "localhost":
        return None
    try:
        ipaddress.IPv4Address(bind)
    except ValueError:
        return f"--bind {bind!r}: expected an IPv4 address, e.g. 127.0.0.1 or 0.0.0.0"
    with socket.socket() as s:
        try:
            s.bind((bind, 0))
        except OSError as exc:
            return f"--bind {bind}: not an address of this machine ({exc.strerror})"
    return None
