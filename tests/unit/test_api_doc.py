"""``docs/api.md`` tells the truth: every route the five role apps serve is listed as served (or
refused) by that role, every row marked served exists on the roles it names, a ``not yet`` row
has no route, and every test file a row names exists. The apps are built, not started; their
routes are the OpenAPI document's plus the plain ASGI routes they declare."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.auth.declare import DeclaredRoute
from common.config import ROLES, load_settings
from services.cli import app_factory
from tests.support.cluster import sqlite_properties

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"
STATUSES = {"served", "refused", "not yet"}
ROW = re.compile(r"^\| *(GET|POST|DELETE|PUT) *\|")


@dataclass(frozen=True)
class Row:
    method: str
    endpoint: str
    status: str
    roles: tuple[str, ...]
    tests: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return self.method, normalize(self.endpoint)


def normalize(path: str) -> str:
    """``/a/{x}/b?q`` and ``/a/{y}/b/`` both become ``/a/{}/b``."""
    path = re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])
    return path.rstrip("/") or "/"


def rows() -> list[Row]:
    result = []
    for line in DOC.read_text().splitlines():
        if ROW.match(line) is None:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, line
        method, endpoint, status, roles, tests = cells[:5]
        assert endpoint.startswith("`/") and endpoint.endswith("`"), line
        endpoint = endpoint.strip("`")
        named = tuple(ROLES) if roles == "all" else tuple(r for r in roles.split(", ") if r)
        files = tuple(t.strip("` ") for t in tests.split(",") if t.strip())
        result.append(Row(method, endpoint, status, named, files))
    return result


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple[str, str]]]:
    props = sqlite_properties(tmp_path_factory.mktemp("apps"))
    served: dict[str, set[tuple[str, str]]] = {}
    for role in ROLES:
        app = app_factory(role)(load_settings(role, properties=props, environ={}))
        paths = app.openapi()["paths"]
        served[role] = {(m.upper(), normalize(p)) for p, ops in paths.items() for m in ops}
        # Plain ASGI routes (long polling) are not in the OpenAPI document, but they declare.
        declared: list[DeclaredRoute] = app.state.declared_routes
        served[role] |= {
            (m, normalize(r.path)) for r in declared if r.asgi is not None for m in r.methods
        } - {("HEAD", normalize(r.path)) for r in declared}
    return served


def test_rows_are_well_formed() -> None:
    found = rows()
    assert len(found) > 180
    for row in found:
        assert row.status in STATUSES, row
        assert set(row.roles) <= set(ROLES), row
        if row.status == "not yet":
            assert not row.roles and not row.tests, row
        else:
            assert row.roles and row.tests, row


def test_every_served_route_is_documented(routes: dict[str, set[tuple[str, str]]]) -> None:
    documented = {(role, r.key) for r in rows() if r.status != "not yet" for role in r.roles}
    missing = sorted(
        (role, *key)
        for role, keys in routes.items()
        for key in keys
        if (role, key) not in documented
    )
    assert missing == []


def test_served_and_refused_rows_exist(routes: dict[str, set[tuple[str, str]]]) -> None:
    absent = [
        (role, r.method, r.endpoint)
        for r in rows()
        if r.status != "not yet"
        for role in r.roles
        if r.key not in routes[role]
    ]
    assert absent == []


def test_not_yet_rows_have_no_route(routes: dict[str, set[tuple[str, str]]]) -> None:
    every = set().union(*routes.values())
    present = [
        (r.method, r.endpoint)
        for r in rows()
        if r.status == "not yet" and "?" not in r.endpoint and r.key in every
    ]
    assert present == []


def test_named_tests_exist() -> None:
    tests = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    unknown = sorted({t for r in rows() for t in r.tests if t not in tests})
    assert unknown == []
