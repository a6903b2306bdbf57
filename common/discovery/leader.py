"""Leader election: a pure lease decision, a thin compare-and-swap loop, and the selector contract.

The algorithm is client-go's ``LeaderElector`` (which Druid's k8s extension uses) with two fixes
Druid lacks: a leader that cannot renew within ``renew_deadline`` of its last successful renewal
steps down (and cancels its leader-only work) before any follower may take over, and a clean stop
releases the lock (empty holder) so a follower takes over at its next try instead of a lease later.

Why no two candidates lead at once: a follower takes over only after the record has stayed
unchanged for ``lease_duration`` on its own clock, counted from when it saw the record change, which
is no earlier than the leader's last successful write; the leader steps down at most
``renew_deadline`` (< ``lease_duration``) after that write. Every write is a compare-and-swap on the
version read (``resourceVersion`` on Kubernetes, a version column in SQL), so two takeovers of one
record cannot both succeed.

Backends implement only ``LeaseLock`` (get / create / update-if-version).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from common.aio import TaskGroup, bounded, cancel_and_wait, wait_event
from common.discovery.node import format_time
from common.errors import ServiceUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaderRecord:
    """client-go's ``LeaderElectionRecord``.

    Stored as JSON in the annotation ``control-plane.alpha.kubernetes.io/leader``.
    """

    holder_identity: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str
    leader_transitions: int

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "holderIdentity": self.holder_identity,
                "leaseDurationSeconds": self.lease_duration_seconds,
                "acquireTime": self.acquire_time,
                "renewTime": self.renew_time,
                "leaderTransitions": self.leader_transitions,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str | bytes | None) -> LeaderRecord | None:
        """The record, or None when empty or unreadable (an unreadable record can be taken over)."""
        if not text:
            return None
        try:
            raw: dict[str, Any] = orjson.loads(text)
            return cls(
                holder_identity=str(raw.get("holderIdentity") or ""),
                lease_duration_seconds=int(raw.get("leaseDurationSeconds") or 0),
                acquire_time=str(raw.get("acquireTime") or ""),
                renew_time=str(raw.get("renewTime") or ""),
                leader_transitions=int(raw.get("leaderTransitions") or 0),
            )
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            log.warning("leader record is not valid JSON, treating it as empty: %r", text)
            return None


class LeaseLock(Protocol):
    """Storage of one leader record with compare-and-swap."""

    async def get(self) -> tuple[LeaderRecord | None, str] | None:
        """``(record, version)``, or None when the lock object does not exist yet."""

    async def create(self, record: LeaderRecord) -> bool:
        """Create the lock object; False when it already exists (another candidate won)."""

    async def update(self, record: LeaderRecord, version: str) -> bool:
        """Replace the record if the version is still ``version``; False when it changed."""

    def describe(self) -> str: ...


# ---------------------------------------------------------------------------------------------
# pure decision


class Action(enum.Enum):
    CREATE = "create"  # no lock object: create it holding it
    RENEW = "renew"  # we hold it: write a fresh renewTime
    TAKE_OVER = "take_over"  # free, released, or expired on our clock: write ourselves in
    WAIT = "wait"  # someone else holds a live lease


@dataclass
class Observation:
    """What a candidate has seen of the record, and when (local monotonic) it last changed."""

    record: LeaderRecord | None = None
    raw: str | None = None
    changed_at: float = 0.0

    def see(self, record: LeaderRecord | None, now: float) -> None:
        raw = record.to_json() if record else None
        if raw != self.raw:
            self.record, self.raw, self.changed_at = record, raw, now


def decide(
    identity: str,
    exists: bool,
    observed: Observation,
    now: float,
    lease_duration: float,
) -> Action:
    """What a candidate should do, given the record it just read (already ``observed.see``-n)."""
    if not exists:
        return Action.CREATE
    record = observed.record
    if record is None or not record.holder_identity:
        return Action.TAKE_OVER
    if record.holder_identity == identity:
        return Action.RENEW
    if now - observed.changed_at >= lease_duration:
        return Action.TAKE_OVER
    return Action.WAIT


def next_record(
    identity: str, action: Action, old: LeaderRecord | None, now: datetime, lease_duration: float
) -> LeaderRecord:
    stamp = format_time(now)
    seconds = max(1, round(lease_duration))
    if action is Action.RENEW and old is not None:
        return replace(old, renew_time=stamp, lease_duration_seconds=seconds)
    transitions = 0 if old is None else old.leader_transitions + 1
    return LeaderRecord(identity, seconds, stamp, stamp, transitions)


def released_record(old: LeaderRecord, now: datetime) -> LeaderRecord:
    """client-go's release: empty holder, 1 s lease, transitions kept."""
    stamp = format_time(now)
    return LeaderRecord("", 1, stamp, stamp, old.leader_transitions)


# ---------------------------------------------------------------------------------------------
# the selector


class LeaderListener(Protocol):
    async def become_leader(self, term: int, work: TaskGroup) -> None:
        """Start leader-only work in ``work``; it is cancelled the moment leadership is lost."""

    async def stop_being_leader(self) -> None: ...


class LeaderSelector:
    """Druid's ``DruidLeaderSelector`` over a ``LeaseLock``."""

    def __init__(
        self,
        lock: LeaseLock,
        identity: str,
        *,
        role: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("leaseDuration > renewDeadline > retryPeriod > 0 is required")
        self.lock = lock
        self.identity = identity
        self.role = role
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._clock = clock
        self._observed = Observation()
        self._leader = False
        self._term = 0
        self._listener: LeaderListener | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._work: TaskGroup | None = None
        self._resign = asyncio.Event()
        self._rng = random.Random()

    # ---- contract
    @property
    def term(self) -> int:
        return self._term

    def is_leader(self) -> bool:
        return self._leader

    def current_leader(self) -> str | None:
        record = self._observed.record
        return record.holder_identity if record and record.holder_identity else None

    def check_term(self, term: int) -> None:
        """Raise unless we still lead in ``term`` (call before each leader-only write)."""
        if not self._leader or self._term != term:
            raise ServiceUnavailable(f"no longer the {self.role} leader (term {term})")

    def register_listener(self, listener: LeaderListener) -> None:
        """Start the election; may be called once."""
        if self._listener is not None:
            raise RuntimeError("a leader listener is already registered")
        self._listener = listener
        self._loop_task = asyncio.get_running_loop().create_task(
            self._run(), name=f"leader-election:{self.role}"
        )

    async def close(self) -> None:
        """Leave the election; a leader stops its work and releases the lock."""
        try:
            if self._loop_task is not None:
                await cancel_and_wait([self._loop_task])
        finally:
            self._loop_task = None
            if self._leader:
                await self._step_down("closing")
                await self._release()

    # ---- the loop
    async def _run(self) -> None:
        while True:
            try:
                acquired_at = await self._acquire()
                await self._become_leader()
                why = await self._renew_until_lost(acquired_at)
                await self._step_down(why)
                if self._resign.is_set():
                    await self._release()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s leader election loop failed; retrying", self.role)
                if self._leader:
                    await self._step_down("election loop error")
                await asyncio.sleep(self.retry_period)

    async def _acquire(self) -> float:
        """Try until we hold the lock; returns when the successful attempt *started*."""
        while True:
            started = self._clock()
            if await self._try_acquire_or_renew():
                return started
            # A little jitter spreads candidates without pushing takeover past one retry period.
            await asyncio.sleep(self.retry_period * self._rng.uniform(0.8, 1.0))

    async def _renew_until_lost(self, last_success: float) -> str:
        """Renew every retry period; return why leadership ended.

        ``last_success`` is when the last successful write was *started*: a follower can only
        have seen it change after that, so stepping down ``renew_deadline`` later is always
        before the follower's ``lease_duration`` runs out, however slow the reply was.
        """
        while True:
            if await wait_event(self._resign, self.retry_period):
                return "the leader listener failed"
            while True:
                remaining = last_success + self.renew_deadline - self._clock()
                if remaining <= 0:
                    return f"could not renew within {self.renew_deadline}s"
                started = self._clock()
                try:
                    ok = await bounded(self._try_acquire_or_renew(), remaining)
                except TimeoutError:
                    return f"could not renew within {self.renew_deadline}s"
                if ok:
                    last_success = started
                    break
                if not self._holds_record():
                    return "another candidate holds the lock"
                if await wait_event(self._resign, min(self.retry_period, max(0.0, remaining))):
                    return "the leader listener failed"

    def _holds_record(self) -> bool:
        record = self._observed.record
        return record is not None and record.holder_identity == self.identity

    async def _try_acquire_or_renew(self) -> bool:
        try:
            got = await self.lock.get()
        except Exception as exc:
            log.info("%s: reading %s failed: %s", self.role, self.lock.describe(), exc)
            return False
        now = self._clock()
        exists = got is not None
        record, version = got if got is not None else (None, "")
        self._observed.see(record, now)
        action = decide(self.identity, exists, self._observed, now, self.lease_duration)
        if action is Action.WAIT:
            return False
        new = next_record(self.identity, action, record, datetime.now(UTC), self.lease_duration)
        try:
            if action is Action.CREATE:
                ok = await self.lock.create(new)
            else:
                ok = await self.lock.update(new, version)
        except Exception as exc:
            log.info("%s: writing %s failed: %s", self.role, self.lock.describe(), exc)
            return False
        if ok:
            self._observed.see(new, self._clock())
        return ok

    async def _become_leader(self) -> None:
        self._term += 1
        self._leader = True
        self._resign.clear()
        self._work = TaskGroup(f"{self.role}-leader-term-{self._term}")
        log.info("%s %s became leader (term %d)", self.role, self.identity, self._term)
        # The listener runs beside the renew loop, so a slow become_leader cannot let the lease
        # lapse while we still lead.
        self._work.start(self._call_become_leader(self._term, self._work), "become-leader")

    async def _call_become_leader(self, term: int, work: TaskGroup) -> None:
        assert self._listener is not None
        try:
            await self._listener.become_leader(term, work)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Druid exits the process here; resigning keeps the cluster safe without a restart.
            log.exception("%s become_leader failed; resigning", self.role)
            self._resign.set()

    async def _step_down(self, why: str) -> None:
        if not self._leader:
            return
        self._leader = False
        log.warning("%s %s stopped being leader: %s", self.role, self.identity, why)
        work, self._work = self._work, None
        try:
            if work is not None:
                await work.close()
        finally:  # the listener hears of it even when this step-down is cancelled half-way
            if self._listener is not None:
                try:
                    await self._listener.stop_being_leader()
                except Exception:
                    log.exception("%s stop_being_leader failed", self.role)

    async def _release(self) -> None:
        try:
            got = await bounded(self.lock.get(), self.retry_period)
            if got is None:
                return
            record, version = got
            if record is None or record.holder_identity != self.identity:
                return
            released = released_record(record, datetime.now(UTC))
            if await bounded(self.lock.update(released, version), self.retry_period):
                self._observed.see(released, self._clock())
                log.info("%s released %s", self.role, self.lock.describe())
        except Exception as exc:
            log.warning("%s could not release %s: %s", self.role, self.lock.describe(), exc)
