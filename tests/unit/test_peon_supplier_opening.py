"""The peon's Kafka consumer opens while the task restores: a start-up no longer wanted (the task
failed to restore, or has nothing left to read) is stopped and what it opened is closed."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from common.ingest.kafka import KafkaRecordSupplier, RecordSupplierError
from services.peon.runner import _close_opening


class FakeSupplier:
    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.started = False
        self.closed = False

    async def open(self) -> KafkaRecordSupplier:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RecordSupplierError("cannot connect to Kafka")
        self.started = True
        return cast(KafkaRecordSupplier, self)

    async def close(self) -> None:
        self.closed = True


async def test_an_opened_supplier_is_closed() -> None:
    fake = FakeSupplier()
    opening = asyncio.create_task(fake.open())
    await asyncio.sleep(0.01)
    assert opening.done()
    await _close_opening(opening)
    assert fake.started and fake.closed


async def test_a_start_in_progress_finishes_and_is_closed() -> None:
    # aiokafka cancelled half-way through its bootstrap leaves that connection open: a start-up
    # in progress is let finish, then closed.
    fake = FakeSupplier(delay=0.05)
    opening = asyncio.create_task(fake.open())
    await asyncio.sleep(0)
    await _close_opening(opening)
    assert not opening.cancelled() and fake.started and fake.closed


async def test_a_start_longer_than_the_grace_is_cancelled() -> None:
    fake = FakeSupplier(delay=10.0)
    opening = asyncio.create_task(fake.open())
    await asyncio.sleep(0)
    await _close_opening(opening, grace=0.01)
    assert opening.cancelled() and not fake.started and not fake.closed


async def test_a_shutdown_during_the_start_up_does_not_cut_it_short() -> None:
    # The runner awaits its start-up shielded: cancelling the runner there leaves the start-up
    # running, and the clean-up closes what it opened.
    fake = FakeSupplier(delay=0.05)
    opening = asyncio.create_task(fake.open())

    async def runner() -> None:
        try:
            await asyncio.shield(opening)
        finally:
            await _close_opening(opening)

    task = asyncio.create_task(runner())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not opening.cancelled() and fake.started and fake.closed


async def test_a_failed_start_is_collected_quietly() -> None:
    fake = FakeSupplier(fail=True)
    opening = asyncio.create_task(fake.open())
    await asyncio.sleep(0.01)
    await _close_opening(opening)  # its error was the task's problem no more: not raised
    assert not fake.closed
    await _close_opening(None)


async def test_the_callers_own_cancellation_propagates() -> None:
    fake = FakeSupplier(delay=10.0)
    release = asyncio.Event()

    async def open_ignoring_cancel() -> Any:
        # A start-up that takes a while to wind down after its cancel.
        try:
            await fake.open()
        except asyncio.CancelledError:
            await release.wait()
            raise

    opening = asyncio.create_task(open_ignoring_cancel())
    await asyncio.sleep(0)
    closer = asyncio.create_task(_close_opening(opening, grace=0))
    await asyncio.sleep(0.01)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    release.set()
    await asyncio.wait([opening])
    assert opening.cancelled()


async def test_a_start_up_already_cancelled_finishes_its_clean_up() -> None:
    # A shutdown cancels the runner while it awaits the start-up, which cancels the start-up;
    # the start-up then closes what it half opened (KafkaRecordSupplier.start). Cancelling it a
    # second time would interrupt that clean-up and leave a Kafka connection open.
    cleaned = asyncio.Event()

    async def start_up() -> KafkaRecordSupplier:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.02)  # closing the half-open consumer
            cleaned.set()
            raise
        raise AssertionError("not reached")

    opening = asyncio.create_task(start_up())
    await asyncio.sleep(0)
    opening.cancel()  # the runner's cancellation reaching the awaited start-up
    await asyncio.sleep(0)
    await _close_opening(opening)
    assert opening.cancelled() and cleaned.is_set()
