"""All five roles plus a second coordinator and overlord, on the ``metadata`` backend (SQLite).

Every role discovers every other; exactly one leader per election; followers redirect; a clean stop
fails over within ``retryPeriod`` + 1 s; a leader whose renewals hang steps down before a follower
takes over, and the follower waits the whole lease: leadership intervals never overlap.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from common.aio import TaskGroup, wait_until
from common.config import ROLES
from common.discovery.leader import LeaderRecord
from common.leadership import ElectedService
from tests.support.cluster import Cluster, Node, cluster, sqlite_properties

pytestmark = pytest.mark.slow

RETRY = 0.5
LEASE = 3.0
RENEW = 2.0


class LeadershipLog:
    """Records (start, end) of each node's leadership per term, on one monotonic clock."""

    def __init__(self) -> None:
        self.intervals: dict[str, list[list[float]]] = {}
        self.terms: dict[str, list[int]] = {}
        self.roles: dict[str, str] = {}

    def watch(self, node: Node) -> None:
        service = node.service
        assert isinstance(service, ElectedService)
        became, stopped = service.on_become_leader, service.on_stop_being_leader
        spans = self.intervals.setdefault(node.name, [])
        terms = self.terms.setdefault(node.name, [])
        self.roles[node.name] = node.role

        def begin(term: int) -> None:
            # One span per term: the selector counts itself leader before its listener runs,
            # so a hook attached in between sees the term both here and in the listener.
            if term not in terms:
                terms.append(term)
                spans.append([time.monotonic(), float("inf")])

        if service.selector is not None and service.selector.is_leader():
            # Won before we could hook it; it was alone then, so nothing can have overlapped.
            begin(service.selector.term)

        async def on_become_leader(term: int, work: TaskGroup) -> None:
            begin(term)
            await became(term, work)

        async def on_stop_being_leader() -> None:
            spans[-1][1] = time.monotonic()
            await stopped()

        service.on_become_leader = on_become_leader  # type: ignore[method-assign]
        service.on_stop_being_leader = on_stop_being_leader  # type: ignore[method-assign]

    def assert_no_overlap(self) -> None:
        """Within each election (role), one leadership ends before the next begins."""
        for role in set(self.roles.values()):
            spans = sorted(
                (start, end, name)
                for name, ss in self.intervals.items()
                if self.roles[name] == role
                for start, end in ss
            )
            for (_, e1, n1), (s2, _, n2) in itertools.pairwise(spans):
                assert e1 <= s2, f"{n1} led until {e1:.3f} but {n2} led from {s2:.3f}"


class HangingLock:
    """Wraps a node's lease lock; once ``hang()`` is called every call blocks (a hung process)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hung = asyncio.Event()
        self.never = asyncio.Event()

    def hang(self) -> None:
        self.hung.set()

    async def _gate(self) -> None:
        if self.hung.is_set():
            await self.never.wait()

    async def get(self) -> tuple[LeaderRecord | None, str] | None:
        await self._gate()
        result: tuple[LeaderRecord | None, str] | None = await self.inner.get()
        return result

    async def create(self, record: LeaderRecord) -> bool:
        await self._gate()
        return bool(await self.inner.create(record))

    async def update(self, record: LeaderRecord, version: str) -> bool:
        await self._gate()
        return bool(await self.inner.update(record, version))

    def describe(self) -> str:
        return f"hanging {self.inner.describe()}"


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(sqlite_properties(tmp_path)) as c:
        yield c


async def start_all(c: Cluster, log: LeadershipLog) -> None:
    for role in ROLES:
        node = await c.start(role)
        if role in ("coordinator", "overlord"):
            log.watch(node)
    log.watch(await c.start("coordinator", name="coordinator2"))
    log.watch(await c.start("overlord", name="overlord2"))


async def leaders(c: Cluster, names: tuple[str, ...], prefix: str) -> list[str]:
    result = []
    for name in names:
        resp = await c.get(name, f"{prefix}/isLeader")
        assert resp.status_code in (200, 404), resp.text
        if resp.status_code == 200:
            assert resp.json() == {"leader": True}
            result.append(name)
        else:
            assert resp.json() == {"leader": False}
    return result


COORDS = ("coordinator", "coordinator2")
OVERLORDS = ("overlord", "overlord2")
CPFX = "/druid/coordinator/v1"
OPFX = "/druid/indexer/v1"


async def test_every_role_discovers_every_other_and_one_leader_each(c: Cluster) -> None:
    log = LeadershipLog()
    await start_all(c, log)
    expected = {
        role: sorted(n.settings.host_and_port for n in c.nodes.values() if n.role == role)
        for role in ROLES
    }

    async def all_discovered() -> bool:
        for name in c.nodes:
            view = (await c.get(name, "/druid-internal/v1/discovery")).json()
            if any(view[r]["nodes"] != expected[r] or not view[r]["initialized"] for r in ROLES):
                return False
        return True

    await wait_until(all_discovered, within=10, what="every node to discover every other")
    await wait_until(lambda: _one_leader(c, COORDS, CPFX), within=10, what="one coordinator leader")
    await wait_until(lambda: _one_leader(c, OVERLORDS, OPFX), within=10, what="one overlord leader")
    for name in c.nodes:
        assert (await c.get(name, "/status/selfDiscovered")).status_code == 200

    # Followers answer /leader locally with the leader's URL and redirect leader-only paths.
    [coord_leader] = await leaders(c, COORDS, CPFX)
    follower = next(n for n in COORDS if n != coord_leader)
    leader_url = c.nodes[coord_leader].url
    assert (await c.get(follower, f"{CPFX}/leader")).text == leader_url
    resp = await c.get(follower, f"{CPFX}/rules?x=1")
    assert resp.status_code == 307
    assert resp.headers["location"] == f"{leader_url}{CPFX}/rules?x=1"
    resp = await c.http.get(c.nodes[follower].url + f"{CPFX}/rules", follow_redirects=True)
    assert resp.status_code == 200 and "_default" in resp.json()

    [ov_leader] = await leaders(c, OVERLORDS, OPFX)
    ov_follower = next(n for n in OVERLORDS if n != ov_leader)
    resp = await c.get(ov_follower, f"{OPFX}/workers")
    assert resp.status_code == 307
    assert resp.headers["location"].startswith(c.nodes[ov_leader].url)
    log.assert_no_overlap()


async def _one_leader(c: Cluster, names: tuple[str, ...], prefix: str) -> bool:
    return len(await leaders(c, names, prefix)) == 1


async def test_clean_stop_fails_over_within_retry_period(c: Cluster) -> None:
    log = LeadershipLog()
    log.watch(await c.start("coordinator"))
    await wait_until(lambda: c.nodes["coordinator"].service.selector.is_leader(), within=10)  # type: ignore[attr-defined]
    log.watch(await c.start("coordinator", name="coordinator2"))
    await wait_until(
        lambda: c.nodes["coordinator2"].service.selector.current_leader() is not None,  # type: ignore[attr-defined]
        within=10,
    )
    stopped_at = time.monotonic()
    await c.stop("coordinator")
    await wait_until(
        lambda: bool(log.intervals["coordinator2"]), within=RETRY + 1.0, what="takeover"
    )
    took = log.intervals["coordinator2"][0][0] - stopped_at
    assert took <= RETRY + 1.0
    resp = await c.get("coordinator2", f"{CPFX}/isLeader")
    assert resp.status_code == 200
    log.assert_no_overlap()


async def test_hung_leader_steps_down_before_takeover_after_lease(c: Cluster) -> None:
    log = LeadershipLog()
    first = await c.start("coordinator")
    log.watch(first)
    selector = first.service.selector  # type: ignore[attr-defined]
    hanging = HangingLock(selector.lock)
    selector.lock = hanging
    await wait_until(selector.is_leader, within=10, what="first coordinator to lead")
    second = await c.start("coordinator", name="coordinator2")
    log.watch(second)
    await wait_until(
        lambda: second.service.selector.current_leader() == first.url,  # type: ignore[attr-defined]
        within=10,
    )

    hanging.hang()
    hung_at = time.monotonic()
    # The hung leader gives up within its renew deadline (measured from its last renewal, which
    # was at most one retry period before the hang)...
    await wait_until(lambda: not selector.is_leader(), within=RENEW + 1.0, what="step-down")
    stepped_down = log.intervals["coordinator"][0][1]
    assert stepped_down - hung_at <= RENEW + 0.2
    assert not log.intervals.get("coordinator2"), "follower must not lead before the lease expired"
    # ...and while nobody leads, leader-only paths answer 503 on the stepped-down node.
    resp = await c.get("coordinator", f"{CPFX}/rules")
    assert resp.status_code == 503
    assert resp.json()["error"] == "Service unavailable"

    await wait_until(
        lambda: bool(log.intervals.get("coordinator2")), within=LEASE + 2.0, what="takeover"
    )
    took_over = log.intervals["coordinator2"][0][0]
    # The follower waited a whole lease from the last renewal it saw (before the hang).
    assert took_over - hung_at >= LEASE - RETRY - 0.1
    log.assert_no_overlap()
    hanging.never.set()  # let the hung calls finish so the node can stop cleanly
