"""The coordinator says a cluster is under-replicated (or has segments without a rule) once per
change of state, not once per duty cycle."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from common.aio import TaskGroup
from common.segments.segment import DataSegment
from services.coordinator.duties.model import CyclePlan
from services.coordinator.duties.report import CycleReporter
from services.coordinator.duty_loop import DutyLoop

TWO_REPLICAS = [{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}}]


def seg(day: int, ds: str = "wiki") -> DataSegment:
    return DataSegment.from_json(
        {
            "dataSource": ds,
            "interval": f"2024-01-{day:02d}/2024-01-{day + 1:02d}",
            "version": "v1",
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
            "size": 100,
        }
    )


def unplaced(*pairs: tuple[DataSegment, str]) -> CyclePlan:
    return CyclePlan(unassigned=[(s.id, tier) for s, tier in pairs])


def test_same_state_is_reported_once_then_its_end_once() -> None:
    r = CycleReporter()
    first = r.lines(unplaced((seg(1), "_default_tier")))
    assert [line.level for line in first] == [logging.WARNING]
    assert "wiki in tier _default_tier: 1" in first[0].text
    # The same datasource and tier, more segments: not a new state.
    assert r.lines(unplaced((seg(1), "_default_tier"), (seg(2), "_default_tier"))) == []
    assert r.lines(unplaced((seg(1), "_default_tier"))) == []
    cleared = r.lines(CyclePlan())
    assert [line.level for line in cleared] == [logging.INFO]
    assert r.lines(CyclePlan()) == []


def test_a_new_datasource_or_tier_short_of_replicas_is_a_change() -> None:
    r = CycleReporter()
    r.lines(unplaced((seg(1), "_default_tier")))
    again = r.lines(unplaced((seg(1), "_default_tier"), (seg(1, "other"), "hot")))
    assert len(again) == 1
    assert "other in tier hot: 1" in again[0].text and "wiki in tier _default_tier" in again[0].text


def test_segments_without_a_rule_are_reported_once_per_change() -> None:
    r = CycleReporter()
    plan = CyclePlan(no_rule=[seg(1).id, seg(2).id])
    lines = r.lines(plan)
    assert len(lines) == 1 and "wiki: 2" in lines[0].text
    assert r.lines(plan) == []
    assert [line.level for line in r.lines(CyclePlan())] == [logging.INFO]


class _Store:
    def __init__(self, used: list[DataSegment]) -> None:
        self.used = used

    async def used_segments(self) -> list[DataSegment]:
        return self.used

    async def get_rules(self) -> dict[str, list[dict[str, Any]]]:
        return {"_default": TWO_REPLICAS}

    async def set_segments_used(self, *args: Any, **kwargs: Any) -> int:
        raise AssertionError("nothing is marked unused here")


class _Inventory:
    def servers(self) -> list[Any]:
        return []  # no historical at all: every replica stays unplaced


async def test_duty_loop_warns_once_for_many_cycles_of_the_same_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _Store([seg(1)])
    loop = DutyLoop(
        store,  # type: ignore[arg-type]
        _Inventory(),  # type: ignore[arg-type]
        client=None,  # type: ignore[arg-type]
        period=60.0,
        start_delay=0.0,
        check_term=lambda term: None,
    )
    loop._tasks = TaskGroup("test")
    caplog.set_level(logging.INFO, logger="services.coordinator.duty_loop")
    for _ in range(5):
        plan = await loop.run_cycle(1)
        assert len(plan.unassigned) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "wiki in tier _default_tier: 2" in warnings[0].getMessage()
