"""The segment file format: Parquet (zstd) in deep storage, Arrow IPC memory-mapped in the cache.

Columns, in this order:

- ``__time``: ``timestamp[ms, tz=UTC]``, not null, rows sorted by it;
- dimensions: ``dictionary<int32, string>``, multi-value ones ``list<string>``; typed dimensions
  (Druid's ``long``, ``float`` and ``double`` dimensions) ``int64`` or ``float64``;
- metrics: ``int64`` or ``float64``; sketch metrics ``binary``, their field metadata
  ``druid.complexType`` naming Druid's complex type (``hyperUnique``, ``HLLSketch``...), kept as
  the writer was given it.

Both files carry the segment's own description (interval, dimensions, metrics, row count) as JSON
under the schema metadata key ``druid.segment``. The cached IPC file is uncompressed so that
``open_segment`` maps it and hands out Arrow buffers that point into the page cache: a loaded
segment costs no heap. Every failure to read a file is a ``SegmentFormatError``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from common.segments.errors import SegmentFormatError
from common.segments.intervals import Interval

TIME_COLUMN = "__time"
METADATA_KEY = b"druid.segment"
COMPLEX_TYPE_KEY = b"druid.complexType"
TIME_TYPE = pa.timestamp("ms", tz="UTC")
DIM_TYPE = pa.dictionary(pa.int32(), pa.string())
MULTI_DIM_TYPE = pa.list_(pa.string())
IPC_BATCH_ROWS = 512 * 1024


@dataclass(frozen=True)
class SegmentFileInfo:
    """What a segment file says about itself (schema metadata ``druid.segment``)."""

    interval: Interval
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    num_rows: int

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "interval": str(self.interval),
                "dimensions": list(self.dimensions),
                "metrics": list(self.metrics),
                "numRows": self.num_rows,
            }
        )

    @classmethod
    def from_schema(cls, schema: pa.Schema, where: str) -> SegmentFileInfo:
        raw = (schema.metadata or {}).get(METADATA_KEY)
        if raw is None:
            raise SegmentFormatError(f"{where}: not a segment file (no {METADATA_KEY!r} metadata)")
        try:
            d: dict[str, Any] = orjson.loads(raw)
            return cls(
                Interval.parse(d["interval"]),
                tuple(d["dimensions"]),
                tuple(d["metrics"]),
                int(d["numRows"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SegmentFormatError(f"{where}: bad segment metadata: {exc}") from exc


def _is_stringish(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _normalise_dimension(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    t = col.type
    if pa.types.is_dictionary(t) and _is_stringish(t.value_type):
        return col.cast(DIM_TYPE)
    if _is_stringish(t) or pa.types.is_null(t):
        return pc.dictionary_encode(col.cast(pa.string())).cast(DIM_TYPE)
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and (
        _is_stringish(t.value_type) or pa.types.is_null(t.value_type)
    ):
        return col.cast(MULTI_DIM_TYPE)
    if pa.types.is_integer(t):
        return col.cast(pa.int64())
    if pa.types.is_floating(t):
        return col.cast(pa.float64())
    raise SegmentFormatError(
        f"dimension [{name}] has type [{t}]; need string, list<string>, integer or float"
    )


def _normalise_metric(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return col.cast(pa.int64())
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return col.cast(pa.float64())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return col.cast(pa.binary())
    raise SegmentFormatError(f"metric [{name}] has type [{t}]; need integer, float or binary")


def _is_dimension_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_stringish(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _is_stringish(t.value_type)
    return _is_stringish(t)


def normalise_table(
    table: pa.Table,
    interval: Interval,
    dimensions: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> tuple[pa.Table, SegmentFileInfo]:
    """Validate ``table`` and convert it to the segment schema, sorted by ``__time``.

    Without explicit ``dimensions``/``metrics`` the string and list<string> columns are
    dimensions and the rest metrics, in table order. Rows outside ``interval`` are an error.
    """
    if TIME_COLUMN not in table.column_names:
        raise SegmentFormatError(f"table has no [{TIME_COLUMN}] column")
    others = [c for c in table.column_names if c != TIME_COLUMN]
    if dimensions is None:
        dimensions = [c for c in others if _is_dimension_type(table.schema.field(c).type)]
    if metrics is None:
        metrics = [c for c in others if c not in dimensions]
    names = [TIME_COLUMN, *dimensions, *metrics]
    if len(set(names)) != len(names):
        raise SegmentFormatError(f"duplicate column names in {names}")
    missing = [c for c in names if c not in table.column_names]
    if missing:
        raise SegmentFormatError(f"columns {missing} are declared but not in the table")
    extra = sorted(set(others) - set(names))
    if extra:
        raise SegmentFormatError(f"columns {extra} are neither dimensions nor metrics")

    time = table.column(TIME_COLUMN)
    if pa.types.is_timestamp(time.type):
        time = time.cast(pa.timestamp("ms", tz=time.type.tz), safe=False).cast(TIME_TYPE)
    elif pa.types.is_integer(time.type):
        time = time.cast(pa.int64()).cast(TIME_TYPE)
    else:
        raise SegmentFormatError(f"[{TIME_COLUMN}] has type [{time.type}]; need timestamp or int64")
    if time.null_count:
        raise SegmentFormatError(f"[{TIME_COLUMN}] has {time.null_count} null values")
    if len(time):
        millis = time.cast(pa.int64())
        lo, hi = pc.min(millis).as_py(), pc.max(millis).as_py()
        if lo < interval.start or hi >= interval.end:
            raise SegmentFormatError(f"rows from {lo} to {hi} fall outside interval {interval}")

    cols = [time]
    cols += [_normalise_dimension(d, table.column(d)) for d in dimensions]
    cols += [_normalise_metric(m, table.column(m)) for m in metrics]
    info = SegmentFileInfo(interval, tuple(dimensions), tuple(metrics), table.num_rows)
    fields = [
        pa.field(n, c.type, nullable=n != TIME_COLUMN, metadata=_complex_meta(table, n, c.type))
        for n, c in zip(names, cols, strict=True)
    ]
    schema = pa.schema(fields, metadata={METADATA_KEY: info.to_bytes()})
    out = pa.Table.from_arrays(cols, schema=schema)
    return sort_by_time(out), info


def sort_by_time(table: pa.Table) -> pa.Table:
    """``table`` stably sorted by ``__time``; a table already in order (the usual case: input
    read in time order, or sorted before) is returned as it is, after an O(n) check."""
    n = table.num_rows
    if n <= 1:
        return table
    millis = table.column(TIME_COLUMN).cast(pa.int64())
    if pc.all(pc.greater_equal(millis.slice(1), millis.slice(0, n - 1))).as_py():
        return table
    return table.sort_by([(TIME_COLUMN, "ascending")])


def _complex_meta(table: pa.Table, name: str, typ: pa.DataType) -> dict[bytes, bytes] | None:
    """A binary metric's ``druid.complexType`` field metadata, carried over from ``table``."""
    if not pa.types.is_binary(typ):
        return None
    meta = table.schema.field(name).metadata or {}
    value = meta.get(COMPLEX_TYPE_KEY)
    return {COMPLEX_TYPE_KEY: value} if value else None


def write_parquet(
    table: pa.Table,
    path: str | os.PathLike[str],
    interval: Interval,
    dimensions: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> SegmentFileInfo:
    """Normalise ``table`` and write it as one zstd Parquet file (atomically, via a temp file).
    Only the string dimensions are dictionary-encoded: trying it on times and metrics (mostly
    distinct values) doubles the write time and makes the file bigger. ``__time``, sorted, is
    delta-encoded (``DELTA_BINARY_PACKED``): a fraction of the plain size, faster both ways."""
    out, info = normalise_table(table, interval, dimensions, metrics)
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    encoded = [
        f"{f.name}.list.element" if pa.types.is_list(f.type) else f.name
        for f in out.schema
        if f.name in info.dimensions
        and (pa.types.is_dictionary(f.type) or pa.types.is_list(f.type))
    ]
    pq.write_table(
        out,
        tmp,
        compression="zstd",
        use_dictionary=encoded,
        column_encoding={TIME_COLUMN: "DELTA_BINARY_PACKED"},
    )
    os.replace(tmp, target)
    return info


def read_parquet(path: str | os.PathLike[str]) -> tuple[pa.Table, SegmentFileInfo]:
    """Read a deep-storage segment file fully into memory."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise SegmentFormatError(f"{path}: unreadable Parquet segment: {exc}") from exc
    info = SegmentFileInfo.from_schema(table.schema, str(path))
    _check(table, info, str(path))
    return table, info


def parquet_to_ipc(
    parquet_path: str | os.PathLike[str], ipc_path: str | os.PathLike[str]
) -> SegmentFileInfo:
    """Convert a deep-storage Parquet segment into the cache's uncompressed Arrow IPC file."""
    table, info = read_parquet(parquet_path)
    # The IPC file format allows one dictionary per column for the whole file; record batches
    # of IPC_BATCH_ROWS (Parquet's reader gives smaller ones): the query engine reads a batch's
    # columns in place, and fewer, larger numpy calls are what lets segments run in parallel
    # (each call is a GIL hand-over between the processing threads).
    table = table.unify_dictionaries().combine_chunks()
    target = Path(ipc_path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=IPC_BATCH_ROWS)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return info


class MappedSegment:
    """A cached segment opened memory-mapped; its table's buffers point into the mapping."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        try:
            self._mmap = pa.memory_map(self.path, "r")
        except (pa.ArrowException, OSError) as exc:
            raise SegmentFormatError(f"{self.path}: cannot open segment: {exc}") from exc
        try:
            reader = ipc.open_file(self._mmap)
            self.info = SegmentFileInfo.from_schema(reader.schema, self.path)
            self.table: pa.Table = reader.read_all()
            _check(self.table, self.info, self.path)
        except SegmentFormatError:
            self._mmap.close()
            raise
        except (pa.ArrowException, OSError, ValueError) as exc:
            self._mmap.close()
            raise SegmentFormatError(f"{self.path}: corrupt or truncated segment: {exc}") from exc

    @property
    def size(self) -> int:
        return int(self._mmap.size())

    def close(self) -> None:
        self.table = pa.table({})
        self._mmap.close()

    def __enter__(self) -> MappedSegment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_segment(path: str | os.PathLike[str]) -> MappedSegment:
    """Open a cached IPC segment without copying it into memory."""
    return MappedSegment(path)


def _check(table: pa.Table, info: SegmentFileInfo, where: str) -> None:
    expected = [TIME_COLUMN, *info.dimensions, *info.metrics]
    if table.column_names != expected:
        raise SegmentFormatError(f"{where}: columns {table.column_names} != {expected}")
    if table.num_rows != info.num_rows:
        raise SegmentFormatError(f"{where}: {table.num_rows} rows, metadata says {info.num_rows}")
    if table.schema.field(TIME_COLUMN).type != TIME_TYPE:
        raise SegmentFormatError(f"{where}: [{TIME_COLUMN}] is not {TIME_TYPE}")
