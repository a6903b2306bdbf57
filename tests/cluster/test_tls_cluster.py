"""TLS only (``druid.enablePlaintextPort=false``) with basic security: nodes announce https URLs,
the coordinator loads segments onto the historicals over TLS (long polling and the load queue,
with the escalator's credentials), the broker queries them over TLS, and a client that does not
trust the cluster's CA is refused. The coordinator and the overlord fail over to a second
candidate, and batch ingestion, loading and queries go on."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest

from common.aio import wait_until
from services.historical.service import HistoricalService
from tests.cluster.test_batch_cluster import TASK, index_parallel, json_rows, schema
from tests.cluster.test_ingest_e2e import cluster_props
from tests.support.cluster import cluster, sqlite_properties
from tests.support.security import ADMIN, basic_security_properties
from tests.support.segments import COORD, historical_props, make_segment
from tests.support.tls import make_pki, tls_properties

pytestmark = pytest.mark.slow


async def test_tls_only_cluster_loads_and_queries_over_https(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    props = {**sqlite_properties(tmp_path), **basic_security_properties(), **tls_properties(pki)}
    async with cluster(props) as c:
        coord = await c.start("coordinator")
        await c.start("historical", "h1", **historical_props(tmp_path, "h1"))
        broker = await c.start("broker")
        assert coord.url.startswith("https://") and broker.url.startswith("https://")
        trusted = httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(pki.ca)), timeout=10
        )
        try:

            async def leads() -> bool:
                r = await trusted.get(f"{coord.url}{COORD}/isLeader")
                return r.status_code == 200

            await wait_until(leads, within=20, what="coordinator leadership")
            historicals = coord.service.provider.get_for_node_role("historical")
            await wait_until(lambda: bool(historicals.get_all_nodes()), within=20, what="h1")
            announced = historicals.get_all_nodes()
            assert [n.druid_node.url.split(":")[0] for n in announced] == ["https"]

            segs = [make_segment(tmp_path, d) for d in range(2)]
            assert await coord.service.store.insert_segments(segs) == 2

            def loaded() -> bool:
                return all(
                    node.service.announcer.is_served(s.id)  # type: ignore[attr-defined]
                    for node in c.nodes.values()
                    if isinstance(node.service, HistoricalService)
                    for s in segs
                )

            await wait_until(loaded, within=30, what="segments loaded over TLS")
            query = {
                "queryType": "timeseries",
                "dataSource": "wiki",
                "intervals": ["2024-01-01/2024-01-03"],
                "granularity": "all",
                "aggregations": [{"type": "count", "name": "n"}],
            }

            async def answered() -> bool:
                r = await trusted.post(f"{broker.url}/druid/v2", json=query, auth=ADMIN)
                assert r.status_code == 200, r.text
                return r.json() == [{"timestamp": "2024-01-01T00:00:00.000Z", "result": {"n": 40}}]

            await wait_until(answered, within=20, what="the broker's answer over TLS")
            assert (await trusted.post(f"{broker.url}/druid/v2", json=query)).status_code == 401
        finally:
            await trusted.aclose()
        async with httpx.AsyncClient(timeout=5) as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get(f"{coord.url}/status/health")


async def test_coordinator_leader_failover_over_tls_with_credentials(tmp_path: Path) -> None:
    """Two coordinators, TLS only and basic security: the leader stops, the other takes over,
    loads a segment published after the failover, and the broker keeps answering with
    credentials (and 401 without)."""
    pki = make_pki(tmp_path)
    props = {**sqlite_properties(tmp_path), **basic_security_properties(), **tls_properties(pki)}
    async with cluster(props) as c:
        c1 = await c.start("coordinator", "c1")
        await wait_until(lambda: c1.service.selector.is_leader(), within=20, what="c1 leads")  # type: ignore[attr-defined]
        c2 = await c.start("coordinator", "c2")
        await c.start("historical", "h1", **historical_props(tmp_path, "h1"))
        broker = await c.start("broker")
        trusted = httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(pki.ca)), timeout=10
        )
        try:
            segs = [make_segment(tmp_path, d) for d in range(3)]
            assert await c1.service.store.insert_segments(segs[:2]) == 2

            def served(n: int) -> bool:
                return all(
                    node.service.announcer.is_served(s.id)  # type: ignore[attr-defined]
                    for node in c.nodes.values()
                    if isinstance(node.service, HistoricalService)
                    for s in segs[:n]
                )

            await wait_until(lambda: served(2), within=30, what="two segments loaded by c1")
            await c.stop("c1")
            await wait_until(lambda: c2.service.selector.is_leader(), within=30, what="c2 leads")  # type: ignore[attr-defined]
            leader = await trusted.get(f"{c2.url}{COORD}/leader", auth=ADMIN)
            assert leader.status_code == 200 and leader.text.strip('"') == c2.url, leader.text
            # only a leading coordinator assigns segments: this one is c2's work
            assert await c2.service.store.insert_segments(segs[2:]) == 1
            await wait_until(lambda: served(3), within=30, what="the third segment loaded by c2")
            query = {
                "queryType": "timeseries",
                "dataSource": "wiki",
                "intervals": ["2024-01-01/2024-01-04"],
                "granularity": "all",
                "aggregations": [{"type": "count", "name": "n"}],
            }

            async def answered() -> bool:
                r = await trusted.post(f"{broker.url}/druid/v2", json=query, auth=ADMIN)
                assert r.status_code == 200, r.text
                return r.json() == [{"timestamp": "2024-01-01T00:00:00.000Z", "result": {"n": 60}}]

            await wait_until(answered, within=30, what="the broker's answer after failover")
            assert (await trusted.post(f"{broker.url}/druid/v2", json=query)).status_code == 401
        finally:
            await trusted.aclose()


async def _ingest(http: httpx.AsyncClient, overlord: str, day: int, n: int) -> str:
    """Submit an ``index_parallel`` task of ``n`` inline rows on 2024-01-0``day`` (as admin)."""
    task = index_parallel(
        schema("web", [f"2024-01-0{day}/2024-01-0{day + 1}"]),
        {"type": "inline", "data": json_rows(day, n, day)},
        {"type": "json"},
    )
    r = await http.post(f"{overlord}{TASK}", json=task, auth=ADMIN)
    assert r.status_code == 200, r.text
    return str(r.json()["task"])


async def _succeeded(http: httpx.AsyncClient, overlord: str, task_id: str) -> bool:
    r = await http.get(f"{overlord}{TASK}/{task_id}/status", auth=ADMIN)
    if r.status_code == 503:  # a new leader is still starting its task queue (as in Druid)
        return False
    assert r.status_code == 200, r.text
    state = r.json()["status"]["status"]
    assert state in ("RUNNING", "SUCCESS"), r.text
    return bool(state == "SUCCESS")


async def test_overlord_and_coordinator_failover_keep_ingesting_over_tls_with_credentials(
    tmp_path: Path,
) -> None:
    """Two overlords and two coordinators, TLS only and basic security. A batch task is
    submitted to the leading overlord, then both leaders stop at once: the other overlord takes
    over (the task, finished or adopted from the peon, reads SUCCESS there), ingests another
    day, the other coordinator loads it, and the broker answers for both days with credentials
    only."""
    pki = make_pki(tmp_path)
    props = {**cluster_props(tmp_path), **basic_security_properties(), **tls_properties(pki)}
    async with cluster(props) as c:
        c1 = await c.start("coordinator", "c1")
        o1 = await c.start("overlord", "o1")
        await wait_until(lambda: c1.service.selector.is_leader(), within=20, what="c1 leads")  # type: ignore[attr-defined]
        await wait_until(lambda: o1.service.selector.is_leader(), within=20, what="o1 leads")  # type: ignore[attr-defined]
        c2 = await c.start("coordinator", "c2")
        o2 = await c.start("overlord", "o2")
        await c.start("historical", "h1", **historical_props(tmp_path, "h1"))
        broker = await c.start("broker")
        await c.start("peon")
        http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(pki.ca)), timeout=10)
        try:

            async def worker_seen(overlord: str) -> bool:
                r = await http.get(f"{overlord}/druid/indexer/v1/workers", auth=ADMIN)
                return r.status_code == 200 and len(r.json()) == 1

            await wait_until(lambda: worker_seen(o1.url), within=30, what="o1 sees the peon")
            first = await _ingest(http, o1.url, 1, 12)
            await asyncio.gather(c.stop("o1"), c.stop("c1"))
            await wait_until(lambda: o2.service.selector.is_leader(), within=30, what="o2 leads")  # type: ignore[attr-defined]
            await wait_until(lambda: c2.service.selector.is_leader(), within=30, what="c2 leads")  # type: ignore[attr-defined]
            await wait_until(
                lambda: _succeeded(http, o2.url, first), within=60, what="day 1 task at o2"
            )
            await wait_until(lambda: worker_seen(o2.url), within=30, what="o2 sees the peon")
            second = await _ingest(http, o2.url, 2, 8)
            await wait_until(
                lambda: _succeeded(http, o2.url, second), within=60, what="day 2 task at o2"
            )
            query = {
                "queryType": "timeseries",
                "dataSource": "web",
                "intervals": ["2024-01-01/2024-01-03"],
                "granularity": "all",
                "aggregations": [
                    {"type": "longSum", "name": "rows", "fieldName": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                ],
            }

            async def both_days() -> bool:
                r = await http.post(f"{broker.url}/druid/v2", json=query, auth=ADMIN)
                assert r.status_code == 200, r.text
                return r.json() == [
                    {
                        "timestamp": "2024-01-01T00:00:00.000Z",
                        "result": {"rows": 20, "added": 12 * 1 + 8 * 2},
                    }
                ]

            await wait_until(both_days, within=60, what="both days queryable after failover")
            assert (await http.post(f"{broker.url}/druid/v2", json=query)).status_code == 401
            leader = await http.get(f"{o2.url}/druid/indexer/v1/leader", auth=ADMIN)
            assert leader.status_code == 200 and leader.text.strip('"') == o2.url, leader.text
        finally:
            await http.aclose()
