"""Every route of all five roles, with Druid's basic security on, enumerated from the apps.

For each declared route: no credentials -> 401 with ``WWW-Authenticate: Basic``; a known user
holding other permissions -> 403; a user whose only role holds exactly the permission the route
needs -> neither 401 nor 403. Only Druid's unsecured paths answer without credentials.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from common.aio import wait_until
from common.auth.declare import DeclaredRoute
from common.auth.model import action_for_method
from tests.support.cluster import Cluster, Node, cluster, sqlite_properties
from tests.support.security import ADMIN, add_user, basic_security_properties, wait_user_known

pytestmark = pytest.mark.timeout(180)

ROLES = ["coordinator", "overlord", "broker", "historical", "peon"]
#: What Druid leaves open (CliCoordinator / CliOverlord UNSECURED_PATHS).
DRUID_OPEN = {"/status/health", "/druid/coordinator/v1/isLeader", "/druid/indexer/v1/isLeader"}
#: Path parameter values; nothing a test user depends on.
PARAMS = {
    "data_source": "wiki",
    "datasource": "wiki",
    "dataSourceName": "wiki",
    "authenticatorName": "basic",
    "authorizerName": "basicz",
    "userName": "someone",
    "roleName": "somerole",
}
NATIVE = {
    "queryType": "timeseries",
    "dataSource": "wiki",
    "intervals": ["2020/2021"],
    "granularity": "all",
    "aggregations": [{"type": "count", "name": "n"}],
}
#: What the self-checking routes need for the bodies sent, and those bodies.
SELF: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "/druid/v2": (NATIVE, "DATASOURCE", "wiki", "READ"),
    "/druid/v2/": (NATIVE, "DATASOURCE", "wiki", "READ"),
    "/druid/v2/sql": ({"query": "SELECT * FROM sys.segments"}, "SYSTEM_TABLE", "segments", "READ"),
    "/druid/v2/sql/": ({"query": "SELECT * FROM sys.segments"}, "SYSTEM_TABLE", "segments", "READ"),
    "/druid/v2/sql/task": (
        {
            "query": "INSERT INTO wiki SELECT page FROM TABLE(EXTERN("
            """'{"type": "inline", "data": "{}"}', '{"type": "json"}', """
            """'[{"name": "page", "type": "string"}]')) PARTITIONED BY DAY"""
        },
        "DATASOURCE",
        "wiki",
        "WRITE",
    ),
    "/druid/indexer/v1/task": (
        {"type": "noop", "dataSource": "wiki"},
        "DATASOURCE",
        "wiki",
        "WRITE",
    ),
    "/druid/indexer/v1/supervisor": (
        {"type": "kafka", "spec": {"dataSchema": {"dataSource": "wiki"}}},
        "DATASOURCE",
        "wiki",
        "WRITE",
    ),
    "/druid/indexer/v1/supervisor/": (
        {"type": "kafka", "spec": {"dataSchema": {"dataSource": "wiki"}}},
        "DATASOURCE",
        "wiki",
        "WRITE",
    ),
}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAMS.get(m.group(1), "x1"), path)


def needed(route: DeclaredRoute, method: str) -> tuple[str, str, str] | None:
    need = route.need
    if need.kind == "open":
        return None
    if need.kind == "self":
        _, rtype, name, action = SELF[route.path]
        return rtype, name, action
    name = need.name if need.name is not None else PARAMS[need.param or ""]
    return str(need.resource_type), name, str(need.action or action_for_method(method))


def user_name(perm: tuple[str, str, str]) -> str:
    return "u_" + "_".join(re.sub(r"\W", "", p) for p in perm).lower()


async def start_secured(c: Cluster) -> dict[str, Node]:
    nodes = {"coordinator": await c.start("coordinator")}
    await wait_until(lambda: nodes["coordinator"].service.selector.is_leader(), within=15)  # type: ignore[attr-defined]
    nodes["overlord"] = await c.start("overlord")
    await wait_until(lambda: nodes["overlord"].service.selector.is_leader(), within=15)  # type: ignore[attr-defined]
    for role in ("broker", "historical", "peon"):
        nodes[role] = await c.start(role)
    return nodes


#: One candidate per elected role: a long lease, so a loaded machine does not lose the leader
#: halfway through the table (a follower answers 503 before any route runs).
STEADY_LEADERS = {
    "druid.discovery.metadata.leaseDuration": "PT60S",
    "druid.discovery.metadata.renewDeadline": "PT40S",
    "druid.discovery.metadata.retryPeriod": "PT0.5S",
}


async def test_every_route_refuses_without_permission_and_answers_with_it(tmp_path: Path) -> None:
    props = {**sqlite_properties(tmp_path), **basic_security_properties(), **STEADY_LEADERS}
    async with cluster(props) as c:
        nodes = await start_secured(c)
        http = c.http
        coord = nodes["coordinator"].url
        table: list[tuple[str, str, str, DeclaredRoute]] = []
        for role in ROLES:
            declared: list[DeclaredRoute] = nodes[role].app.state.declared_routes
            assert declared, role
            for route in declared:
                for method in sorted(route.methods - {"HEAD"}):
                    table.append((role, method, route.path, route))
        perms = {p for _, m, _, r in table if (p := needed(r, m)) is not None}
        for perm in sorted(perms):
            rtype, name, action = perm
            await add_user(
                http,
                coord,
                user_name(perm),
                "pw-" + user_name(perm),
                [{"resource": {"type": rtype, "name": re.escape(name)}, "action": action}],
            )
        # Holds something, never what the routes here need.
        await add_user(
            http,
            coord,
            "stranger",
            "pw-stranger",
            [{"resource": {"type": "DATASOURCE", "name": "other"}, "action": "READ"}],
        )
        for role in ROLES:
            await wait_user_known(http, nodes[role].url, ("stranger", "pw-stranger"))

        checked = 0
        for role, method, path, route in table:
            url = nodes[role].url + concrete(path)
            body = SELF[path][0] if route.need.kind == "self" else None
            perm = needed(route, method)

            anonymous = await http.request(method, url, json=body)
            if perm is None:
                assert path in DRUID_OPEN, f"{role} {method} {path} is open but Druid secures it"
                assert anonymous.status_code not in (401, 403), (role, method, path)
                continue
            assert anonymous.status_code == 401, (role, method, path, anonymous.text)
            assert anonymous.headers["www-authenticate"] == "Basic"

            stranger = await http.request(method, url, json=body, auth=("stranger", "pw-stranger"))
            assert stranger.status_code == 403, (
                role,
                method,
                path,
                stranger.status_code,
                stranger.text,
            )
            assert stranger.json() == {"Access-Check-Result": "Unauthorized"}

            holder = (user_name(perm), "pw-" + user_name(perm))
            answer = await http.request(method, url, json=body, auth=holder)
            assert answer.status_code not in (401, 403), (role, method, path, perm, answer.text)
            checked += 1
        assert checked > 100
        # the admin holds everything
        assert (
            await http.get(f"{coord}/druid/coordinator/v1/rules", auth=ADMIN)
        ).status_code == 200


async def test_bad_password_is_401_counted_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    props = {**sqlite_properties(tmp_path), **basic_security_properties()}
    async with cluster(props) as c:
        node = await c.start("coordinator")
        url = node.url + "/druid/coordinator/v1/loadstatus"
        wrong = await c.http.get(url, auth=("admin", "not-the-Secret-42"))
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Basic"
        assert "Secret-42" not in wrong.text
        unknown = await c.http.get(url, auth=("nosuchuser", "whatever-77"))
        assert unknown.status_code == 401
        assert unknown.json() == wrong.json()  # nothing says which part was wrong
        metrics = (await c.http.get(node.url + "/metrics", auth=ADMIN)).text
        assert "druid_auth_failed_total{host=" in metrics
        assert re.search(
            r'druid_auth_failed_total\{[^}]*reason="bad credentials"[^}]*\} 2\.0', metrics
        )
        assert "not-the-Secret-42" not in caplog.text and "whatever-77" not in caplog.text


async def test_a_new_user_reaches_other_nodes_over_long_polling_not_the_poll_period(
    tmp_path: Path,
) -> None:
    # A ten-minute polling period: only the long-polled change notice can deliver the user.
    props = {**sqlite_properties(tmp_path), **basic_security_properties(polling_ms=600_000)}
    async with cluster(props) as c:
        coord = await c.start("coordinator")
        broker = await c.start("broker")
        await wait_user_known(c.http, broker.url, ADMIN)  # the first fetch
        await add_user(
            c.http,
            coord.url,
            "late",
            "late-pw",
            [{"resource": {"type": "STATE", "name": "STATE"}, "action": "READ"}],
        )

        async def allowed() -> bool:
            r = await c.http.get(broker.url + "/status", auth=("late", "late-pw"))
            return r.status_code == 200

        await wait_until(allowed, within=10, what="the new user's role at the broker")


async def test_any_coordinator_edits_and_security_survives_leader_failover(tmp_path: Path) -> None:
    props = {**sqlite_properties(tmp_path), **basic_security_properties()}
    async with cluster(props) as c:
        c1 = await c.start("coordinator", "c1")
        await wait_until(lambda: c1.service.selector.is_leader(), within=15)  # type: ignore[attr-defined]
        c2 = await c.start("coordinator", "c2")
        # The follower takes the edit itself (the security API is not leader-only) ...
        await add_user(
            c.http,
            c2.url,
            "ops",
            "ops-pw",
            [{"resource": {"type": "STATE", "name": "STATE"}, "action": "READ"}],
        )
        # ... and the leader sees it after its next re-read of the metadata store.
        await wait_user_known(c.http, c1.url, ("ops", "ops-pw"))
        await c.stop("c1")
        await wait_until(lambda: c2.service.selector.is_leader(), within=15)  # type: ignore[attr-defined]
        rules = await c.http.get(f"{c2.url}/druid/coordinator/v1/rules", auth=("ops", "ops-pw"))
        assert rules.status_code == 200, rules.text
        denied = await c.http.post(
            f"{c2.url}/druid/coordinator/v1/rules/wiki", json=[], auth=("ops", "ops-pw")
        )
        assert denied.status_code == 403
