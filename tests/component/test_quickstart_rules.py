"""The quickstart sets ``_default`` to as many replicas as it runs historicals, through the
coordinator's rules API, and keeps ``_default`` rules a user set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from common.aio import wait_until
from services.quickstart_rules import AUTHOR, set_default_rules
from tests.support.cluster import Cluster, cluster, sqlite_properties

RULES = "/druid/coordinator/v1/rules"


@pytest.fixture
async def coord(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(sqlite_properties(tmp_path)) as c:
        await c.start("coordinator")

        async def leads() -> bool:
            resp = await c.get("coordinator", "/druid/coordinator/v1/isLeader")
            return resp.status_code == 200

        await wait_until(leads, within=5.0, what="coordinator leads")
        yield c


async def test_seeded_default_becomes_one_replica_once(coord: Cluster) -> None:
    url = coord.nodes["coordinator"].url
    async with httpx.AsyncClient(timeout=10.0) as http:
        said = await set_default_rules(http, url, 1)
        assert "1 replica" in said
        [rule] = (await coord.get("coordinator", f"{RULES}/_default")).json()
        assert (rule["type"], rule["tieredReplicants"]) == ("loadForever", {"_default_tier": 1})
        history = (await coord.get("coordinator", f"{RULES}/_default/history")).json()
        assert [h["auditInfo"]["author"] for h in history] == [AUTHOR]
        # A second start changes nothing (no new audit entry).
        assert "already set" in await set_default_rules(http, url, 1)
        history = (await coord.get("coordinator", f"{RULES}/_default/history")).json()
        assert len(history) == 1


async def test_default_rules_a_user_set_are_kept(coord: Cluster) -> None:
    url = coord.nodes["coordinator"].url
    async with httpx.AsyncClient(timeout=10.0) as http:
        for mine in (
            [{"type": "loadByPeriod", "period": "P7D"}, {"type": "dropForever"}],
            # Even the seeded rule, once a user set it deliberately (it has an audit entry).
            [{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}}],
        ):
            assert (await http.post(f"{url}{RULES}/_default", json=mine)).status_code == 200
            before = (await coord.get("coordinator", f"{RULES}/_default")).json()
            assert "kept" in await set_default_rules(http, url, 1)
            assert (await coord.get("coordinator", f"{RULES}/_default")).json() == before
