"""The ``compact`` task's validation and its plan onto ``index_parallel`` (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import InvalidInput
from common.ingest.batch_input.compact import parse_compact_task, plan
from common.ingest.batch_input.spec import parse_batch_task
from common.segments.intervals import Interval
from common.segments.segment import DataSegment
from services.coordinator.compaction_config import parse_datasource_config
from services.coordinator.duties.compaction import Candidate, compact_task, compaction_reason
from services.overlord.tasks.model import validate_task

HOUR = 3_600_000
T0 = 1704067200000  # 2024-01-01


def seg(
    hour: int, version: str = "v1", part: int = 0, dims: tuple[str, ...] = ("page",)
) -> DataSegment:
    return DataSegment(
        dataSource="wiki",
        interval=Interval(T0 + hour * HOUR, T0 + (hour + 1) * HOUR),
        version=version,
        dimensions=dims,
        metrics=("count", "added"),
        shardSpec={"type": "numbered", "partitionNum": part, "partitions": 0},
    )


def task(**extra: Any) -> dict[str, Any]:
    return {
        "type": "compact",
        "id": "c1",
        "dataSource": "wiki",
        "ioConfig": {
            "type": "compact",
            "inputSpec": {"type": "interval", "interval": "2024-01-01T00/2024-01-01T02"},
        },
        **extra,
    }


TYPES = {"count": "long", "added": "double"}


def test_plan_keeps_dimensions_metrics_and_granularity() -> None:
    segments = [seg(0), seg(0, part=1, dims=("page", "user")), seg(1)]
    p = plan(parse_compact_task(task()), segments, TYPES)
    spec = parse_batch_task(p.task)  # a valid index_parallel task
    assert spec.io.inputSource.type == "druid"
    assert str(spec.schema.granularitySpec.segmentGranularity.to_json()) == "HOUR"
    assert spec.schema.granularitySpec.rollup is False
    assert [d for d in p.compaction_state["dimensionsSpec"]["dimensions"]] == ["page", "user"]
    assert p.compaction_state["metricsSpec"] == [
        {"type": "longSum", "name": "count", "fieldName": "count"},
        {"type": "doubleSum", "name": "added", "fieldName": "added"},
    ]
    assert p.compaction_state["partitionsSpec"]["type"] == "dynamic"
    assert p.task["spec"]["dataSchema"]["granularitySpec"]["intervals"] == [
        "2024-01-01T00:00:00.000Z/2024-01-01T02:00:00.000Z"
    ]


def test_unaligned_interval_grows_to_whole_buckets() -> None:
    t = task(granularitySpec={"segmentGranularity": "DAY"})
    p = plan(parse_compact_task(t), [seg(0), seg(1)], TYPES)
    assert p.task["spec"]["ioConfig"]["inputSource"]["interval"] == (
        "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"
    )


def test_sketch_metric_needs_a_metrics_spec() -> None:
    with pytest.raises(InvalidInput, match="metricsSpec"):
        plan(parse_compact_task(task()), [seg(0)], {"count": "long", "added": "HLLSketch"})
    given = [{"type": "HLLSketchMerge", "name": "added", "fieldName": "added"}]
    p = plan(parse_compact_task(task(metricsSpec=given)), [seg(0)], {})
    assert p.compaction_state["metricsSpec"] == given


def test_no_segments_and_wrong_segment_list_are_refused() -> None:
    with pytest.raises(InvalidInput, match="No used segments"):
        plan(parse_compact_task(task()), [], TYPES)
    ids = task(ioConfig={"inputSpec": {"type": "segments", "segments": [str(seg(0).id)]}})
    spec = parse_compact_task(ids)
    assert spec.interval == seg(0).interval
    plan(spec, [seg(0)], TYPES)
    with pytest.raises(InvalidInput, match="all the visible segments"):
        plan(spec, [seg(0), seg(0, part=1)], TYPES)


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ({"ioConfig": {"inputSpec": {"type": "what"}}}, "inputSpec.type"),
        ({"ioConfig": {"inputSpec": {"type": "interval", "interval": "x"}}}, "interval"),
        ({"ioConfig": {"inputSpec": {"type": "segments", "segments": ["nope"]}}}, "segment id"),
        ({"granularitySpec": {"segmentGranularity": "FORTNIGHT"}}, "FORTNIGHT"),
        ({"granularitySpec": {"rollup": "yes"}}, "rollup"),
        ({"metricsSpec": {"a": 1}}, "metricsSpec"),
        ({"dataSource": ""}, "dataSource"),
    ],
)
def test_overlord_refuses_bad_compact_tasks(bad: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        validate_task({**task(), **bad})


def test_state_matches_what_the_duty_expects() -> None:
    """A segment compacted by the task the duty submits counts as compacted by the duty."""
    config = parse_datasource_config(
        {
            "dataSource": "wiki",
            "granularitySpec": {"segmentGranularity": "DAY", "rollup": False},
            "dimensionsSpec": {"dimensions": ["page"]},
            "tuningConfig": {"partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 10}},
        }
    )

    submitted = compact_task(config, Candidate(Interval(T0, T0 + 24 * HOUR), [seg(0)]))
    payload = validate_task(submitted)
    p = plan(parse_compact_task(payload), [seg(0), seg(1)], TYPES)
    done = seg(0, version="v2").model_copy(update={"last_compaction_state": p.compaction_state})
    assert compaction_reason([done], config) is None
    assert compaction_reason([seg(0)], config) == "not compacted yet"
