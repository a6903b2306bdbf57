"""Native batch pieces without sockets: task spec validation, input sources, formats and
partitioning."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.errors import InvalidInput
from common.ingest.batch import BatchParser
from common.ingest.batch_input import readers
from common.ingest.batch_input.partition import murmur3_32, partition
from common.ingest.batch_input.readers import parse_bytes
from common.ingest.batch_input.s3 import glob_regex
from common.ingest.batch_input.sources import Split, local_files, read_split, splits
from common.ingest.batch_input.spec import (
    DynamicPartitions,
    HashedPartitions,
    LocalInputSource,
    ParquetInputFormat,
    parse_batch_task,
)
from common.ingest.index import IncrementalIndex
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import RowParser
from common.ingest.spec import DelimitedInputFormat, JsonInputFormat, parse_data_schema
from common.segments.segment import DataSegment

SCHEMA: dict[str, Any] = {
    "dataSource": "wiki",
    "timestampSpec": {"column": "ts", "format": "iso"},
    "dimensionsSpec": {"dimensions": ["page", "user"]},
    "metricsSpec": [
        {"type": "count", "name": "count"},
        {"type": "longSum", "name": "added", "fieldName": "added"},
    ],
    "granularitySpec": {
        "segmentGranularity": "DAY",
        "queryGranularity": "NONE",
        "rollup": False,
        "intervals": ["2024-01-01/2024-01-03"],
    },
}


def task(io_config: dict[str, Any], tuning: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "index_parallel",
        "id": "t1",
        "spec": {
            "dataSchema": SCHEMA,
            "ioConfig": {"type": "index_parallel", **io_config},
            "tuningConfig": {"type": "index_parallel", **(tuning or {})},
        },
    }


INLINE = {"inputSource": {"type": "inline", "data": "{}"}, "inputFormat": {"type": "json"}}


def test_spec_defaults_and_spec_nesting() -> None:
    spec = parse_batch_task(task(INLINE))
    assert spec.data_source == "wiki"
    assert spec.partitions == DynamicPartitions(type="dynamic")
    assert spec.tuning.maxNumConcurrentSubTasks == 1
    assert not spec.io.appendToExisting


@pytest.mark.parametrize(
    ("io_config", "tuning", "message"),
    [
        ({"inputSource": {"type": "s4"}, "inputFormat": {"type": "json"}}, None, "inputSource"),
        ({"inputSource": {"type": "inline", "data": "x"}}, None, "'inputFormat' is required"),
        ({"inputSource": {"type": "local"}, "inputFormat": {"type": "json"}}, None, "baseDir"),
        (
            {"inputSource": {"type": "local", "baseDir": "/tmp"}, "inputFormat": {"type": "json"}},
            None,
            "filter is required",
        ),
        (
            {"inputSource": {"type": "http", "uris": []}, "inputFormat": {"type": "json"}},
            None,
            "uris",
        ),
        (INLINE, {"partitionsSpec": {"type": "hashed", "numShards": 2}}, "forceGuaranteedRollup"),
        (
            {**INLINE, "appendToExisting": True},
            {"forceGuaranteedRollup": True, "partitionsSpec": {"type": "hashed"}},
            "appending",
        ),
        (
            INLINE,
            {
                "forceGuaranteedRollup": True,
                "partitionsSpec": {"type": "hashed", "numShards": 2, "targetRowsPerSegment": 9},
            },
            "both numShards and targetRowsPerSegment",
        ),
        (INLINE, {"partitionsSpec": {"type": "single_dim"}}, "partitionsSpec"),
        ({**INLINE, "dropExisting": True, "appendToExisting": True}, None, "not compatible"),
        (
            {
                "inputSource": {"type": "google", "uris": ["gs://b/k"]},
                "inputFormat": {"type": "json"},
            },
            None,
            r"inputSource type \[google\] is not supported: kdruid does not have druid-google",
        ),
        (
            {
                "inputSource": {"type": "azure", "uris": ["azure://c/k"]},
                "inputFormat": {"type": "json"},
            },
            None,
            r"inputSource type \[azure\] is not supported: kdruid does not have druid-azure",
        ),
        (INLINE, {"maxBytesInMemory": "lots"}, "maxBytesInMemory"),
    ],
)
def test_spec_errors_name_the_field(
    io_config: dict[str, Any], tuning: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_batch_task(task(io_config, tuning))


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("**.json", "bar/file.json", True),
        ("*.json", "bar/file.json", False),  # '*' stays within one path segment
        ("*.json", "file.json", True),
        ("bar/?.csv", "bar/a.csv", True),
        ("bar/?.csv", "bar/ab.csv", False),
        ("bar/{a,bc}.csv", "bar/bc.csv", True),
        ("bar/[a-c]x", "bar/bx", True),
        ("bar/[!a-c]x", "bar/dx", True),
        ("bar/[!a-c]x", "bar/ax", False),
        ("bar[!x]y", "bar/y", False),  # a bracket never matches '/'
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("**/2024-*/*.parquet", "logs/2024-01/x.parquet", True),
    ],
)
def test_object_glob_is_java_path_matcher_glob(glob: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(glob).fullmatch(path)) is matches


def test_local_source_files_then_sorted_glob_matches(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.json", "a.json", "sub/c.json", "skip.csv"):
        (tmp_path / name).write_text("{}")
    source = LocalInputSource(type="local", baseDir=str(tmp_path), filter="*.json", files=["/x"])
    assert local_files(source) == [
        "/x",
        str(tmp_path / "a.json"),
        str(tmp_path / "b.json"),
        str(tmp_path / "sub" / "c.json"),
    ]
    with pytest.raises(InvalidInput, match="not a directory"):
        local_files(LocalInputSource(type="local", baseDir=str(tmp_path / "no"), filter="*"))


def test_inline_and_missing_file_splits() -> None:
    (split,) = splits(parse_batch_task(task(INLINE)).io.inputSource)  # type: ignore[arg-type]
    assert read_split(split) == b"{}"
    with pytest.raises(Exception, match="Cannot read input file"):
        read_split(Split("file", "/no/such/file"))


def parser(fmt: Any) -> tuple[RowParser, RowIngestionMeters]:
    meters = RowIngestionMeters()
    handler = ParseExceptionHandler(meters, max_saved_parse_exceptions=10)
    row_fmt = fmt if not isinstance(fmt, ParquetInputFormat) else JsonInputFormat(type="json")
    return RowParser(parse_data_schema(SCHEMA), row_fmt, handler), meters


def rows_of(fmt: Any, data: bytes) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, int]]:
    p, meters = parser(fmt)
    out = [(r.timestamp, r.dims) for rows in parse_bytes(p, fmt, data, 0) for r in rows]
    return out, meters.totals()


def test_json_lines_intervals_throw_rows_away_and_bad_lines_are_unparseable() -> None:
    data = (
        b'{"ts": "2024-01-01T01:00:00Z", "page": "a", "added": 1}\n'
        b"\n"
        b'{"ts": "2023-12-31T23:00:00Z", "page": "old", "added": 1}\n'
        b"not json\n"
        b'{"ts": "2024-01-02T00:00:00Z", "page": "b", "user": "u", "added": 2}\n'
    )
    rows, totals = rows_of(JsonInputFormat(type="json"), data)
    assert rows == [(1704070800000, {"page": "a"}), (1704153600000, {"page": "b", "user": "u"})]
    assert (totals["processed"], totals["thrownAway"], totals["unparseable"]) == (2, 1, 1)


def test_csv_with_header_and_tsv_with_columns_and_list_delimiter() -> None:
    csv_fmt = DelimitedInputFormat(type="csv", findColumnsFromHeader=True, skipHeaderRows=1)
    data = b"# comment line\nts,page,added\n2024-01-01T00:00:00Z,a,3\n2024-01-02T00:00:00Z,b,4\n"
    rows, totals = rows_of(csv_fmt, data)
    assert [d for _, d in rows] == [{"page": "a"}, {"page": "b"}]
    assert totals["processed"] == 2
    tsv_fmt = DelimitedInputFormat(
        type="tsv", columns=["ts", "page", "user", "added"], listDelimiter="|"
    )
    rows, _ = rows_of(tsv_fmt, b"2024-01-01T00:00:00Z\tx\tu1|u2\t1\n")
    assert rows == [(1704067200000, {"page": "x", "user": ["u1", "u2"]})]


def test_parquet_timestamps_and_binary_as_string() -> None:
    schema = dict(SCHEMA, timestampSpec={"column": "ts", "format": "millis"})
    table = pa.table(
        {
            "ts": pa.array([1704067200000, 1704153600000], pa.timestamp("ms")),
            "page": pa.array([b"a", b"b"], pa.binary()),
            "added": [1, 2],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    meters = RowIngestionMeters()
    p = RowParser(
        parse_data_schema(schema), JsonInputFormat(type="json"), ParseExceptionHandler(meters)
    )
    fmt = ParquetInputFormat(type="parquet", binaryAsString=True)
    rows = [r for batch in parse_bytes(p, fmt, buf.getvalue(), 0) for r in batch]
    assert [(r.timestamp, r.dims, r.metrics) for r in rows] == [
        (1704067200000, {"page": "a"}, (None, 1)),
        (1704153600000, {"page": "b"}, (None, 2)),
    ]


def test_murmur3_matches_reference_vectors() -> None:
    # Reference values of MurmurHash3_x86_32 (seed 0), as Guava's murmur3_32 gives them.
    assert murmur3_32(b"") == 0
    assert murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723


def chunk_table(n: int) -> pa.Table:
    index = IncrementalIndex(parse_data_schema(SCHEMA))
    p, _ = parser(JsonInputFormat(type="json"))
    lines = [
        f'{{"ts": "2024-01-01T00:00:{i % 60:02d}Z", "page": "p{i % 7}", "added": {i}}}'.encode()
        for i in range(n)
    ]
    index.add_rows(p.parse_many(lines, 0))
    return index.to_arrow()


def test_dynamic_partitions_are_a_complete_numbered_set() -> None:
    parts = partition(chunk_table(25), DynamicPartitions(type="dynamic", maxRowsPerSegment=10), [])
    assert [p.table.num_rows for p in parts] == [10, 10, 5]
    assert [(p.shard_spec.partition_num, p.shard_spec.partitions) for p in parts] == [
        (0, 3),
        (1, 3),
        (2, 3),
    ]


def test_hashed_partitions_group_by_dimension_and_number_filled_buckets() -> None:
    table = chunk_table(70)
    spec = HashedPartitions(type="hashed", numShards=3, partitionDimensions=["page"])
    parts = partition(table, spec, ["page", "user"])
    assert sum(p.table.num_rows for p in parts) == 70
    pages = [set(p.table.column("page").to_pylist()) for p in parts]
    for i, a in enumerate(pages):  # one page value never spans two partitions
        for b in pages[i + 1 :]:
            assert not a & b
    assert [p.shard_spec.partition_num for p in parts] == list(range(len(parts)))
    assert {p.shard_spec.core_partitions for p in parts} == {len(parts)}
    seg = DataSegment.from_json(
        {
            "dataSource": "wiki",
            "interval": "2024-01-01/2024-01-02",
            "version": "v",
            "shardSpec": parts[0].shard_spec.model_dump(by_alias=True),
        }
    )
    assert seg.to_json()["shardSpec"]["type"] == "hashed"
    assert seg.to_json()["shardSpec"]["numBuckets"] == 3
    by_target = partition(table, HashedPartitions(type="hashed", targetRowsPerSegment=30), [])
    assert 1 <= len(by_target) <= 3
    with pytest.raises(ValueError, match="partitionDimensions"):
        partition(table, HashedPartitions(type="hashed", partitionDimensions=["nope"]), ["page"])


def test_parquet_column_wise_equals_row_by_row() -> None:
    schema = parse_data_schema(
        {
            **SCHEMA,
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {
                "dimensions": ["page", "user", {"type": "long", "name": "n"}],
            },
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
                {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
            ],
        }
    )
    n = 50
    table = pa.table(
        {
            # a row before the interval (thrown away) and timestamps as a timestamp column
            "ts": pa.array(
                [1704067200000 - 1] + [1704067200000 + i * 60_000 for i in range(1, n)],
                pa.timestamp("ms"),
            ),
            "page": pa.array([f"p{i % 4}" for i in range(n)]).dictionary_encode(),
            "user": pa.array([None if i % 5 == 0 else f"u{i % 3}" for i in range(n)]),
            "n": pa.array([i % 7 for i in range(n)], pa.int32()),
            "added": pa.array([None if i % 9 == 0 else i for i in range(n)], pa.int16()),
            "delta": pa.array([i / 4 for i in range(n)], pa.float32()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    fmt = ParquetInputFormat(type="parquet")
    results = []
    for columnar in (False, True):
        meters = RowIngestionMeters()
        p = RowParser(schema, JsonInputFormat(type="json"), ParseExceptionHandler(meters))
        bp = BatchParser(schema, JsonInputFormat(type="json"), meters) if columnar else None
        index = IncrementalIndex(schema)
        batches = list(parse_bytes(p, fmt, buf.getvalue(), 0, bp))
        kinds = {type(b).__name__ for b in batches}
        assert kinds == ({"ColumnBatch"} if columnar else {"list"})
        for b in batches:
            if isinstance(b, list):
                index.add_rows(b)
            else:
                index.add_batch(b)
        results.append((index.to_arrow(), meters.totals()))
    (rows_table, rows_totals), (cols_table, cols_totals) = results
    assert cols_table.equals(rows_table)
    assert cols_totals == rows_totals
    assert rows_totals["thrownAway"] == 1 and rows_totals["processed"] == n - 1


GOOD = [
    f'{{"ts": "2024-01-01T{h:02d}:00:00Z", "page": "p{h % 3}", "user": "u", "added": {h}}}'.encode()
    for h in range(24)
]


@pytest.mark.parametrize(
    "odd",
    [
        b"",  # a blank line
        b"   ",  # whitespace only
        b' {"ts": "2024-01-01T05:30:00Z", "page": "led by a space"}',
        b'{"ts": "2024-01-01T05:30:00Z"}{"ts": "2024-01-01T05:31:00Z"}',  # two objects
        b'{"ts": "2024-01-01T05:30:00Z", "added": NaN}',
        b'{"ts": "2024-01-01T05:30:00Z", "page": "crlf"}\r',
        b"not json",
        b'{"ts": "2024-01-01T05:30:00Z", "page": 7}',  # a number in a string dimension
    ],
)
@pytest.mark.parametrize(("companion", "ending"), [(b"", b""), (b"\t", b"\n"), (b"", b"\n\n")])
def test_json_blocks_equal_the_row_path(
    monkeypatch: pytest.MonkeyPatch, odd: bytes, companion: bytes, ending: bytes
) -> None:
    """A file read in blocks (Arrow on the file's bytes) gives the rows and counters of the
    row-by-row path; a block holding an odd line goes line by line, the others stay blocks.
    The odd line's neighbour is blank or whitespace: one object too many on one line and one
    line skipped must not pair up into the right count."""
    monkeypatch.setattr(readers, "JSON_BLOCK_BYTES", 300)  # ~4 lines a block
    lines = [*GOOD[:10], odd, companion, *GOOD[10:], b'{"ts": "2024-01-02T00:00:00Z"} ']
    data = b"\n".join(lines) + ending
    fmt = JsonInputFormat(type="json")
    sch = parse_data_schema(SCHEMA)

    def run(columnar: bool) -> tuple[list[Any], dict[str, int], int]:
        p, meters = parser(fmt)
        col = BatchParser(sch, fmt, meters) if columnar else None
        index, blocks = IncrementalIndex(sch), 0
        for rows in parse_bytes(p, fmt, data, 0, col):
            if isinstance(rows, list):
                index.add_rows(rows)
            else:
                index.add_batch(rows)
                blocks += 1
        return index.to_arrow().to_pylist(), meters.totals(), blocks

    by_rows, row_totals, _ = run(False)
    by_blocks, block_totals, blocks = run(True)
    assert by_blocks == by_rows
    assert block_totals == row_totals
    assert blocks >= 4  # the blocks without an odd line were read column-wise
