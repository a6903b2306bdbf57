"""Auto-compaction's interval search (Druid's NewestSegmentFirstPolicy and CompactionStatus),
its snapshot figures, slots and the compact task it submits."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import InvalidInput
from common.segments.intervals import Interval
from common.segments.isotime import parse_iso
from common.segments.segment import DataSegment
from services.coordinator.compaction_config import (
    DruidCompactionConfig,
    parse_datasource_config,
)
from services.coordinator.duties.compaction import (
    compact_task,
    compaction_reason,
    compaction_slots,
    expected_partitions_spec,
    search,
    slots_per_task,
    snapshot,
)

HOUR = 3_600_000
T0 = parse_iso("2024-01-01")


def seg(
    hour: int, part: int = 0, version: str = "v1", size: int = 10, state: Any = None
) -> DataSegment:
    return DataSegment(
        dataSource="wiki",
        interval=Interval(T0 + hour * HOUR, T0 + (hour + 1) * HOUR),
        version=version,
        size=size,
        shardSpec={"type": "numbered", "partitionNum": part, "partitions": 0},
        lastCompactionState=state,
    )


def cfg(**extra: Any) -> Any:
    return parse_datasource_config({"dataSource": "wiki", **extra})


def hours(cands: list[Any]) -> list[int]:
    return [(c.interval.start - T0) // HOUR for c in cands]


def test_newest_first_skipping_the_latest_offset() -> None:
    used = [seg(h) for h in range(30)]  # 2024-01-01T00 .. 2024-01-02T06
    found = search(used, cfg())
    # latest end 2024-01-02T06: chunks ending after 2024-01-01T06 are skipped (P1D)
    assert hours(found.to_compact) == list(range(5, -1, -1))
    assert len(found.skipped) == 24 and found.compacted == []
    assert all("skipOffsetFromLatest" in (c.reason or "") for c in found.skipped)
    found = search(used, cfg(skipOffsetFromLatest="PT0S"))
    assert len(found.to_compact) == 30


def test_segment_granularity_groups_hours_into_days_and_size_limit_skips() -> None:
    used = [seg(h, size=10) for h in range(48)] + [seg(72)]
    config = cfg(granularitySpec={"segmentGranularity": "DAY"}, skipOffsetFromLatest="PT0S")
    found = search(used, config)
    assert [(c.interval, len(c.segments)) for c in found.to_compact] == [
        (Interval(T0 + 24 * HOUR, T0 + 48 * HOUR), 24),
        (Interval(T0, T0 + 24 * HOUR), 24),
    ]
    # the day of the latest segment is still being filled: its bucket ends after the data
    assert [c.interval for c in found.skipped] == [Interval(T0 + 72 * HOUR, T0 + 96 * HOUR)]
    small = cfg(
        granularitySpec={"segmentGranularity": "DAY"},
        skipOffsetFromLatest="PT0S",
        inputSegmentSizeBytes=100,
    )
    found = search([*used, seg(100)], small)
    assert [c.interval for c in found.to_compact] == [Interval(T0 + 72 * HOUR, T0 + 96 * HOUR)]
    assert len(found.skipped) == 3
    assert "inputSegmentSizeBytes" in (found.skipped[1].reason or "")
    snap = snapshot("wiki", found)
    assert snap["bytesAwaitingCompaction"] == 10 and snap["segmentCountSkipped"] == 49
    assert snap["intervalCountSkipped"] == 3 and snap["scheduleStatus"] == "RUNNING"


def test_overshadowed_segments_are_not_candidates() -> None:
    used = [seg(0, version="v1"), seg(0, version="v2"), seg(1)]
    found = search(used, cfg(skipOffsetFromLatest="PT0S"))
    assert [[s.version for s in c.segments] for c in found.to_compact] == [["v1"], ["v2"]]


def test_already_compacted_with_the_same_state_is_left_alone() -> None:
    config = cfg(skipOffsetFromLatest="PT0S", granularitySpec={"segmentGranularity": "HOUR"})
    state = {
        "partitionsSpec": expected_partitions_spec(config),
        "granularitySpec": {"segmentGranularity": "HOUR"},
    }
    assert state["partitionsSpec"] == {
        "type": "dynamic",
        "maxRowsPerSegment": 5_000_000,
        "maxTotalRows": 20_000_000,
    }
    done = [seg(0, state=state), seg(0, 1, state=state)]
    assert compaction_reason(done, config) is None
    assert compaction_reason([seg(0)], config) == "not compacted yet"
    other = {**state, "granularitySpec": {"segmentGranularity": "DAY"}}
    assert "segmentGranularity" in (compaction_reason([seg(0, state=other)], config) or "")
    mixed = [seg(0, state=state), seg(0, 1, state=other)]
    assert "different" in (compaction_reason(mixed, config) or "")
    hashed = cfg(tuningConfig={"partitionsSpec": {"type": "hashed", "numShards": 2}})
    assert "partitionsSpec" in (compaction_reason(done, hashed) or "")
    found = search([*done, seg(1)], config)
    assert hours(found.compacted) == [0] and hours(found.to_compact) == [1]


def test_slots_and_compact_task_shape() -> None:
    assert compaction_slots(10, 0.1, 100) == 1
    assert compaction_slots(40, 0.1, 100) == 4
    assert compaction_slots(40, 0.5, 3) == 3
    assert compaction_slots(0, 0.5, 3) == 0
    assert slots_per_task(cfg()) == 1
    assert slots_per_task(cfg(tuningConfig={"maxNumConcurrentSubTasks": 4})) == 5
    config = cfg(
        taskPriority=30,
        taskContext={"x": 1},
        ioConfig={"dropExisting": True},
        granularitySpec={"segmentGranularity": "DAY"},
    )
    found = search([seg(0), seg(1), seg(50)], config)
    task = compact_task(config, found.to_compact[0])
    assert task["type"] == "compact" and task["dataSource"] == "wiki"
    assert task["id"].startswith("coordinator-issued_compact_wiki_")
    assert task["ioConfig"] == {
        "type": "compact",
        "inputSpec": {
            "type": "interval",
            "interval": "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z",
        },
        "dropExisting": True,
    }
    assert task["granularitySpec"] == {"segmentGranularity": "DAY"}
    assert task["tuningConfig"]["type"] == "index_parallel"
    assert task["context"] == {"x": 1, "priority": 30}


def test_config_validation_and_defaults() -> None:
    c = cfg()
    assert c.to_json() == {
        "dataSource": "wiki",
        "taskPriority": 25,
        "inputSegmentSizeBytes": 100_000_000_000_000,
        "skipOffsetFromLatest": "P1D",
    }
    for bad, word in (
        ({}, "dataSource"),
        ({"dataSource": "w", "skipOffsetFromLatest": "nope"}, "skipOffsetFromLatest"),
        ({"dataSource": "w", "inputSegmentSizeBytes": 0}, "inputSegmentSizeBytes"),
        ({"dataSource": "w", "granularitySpec": {"segmentGranularity": "fortnight"}}, "segment"),
        ({"dataSource": "w", "bogus": 1}, "bogus"),
    ):
        with pytest.raises(InvalidInput) as err:
            parse_datasource_config(bad)
        assert word in err.value.message, err.value.message
    cluster = DruidCompactionConfig()
    assert cluster.to_json() == {
        "compactionConfigs": [],
        "compactionTaskSlotRatio": 0.1,
        "maxCompactionTaskSlots": 2147483647,
        "useAutoScaleSlots": False,
        "engine": "native",
    }
