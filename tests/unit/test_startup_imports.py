"""What a role's process loads at start-up: not the modules only another role, another metadata
store or a command-line tool needs (each costs megabytes of RSS and tens of ms per process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Not loaded by a role on SQLite: PostgreSQL's driver and SQLAlchemy dialect (loaded when a
#: PostgreSQL engine is made), aiohttp (the broker's session), httpx's command-line tool.
NOT_LOADED = ("asyncpg", "sqlalchemy.dialects.postgresql", "aiohttp", "httpx._main", "rich")


@pytest.mark.parametrize("role", ["peon", "historical", "coordinator", "overlord"])
def test_a_role_on_sqlite_loads_none_of_them(role: str) -> None:
    code = (
        f"import sys, common.metadata.store, services.{role}.app\n"
        f"names = {NOT_LOADED!r}\n"
        "print(sorted(m for m in sys.modules if sys.modules[m] is not None\n"
        "             and any(m == n or m.startswith(n + '.') for n in names)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_httpx_works_without_its_command_line_tool() -> None:
    code = (
        "import common, httpx\n"
        "assert callable(httpx.main)  # httpx's stub, which says how to install the tool\n"
        "print(httpx.Client().build_request('GET', 'http://x/y?a=1').url.path)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "/y"
