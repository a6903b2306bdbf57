"""Retention rules API on a leader coordinator, and leader routing between two coordinators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from common.aio import wait_until
from tests.support.cluster import Cluster, Node, cluster, sqlite_properties

RULES = "/druid/coordinator/v1/rules"
ERROR_KEYS = {"error", "errorMessage", "errorClass", "host"}


async def leads(c: Cluster, name: str) -> bool:
    return (await c.get(name, "/druid/coordinator/v1/isLeader")).status_code == 200


@pytest.fixture
async def coord(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Node]]:
    async with cluster(sqlite_properties(tmp_path)) as c:
        node = await c.start("coordinator")
        await wait_until(lambda: leads(c, "coordinator"), within=5.0, what="coordinator leads")
        yield c, node


async def post_rules(
    c: Cluster, ds: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await c.http.post(
        c.nodes["coordinator"].url + f"{RULES}/{ds}", json=body, headers=headers
    )


async def test_default_rules_are_seeded(coord: tuple[Cluster, Node]) -> None:
    c, _ = coord
    resp = await c.get("coordinator", RULES)
    assert resp.status_code == 200
    rules = resp.json()
    assert rules["_default"] == [{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}}]


async def test_set_then_get_rules_with_full_and_history(coord: tuple[Cluster, Node]) -> None:
    c, _ = coord
    wiki_rules = [
        {"type": "loadByPeriod", "period": "P1M", "tieredReplicants": {"hot": 1}},
        {
            "type": "loadByInterval",
            "interval": "2020-01-01T00:00:00.000Z/2021-01-01T00:00:00.000Z",
            "tieredReplicants": {"_default_tier": 2},
        },
        {"type": "dropForever"},
    ]
    resp = await post_rules(
        c, "wiki", wiki_rules, {"X-Druid-Author": "alice", "X-Druid-Comment": "keep a month hot"}
    )
    assert resp.status_code == 200, resp.text

    got = (await c.get("coordinator", f"{RULES}/wiki")).json()
    assert [r["type"] for r in got] == ["loadByPeriod", "loadByInterval", "dropForever"]
    assert got[0]["period"] == "P1M"
    assert got[0]["tieredReplicants"] == {"hot": 1}
    assert got[1]["interval"] == "2020-01-01T00:00:00.000Z/2021-01-01T00:00:00.000Z"
    assert got[1]["tieredReplicants"] == {"_default_tier": 2}

    full = (await c.get("coordinator", f"{RULES}/wiki", params={"full": ""})).json()
    assert full[:3] == got
    assert full[3:] == [{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}}]

    everything = (await c.get("coordinator", RULES)).json()
    assert everything["wiki"] == got
    assert "_default" in everything

    history = (await c.get("coordinator", f"{RULES}/wiki/history")).json()
    assert len(history) == 1
    entry = history[0]
    assert entry["key"] == "wiki"
    assert entry["type"] == "rules"
    assert entry["auditInfo"]["author"] == "alice"
    assert entry["auditInfo"]["comment"] == "keep a month hot"

    # A second change replaces the rules in force and is added to the history, newest first.
    resp = await post_rules(c, "wiki", [{"type": "loadForever"}], {"X-Druid-Author": "bob"})
    assert resp.status_code == 200
    got = (await c.get("coordinator", f"{RULES}/wiki")).json()
    assert [r["type"] for r in got] == ["loadForever"]
    history = (await c.get("coordinator", f"{RULES}/wiki/history")).json()
    assert [h["auditInfo"]["author"] for h in history] == ["bob", "alice"]
    limited = (await c.get("coordinator", f"{RULES}/wiki/history", params={"count": 1})).json()
    assert [h["auditInfo"]["author"] for h in limited] == ["bob"]
    all_history = (await c.get("coordinator", f"{RULES}/history")).json()
    assert {h["key"] for h in all_history} == {"wiki"}
    # interval: the changes made within it (Druid takes '/' here; '_' as in its other paths)
    for params in ({"interval": "2000-01-01/3000-01-01"}, {"interval": "2000-01-01_3000-01-01"}):
        within = (await c.get("coordinator", f"{RULES}/wiki/history", params=params)).json()
        assert [h["auditInfo"]["author"] for h in within] == ["bob", "alice"]
    before = {"interval": "2000-01-01/2001-01-01"}
    assert (await c.get("coordinator", f"{RULES}/wiki/history", params=before)).json() == []
    assert (await c.get("coordinator", f"{RULES}/history", params=before)).json() == []
    bad = await c.get("coordinator", f"{RULES}/history", params={"interval": "nope"})
    assert bad.status_code == 400


async def test_rules_of_unknown_datasource_is_empty(coord: tuple[Cluster, Node]) -> None:
    c, _ = coord
    resp = await c.get("coordinator", f"{RULES}/nothing_here")
    assert resp.status_code == 200
    assert resp.json() == []


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ([{"type": "loadSometimes"}], "loadSometimes"),
        ([{"type": "loadByPeriod", "period": "P1X"}], "P1X"),
        ([{"type": "dropByInterval", "interval": "2020-01-01/yesterday"}], "interval"),
        ([{"type": "dropByInterval"}], "interval"),
        ({"type": "loadForever"}, "list"),
        ("loadForever", "list"),
        ([{"type": "loadForever", "tieredReplicants": {"hot": -1}}], "hot"),
        ([{"tieredReplicants": {"hot": 1}}], "type"),
    ],
)
async def test_bad_rules_are_400_naming_the_problem(
    coord: tuple[Cluster, Node], body: object, mentions: str
) -> None:
    c, node = coord
    resp = await post_rules(c, "wiki", body)
    assert resp.status_code == 400, resp.text
    err = resp.json()
    assert set(err) == ERROR_KEYS
    assert mentions in err["errorMessage"]
    assert err["host"] == node.settings.host_and_port
    # Nothing was stored, and the service keeps serving.
    assert (await c.get("coordinator", f"{RULES}/wiki")).json() == []
    assert (await c.get("coordinator", "/status/health")).status_code == 200


async def test_body_that_is_not_json_is_400(coord: tuple[Cluster, Node]) -> None:
    c, node = coord
    resp = await c.http.post(
        node.url + f"{RULES}/wiki",
        content=b"[{not json",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 400
    assert set(resp.json()) == ERROR_KEYS
    assert (await c.get("coordinator", RULES)).status_code == 200


async def test_follower_redirects_leader_only_paths(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        first = await c.start("coordinator", "c1")
        await wait_until(lambda: leads(c, "c1"), within=5.0, what="c1 leads")
        await c.start("coordinator", "c2")

        async def knows_leader() -> bool:
            return (await c.get("c2", "/druid/coordinator/v1/leader")).status_code == 200

        await wait_until(knows_leader, within=5.0, what="c2 knows the leader")
        assert (await c.get("c2", "/druid/coordinator/v1/leader")).text == first.url
        assert (await c.get("c1", "/druid/coordinator/v1/leader")).text == first.url
        not_leader = await c.get("c2", "/druid/coordinator/v1/isLeader")
        assert not_leader.status_code == 404
        assert not_leader.json() == {"leader": False}
        assert (await c.get("c1", "/druid/coordinator/v1/isLeader")).json() == {"leader": True}

        resp = await c.get("c2", f"{RULES}/wiki", params={"full": ""})
        assert resp.status_code == 307
        assert resp.headers["location"] == f"{first.url}{RULES}/wiki?full="
        # Status paths are served locally on a follower too.
        assert (await c.get("c2", "/status/health")).status_code == 200


async def test_history_count_beyond_a_java_int_is_a_400(coord: tuple[Cluster, Node]) -> None:
    # Druid's count is an Integer; a larger one once reached the metadata store (500 on SQLite).
    c, _ = coord
    for path in (f"{RULES}/history", f"{RULES}/wiki/history"):
        resp = await c.get("coordinator", path, params={"count": str(2**31)})
        assert resp.status_code == 400, resp.text
        assert ERROR_KEYS <= set(resp.json())
        resp = await c.get("coordinator", path, params={"count": str(2**31 - 1)})
        assert resp.status_code == 200, resp.text
