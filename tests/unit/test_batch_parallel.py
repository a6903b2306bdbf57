"""The parallel supervisor's pure parts: a sub-task's input source, core partition counts."""

from __future__ import annotations

from common.ingest.batch_input.sources import Split
from common.segments.segment import DataSegment, NumberedShardSpec
from common.segments.timeline import SegmentTimeline
from services.peon.batch_parallel import annotate_core_partitions, split_source


def seg(day: int, num: int, version: str = "v1") -> DataSegment:
    return DataSegment.from_json(
        {
            "dataSource": "ds",
            "interval": f"2024-01-0{day}/2024-01-0{day + 1}",
            "version": version,
            "shardSpec": {"type": "numbered", "partitionNum": num, "partitions": 0},
        }
    )


def cores(segments: list[DataSegment]) -> list[tuple[int, int, int]]:
    out = []
    for s in annotate_core_partitions(segments):
        assert isinstance(s.shard_spec, NumberedShardSpec)
        out.append((s.interval.start, s.partition_num, s.shard_spec.partitions))
    return sorted(out)


def test_dense_chunks_get_their_count_and_a_gap_keeps_zero() -> None:
    d1, d2 = seg(1, 0).interval.start, seg(2, 0).interval.start
    # day 1: 0, 1, 2 from two sub-tasks; day 2: 1 and 2 (0 went to a failed attempt)
    got = cores([seg(1, 0), seg(1, 2), seg(1, 1), seg(2, 1), seg(2, 2)])
    assert got == [(d1, 0, 3), (d1, 1, 3), (d1, 2, 3), (d2, 1, 0), (d2, 2, 0)]


def test_split_sources_read_one_split_each() -> None:
    http = {"type": "http", "uris": ["a", "b"], "httpAuthenticationUsername": "u"}
    assert split_source(http, Split("http", "http://h/b")) == {
        "type": "http",
        "uris": ["http://h/b"],
        "httpAuthenticationUsername": "u",
    }
    local = {"type": "local", "baseDir": "/d", "filter": "*"}
    assert split_source(local, Split("file", "/d/x.json")) == {
        "type": "local",
        "files": ["/d/x.json"],
    }
    assert split_source({"type": "inline", "data": "z"}, Split("inline", "z")) == {
        "type": "inline",
        "data": "z",
    }
    secret = {"type": "environment", "variable": "S3_SECRET"}
    s3 = {
        "type": "s3",
        "prefixes": ["s3://b/logs/"],
        "objectGlob": "**.json",
        "properties": {"accessKeyId": "k", "secretAccessKey": secret},
        "endpointConfig": {"url": "minio:9000"},
    }
    # Druid's ``withSplit``: the listed object, the same client settings, secrets unresolved
    assert split_source(s3, Split("s3", "s3://b/logs/x y.json")) == {
        "type": "s3",
        "objects": [{"bucket": "b", "path": "logs/x y.json"}],
        "properties": {"accessKeyId": "k", "secretAccessKey": secret},
        "endpointConfig": {"url": "minio:9000"},
    }


def test_timeline_needs_every_hashed_core_partition() -> None:
    def hashed(num: int, version: str) -> DataSegment:
        return DataSegment.from_json(
            {
                "dataSource": "ds",
                "interval": "2024-01-01/2024-01-02",
                "version": version,
                "shardSpec": {
                    "type": "hashed",
                    "partitionNum": num,
                    "partitions": 2,
                    "bucketId": num,
                    "numBuckets": 2,
                    "partitionDimensions": ["page"],
                },
            }
        )

    old = seg(1, 0, "v1")
    timeline = SegmentTimeline.of([old, hashed(0, "v2")])
    (holder,) = timeline.lookup(old.interval)
    assert holder.version == "v1"  # v2 lacks its core partition 1: not visible yet
    timeline.add_segment(hashed(1, "v2"))
    (holder,) = timeline.lookup(old.interval)
    assert holder.version == "v2" and len(holder.objects) == 2
