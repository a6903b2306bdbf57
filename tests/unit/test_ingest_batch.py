"""The columnar batch path gives exactly the row path's rows, counts and offsets.

Every case routes the same polled records twice, once with ``Router(batch=None)`` (the row
path) and once with a ``BatchParser``, into fresh indexes, and compares the indexes' snapshots,
the meters, the offsets and the (sequence, bucket) keys. ``expect_batch`` says whether the
batch path must really have been taken (so a case cannot pass by always falling back).
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pyarrow as pa
import pytest

from common.ingest.batch import BatchParser, batch_supported
from common.ingest.index import IncrementalIndex
from common.ingest.kafka import PartitionRecords
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import RowParser
from common.ingest.route import Routed, Router
from common.ingest.sequences import SequenceMetadata
from common.ingest.spec import DataSchema, parse_data_schema, parse_input_format

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000
JSON = parse_input_format({"type": "json"})


def schema(**over: Any) -> DataSchema:
    base: dict[str, Any] = {
        "dataSource": "wiki",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {
            "dimensions": [
                "page",
                {"type": "string", "name": "tags", "multiValueHandling": "SORTED_SET"},
                {"type": "long", "name": "n"},
                {"type": "double", "name": "x"},
            ]
        },
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
            {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
            {"type": "longMax", "name": "maxN", "fieldName": "n"},
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
    }
    base.update(over)
    return parse_data_schema(base)


def records(*events: Any, partition: int = 0, first: int = 0) -> PartitionRecords:
    values: list[bytes | None] = [
        e if e is None or isinstance(e, bytes) else orjson.dumps(e) for e in events
    ]
    return PartitionRecords(partition, list(range(first, first + len(values))), values)


def seq(name: str, start: dict[int, int], end: dict[int, int]) -> SequenceMetadata:
    s = SequenceMetadata(0, name, start, end)
    s.update_assignments(start)
    return s


def route(
    sch: DataSchema,
    parts: list[PartitionRecords],
    batch: bool,
    current: dict[int, int] | None = None,
    ends: dict[int, int] | None = None,
    sequences: list[SequenceMetadata] | None = None,
    min_time: int | None = None,
    max_time: int | None = None,
) -> tuple[Routed, RowIngestionMeters, dict[tuple[str, int], list[dict[str, Any]]], dict[Any, int]]:
    meters = RowIngestionMeters()
    handler = ParseExceptionHandler(meters, 1000, 10, False)
    router = Router(
        RowParser(sch, JSON, handler),
        BatchParser(sch, JSON, meters) if batch else None,
        sch.granularitySpec.segmentGranularity,
        min_time,
        max_time,
    )
    current = current if current is not None else {p.partition: 0 for p in parts}
    ends = ends if ends is not None else {p.partition: 10**9 for p in parts}
    sequences = sequences or [seq("s0", dict(current), dict(ends))]
    routed = router.route(parts, current, ends, sequences, now_ms=T0)
    tables: dict[tuple[str, int], list[dict[str, Any]]] = {}
    nbytes: dict[tuple[str, int], int] = {}
    for key in routed.keys:
        index = IncrementalIndex(sch)
        if key in routed.rows:
            index.add_rows(routed.rows[key])
        else:
            index.add_batch(routed.columns[key])
        t = index.to_arrow()
        # Times as ints: the row path accepts times a Python datetime cannot hold.
        rows = t.set_column(0, "__time", t.column(0).cast(pa.int64())).to_pylist()
        tables[key] = [{"schema": str(t.schema)}, *rows]
        tables[key].append({"min": index.min_time, "max": index.max_time})
        tables[key].append({"rows": index.rows_in_memory, "added": index.rows_added})
        nbytes[key] = index.bytes_in_memory
    return routed, meters, tables, nbytes


def check(sch: DataSchema, parts: list[PartitionRecords], expect_batch: bool, **kw: Any) -> Routed:
    rows_routed, rows_meters, rows_tables, rows_bytes = route(sch, parts, False, **kw)
    batch_routed, batch_meters, batch_tables, batch_bytes = route(sch, parts, True, **kw)
    assert not rows_routed.columnar
    assert batch_routed.columnar == expect_batch
    assert not batch_routed.rows or not expect_batch
    assert batch_tables == rows_tables
    # Buffer sizes may differ by a validity bitmap a column does or does not carry.
    assert batch_bytes.keys() == rows_bytes.keys()
    for key, n in rows_bytes.items():
        assert abs(batch_bytes[key] - n) <= 8 * len(batch_tables[key][0]["schema"].split("\n"))
    assert batch_meters.totals() == rows_meters.totals()
    assert batch_routed.next_offsets == rows_routed.next_offsets
    return batch_routed


def ev(i: int, **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "ts": T0 + i * 1000,
        "page": f"p{i % 3}",
        "tags": ["b", "a", "b"] if i % 2 else ["solo"],
        "n": i,
        "x": i / 4,
        "added": i * 10,
        "delta": i * 0.5,
        "other": {"nested": [1, 2]},
    }
    e.update(over)
    return e


def test_supported_only_for_plain_json() -> None:
    assert batch_supported(schema(), JSON)
    flat = parse_input_format(
        {"type": "json", "flattenSpec": {"fields": [{"type": "root", "name": "a"}]}}
    )
    assert not batch_supported(schema(), flat)
    assert not batch_supported(schema(), parse_input_format({"type": "csv", "columns": ["a"]}))
    transformed = schema(
        transformSpec={"transforms": [{"type": "expression", "name": "y", "expression": "n"}]}
    )
    assert not batch_supported(transformed, JSON)
    assert not batch_supported(schema(dimensionsSpec={"dimensions": []}), JSON)
    ruby = schema(timestampSpec={"column": "ts", "format": "ruby"})
    assert not batch_supported(ruby, JSON)


def test_plain_batch_matches_rows() -> None:
    check(schema(), [records(*(ev(i) for i in range(50)))], expect_batch=True)


def test_nulls_missing_fields_and_multi_values() -> None:
    events = [
        ev(0),
        ev(1, page=None, tags=None, n=None, x=None, added=None, delta=None),
        {"ts": T0 + 5},
        ev(3, tags=[]),
        ev(4, tags=["z"]),
        ev(5, tags=[None, "q", "a"]),
        ev(6, page=""),
        ev(8, x=2, delta=7, added=12.9, n=-3.7),
    ]
    check(schema(), [records(*events)], expect_batch=True)
    booleans = [ev(i, n=bool(i % 2), added=i > 2, delta=True, x=False) for i in range(5)]
    check(schema(), [records(*booleans)], expect_batch=True)


@pytest.mark.parametrize("handling", ["SORTED_ARRAY", "SORTED_SET", "ARRAY"])
def test_multi_value_handling(handling: str) -> None:
    sch = schema(
        dimensionsSpec={
            "dimensions": [{"type": "string", "name": "tags", "multiValueHandling": handling}]
        }
    )
    events = [ev(i, tags=["c", "a", "c", None][: i % 5]) for i in range(10)]
    check(sch, [records(*events)], expect_batch=True)


def test_tombstones_and_empty_records_count_offsets_only() -> None:
    parts = [records(ev(0), None, b"", ev(3), None)]
    routed = check(schema(), parts, expect_batch=True)
    assert routed.next_offsets == {0: 5}


@pytest.mark.parametrize(
    "bad",
    [
        b"not json",
        b'\xef\xbb\xbf{"ts": 1704067200000}',
        b'{"ts": NaN}',
        b'{"ts": 1, "x": Infinity}',
        b'{"ts": 1704067200000}{"ts": 1704067200001}',
        b"   ",
        b"\t",
        b' {"ts": 1704067200000}',
        b'\t{"ts": 1704067200000}',
        b'\x0c{"ts": 1704067200000}',
        b"[1, 2]",
        b"5",
        b'{"ts": 1704067200000, "ts": 1}',
        b'{"ts": 1704067200000, "page": "\xff"}',
        b'{"ts": 1704067200000,\n"page": "a"}',
        b'{"ts": 1704067200000}\r',
        b'{"ts": 1704067200000, "page": "a", }',
        b'{"ts": "1704067200000"}',
        b'{"ts": null}',
        b'{"page": "no time"}',
        b'{"ts": true}',
        b'{"ts": 1704067200000, "page": 12}',
        b'{"ts": 1704067200000, "page": {"a": 1}}',
        b'{"ts": 1704067200000, "n": "12"}',
        b'{"ts": 1704067200000, "n": "x"}',
        b'{"ts": 1704067200000, "added": 18446744073709551615}',
        b'{"ts": 1704067200000, "added": 99999999999999999999}',
        b'{"ts": 1704067200000, "added": 9007199254740993.0}',
        b'{"ts": 1704067200000, "tags": [1, 2]}',
        b'{"ts": 1704067200000, "tags": [["a"]]}',
        b'{"ts": 1e18}',
    ],
)
def test_malformed_or_unusual_records_fall_back_and_match(bad: bytes) -> None:
    # A blank-looking record next to a two-object one must not pair up into the right count.
    parts = [records(ev(0), bad, ev(2), b'{"ts": 1704067200000}{"ts": 1704067200001}', ev(4))]
    check(schema(), parts, expect_batch=False)
    check(schema(), [records(ev(0), bad, ev(2))], expect_batch=False)
    check(schema(), [records(bad, ev(1))], expect_batch=False)


def test_capital_n_i_and_0xef_in_strings_still_batch() -> None:
    # The NaN / Infinity / BOM screens look for a rare first byte before the whole literal.
    events = [ev(0, page="Nancy"), ev(1, page="Index \u00ef"), ev(2, page="NaNa Infinite")]
    check(schema(), [records(ev(3), *events[:2])], expect_batch=True)
    check(schema(), [records(ev(3), events[2])], expect_batch=False)


def test_scalar_and_list_values_in_one_column_fall_back() -> None:
    # Arrow's reader refuses a column that is a string in one row and a list in another.
    check(schema(), [records(ev(0), ev(1, tags="solo"))], expect_batch=False)


def test_unusual_but_batchable_values_match() -> None:
    events = [
        b'{"ts": 1704067200000, "page": "caf\\u00e9 \\ud83d\\ude00", "p\\u0061ge2": 1}',
        b'{"ts":1704067200001,"added":-0,"delta":1e5,"n":9007199254740991}',
        b'{"ts": 1704067200002, "delta": 18446744073709551615}',
        b'{"ts": 1704067200003.9, "x": -1.5e-7}',
    ]
    check(schema(), [records(*events)], expect_batch=True)


def test_several_segment_intervals_and_partitions() -> None:
    p0 = records(*(ev(i, ts=T0 + (i % 3) * HOUR + i) for i in range(30)), partition=0)
    p1 = records(*(ev(i, ts=T0 - HOUR + i) for i in range(5)), partition=1, first=100)
    routed = check(schema(), [p0, p1], expect_batch=True, current={0: 0, 1: 100})
    assert sorted(b for _, b in routed.keys) == [T0 - HOUR, T0, T0 + HOUR, T0 + 2 * HOUR]


def test_offsets_outside_current_and_end_are_skipped() -> None:
    parts = [records(*(ev(i) for i in range(10)), partition=0, first=10)]
    routed = check(schema(), parts, expect_batch=True, current={0: 13}, ends={0: 17})
    assert routed.next_offsets == {0: 17}
    # a partition without a current offset is not read at all
    check(schema(), [*parts, records(ev(1), partition=3)], True, current={0: 13}, ends={0: 17})


def test_records_split_across_sequences_and_unhandled_ones() -> None:
    parts = [records(*(ev(i) for i in range(12)))]
    seqs = [seq("s0", {0: 0}, {0: 4}), seq("s1", {0: 4}, {0: 8})]  # 8.. has no sequence
    routed = check(schema(), parts, expect_batch=True, ends={0: 100}, sequences=seqs)
    assert {name for name, _ in routed.keys} == {"s0", "s1"}
    assert routed.next_offsets == {0: 12}


def test_message_time_window_and_intervals_throw_away() -> None:
    events = [ev(i, ts=T0 + i * 600_000) for i in range(20)]
    sch = schema(
        granularitySpec={
            "segmentGranularity": "hour",
            "queryGranularity": "minute",
            "intervals": ["2024-01-01T00:00:00Z/2024-01-01T02:00:00Z"],
        }
    )
    check(sch, [records(*events)], True, min_time=T0 + 1_200_000, max_time=T0 + 9_000_000)
    _, meters, _, _ = route(sch, [records(*events)], True, min_time=T0 + 1_200_000)
    assert meters.thrown_away == 2 + 8


def test_everything_thrown_away() -> None:
    events = [ev(i) for i in range(5)]
    check(schema(), [records(*events)], True, min_time=T0 + 10**9)


def test_rollup_and_query_granularity() -> None:
    sch = schema(granularitySpec={"segmentGranularity": "day", "queryGranularity": "minute"})
    events = [ev(i % 4, ts=T0 + i * 7000) for i in range(40)]
    check(sch, [records(*events)], expect_batch=True)


@pytest.mark.parametrize(
    ("fmt", "values"),
    [
        ("posix", [T0 // 1000, T0 // 1000 + 7, T0 / 1000 + 0.5]),
        ("auto", [T0, float(T0 + 3), "2024-01-01T00:00:09Z", str(T0 + 11)]),
        ("iso", ["2024-01-01T00:00:00Z", "2024-01-01", "2024-01-01T03:00:00.5+02:00"]),
        ("micro", [T0 * 1000 + 999, -5]),
        ("nano", [T0 * 1_000_000 + 5]),
        ("millis", [T0, -1, 0]),
    ],
)
def test_timestamp_formats(fmt: str, values: list[Any]) -> None:
    sch = schema(timestampSpec={"column": "ts", "format": fmt})
    by_type: dict[type, list[Any]] = {}
    for v in values:
        by_type.setdefault(type(v), []).append(v)
    for same in by_type.values():  # one JSON type per batch: Arrow infers one column type
        check(sch, [records(*(ev(i, ts=v) for i, v in enumerate(same)))], expect_batch=True)


def test_missing_timestamp_value_fills_nulls() -> None:
    sch = schema(timestampSpec={"column": "ts", "format": "millis", "missingValue": "2024-01-02"})
    events = [ev(0), ev(1, ts=None), {"page": "x"}, ev(3)]
    check(sch, [records(*events)], expect_batch=True)
    check(sch, [records({"page": "a"}, {"page": "b"})], expect_batch=True)


def test_parse_refuses_without_counting() -> None:
    meters = RowIngestionMeters()
    parser = BatchParser(schema(), JSON, meters)
    assert parser.parse([orjson.dumps(ev(0)), b"{bad"]) is None
    assert meters.totals() == {k: 0 for k in meters.totals()}
    parsed = parser.parse([orjson.dumps(ev(0)), orjson.dumps(ev(1))])
    assert parsed is not None and len(parsed.rows) == 2
    assert meters.processed == 2


def test_many_polls_into_one_index_with_rollup_and_compaction() -> None:
    sch = schema(granularitySpec={"segmentGranularity": "day", "queryGranularity": "hour"})
    polls = [
        records(*(ev(i % 6, ts=T0 + (i * 977_000) % (5 * HOUR)) for i in range(k, k + 40)), first=k)
        for k in range(0, 400, 40)
    ]
    indexes = []
    for batch in (False, True):
        index = IncrementalIndex(sch, compact_rows=50)
        for part in polls:
            routed, _, _, _ = route(sch, [part], batch, current={0: part.offsets[0]})
            assert routed.columnar == batch
            for rows in routed.rows.values():
                index.add_rows(rows)
            for cols in routed.columns.values():
                index.add_batch(cols)
        indexes.append(index)
    rows_index, batch_index = indexes
    assert batch_index.to_arrow().to_pylist() == rows_index.to_arrow().to_pylist()
    assert batch_index.to_arrow().schema == rows_index.to_arrow().schema
    assert batch_index.rows_in_memory == rows_index.rows_in_memory
    assert batch_index.rows_added == rows_index.rows_added == 400


@pytest.mark.parametrize("fmt", ["iso", "auto"])
def test_iso_looking_strings_stay_strings(fmt: str) -> None:
    # Arrow would infer timestamp[s] for these; the batch path names its string columns.
    sch = schema(timestampSpec={"column": "ts", "format": fmt})
    events = [
        ev(i, ts=f"2024-01-01T0{i}:00:00Z", page=f"2024-01-0{i + 1}", other="2024-01-01")
        for i in range(5)
    ]
    check(sch, [records(*events)], expect_batch=True)


def test_one_parser_across_polls_whose_shapes_change() -> None:
    sch = schema(timestampSpec={"column": "ts", "format": "auto"})
    shapes = [
        lambda i: ev(i, ts=f"2024-01-01T00:00:0{i % 10}Z", page=f"2024-01-0{i % 9 + 1}"),
        lambda i: ev(i, tags=["x", f"y{i % 3}"], ts=T0 + i),
        lambda i: ev(i, tags="plain", ts=f"2024-01-01T00:00:0{i % 10}Z"),
        lambda i: ev(i, tags=[f"z{i % 2}"], page="2024-01-01"),
        lambda i: ev(i, tags=[1, 2]),
        lambda i: ev(i),
    ]
    polls = [
        records(*(shape(i) for i in range(k * 10, k * 10 + 10)), first=k * 10)
        for k, shape in enumerate(shapes)
    ]
    results = []
    for batch in (False, True):
        meters = RowIngestionMeters()
        handler = ParseExceptionHandler(meters, 1000, 10, False)
        router = Router(
            RowParser(sch, JSON, handler),
            BatchParser(sch, JSON, meters) if batch else None,
            sch.granularitySpec.segmentGranularity,
        )
        seqs = [seq("s0", {0: 0}, {0: 1000})]
        out = []
        for part in polls:
            routed = router.route([part], {0: part.offsets[0]}, {0: 1000}, seqs, now_ms=T0)
            out.append(routed.columnar)
            index = IncrementalIndex(sch)
            for rows in routed.rows.values():
                index.add_rows(rows)
            for cols in routed.columns.values():
                index.add_batch(cols)
            out.append(index.to_arrow().to_pylist())
        results.append((out, meters.totals()))
    (rows_out, rows_totals), (batch_out, batch_totals) = results
    assert batch_out[1::2] == rows_out[1::2]
    assert batch_totals == rows_totals
    assert batch_out[0::2] == [True, True, True, True, False, True]


@pytest.mark.parametrize(
    ("values", "batch"),
    [
        (["2024-01-01T00:00:00Z", "2024-02-29T23:59:59.999Z", "1970-01-01T00:00:00.001Z"], True),
        (["2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00.5Z"], True),
        (["2024-01-01T00:00:00Z", "2023-02-29T00:00:00Z"], False),
        (["2024-01-01T00:00:00Z", "0000-01-01T00:00:00Z"], True),
        (["2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z"], False),
        (["2024-01-01T00:00:00Z", "not a time"], False),
    ],
)
def test_iso_timestamps(values: list[str], batch: bool) -> None:
    sch = schema(timestampSpec={"column": "ts", "format": "iso"})
    check(sch, [records(*(ev(i, ts=v) for i, v in enumerate(values)))], expect_batch=batch)


def test_multi_value_dimension_missing_from_a_whole_time_chunk() -> None:
    # The batch holds lists, but one segment's rows have no value at all: a string column there.
    events = [ev(0), {"ts": T0 - HOUR, "page": "x"}, ev(2), {"ts": T0 - HOUR + 1}]
    routed = check(schema(), [records(*events)], expect_batch=True)
    assert len(routed.keys) == 2


_NATURAL = {
    "page": ["str", "null", "missing"],
    "tags": ["list", "null", "missing", "str"],
    "n": ["int", "null", "missing", "float", "bool"],
    "x": ["float", "int", "null", "bool"],
    "added": ["int", "null", "missing", "float"],
    "delta": ["float", "int", "missing"],
}
_ANY = ["int", "float", "str", "bool", "null", "list", "dict", "missing"]


def _random_value(rnd: random.Random, kind: str) -> Any:
    choices: dict[str, list[Any]] = {
        "int": [0, 1, -7, 2**40, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1],
        "float": [0.5, -1.25, 1e20, 1e-7, 3.0, 2.0**60, -0.0],
        "str": ["a", "", "2024-01-01", "12", "1.5", "é", "true", "2024-01-01T00:00:00Z"],
        "bool": [True, False],
        "null": [None],
        "list": [[], ["a"], ["b", "a"], ["a", None], [None], ["x", "x"]],
        "dict": [{"k": 1}],
    }
    return rnd.choice(choices[kind])


def _random_ts(rnd: random.Random, fmt: str) -> Any:
    if rnd.random() < 0.05:
        return rnd.choice([None, "x", 1.5, True])
    ms = T0 + rnd.randrange(3 * HOUR)
    if fmt == "iso" or (fmt == "auto" and rnd.random() < 0.3):
        return f"2024-01-01T0{rnd.randrange(3)}:{rnd.randrange(60):02d}:00Z"
    scale = {"millis": 1, "auto": 1, "posix": 0, "micro": 1000, "nano": 1_000_000}[fmt]
    return ms // 1000 if scale == 0 else ms * scale


@pytest.mark.parametrize("seed", range(4))
def test_random_batches_match_rows(seed: int) -> None:
    rnd = random.Random(seed)
    taken = 0
    for _ in range(60):
        fmt = rnd.choice(["millis", "posix", "auto", "iso", "micro", "nano"])
        gspec = {
            "segmentGranularity": "hour",
            "queryGranularity": rnd.choice(["none", "minute"]),
            "rollup": rnd.random() < 0.5,
        }
        sch = schema(timestampSpec={"column": "ts", "format": fmt}, granularitySpec=gspec)
        kinds = {
            c: rnd.sample(nat, rnd.choice([1, 2, 3]))
            if rnd.random() < 0.85
            else rnd.sample(_ANY, 2)
            for c, nat in _NATURAL.items()
        }
        events = []
        for _ in range(rnd.randint(1, 12)):
            e: dict[str, Any] = {"ts": _random_ts(rnd, fmt)}
            for c, ks in kinds.items():
                k = rnd.choice(ks)
                if k != "missing":
                    e[c] = _random_value(rnd, k)
            events.append(e)
        columnar = route(sch, [records(*events)], True)[0].columnar
        check(sch, [records(*events)], expect_batch=columnar)
        taken += columnar
    assert taken >= 3  # the batch path really ran on some of them
