"""Which unused segments a kill task deletes, which interval the kill duty asks for, and how a
kill task spec is validated (Druid's ``KillUnusedSegmentsTask`` and ``KillUnusedSegments``)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from common.config import load_settings
from common.errors import ConfigError, InvalidInput
from common.metadata.segments import SegmentRow
from common.metadata.unused import kill_candidates, umbrella, unused_intervals_for_kill
from common.segments.intervals import Interval
from common.segments.isotime import format_iso, parse_iso
from common.segments.segment import DataSegment
from services.coordinator.duties.kill import (
    API_ISSUED,
    COORDINATOR_ISSUED,
    KillConfig,
    due,
    interval_to_kill,
    kill_task,
)
from services.overlord.tasks.kill import DEFAULT_BATCH_SIZE, kill_payload, kill_report, parse_kill

DAY = 86_400_000
T0 = parse_iso("2024-01-01")


def seg(day: int, version: str = "v1", days: int = 1) -> DataSegment:
    return DataSegment(
        dataSource="wiki",
        interval=Interval(T0 + day * DAY, T0 + (day + days) * DAY),
        version=version,
        shardSpec={"type": "numbered", "partitionNum": 0, "partitions": 1},
    )


def row(day: int, *, used: bool = False, marked: int = 0, version: str = "v1") -> SegmentRow:
    """A segment of ``day``, marked unused (or used) ``marked`` days after T0."""
    return SegmentRow(seg(day, version), used, format_iso(T0 + marked * DAY))


def days(segments: list[DataSegment]) -> list[int]:
    return [(s.interval.start - T0) // DAY for s in segments]


def test_kill_candidates_are_unused_segments_the_interval_contains_oldest_first() -> None:
    rows = [row(3), row(1), row(2, used=True), row(0), row(5)]
    wide = Interval(T0, T0 + 4 * DAY)
    assert days(kill_candidates(rows, wide)) == [0, 1, 3]
    # contains, not overlaps: a segment sticking out of the interval stays
    longer = SegmentRow(seg(3, days=2), False, format_iso(T0))
    assert days(kill_candidates([longer, row(1)], wide)) == [1]


def test_kill_candidates_versions_limit_and_used_status_bound() -> None:
    rows = [row(0, version="a"), row(1, version="b"), row(2, version="a", marked=10)]
    every = Interval(T0, T0 + 10 * DAY)
    assert days(kill_candidates(rows, every, versions=["a"])) == [0, 2]
    assert days(kill_candidates(rows, every, versions=[])) == []
    assert days(kill_candidates(rows, every, limit=2)) == [0, 1]
    assert days(kill_candidates(rows, every, max_used_status_last_updated=T0 + 5 * DAY)) == [0, 1]
    # a row without a parseable stamp (legacy) ignores the bound, as in Druid
    legacy = SegmentRow(seg(4), False, "")
    assert days(kill_candidates([legacy], every, max_used_status_last_updated=T0)) == [4]


def test_unused_intervals_for_kill_and_umbrella() -> None:
    rows = [row(5), row(1), row(3, marked=30), row(2, used=True), row(8)]
    found = unused_intervals_for_kill(
        rows, min_start=T0 + DAY, max_end=T0 + 6 * DAY, limit=10, max_used_status_last_updated=T0
    )
    assert [(i.start - T0) // DAY for i in found] == [1, 5]
    assert umbrella(found) == Interval(T0 + DAY, T0 + 6 * DAY)
    limited = unused_intervals_for_kill(
        rows, min_start=None, max_end=T0 + 100 * DAY, limit=2, max_used_status_last_updated=T0
    )
    assert [(i.start - T0) // DAY for i in limited] == [1, 5]
    with pytest.raises(ValueError):
        umbrella([])


CFG = KillConfig(
    period=DAY,
    duration_to_retain=90 * DAY,
    ignore_duration_to_retain=False,
    buffer_period=30 * DAY,
    max_segments=100,
)


def test_interval_to_kill_honours_retention_buffer_and_last_end() -> None:
    now = T0 + 200 * DAY
    rows = [row(50), row(60, marked=190), row(150), row(10)]
    # day 150 ends after now - 90d; day 60 was marked unused 10 days ago (< bufferPeriod)
    assert interval_to_kill(rows, CFG, now, None) == Interval(T0 + 10 * DAY, T0 + 51 * DAY)
    # the next round starts where the last killed interval ended
    assert interval_to_kill(rows, CFG, now, T0 + 51 * DAY) is None
    ignore = KillConfig(DAY, 90 * DAY, True, 0, 100)
    assert interval_to_kill(rows, ignore, now, None) == Interval(T0 + 10 * DAY, T0 + 151 * DAY)
    one = KillConfig(DAY, 90 * DAY, False, 30 * DAY, 1)
    assert interval_to_kill(rows, one, now, None) == Interval(T0 + 10 * DAY, T0 + 11 * DAY)
    assert interval_to_kill([], CFG, now, None) is None


def test_due_and_kill_task_shape() -> None:
    assert due(None, 0, DAY)
    assert not due(5, 5 + DAY - 1, DAY)
    assert due(5, 5 + DAY, DAY)
    task = kill_task(
        COORDINATOR_ISSUED,
        "wiki",
        Interval(T0, T0 + DAY),
        limit=100,
        max_used_status_last_updated=T0,
    )
    assert re.fullmatch(
        r"coordinator-issued_kill_wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_[a-z]{8}",
        task["id"],
    )
    assert task["interval"] == "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"
    assert task["limit"] == 100 and task["maxUsedStatusLastUpdatedTime"] == format_iso(T0)
    plain = kill_task(API_ISSUED, "wiki", Interval(T0, T0 + DAY))
    assert plain["id"].startswith("api-issued_kill_wiki_")
    assert set(plain) == {"type", "id", "dataSource", "interval"}
    # what the coordinator submits, the overlord accepts
    assert parse_kill(task).limit == 100


def test_parse_kill_defaults_and_refusals() -> None:
    spec = parse_kill({"type": "kill", "dataSource": "wiki", "interval": "2024-01-01/P1D"})
    assert spec.batch_size == DEFAULT_BATCH_SIZE and spec.limit is None and spec.versions is None
    assert spec.interval == Interval(T0, T0 + DAY)
    assert spec.task_id.startswith("kill_wiki_2024-01-01T00:00:00.000Z_")
    payload = kill_payload({"type": "kill", "id": "k", "dataSource": "w", "interval": "2024/2025"})
    assert payload["groupId"] == "k" and payload["resource"]["requiredCapacity"] == 1
    base = {"type": "kill", "dataSource": "wiki", "interval": "2024-01-01/2024-01-02"}
    bad: list[tuple[dict[str, Any], str]] = [
        ({**base, "batchSize": 0}, "batchSize"),
        ({**base, "limit": -1}, "limit"),
        ({**base, "limit": True}, "limit"),
        ({**base, "versions": "v1"}, "versions"),
        ({**base, "markAsUnused": True, "limit": 5}, "markAsUnused"),
        ({**base, "markAsUnused": "yes"}, "markAsUnused"),
        ({**base, "interval": None}, "interval"),
        ({**base, "interval": "nope"}, "nope"),
        ({**base, "dataSource": ""}, "dataSource"),
        ({**base, "maxUsedStatusLastUpdatedTime": 5}, "maxUsedStatusLastUpdatedTime"),
        ({**base, "segmentIds": []}, "segmentIds"),
        ({**base, "id": "a/b"}, "a/b"),
    ]
    for body, word in bad:
        with pytest.raises(InvalidInput) as err:
            kill_payload(body)
        assert word in err.value.message, (body, err.value.message)


def test_kill_report_shape() -> None:
    assert kill_report("k", 3, 2, 1) == {
        "killUnusedSegments": {
            "type": "killUnusedSegments",
            "taskId": "k",
            "payload": {
                "numSegmentsKilled": 3,
                "numBatchesProcessed": 2,
                "numSegmentsMarkedAsUnused": 1,
            },
        }
    }


def test_kill_settings_defaults_and_period_check() -> None:
    c = load_settings("coordinator", properties={}, environ={}).coordinator
    assert (c.kill_on, c.kill_period, c.kill_max_segments) == (False, 86400.0, 100)
    assert (c.kill_duration_to_retain, c.kill_buffer_period) == (90 * 86400.0, 30 * 86400.0)
    assert c.indexing_period == 1800.0
    props = {"druid.coordinator.kill.on": "true", "druid.coordinator.kill.period": "PT60S"}
    with pytest.raises(ConfigError) as err:
        load_settings("coordinator", properties=props, environ={})
    assert "druid.coordinator.kill.period" in str(err.value)
