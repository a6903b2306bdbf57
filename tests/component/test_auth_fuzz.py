"""Schemathesis fuzz of every role's OpenAPI schema with Druid's basic security on.

Cases are generated from each app's own ``/openapi.json`` (a few per operation) and sent over
real HTTP to the five roles, once without credentials and once as the admin. Asserted: no 5xx
ever; without credentials nothing but Druid's open paths answers 2xx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core import NotSet

from common.aio import wait_until
from tests.component.test_auth_routes import DRUID_OPEN, ROLES, STEADY_LEADERS, start_secured
from tests.support.cluster import cluster, sqlite_properties
from tests.support.security import ADMIN, basic_security_properties

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: Generated cases per operation (kept small: the whole run stays well under a minute).
MAX_EXAMPLES = 3


def generate(openapi: dict[str, Any]) -> list[Any]:
    """A few cases per operation of ``openapi`` (generation only; sending is ours)."""
    cases: list[Any] = []
    schema = schemathesis.openapi.from_dict(openapi)
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy()

        @settings(
            max_examples=MAX_EXAMPLES,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def collect(case: Any) -> None:
            cases.append(case)

        collect()
    return cases


async def test_fuzzed_routes_never_5xx_and_refuse_without_credentials(tmp_path: Path) -> None:
    props = {**sqlite_properties(tmp_path), **basic_security_properties(), **STEADY_LEADERS}
    async with cluster(props) as c:
        nodes = await start_secured(c)
        for role in ROLES:  # a node not yet discovered answers 503 there, as Druid's does

            async def discovered(url: str = nodes[role].url) -> bool:
                r = await c.http.get(f"{url}/status/selfDiscovered", auth=ADMIN)
                return r.status_code == 200

            await wait_until(discovered, within=15, what=f"{role} discovered")
        sent = 0
        for role in ROLES:
            base = nodes[role].url
            openapi = (await c.http.get(f"{base}/openapi.json", auth=ADMIN)).json()
            for case in generate(openapi):
                path = case.formatted_path
                for auth in (None, ADMIN):
                    kwargs: dict[str, Any] = {"params": case.query, "auth": auth}
                    if case.body is not None and not isinstance(case.body, NotSet):
                        kwargs["json"] = case.body
                    resp = await c.http.request(case.method, base + path, **kwargs)
                    sent += 1
                    what = (role, case.method, path, auth is not None, case.query, case.body)
                    if resp.status_code == 503 and path == "/status/selfDiscovered":
                        # Druid's own answer for a node not (or no longer) visible to others
                        assert resp.json() == {"selfDiscovered": False}
                        continue
                    assert resp.status_code < 500, (*what, resp.status_code, resp.text)
                    if auth is None and case.operation.path not in DRUID_OPEN:
                        assert resp.status_code == 401, (*what, resp.status_code, resp.text)
        assert sent > 200
