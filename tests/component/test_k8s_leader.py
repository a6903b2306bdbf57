"""Leader election over the ConfigMap and Lease locks against the API-server double.

Short lease settings (lease 2 s, renew deadline 1.2 s, retry 0.3 s) keep the tests quick; every
leadership interval is recorded (monotonic clock, one process) and checked for overlap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from common.aio import TaskGroup, wait_until
from common.config import load_settings
from common.discovery.leader import LeaderSelector
from common.k8s.backend import K8sDiscoveryBackend
from tests.support.k8s_api import K8sApiDouble, backend_properties

NS = "druid"
LEASE, RENEW, RETRY = 2.0, 1.2, 0.3
LOCK = "dc-leaderelection-coordinator"

pytestmark = pytest.mark.slow


class Recorder:
    """A leader listener that logs [start, end) intervals and runs leader-only work."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.intervals: list[list[float | None]] = []
        self.work_cancelled = 0

    async def become_leader(self, term: int, work: TaskGroup) -> None:
        self.intervals.append([time.monotonic(), None])
        work.start(self._duty(), "duty")

    async def _duty(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.work_cancelled += 1
            raise

    async def stop_being_leader(self) -> None:
        self.intervals[-1][1] = time.monotonic()

    @property
    def leading(self) -> bool:
        return bool(self.intervals) and self.intervals[-1][1] is None


def assert_no_overlap(recorders: list[Recorder]) -> None:
    now = time.monotonic()
    spans = sorted(
        (start, end if end is not None else now, r.name)
        for r in recorders
        for start, end in r.intervals
        if start is not None
    )
    latest_end, holder = float("-inf"), ""
    for start, end, name in spans:
        assert start >= latest_end, f"{holder} led until {latest_end:.3f}; {name} from {start:.3f}"
        if end > latest_end:
            latest_end, holder = end, name


@pytest.fixture(params=["configmap", "lease"])
async def election(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[K8sApiDouble, Callable[[int], Any]]]:
    lock_kind = request.param
    async with K8sApiDouble() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        props = backend_properties(
            kubeconfig,
            **{
                "druid.discovery.k8s.leaderElectionLock": lock_kind,
                "druid.discovery.k8s.leaseDuration": f"PT{LEASE}S",
                "druid.discovery.k8s.renewDeadline": f"PT{RENEW}S",
                "druid.discovery.k8s.retryPeriod": f"PT{RETRY}S",
            },
        )
        settings = load_settings("coordinator", properties=props, environ={})
        backends: list[K8sDiscoveryBackend] = []
        selectors: list[LeaderSelector] = []

        async def candidates(n: int) -> list[tuple[LeaderSelector, Recorder]]:
            out = []
            for i in range(n):
                env = {"POD_NAME": f"c{i}", "POD_NAMESPACE": NS}
                backend = await K8sDiscoveryBackend.create(settings, environ=env)
                backends.append(backend)
                selector = backend.leader_selector("coordinator", f"http://c{i}:8081")
                selectors.append(selector)
                recorder = Recorder(f"c{i}")
                selector.register_listener(recorder)
                out.append((selector, recorder))
            return out

        api.lock_kind = lock_kind  # type: ignore[attr-defined]
        try:
            yield api, candidates
        finally:
            api.resume()
            for s in selectors:
                await s.close()
            for b in backends:
                await b.close()


def read_record(api: K8sApiDouble) -> dict[str, Any]:
    if api.lock_kind == "lease":  # type: ignore[attr-defined]
        return dict(api.store.get("leases", NS, LOCK)["spec"])
    cm = api.store.get("configmaps", NS, LOCK)
    return dict(
        orjson.loads(cm["metadata"]["annotations"]["control-plane.alpha.kubernetes.io/leader"])
    )


def leaders(cands: list[tuple[LeaderSelector, Recorder]]) -> list[str]:
    """Candidates that lead and whose listener has heard so: ``is_leader()`` turns true just
    before ``become_leader`` runs (in the term's work group), and false just before
    ``stop_being_leader``."""
    return [r.name for s, r in cands if s.is_leader() and r.leading]


async def test_exactly_one_leader_and_clean_stop_hands_over_fast(
    election: tuple[K8sApiDouble, Callable[[int], Any]],
) -> None:
    api, candidates = election
    if api.lock_kind == "configmap":  # type: ignore[attr-defined]
        # Other annotations and data of the lock ConfigMap survive every write.
        meta = {"name": LOCK, "annotations": {"keep": "me"}}
        api.store.create("configmaps", NS, {"metadata": meta, "data": {"k": "v"}})
    cands = await candidates(3)
    await wait_until(lambda: len(leaders(cands)) == 1, within=10, what="a leader")
    leader = next(c for c in cands if c[0].is_leader())
    record = read_record(api)
    assert record["holderIdentity"] == leader[0].identity
    assert (record.get("leaderTransitions", record.get("leaseTransitions")) or 0) >= 0
    datetime.fromisoformat(record["renewTime"].replace("Z", "+00:00"))
    if api.lock_kind == "configmap":  # type: ignore[attr-defined]
        assert record["renewTime"].endswith("Z") and len(record["renewTime"]) == 24  # ms
        cm = api.store.get("configmaps", NS, LOCK)
        assert cm["metadata"]["annotations"]["keep"] == "me" and cm["data"] == {"k": "v"}
    # Several renewals later there is still exactly one, and every follower knows who.
    renewed = record["renewTime"]
    await wait_until(lambda: read_record(api)["renewTime"] != renewed, within=5, what="renewal")
    assert leaders(cands) == [leader[1].name]
    await wait_until(
        lambda: all(s.current_leader() == leader[0].identity for s, _ in cands), within=5
    )

    stopped = time.monotonic()
    await leader[0].close()
    assert leader[1].work_cancelled == 1 and not leader[1].leading
    rest = [c for c in cands if c is not leader]
    await wait_until(lambda: len(leaders(rest)) == 1, within=RETRY + 1, what="takeover")
    successor = next(r for s, r in rest if s.is_leader())
    assert successor.intervals[-1][0] - stopped <= RETRY + 1  # type: ignore[operator]
    assert read_record(api)["holderIdentity"] == next(s for s, _ in rest if s.is_leader()).identity
    assert_no_overlap([r for _, r in cands])


async def test_killed_leader_is_replaced_after_the_lease_not_before(
    election: tuple[K8sApiDouble, Callable[[int], Any]],
) -> None:
    api, candidates = election
    cands = await candidates(3)
    await wait_until(lambda: len(leaders(cands)) == 1, within=10, what="a leader")
    victim = next(c for c in cands if c[0].is_leader())
    # kill -9: the loop just stops; no step-down, no release.
    task = victim[0]._loop_task
    assert task is not None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    killed = time.monotonic()
    last_renew = read_record(api)["renewTime"]
    rest = [c for c in cands if c is not victim]
    await wait_until(lambda: len(leaders(rest)) == 1, within=LEASE + 3, what="takeover")
    took = next(r for _, r in rest if r.intervals)
    elapsed = took.intervals[-1][0] - killed  # type: ignore[operator]
    # The last renewal happened at most one retry period before the kill.
    assert LEASE - RETRY - 0.05 <= elapsed <= LEASE + 2 * RETRY + 1, elapsed
    new = read_record(api)
    gap = _ts(new["acquireTime"]) - _ts(last_renew)
    assert gap >= LEASE - 0.05, f"took over {gap:.3f}s after the last renewal"
    assert_no_overlap([r for _, r in rest])


async def test_paused_api_server_makes_the_leader_step_down_first(
    election: tuple[K8sApiDouble, Callable[[int], Any]],
) -> None:
    api, candidates = election
    cands = await candidates(3)
    await wait_until(lambda: len(leaders(cands)) == 1, within=10, what="a leader")
    leader = next(c for c in cands if c[0].is_leader())
    paused = time.monotonic()
    api.pause()
    # is_leader() turns false first; stop_being_leader runs once the leader-only work has stopped.
    await wait_until(lambda: not leader[1].leading, within=RENEW + 1, what="step-down")
    assert not leader[0].is_leader()
    stepped = leader[1].intervals[-1][1]
    assert stepped is not None and stepped - paused <= RENEW + 0.5
    assert leader[1].work_cancelled == 1
    assert leaders(cands) == [] and not any(s.is_leader() for s, _ in cands)
    # Longer than the lease: when the server comes back, someone leads again, never two at once.
    await wait_until(lambda: time.monotonic() - paused > LEASE + 0.5, within=LEASE + 2)
    api.resume()
    await wait_until(lambda: len(leaders(cands)) == 1, within=LEASE + 3, what="a new leader")
    await wait_until(lambda: time.monotonic() - paused > LEASE * 2, within=LEASE * 2 + 1)
    assert len(leaders(cands)) == 1
    assert_no_overlap([r for _, r in cands])


def _ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
