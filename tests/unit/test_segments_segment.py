"""DataSegment JSON, shard specs, segment ids and descriptors as Druid spells them."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from common.errors import InvalidInput
from common.segments.intervals import Interval
from common.segments.segment import (
    DataSegment,
    NoneShardSpec,
    NumberedShardSpec,
    SegmentDescriptor,
    SegmentId,
    TombstoneShardSpec,
)

DRUID_JSON = {
    "dataSource": "wikipedia",
    "interval": "2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z",
    "version": "2024-05-01T10:11:12.345Z",
    "loadSpec": {"type": "local", "path": "/deep/wikipedia/index.parquet"},
    "dimensions": "channel,page,user",
    "metrics": "count,added",
    "shardSpec": {"type": "numbered", "partitionNum": 3, "partitions": 4},
    "binaryVersion": 9,
    "size": 4821,
    "identifier": (
        "wikipedia_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_2024-05-01T10:11:12.345Z_3"
    ),
}


def test_druid_json_round_trip() -> None:
    seg = DataSegment.from_json(DRUID_JSON)
    assert seg.dimensions == ("channel", "page", "user")
    assert seg.partition_num == 3
    assert seg.to_json() == DRUID_JSON
    assert DataSegment.from_json(orjson.dumps(DRUID_JSON)) == seg
    assert seg.descriptor() == SegmentDescriptor(
        itvl=Interval.parse(DRUID_JSON["interval"]),  # type: ignore[arg-type]
        ver="2024-05-01T10:11:12.345Z",
        part=3,
    )
    assert seg.descriptor().model_dump(mode="json")["itvl"] == DRUID_JSON["interval"]


def test_lists_accepted_identifier_ignored_defaults() -> None:
    seg = DataSegment.from_json(
        {
            "dataSource": "ds",
            "interval": "2024-01-01/2024-01-02",
            "version": "v1",
            "dimensions": ["a", "b"],
            "metrics": [],
            "identifier": "something else",
        }
    )
    out = seg.to_json()
    assert out["dimensions"] == "a,b" and out["metrics"] == ""
    assert out["shardSpec"] == {"type": "none"}
    assert out["identifier"] == "ds_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v1"
    assert out["binaryVersion"] == 9
    assert DataSegment.from_json({**out, "dimensions": ""}).dimensions == ()


def test_shard_specs() -> None:
    def spec(d: dict[str, object]) -> object:
        return DataSegment.from_json(
            {"dataSource": "d", "interval": "2024/2025", "version": "v", "shardSpec": d}
        ).shard_spec

    assert spec({"type": "numbered", "partitionNum": 1, "partitions": 2}) == NumberedShardSpec(
        partition_num=1, partitions=2
    )
    assert spec({"type": "none"}) == NoneShardSpec()
    tomb = spec({"type": "tombstone", "partitionNum": 0, "partitions": 1})
    assert isinstance(tomb, TombstoneShardSpec)
    for bad in ({"type": "cosmic"}, {"type": "numbered", "partitionNum": -1}, "numbered"):
        with pytest.raises(ValidationError):
            spec(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"interval": "2024/2025", "version": "v"},
        {"dataSource": "d", "interval": "2025/2024", "version": "v"},
        {"dataSource": "d", "interval": "2024/2025", "version": ""},
        {"dataSource": "d", "interval": "2024/2025", "version": "v", "size": -1},
    ],
)
def test_bad_segments_are_validation_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DataSegment.from_json(bad)


def test_segment_ids() -> None:
    iv = Interval.parse("2024-01-01/2024-01-02")
    sid = SegmentId("my_data_source", iv, "v_1", 0)
    text = "my_data_source_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v_1"
    assert str(sid) == text
    assert SegmentId.parse("my_data_source", text) == SegmentId("my_data_source", iv, "v", 1)
    # Same ambiguity as Druid: a version ending in _<digits> reads as a partition number.
    assert SegmentId.parse("my_data_source", text + "_7") == SegmentId(
        "my_data_source", iv, "v_1", 7
    )
    ok = SegmentId("ds", iv, "2024-02-01T00:00:00.000Z", 5)
    assert SegmentId.parse("ds", str(ok)) == ok
    assert SegmentId.try_parse("other", str(ok)) is None
    assert SegmentId.try_parse("ds", "ds_notatime_2024-01-02_v") is None
    assert SegmentId.try_parse("ds", "ds_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z") is None
    with pytest.raises(InvalidInput):
        SegmentId.parse("ds", "garbage")
    assert sorted(
        [SegmentId("a", iv, "v2"), SegmentId("a", iv, "v1", 1), SegmentId("a", iv, "v1")]
    )[0] == SegmentId("a", iv, "v1")
    seg = DataSegment(data_source="ds", interval=iv, version="v", shard_spec=NumberedShardSpec())
    assert {seg: 1}[DataSegment.from_json(seg.to_json())] == 1
