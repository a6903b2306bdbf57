"""Container HEALTHCHECK for every kdruid role: GET /status/health on the port the role listens on.

One image runs any role, so the check finds the ``kdruid <role> [--config FILE]`` process in
/proc (PID 1, or a child of an init such as ``docker run --init``) and computes its port exactly
as the server does, with ``common.config.load_settings`` over the same file and environment.
Exit 0 when the node answers 200, 1 otherwise (Docker's contract).
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

ROLES = ("coordinator", "broker", "historical", "overlord", "peon")


def role_and_config(argv: list[str]) -> tuple[str, str | None] | None:
    """``[..., 'kdruid', '--log-level', 'INFO', 'broker', '--config', 'f']`` -> ('broker', 'f')."""
    start = next((i for i, a in enumerate(argv) if Path(a).name == "kdruid"), None)
    if start is None:
        return None
    args = argv[start + 1 :]
    role: str | None = None
    config: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--config", "--log-level") and i + 1 < len(args):
            if arg == "--config" and role is not None:
                config = args[i + 1]
            i += 2
            continue
        if arg.startswith("--config=") and role is not None:
            config = arg.split("=", 1)[1]
        elif role is None and arg in ROLES:
            role = arg
        i += 1
    return (role, config) if role is not None else None


def find_server(proc: Path = Path("/proc")) -> tuple[str, str | None] | None:
    """The role and config file of the kdruid server process in this container, if any."""
    pids = sorted((p for p in proc.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    for pid in pids:
        try:
            raw = (pid / "cmdline").read_bytes()
        except OSError:
            continue
        found = role_and_config([a.decode(errors="replace") for a in raw.split(b"\0") if a])
        if found is not None:
            return found
    return None


def main() -> int:
    found = find_server()
    if found is None:
        print("no 'kdruid <role>' process found", file=sys.stderr)
        return 1
    from common.config import load_settings  # slow import: only once a server was found

    role, config = found
    port = load_settings(role, config_path=config).node.plaintext_port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/health", timeout=4) as resp:
            return 0 if resp.status == 200 else 1
    except OSError as exc:
        print(f"{role} on port {port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
