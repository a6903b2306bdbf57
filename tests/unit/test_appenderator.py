"""Appenderator: a sink per interval, hydrant swap on persist, triggers, restore, push merges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.ingest import index as index_module
from common.ingest.appenderator import Appenderator, Hydrant, PersistLimits
from common.ingest.parser import InputRow
from common.ingest.spec import parse_data_schema
from common.segments.deep_storage import DeepStorage
from common.segments.format import read_parquet
from common.segments.intervals import Interval
from common.segments.segment import SegmentIdWithShardSpec

HOUR = 3_600_000
SCHEMA = parse_data_schema(
    {
        "dataSource": "wiki",
        "dimensionsSpec": {"dimensions": ["page"]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
        ],
        "granularitySpec": {"segmentGranularity": "HOUR", "queryGranularity": "HOUR"},
    }
)


def ident(hour: int, part: int = 0) -> SegmentIdWithShardSpec:
    return SegmentIdWithShardSpec("wiki", Interval(hour * HOUR, (hour + 1) * HOUR), "v1", part)


def row(t: int, page: str, added: int) -> InputRow:
    return InputRow(t, {"page": page}, (None, added))


def make(tmp: Path, **limits: float) -> Appenderator:
    return Appenderator(SCHEMA, tmp / "persist", PersistLimits(**limits), now=0.0)  # type: ignore[arg-type]


def test_sink_per_interval_and_row_accounting(tmp_path: Path) -> None:
    app = make(tmp_path)
    s0 = app.get_or_create_sink(ident(0), "seq_0")
    s1 = app.get_or_create_sink(ident(1), "seq_0")
    assert app.get_or_create_sink(ident(0), "seq_0") is s0
    app.add_rows(s0, [row(1, "a", 1), row(2, "a", 2), row(3, "b", 3)])
    app.add_rows(s1, [row(HOUR + 5, "a", 4)])
    s0.current.compact()
    assert s0.num_rows == 2  # rolled up by hour and page
    assert app.rows_in_memory == 3 and app.total_rows == 3
    assert app.bytes_in_memory > 0


def test_persist_triggers(tmp_path: Path) -> None:
    app = make(tmp_path, max_rows_in_memory=3, intermediate_persist_period=10.0)
    assert app.persist_reason(100.0) is None  # nothing in memory
    sink = app.get_or_create_sink(ident(0), "seq_0")
    app.add_rows(sink, [row(1, "a", 1)])
    assert app.persist_reason(1.0) is None
    assert app.persist_reason(10.0) == "intermediatePersistPeriod"
    app.add_rows(sink, [row(2, "b", 1), row(3, "c", 1)])
    assert app.persist_reason(1.0) == "maxRowsInMemory"
    byte_app = make(tmp_path / "b", max_bytes_in_memory=1)
    s = byte_app.get_or_create_sink(ident(0), "seq_0")
    byte_app.add_rows(s, [row(1, "a", 1)])
    assert byte_app.persist_reason(0.0) == "maxBytesInMemory"


def test_swap_persist_restore_and_push(tmp_path: Path) -> None:
    app = make(tmp_path)
    sink = app.get_or_create_sink(ident(0), "seq_0")
    app.add_rows(sink, [row(1, "a", 1), row(2, "b", 2)])
    swapped = app.swap(now=0.0)
    assert app.rows_in_memory == 0 and len(sink.hydrants) == 1
    assert sum(t.num_rows for t in sink.tables()) == 2  # still queryable while persisting
    app.persist_hydrants(swapped, {"nextPartitions": {"partitionSequenceNumberMap": {"0": 2}}})
    assert sink.hydrants[0].persisted and sink.num_rows == 2
    # rows added after the last commit are not on disk: a restore does not see them
    app.add_rows(sink, [row(3, "a", 10)])
    app.swap(now=0.0)  # swapped but never persisted
    app.close()

    again = make(tmp_path)
    commit = again.restore()
    assert commit == {"nextPartitions": {"partitionSequenceNumberMap": {"0": 2}}}
    restored = again.sinks[ident(0).segment_id]
    assert restored.sequence_name == "seq_0" and restored.num_rows == 2
    again.add_rows(restored, [row(4, "a", 5)])

    deep = DeepStorage("local", storage_directory=str(tmp_path / "deep"))
    segment = again.push(restored, deep)
    table, info = read_parquet(segment.load_spec["path"])
    # hydrants merged and rolled up across them: page a (1 + 5), page b (2)
    assert table.num_rows == 2 and info.dimensions == ("page",)
    assert pc.sum(table.column("added")).as_py() == 8
    assert pc.sum(table.column("count")).as_py() == 3
    assert segment.shard_spec.partition_num == 0 and segment.size > 0
    again.drop(ident(0).segment_id)
    assert not again.sinks and not (tmp_path / "persist" / str(ident(0))).exists()
    again.close()


def test_restore_without_commit_starts_fresh(tmp_path: Path) -> None:
    app = make(tmp_path)
    sink = app.get_or_create_sink(ident(0), "seq_0")
    app.add_rows(sink, [row(1, "a", 1)])
    app.swap(now=0.0)
    (tmp_path / "persist" / str(ident(0))).mkdir(parents=True)
    assert make(tmp_path).restore() is None
    assert not (tmp_path / "persist").exists()


def _dictionary(table: pa.Table, name: str) -> list[str]:
    return [str(v) for v in table.column(name).chunk(0).dictionary.to_pylist()]


def test_hydrant_dictionaries_extend_each_other_so_queries_keep_their_indices(
    tmp_path: Path,
) -> None:
    app = make(tmp_path)
    sink = app.get_or_create_sink(ident(0), "seq_0")
    meta = {"nextPartitions": {"partitionSequenceNumberMap": {"0": 1}}}
    app.add_rows(sink, [row(1, "b", 1), row(2, "a", 2)])
    app.persist_hydrants(app.swap(now=0.0), meta)
    app.add_rows(sink, [row(3, "c", 3), row(4, "a", 4)])
    sink.current.compact()  # compacted before the seed arrives: the next compaction redoes it
    app.add_rows(sink, [row(5, "d", 5)])
    app.persist_hydrants(app.swap(now=0.0), meta)
    app.add_rows(sink, [row(6, "e", 6), row(7, "b", 7)])
    h0, h1 = (h.table() for h in sink.hydrants)
    current = sink.current.to_arrow()
    assert _dictionary(h0, "page") == ["b", "a"]
    assert _dictionary(h1, "page") == ["b", "a", "c", "d"]
    assert _dictionary(current, "page")[:4] == ["b", "a", "c", "d"]
    # Unifying the hydrants for a query rewrites no hydrant's indices.
    query = sink.query_table(["count", "added"])
    for table, chunk in zip((h0, h1, current), query.column("page").chunks, strict=True):
        assert (
            chunk.indices.buffers()[1].address
            == table.column("page").chunk(0).indices.buffers()[1].address
        )
    # Values are what was added, hour-rolled-up per hydrant.
    pages, added = query.column("page").to_pylist(), query.column("added").to_pylist()
    got = sorted(zip(pages, added, strict=True))
    assert got == [("a", 2), ("a", 4), ("b", 1), ("b", 7), ("c", 3), ("d", 5), ("e", 6)]
    # A restored sink's next index starts from the last persisted hydrant's dictionary.
    app.close()
    again = make(tmp_path)
    again.restore()
    restored = next(iter(again.sinks.values()))
    again.add_rows(restored, [row(8, "f", 8), row(9, "a", 9)])
    assert _dictionary(restored.current.to_arrow(), "page") == ["b", "a", "c", "d", "f"]
    again.close()


def test_large_dictionaries_are_not_carried_over(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(index_module, "MAX_SEEDED_DICTIONARY", 2)
    app = make(tmp_path)
    sink = app.get_or_create_sink(ident(0), "seq_0")
    meta = {"nextPartitions": {"partitionSequenceNumberMap": {"0": 1}}}
    app.add_rows(sink, [row(1, "b", 1), row(2, "a", 2), row(3, "c", 3)])
    app.persist_hydrants(app.swap(now=0.0), meta)
    app.add_rows(sink, [row(4, "d", 4)])
    assert _dictionary(sink.current.to_arrow(), "page") == ["d"]
    app.close()


def test_a_query_racing_a_swap_sees_every_row(tmp_path: Path, monkeypatch: Any) -> None:
    """Queries read a sink in worker threads while the loop swaps its index. The swap is played
    here in the middle of a read (as the first hydrant is read): the reader must not combine the
    hydrants from before the swap with the fresh, empty index from after it."""
    app = make(tmp_path)
    sink = app.get_or_create_sink(ident(0), "seq_0")
    app.add_rows(sink, [row(1, "a", 1)])
    app.swap(now=0.0)
    app.add_rows(sink, [row(2, "b", 1)])
    table = Hydrant.table
    swaps: list[int] = []

    def swapping_table(h: Hydrant) -> pa.Table:
        if not swaps:
            swaps.append(len(app.swap(now=0.0)))
        return table(h)

    monkeypatch.setattr(Hydrant, "table", swapping_table)
    assert sum(t.num_rows for t in sink.tables()) == 2
    assert swaps == [1]  # the swap did happen mid-read
    assert sink.query_table(["count", "added"]).num_rows == 2
