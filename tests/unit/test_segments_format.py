"""Segment files: Parquet writer, Parquet -> IPC conversion, memory-mapped zero-copy reader."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.segments import format as segment_format
from common.segments.errors import SegmentFormatError
from common.segments.format import (
    DIM_TYPE,
    MULTI_DIM_TYPE,
    TIME_TYPE,
    open_segment,
    parquet_to_ipc,
    read_parquet,
    write_parquet,
)
from common.segments.intervals import Interval

DAY = Interval.parse("2024-01-01/2024-01-02")
T0 = DAY.start


def sample(n: int = 6) -> pa.Table:
    return pa.table(
        {
            "__time": pa.array([T0 + (n - i) * 1000 for i in range(n)], pa.int64()),
            "page": [f"p{i % 3}" for i in range(n)],
            "tags": [["a", "b"] if i % 2 else [] for i in range(n)],
            "count": pa.array(range(n), pa.int32()),
            "added": [float(i) / 2 for i in range(n)],
            "sketch": pa.array([bytes([i % 256]) for i in range(n)], pa.binary()),
        }
    )


def test_write_and_read_parquet(tmp_path: Path) -> None:
    path = tmp_path / "index.parquet"
    info = write_parquet(sample(), path, DAY)
    assert info.dimensions == ("page", "tags") and info.metrics == ("count", "added", "sketch")
    assert info.num_rows == 6 and info.interval == DAY
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    table, info2 = read_parquet(path)
    assert info2 == info
    types = {f.name: f.type for f in table.schema}
    assert types == {
        "__time": TIME_TYPE,
        "page": DIM_TYPE,
        "tags": MULTI_DIM_TYPE,
        "count": pa.int64(),
        "added": pa.float64(),
        "sketch": pa.binary(),
    }
    times = table.column("__time").cast(pa.int64()).to_pylist()
    assert times == sorted(times)
    assert table.column("count").to_pylist() == [5, 4, 3, 2, 1, 0]  # rows sorted by time


def test_explicit_columns_and_timestamps(tmp_path: Path) -> None:
    t = pa.table(
        {
            "__time": pa.array([T0 * 1000], pa.timestamp("us")),
            "n": pa.array(["x"], pa.large_string()),
            "v": [1],
        }
    )
    info = write_parquet(t, tmp_path / "a.parquet", DAY, dimensions=["n"], metrics=["v"])
    assert info.dimensions == ("n",)
    table, _ = read_parquet(tmp_path / "a.parquet")
    assert table.column("__time").cast(pa.int64()).to_pylist() == [T0]


@pytest.mark.parametrize(
    ("table", "kwargs", "msg"),
    [
        (pa.table({"x": [1]}), {}, "no \\[__time\\]"),
        (pa.table({"__time": [T0 - 1]}), {}, "outside interval"),
        (pa.table({"__time": pa.array([T0, None], pa.int64())}), {}, "null"),
        (pa.table({"__time": ["2024-01-01"]}), {}, "need timestamp"),
        (pa.table({"__time": [T0], "m": [[1]]}), {}, "metric \\[m\\]"),
        (pa.table({"__time": [T0], "d": [b"x"]}), {"dimensions": ["d"]}, "dimension \\[d\\]"),
        (pa.table({"__time": [T0], "d": ["x"]}), {"dimensions": []}, "metric \\[d\\]"),
        (pa.table({"__time": [T0]}), {"metrics": ["zz"]}, "not in the table"),
        (pa.table({"__time": [T0], "a": ["x"]}), {"dimensions": [], "metrics": []}, "neither"),
    ],
)
def test_writer_rejects_bad_tables(
    tmp_path: Path, table: pa.Table, kwargs: dict[str, list[str]], msg: str
) -> None:
    with pytest.raises(SegmentFormatError, match=msg):
        write_parquet(table, tmp_path / "x.parquet", DAY, **kwargs)
    assert not (tmp_path / "x.parquet").exists()


def test_typed_dimensions_are_int64_and_float64(tmp_path: Path) -> None:
    table = pa.table(
        {
            "__time": pa.array([T0, T0 + 1], pa.int64()),
            "n": pa.array([1, 2], pa.int32()),
            "f": pa.array([0.5, 1.5], pa.float32()),
            "count": pa.array([1, 1], pa.int64()),
        }
    )
    info = write_parquet(table, tmp_path / "t.parquet", DAY, dimensions=["n", "f"])
    assert info.dimensions == ("n", "f") and info.metrics == ("count",)
    back, _ = read_parquet(tmp_path / "t.parquet")
    assert back.schema.field("n").type == pa.int64()
    assert back.schema.field("f").type == pa.float64()
    assert back.column("n").to_pylist() == [1, 2]


def test_ipc_conversion_with_many_row_groups(tmp_path: Path) -> None:
    pq_path = tmp_path / "index.parquet"
    n = 5000
    write_parquet(sample(n), pq_path, DAY)
    # Re-write with small row groups: every group gets its own dictionary.
    table = pq.read_table(pq_path)
    pq.write_table(table, pq_path, row_group_size=700, compression="zstd")
    info = parquet_to_ipc(pq_path, tmp_path / "index.arrow")
    with open_segment(tmp_path / "index.arrow") as seg:
        assert seg.info == info
        assert seg.table.num_rows == n
        assert seg.table.column("page").type == DIM_TYPE
        assert seg.table.column("page").to_pylist() == table.column("page").to_pylist()
        assert seg.table.column("tags").to_pylist() == table.column("tags").to_pylist()


def test_ipc_record_batches_are_long_whatever_the_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine reads a batch's columns in place: the cache's record batches are as long as
    # IPC_BATCH_ROWS allows, not as short as Parquet's row groups.
    monkeypatch.setattr(segment_format, "IPC_BATCH_ROWS", 2000)
    pq_path = tmp_path / "index.parquet"
    write_parquet(sample(5000), pq_path, DAY)
    pq.write_table(pq.read_table(pq_path), pq_path, row_group_size=700, compression="zstd")
    parquet_to_ipc(pq_path, tmp_path / "index.arrow")
    with open_segment(tmp_path / "index.arrow") as seg:
        assert [b.num_rows for b in seg.table.to_batches()] == [2000, 2000, 1000]


def test_open_segment_is_memory_mapped(tmp_path: Path) -> None:
    n = 300_000
    big = pa.table(
        {
            "__time": pa.array([T0 + i for i in range(n)], pa.int64()),
            "page": [f"page-{i % 1000}" for i in range(n)],
            "v": pa.array(range(n), pa.int64()),
            "d": [i * 0.5 for i in range(n)],
        }
    )
    write_parquet(big, tmp_path / "s.parquet", DAY)
    parquet_to_ipc(tmp_path / "s.parquet", tmp_path / "s.arrow")
    del big
    before = pa.total_allocated_bytes()
    with open_segment(tmp_path / "s.arrow") as seg:
        table_bytes = seg.table.nbytes
        allocated = pa.total_allocated_bytes() - before
        assert table_bytes > 5_000_000
        assert allocated < table_bytes // 100, (allocated, table_bytes)
        assert seg.table.column("v")[n - 1].as_py() == n - 1
        assert seg.size > 5_000_000  # nbytes counts the shared dictionary once per batch


def test_corrupt_files_are_domain_errors(tmp_path: Path) -> None:
    write_parquet(sample(), tmp_path / "ok.parquet", DAY)
    parquet_to_ipc(tmp_path / "ok.parquet", tmp_path / "ok.arrow")

    whole = (tmp_path / "ok.arrow").read_bytes()
    (tmp_path / "trunc.arrow").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "junk.arrow").write_bytes(b"this is not arrow" * 100)
    (tmp_path / "empty.arrow").write_bytes(b"")
    for name in ("trunc.arrow", "junk.arrow", "empty.arrow", "missing.arrow"):
        with pytest.raises(SegmentFormatError):
            open_segment(tmp_path / name)

    data = (tmp_path / "ok.parquet").read_bytes()
    (tmp_path / "trunc.parquet").write_bytes(data[: len(data) - 40])
    (tmp_path / "flip.parquet").write_bytes(
        data[:4] + bytes(b ^ 0xFF for b in data[4:200]) + data[200:]
    )
    pq.write_table(pa.table({"__time": [1]}), tmp_path / "plain.parquet")
    for name in ("trunc.parquet", "flip.parquet", "plain.parquet", "missing.parquet"):
        with pytest.raises(SegmentFormatError):
            parquet_to_ipc(tmp_path / name, tmp_path / "out.arrow")
    assert not (tmp_path / "out.arrow").exists()

    # A valid Arrow file that is not a segment.
    with (
        pa.OSFile(str(tmp_path / "plain.arrow"), "wb") as f,
        pa.ipc.new_file(f, pa.schema([("x", pa.int64())])) as w,
    ):
        w.write_table(pa.table({"x": [1]}))
    with pytest.raises(SegmentFormatError, match="not a segment"):
        open_segment(tmp_path / "plain.arrow")
