"""LeaderSelector on an in-memory compare-and-swap lock: election, failover, step-down, no overlap.

The lock is shared state (record text + version counter); each candidate reaches it through its
own handle, which can be paused (calls hang, as in a hung process or a partitioned node) or made
to fail its next calls. Timings are short (lease 1.0 s, renew 0.6 s, retry 0.15 s); waits are on
predicates under deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from common.aio import TaskGroup, wait_until
from common.discovery.leader import LeaderRecord, LeaderSelector
from common.errors import ServiceUnavailable

LEASE, RENEW, RETRY = 1.0, 0.6, 0.15
#: Scheduling slack for a loaded 2-core machine.
MARGIN = 0.45


class Store:
    """The one lock object all candidates share."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.exists = False
        self.version = 0
        self.writes: list[LeaderRecord] = []

    @property
    def record(self) -> LeaderRecord | None:
        return LeaderRecord.from_json(self.text)


class MemoryLock:
    """A candidate's handle on the store: a ``LeaseLock`` with fault injection."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.paused = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.fail_next = 0
        self.calls = 0
        self.writes = 0

    def pause(self) -> None:
        self.paused.set()
        self._resumed.clear()

    def resume(self) -> None:
        self.paused.clear()
        self._resumed.set()

    async def _gate(self) -> None:
        self.calls += 1
        await asyncio.sleep(0)  # a real lock does I/O: let others run
        while self.paused.is_set():
            await self._resumed.wait()
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError(f"{self.name}: injected failure")

    async def get(self) -> tuple[LeaderRecord | None, str] | None:
        await self._gate()
        if not self.store.exists:
            return None
        return LeaderRecord.from_json(self.store.text), str(self.store.version)

    async def create(self, record: LeaderRecord) -> bool:
        await self._gate()
        if self.store.exists:
            return False
        self.store.exists = True
        self._write(record)
        return True

    async def update(self, record: LeaderRecord, version: str) -> bool:
        await self._gate()
        if not self.store.exists or str(self.store.version) != version:
            return False
        self._write(record)
        return True

    def _write(self, record: LeaderRecord) -> None:
        self.store.text = record.to_json()
        self.store.version += 1
        self.store.writes.append(record)
        self.writes += 1

    def describe(self) -> str:
        return f"memory lock via {self.name}"


@dataclass
class Interval:
    who: str
    term: int
    start: float
    end: float | None = None


@dataclass
class Recorder:
    """Every candidate's "I am leader" intervals, on one monotonic clock."""

    intervals: list[Interval] = field(default_factory=list)

    def open_for(self, who: str) -> Interval | None:
        for iv in self.intervals:
            if iv.who == who and iv.end is None:
                return iv
        return None

    def assert_no_overlap(self) -> None:
        ivs = sorted(self.intervals, key=lambda iv: iv.start)
        for a, b in itertools.pairwise(ivs):
            assert a.end is not None, f"{a.who} still leads while {b.who} became leader"
            assert a.end <= b.start, f"{a.who} led until {a.end}, {b.who} from {b.start}"


class Listener:
    def __init__(self, who: str, recorder: Recorder, fail_first: int = 0) -> None:
        self.who = who
        self.recorder = recorder
        self.fail_first = fail_first
        self.work_cancelled = asyncio.Event()
        self.became = asyncio.Event()
        self.stopped = asyncio.Event()

    async def become_leader(self, term: int, work: TaskGroup) -> None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("become_leader failed on purpose")
        assert self.recorder.open_for(self.who) is None, "become_leader twice without stop"
        self.recorder.intervals.append(Interval(self.who, term, time.monotonic()))
        self.became.set()
        work.start(self._duty(), "duty")

    async def _duty(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.work_cancelled.set()
            raise

    async def stop_being_leader(self) -> None:
        iv = self.recorder.open_for(self.who)
        assert iv is not None, "stop_being_leader without become_leader"
        iv.end = time.monotonic()
        self.stopped.set()


@dataclass
class Candidate:
    who: str
    lock: MemoryLock
    selector: LeaderSelector
    listener: Listener


class Election:
    def __init__(self) -> None:
        self.store = Store()
        self.recorder = Recorder()
        self.candidates: dict[str, Candidate] = {}

    def add(self, who: str, *, fail_first: int = 0) -> Candidate:
        lock = MemoryLock(self.store, who)
        identity = f"http://{who}:8081"
        selector = LeaderSelector(
            lock,
            identity,
            role="coordinator",
            lease_duration=LEASE,
            renew_deadline=RENEW,
            retry_period=RETRY,
        )
        listener = Listener(who, self.recorder, fail_first=fail_first)
        cand = Candidate(who, lock, selector, listener)
        self.candidates[who] = cand
        selector.register_listener(listener)
        return cand

    def leaders(self) -> list[Candidate]:
        return [c for c in self.candidates.values() if c.selector.is_leader()]

    async def one_leader(self, within: float = 3.0) -> Candidate:
        await wait_until(lambda: len(self.leaders()) == 1, within=within, what="one leader")
        (leader,) = self.leaders()
        return leader

    async def close(self) -> None:
        for c in self.candidates.values():
            c.lock.resume()
        for c in self.candidates.values():
            # Bounded: a selector whose close() hangs fails the test instead of hanging it.
            await asyncio.wait_for(c.selector.close(), 5.0)


@pytest.fixture
async def election() -> AsyncIterator[Election]:
    e = Election()
    try:
        yield e
    finally:
        await e.close()
        e.recorder.assert_no_overlap()


# ---------------------------------------------------------------------------------------------


async def test_single_candidate_becomes_leader(election: Election) -> None:
    c = election.add("c1")
    await election.one_leader()
    assert c.selector.term == 1
    assert c.selector.current_leader() == "http://c1:8081"
    rec = election.store.record
    assert rec is not None
    assert rec.holder_identity == "http://c1:8081"
    assert rec.leader_transitions == 0
    assert rec.lease_duration_seconds == 1
    c.selector.check_term(1)
    with pytest.raises(ServiceUnavailable):
        c.selector.check_term(2)


async def test_leader_keeps_renewing(election: Election) -> None:
    c = election.add("c1")
    await election.one_leader()
    first = election.store.record
    assert first is not None
    writes = len(election.store.writes)
    await wait_until(lambda: len(election.store.writes) >= writes + 3, within=3.0, what="renewals")
    rec = election.store.record
    assert rec is not None
    assert rec.holder_identity == first.holder_identity
    assert rec.acquire_time == first.acquire_time
    assert rec.leader_transitions == first.leader_transitions
    assert c.selector.term == 1 and c.selector.is_leader()


@pytest.mark.parametrize("n", [2, 3])
async def test_exactly_one_leader_among_candidates(election: Election, n: int) -> None:
    for i in range(n):
        election.add(f"c{i}")
    leader = await election.one_leader()
    followers = [c for c in election.candidates.values() if c is not leader]
    # Let every follower try several times more; still exactly one leader, and all agree on it.
    marks = {c.who: c.lock.calls for c in followers}
    await wait_until(
        lambda: all(c.lock.calls >= marks[c.who] + 4 for c in followers),
        within=5.0,
        what="followers retrying",
    )
    assert election.leaders() == [leader]
    for c in followers:
        assert c.selector.current_leader() == leader.selector.identity
        assert c.selector.term == 0
        with pytest.raises(ServiceUnavailable):
            c.selector.check_term(1)


async def test_clean_close_releases_and_follower_takes_over_quickly(election: Election) -> None:
    election.add("c1")
    election.add("c2")
    leader = await election.one_leader()
    (follower,) = [c for c in election.candidates.values() if c is not leader]
    # The follower has seen the leader's record.
    await wait_until(
        lambda: follower.selector.current_leader() == leader.selector.identity,
        within=2.0,
        what="follower sees leader",
    )
    t_close = time.monotonic()
    await leader.selector.close()
    assert not leader.selector.is_leader()
    assert leader.listener.work_cancelled.is_set()
    released = [w for w in election.store.writes if w.holder_identity == ""]
    assert released, "close() did not release the lock"

    await asyncio.wait_for(follower.listener.became.wait(), RETRY + MARGIN + 1.0)
    took_over = election.recorder.open_for(follower.who)
    assert took_over is not None
    elapsed = took_over.start - t_close
    assert elapsed <= RETRY + MARGIN, f"takeover {elapsed:.3f}s after release"
    rec = election.store.record
    assert rec is not None and rec.holder_identity == follower.selector.identity
    assert rec.leader_transitions == 1


async def test_hung_leader_steps_down_before_follower_takes_over(election: Election) -> None:
    election.add("c1")
    election.add("c2")
    leader = await election.one_leader()
    (follower,) = [c for c in election.candidates.values() if c is not leader]
    await wait_until(
        lambda: follower.selector.current_leader() == leader.selector.identity,
        within=2.0,
        what="follower sees leader",
    )
    t_pause = time.monotonic()
    leader.lock.pause()

    await asyncio.wait_for(leader.listener.stopped.wait(), RENEW + MARGIN + 1.0)
    t_down = time.monotonic()
    assert t_down - t_pause <= RENEW + MARGIN, f"stepped down {t_down - t_pause:.3f}s after hang"
    assert not leader.selector.is_leader()
    assert leader.listener.work_cancelled.is_set()
    with pytest.raises(ServiceUnavailable):
        leader.selector.check_term(1)

    await asyncio.wait_for(follower.listener.became.wait(), LEASE + MARGIN + 1.0)
    took_over = election.recorder.open_for(follower.who)
    assert took_over is not None
    # Not before the lease expired: the last renewal was at most one retry period before the hang.
    assert took_over.start - t_pause >= LEASE - RETRY - 0.05
    (old,) = [iv for iv in election.recorder.intervals if iv.who == leader.who]
    assert old.end is not None and old.end <= took_over.start
    rec = election.store.record
    assert rec is not None and rec.holder_identity == follower.selector.identity
    assert rec.leader_transitions == 1

    # The old leader comes back: it sees a live lease held by another and stays a follower.
    mark = leader.lock.calls
    leader.lock.resume()
    await wait_until(lambda: leader.lock.calls >= mark + 3, within=3.0, what="old leader retries")
    assert election.leaders() == [follower]
    assert leader.selector.current_leader() == follower.selector.identity


async def test_failing_lock_calls_within_deadline_keep_leadership(election: Election) -> None:
    c = election.add("c1")
    await election.one_leader()
    writes = len(election.store.writes)
    c.lock.fail_next = 1
    await wait_until(lambda: len(election.store.writes) >= writes + 2, within=3.0, what="renewal")
    assert c.lock.fail_next == 0
    assert c.selector.is_leader()
    assert c.selector.term == 1
    assert not c.listener.stopped.is_set()


async def test_failing_lock_steps_down_then_regains_with_new_term(election: Election) -> None:
    c = election.add("c1")
    await election.one_leader()
    t_fail = time.monotonic()
    c.lock.fail_next = 10**6
    await asyncio.wait_for(c.listener.stopped.wait(), RENEW + MARGIN + 1.0)
    assert time.monotonic() - t_fail <= RENEW + MARGIN
    assert not c.selector.is_leader()
    with pytest.raises(ServiceUnavailable):
        c.selector.check_term(1)

    c.listener.became.clear()
    c.lock.fail_next = 0
    await asyncio.wait_for(c.listener.became.wait(), LEASE + MARGIN + 1.0)
    assert c.selector.is_leader()
    assert c.selector.term == 2
    c.selector.check_term(2)
    with pytest.raises(ServiceUnavailable):
        c.selector.check_term(1)


async def test_become_leader_failure_resigns_and_releases(election: Election) -> None:
    c = election.add("c1", fail_first=1)
    await asyncio.wait_for(c.listener.became.wait(), 3.0)
    assert c.selector.is_leader()
    assert c.selector.term == 2
    holders = [w.holder_identity for w in election.store.writes]
    # Took it, released it after the failed become_leader, took it again.
    assert holders[0] == "http://c1:8081"
    assert "" in holders
    assert holders[-1] == "http://c1:8081"


async def test_follower_close_does_not_touch_the_lock(election: Election) -> None:
    election.add("c1")
    election.add("c2")
    leader = await election.one_leader()
    (follower,) = [c for c in election.candidates.values() if c is not leader]
    await follower.selector.close()
    assert follower.lock.writes == 0
    rec = election.store.record
    assert rec is not None and rec.holder_identity == leader.selector.identity
    assert leader.selector.is_leader()


def test_timings_are_validated() -> None:
    lock = MemoryLock(Store(), "x")
    with pytest.raises(ValueError, match="leaseDuration"):
        LeaderSelector(
            lock, "x", role="coordinator", lease_duration=1.0, renew_deadline=1.0, retry_period=0.1
        )
    with pytest.raises(ValueError, match="leaseDuration"):
        LeaderSelector(
            lock, "x", role="coordinator", lease_duration=1.0, renew_deadline=0.5, retry_period=0.5
        )


async def test_listener_registered_once(election: Election) -> None:
    c = election.add("c1")
    with pytest.raises(RuntimeError):
        c.selector.register_listener(c.listener)


# ---------------------------------------------------------------------------------------------
# safety when the leader is slow (not hung); both were overlap bugs found by these tests


async def test_slow_become_leader_keeps_the_lease(election: Election) -> None:
    c1 = election.add("c1")

    async def slow_become(term: int, work: TaskGroup) -> None:
        election.recorder.intervals.append(Interval("c1", term, time.monotonic()))
        c1.listener.became.set()
        # Leader-only start-up work that outlasts the lease (e.g. loading state); it is
        # cancelled when leadership ends.
        await asyncio.Event().wait()

    c1.listener.become_leader = slow_become  # type: ignore[method-assign]
    await asyncio.wait_for(c1.listener.became.wait(), 2.0)
    c2 = election.add("c2")
    # The leader keeps renewing while its start-up work runs, for longer than a lease...
    mark = c1.lock.writes
    renewals = int(LEASE / RETRY) + 2
    await wait_until(
        lambda: c1.lock.writes >= mark + renewals, within=5.0, what="renewals during start-up"
    )
    # ...so the follower never takes over.
    assert election.leaders() == [c1]
    assert not c2.listener.became.is_set()
    assert c1.selector.term == 1
    assert c2.selector.current_leader() == c1.selector.identity


async def test_slow_renew_reply_does_not_overlap_a_takeover() -> None:
    lease, renew, retry = 1.0, 0.9, 0.1
    store, recorder = Store(), Recorder()

    class SlowReplyLock(MemoryLock):
        slow_next_update = 0.0

        async def update(self, record: LeaderRecord, version: str) -> bool:
            ok = await super().update(record, version)
            if self.slow_next_update:
                delay, self.slow_next_update = self.slow_next_update, 0.0
                await asyncio.sleep(delay)  # simulated network latency of the reply
                self.pause()  # then the process hangs
            return ok

    made: list[Candidate] = []
    for who, cls in (("c1", SlowReplyLock), ("c2", MemoryLock)):
        lock = cls(store, who)
        sel = LeaderSelector(
            lock,
            f"http://{who}:8081",
            role="overlord",
            lease_duration=lease,
            renew_deadline=renew,
            retry_period=retry,
        )
        listener = Listener(who, recorder)
        made.append(Candidate(who, lock, sel, listener))
        sel.register_listener(listener)
        if who == "c1":
            await asyncio.wait_for(listener.became.wait(), 2.0)
    c1, c2 = made
    try:
        assert isinstance(c1.lock, SlowReplyLock)
        c1.lock.slow_next_update = 0.6
        await asyncio.wait_for(c2.listener.became.wait(), 4.0)
        await asyncio.wait_for(c1.listener.stopped.wait(), 2.0)
        recorder.assert_no_overlap()
    finally:
        for c in made:
            c.lock.resume()
            await c.selector.close()
