"""A node that is not a coordinator serves and announces itself only once it holds the users
(Druid's cache managers fetch in lifecycle start, before the HTTP server opens): valid
credentials never meet a 401 from a node still starting; the wait is bounded like Druid's
``maxSyncRetries``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from common.aio import wait_until
from tests.support.cluster import cluster, sqlite_properties
from tests.support.security import ADMIN, basic_security_properties


async def test_a_node_waits_for_the_users_before_serving_and_announcing(tmp_path: Path) -> None:
    props = {**sqlite_properties(tmp_path), **basic_security_properties()}
    async with cluster(props) as c:
        starting = asyncio.create_task(c.start("broker"))
        await asyncio.sleep(1.5)  # no coordinator yet: the broker keeps waiting
        assert not starting.done()
        coord = await c.start("coordinator")
        broker = await asyncio.wait_for(starting, 30)
        brokers = coord.service.provider.get_for_node_role("broker")
        await wait_until(lambda: bool(brokers.get_all_nodes()), within=10, what="announced")
        # the very first request with valid credentials is served
        r = await c.http.get(broker.url + "/status", auth=ADMIN)
        assert r.status_code == 200, r.text


async def test_the_wait_is_bounded_then_logins_fail_until_the_first_fetch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    props = {
        **sqlite_properties(tmp_path),
        **basic_security_properties(),
        "druid.auth.basic.common.maxSyncRetries": "2",  # waits 1 s
    }
    async with cluster(props) as c:
        broker = await asyncio.wait_for(c.start("broker"), 30)
        assert "no coordinator gave the security maps within 1 s" in caplog.text
        assert (await c.http.get(broker.url + "/status", auth=ADMIN)).status_code == 401
        await c.start("coordinator")

        async def served() -> bool:
            r = await c.http.get(broker.url + "/status", auth=ADMIN)
            return r.status_code == 200

        await wait_until(served, within=15, what="the broker's first fetch")
