"""The incremental index: rollup as Druid does it, snapshots, discovery, bytes accounting."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.ingest.index import IncrementalIndex
from common.ingest.parser import InputRow
from common.ingest.spec import DataSchema, parse_data_schema
from common.segments.intervals import Interval

HOUR = 3_600_000
T0 = 1_704_067_200_000


def _schema(rollup: bool = True, query_granularity: str = "hour", **extra: Any) -> DataSchema:
    return parse_data_schema(
        {
            "dataSource": "wiki",
            "dimensionsSpec": {"dimensions": ["page", "country", {"type": "long", "name": "n"}]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
                {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
                {"type": "longMin", "name": "lo", "fieldName": "added"},
                {"type": "doubleMax", "name": "hi", "fieldName": "delta"},
            ],
            "granularitySpec": {
                "segmentGranularity": "day",
                "queryGranularity": query_granularity,
                "rollup": rollup,
            },
            **extra,
        }
    )


def _row(ts: int, page: str, country: str | None, n: int, added: int, delta: float) -> InputRow:
    dims: dict[str, Any] = {"page": page, "n": n}
    if country is not None:
        dims["country"] = country
    return InputRow(ts, dims, (None, added, delta, added, delta))


def _random_rows(count: int, seed: int = 7) -> list[InputRow]:
    rnd = random.Random(seed)
    return [
        _row(
            T0 + rnd.randrange(6 * HOUR),
            f"p{rnd.randrange(8)}",
            rnd.choice(["US", "FR", None]),
            rnd.randrange(2),
            rnd.randrange(100),
            rnd.random(),
        )
        for _ in range(count)
    ]


def _expected_rollup(rows: list[InputRow]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Druid's rolled-up rows, computed by hand."""
    acc: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0.0, None, None])
    for r in rows:
        key = (r.timestamp // HOUR * HOUR, r.dims["page"], r.dims.get("country"), r.dims["n"])
        a = acc[key]
        added, delta = r.metrics[1], r.metrics[2]
        a[0] += 1
        a[1] += added
        a[2] += delta
        a[3] = added if a[3] is None else min(a[3], added)
        a[4] = delta if a[4] is None else max(a[4], delta)
    return {k: tuple(v) for k, v in acc.items()}


def _actual(table: pa.Table) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    out = {}
    millis = table.column("__time").cast(pa.int64()).to_pylist()
    cols = {c: table.column(c).to_pylist() for c in table.column_names}
    for i, t in enumerate(millis):
        key = (t, cols["page"][i], cols["country"][i], cols["n"][i])
        assert key not in out, f"row {key} appears twice after rollup"
        out[key] = tuple(cols[m][i] for m in ("count", "added", "delta", "lo", "hi"))
    return out


def test_hour_rollup_matches_hand_computation_across_batches_and_compactions() -> None:
    rows = _random_rows(5000)
    index = IncrementalIndex(_schema(), compact_rows=700)
    for i in range(0, len(rows), 333):
        index.add_rows(rows[i : i + 333])
    table = index.to_arrow()
    expected = _expected_rollup(rows)
    actual = _actual(table)
    assert actual.keys() == expected.keys()
    for k, (count, added, delta, lo, hi) in expected.items():
        a = actual[k]
        assert a[:2] == (count, added) and a[3] == lo
        assert abs(a[2] - delta) < 1e-9 and a[4] == hi
    assert table.num_rows == len(expected) == index.rows_in_memory
    assert index.rows_added == 5000
    assert pc.sum(table.column("count")).as_py() == 5000


def test_rollup_agrees_with_a_pyarrow_group_by() -> None:
    rows = _random_rows(3000, seed=11)
    index = IncrementalIndex(_schema())
    index.add_rows(rows)
    raw = pa.table(
        {
            "t": [r.timestamp // HOUR * HOUR for r in rows],
            "page": [r.dims["page"] for r in rows],
            "country": [r.dims.get("country") for r in rows],
            "n": [r.dims["n"] for r in rows],
            "added": [r.metrics[1] for r in rows],
        }
    )
    ref = raw.group_by(["t", "page", "country", "n"]).aggregate([("added", "sum"), ("t", "count")])
    table = index.to_arrow()
    assert table.num_rows == ref.num_rows
    assert pc.sum(table.column("added")).as_py() == pc.sum(ref.column("added_sum")).as_py()


def test_without_rollup_every_row_is_kept_and_time_is_truncated() -> None:
    rows = [_row(T0 + 5, "a", "US", 1, 1, 1.0), _row(T0 + 9, "a", "US", 1, 2, 1.0)]
    index = IncrementalIndex(_schema(rollup=False, query_granularity="second"))
    index.add_rows(rows)
    table = index.to_arrow()
    assert table.num_rows == 2 == index.rows_in_memory
    assert table.column("__time").cast(pa.int64()).to_pylist() == [T0, T0]


def test_snapshot_schema_is_the_segment_format() -> None:
    index = IncrementalIndex(_schema())
    assert index.to_arrow().num_rows == 0
    index.add_rows(_random_rows(10))
    schema = index.to_arrow().schema
    assert schema.field("__time").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("page").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("n").type == pa.int64()
    assert schema.field("count").type == pa.int64() and schema.field("delta").type == pa.float64()
    assert schema.names == ["__time", "page", "country", "n", "count", "added", "delta", "lo", "hi"]


def test_snapshot_is_queryable_while_rows_keep_coming() -> None:
    index = IncrementalIndex(_schema())
    index.add_rows([_row(T0, "a", None, 0, 1, 0.5)])
    first = index.to_arrow()
    assert index.to_arrow() is first  # cached until new rows arrive
    index.add_rows([_row(T0 + 1, "a", None, 0, 2, 0.5), _row(T0, "b", None, 0, 4, 0.5)])
    second = index.to_arrow()
    assert first.num_rows == 1 and pc.sum(first.column("added")).as_py() == 1
    assert second.num_rows == 2 and pc.sum(second.column("added")).as_py() == 7


def test_discovered_dimensions_widen_and_multi_value() -> None:
    schema = parse_data_schema(
        {
            "dataSource": "x",
            "dimensionsSpec": {"useSchemaDiscovery": True},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"queryGranularity": "none", "rollup": True},
        }
    )
    index = IncrementalIndex(schema)
    index.add_rows([InputRow(1, {"a": 1, "tags": "x"}, (None,))])
    index.add_rows([InputRow(2, {"a": 2.5, "b": "new"}, (None,))])
    index.add_rows([InputRow(3, {"a": "text", "tags": ["y", "z"]}, (None,))])
    index.add_rows([InputRow(3, {"a": "text", "tags": ["y", "z"]}, (None,))])
    table = index.to_arrow()
    assert index.dimensions == ["a", "tags", "b"]
    assert table.schema.field("a").type == pa.dictionary(pa.int32(), pa.string())
    assert table.schema.field("tags").type == pa.list_(pa.string())
    assert table.column("a").to_pylist() == ["1", "2.5", "text"]
    assert table.column("tags").to_pylist() == [["x"], None, ["y", "z"]]
    assert table.column("b").to_pylist() == [None, "new", None]
    assert table.column("count").to_pylist() == [1, 1, 2]


def test_bytes_in_memory_grows_with_data_and_is_roughly_right() -> None:
    index = IncrementalIndex(_schema(rollup=False, query_granularity="none"))
    assert index.bytes_in_memory == 0
    sizes = []
    for i in range(4):
        rows = [_row(T0 + j, f"page-{i}-{j}-" + "x" * 40, "US", j, j, 0.5) for j in range(2000)]
        index.add_rows(rows)
        sizes.append(index.bytes_in_memory)
    assert sizes == sorted(sizes) and sizes[0] > 0
    # Per row: ~50 bytes of page text + offsets + dictionary index, 8 for time, 8 for n,
    # 5 metrics x 8, a little for country: at least ~110 bytes, and not wildly more.
    per_row = sizes[-1] / 8000
    assert 110 <= per_row <= 400, per_row
    index.compact()
    assert index.bytes_in_memory == index.to_arrow().get_total_buffer_size()


def test_rollup_shrinks_bytes_after_compaction() -> None:
    index = IncrementalIndex(_schema(), compact_rows=10**9)
    rows = [_row(T0 + j, "same", "US", 0, 1, 1.0) for j in range(10000)]
    index.add_rows(rows)
    before = index.bytes_in_memory
    assert index.rows_in_memory == 10000  # an upper bound until compaction
    index.compact()
    assert index.rows_in_memory == 1
    assert index.bytes_in_memory < before / 20


def test_persist_writes_a_segment_file(tmp_path: Path) -> None:
    schema = parse_data_schema(
        {
            "dataSource": "x",
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"queryGranularity": "hour"},
        }
    )
    index = IncrementalIndex(schema)
    index.add_rows(
        [InputRow(T0 + 5, {"page": "a"}, (None,)), InputRow(T0 + 6, {"page": "a"}, (None,))]
    )
    info = index.persist(tmp_path / "0.parquet", Interval(T0, T0 + 24 * HOUR))
    assert info.num_rows == 1 and info.dimensions == ("page",) and info.metrics == ("count",)
    table = pq.read_table(tmp_path / "0.parquet")
    assert table.column("count").to_pylist() == [2]
