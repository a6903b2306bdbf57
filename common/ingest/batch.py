"""The vectorised batch parser: many JSON records -> Arrow columns in one step.

The common streaming case (``json`` input without ``flattenSpec``, a numeric or ISO
``timestampSpec``, declared dimensions, no transforms or filter) does not need a Python object
per row: the record values are joined with ``\\n`` and read by ``pyarrow.json.read_json`` (C++,
releases the GIL), then timestamps, dimensions and metric inputs are converted column-wise.

Arrow infers ``timestamp[s]`` for ISO-looking strings, so string dimensions (and ISO/auto
timestamps) are read with an explicit ``string`` type, ``list<string>`` for the dimensions the
previous batches held lists in; when that reading fails, an inferring read learns the batch's
shapes for the next ones. Canonical UTC ISO timestamps are cast by Arrow, other ISO forms parsed
value by value with the row path's own parser.

The result must be exactly what ``RowParser`` gives row by row, so ``parse`` refuses (returns
``None``, having counted nothing) any batch where the columnar reading could differ: a record
Arrow reads differently from orjson (NaN/Infinity literals, a byte-order mark, several objects
on one line, a whitespace-only record, invalid UTF-8, duplicate keys, a record holding a
newline, one longer than 2000 bytes), a column whose JSON type needs the row-wise conversion
rules (a number in a string dimension, a string in a numeric one, an object, scalars and lists
mixed...), an integer too large to survive a double, or a row the row parser would count as
unparseable or processed-with-error. The caller then parses that batch row by row: slower,
never different.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from common.ingest.columns import MULTI_TYPE
from common.ingest.meters import RowIngestionMeters
from common.ingest.parser import string_converter
from common.ingest.spec import DataSchema, JsonInputFormat
from common.ingest.timestamps import make_timestamp_parser

#: Integers (and timestamps) a double holds exactly; beyond this the row path decides.
_EXACT = 2**53
#: orjson refuses nesting deeper than 1024; a record this short cannot nest that deep.
_MAX_RECORD_BYTES = 2000
_NUMERIC_TS = {"millis": 1, "posix": 1000, "auto": 1, "micro": -1000, "nano": -1_000_000}
#: UTC ISO-8601 with seconds and none or three fraction digits: Arrow's cast reads it as the
#: row path does (an impossible date fails both).
_CANONICAL_ISO = r"^[1-9]\d{3}-[01]\d-[0-3]\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?Z$"
_READ = pj.ReadOptions(use_threads=False, block_size=1 << 26)
#: The bytes ``bytes.isspace`` accepts: a record starting with one goes the row path.
_SPACE = np.frombuffer(b" \t\n\r\x0b\x0c", dtype=np.uint8)
_NEWLINE = ord("\n")


@dataclass
class ColumnBatch:
    """Parsed rows in columns: ``times`` raw epoch ms (not truncated); ``dims`` the dimension
    columns by name: ``string``; ``list<string>`` for a multi-value one, holding each value as
    the row path converts it, a single value as a one-element list (``IncrementalIndex``
    decides per chunk, as for rows, whether the column is multi-value); ``int64`` or
    ``float64``. ``metrics`` the metric inputs in
    ``metricsSpec`` order (``None`` for ``count``)."""

    times: np.ndarray[Any, np.dtype[np.int64]]
    dims: dict[str, pa.Array]
    metrics: list[pa.Array | None]

    def __len__(self) -> int:
        return len(self.times)

    def slice(self, start: int, stop: int) -> ColumnBatch:
        """Rows ``start`` to ``stop`` (zero-copy)."""
        n = max(0, min(stop, len(self)) - start)
        return ColumnBatch(
            self.times[start : start + n],
            {k: v.slice(start, n) for k, v in self.dims.items()},
            [None if m is None else m.slice(start, n) for m in self.metrics],
        )

    def take(self, indices: np.ndarray[Any, np.dtype[np.int64]]) -> ColumnBatch:
        idx = pa.array(indices)
        return ColumnBatch(
            self.times[indices],
            {k: v.take(idx) for k, v in self.dims.items()},
            [None if m is None else m.take(idx) for m in self.metrics],
        )


@dataclass
class ParsedBatch:
    """``rows`` of a batch and, for each row, the position of its record in the input."""

    rows: ColumnBatch
    record_index: np.ndarray[Any, np.dtype[np.int64]]


def batch_supported(schema: DataSchema, input_format: Any) -> bool:
    """Whether ``BatchParser`` can handle this schema and input format at all."""
    ts_format = schema.timestampSpec.format.strip().lower()
    return (
        isinstance(input_format, JsonInputFormat)
        and (
            input_format.flattenSpec is None
            or (not input_format.flattenSpec.fields and input_format.flattenSpec.useFieldDiscovery)
        )
        and (ts_format in _NUMERIC_TS or ts_format == "iso")
        and not schema.transformSpec.transforms
        and schema.transformSpec.filter is None
        and not schema.dimensionsSpec.discovers
        and schema.timestampSpec.column not in schema.dimensionsSpec.names
    )


class _Refused(Exception):
    """The batch needs the row-by-row path."""


class BatchParser:
    """Parses batches of JSON records for one ``dataSchema``; counts into ``meters``."""

    def __init__(self, schema: DataSchema, input_format: Any, meters: RowIngestionMeters) -> None:
        if not batch_supported(schema, input_format):
            raise ValueError("this dataSchema / inputFormat needs the row-by-row parser")
        self.meters = meters
        ts = schema.timestampSpec
        self._ts_column = ts.column
        self._ts_format = ts.format.strip().lower()
        self._parse_ts = make_timestamp_parser(ts.format)
        self._missing_ts = ts.missing_millis()
        intervals = schema.granularitySpec.intervals
        self._intervals = [(i.start, i.end) for i in intervals] if intervals is not None else None
        self._dims: list[tuple[str, str, Callable[[Any], Any] | None]] = []
        for d in schema.dimensionsSpec.dimensions:
            kind = "double" if d.type in ("float", "double") else d.type
            conv = string_converter(d.multiValueHandling) if kind == "string" else None
            self._dims.append((d.name, kind, conv))
        self._string_dims = [name for name, kind, _ in self._dims if kind == "string"]
        #: String dimensions the last batches held lists in: read as ``list<string>``.
        self._list_dims: set[str] = set()
        #: Whether the timestamps are read as strings (ISO), not numbers.
        self._ts_string = self._ts_format in ("iso", "auto")
        self._strict = self._parse_options()
        self._metrics: list[tuple[str | None, str | None]] = [
            (m.fieldName, None if m.type == "count" else m.output_kind) for m in schema.metricsSpec
        ]
        #: Sketch metrics keep raw values (and decode input sketches) row by row: such batches
        #: always go through ``RowParser``.
        self._row_wise = any(m.is_sketch for m in schema.metricsSpec)

    def parse(
        self,
        values: Sequence[bytes],
        min_time: int | None = None,
        max_time: int | None = None,
    ) -> ParsedBatch | None:
        """Rows of non-empty ``values`` (one JSON object each), or ``None`` when this batch must
        go through ``RowParser`` (nothing has been counted then)."""
        if self._row_wise:
            return None
        try:
            table, nbytes = self._read(values)
            return self._columns(table, nbytes, len(values), min_time, max_time)
        except _Refused:
            return None

    def parse_block(self, block: bytes) -> ParsedBatch | None:
        """Rows of ``block``, newline-delimited records as they sit in a file (no final
        newline), read without splitting it into lines; ``None`` (nothing counted) when the
        block needs the line-by-line path: a blank or whitespace-led line, or whatever
        ``parse`` refuses."""
        if self._row_wise:
            return None
        try:
            table, nbytes, n = self._read_block(block)
            return self._columns(table, nbytes, n, None, None)
        except _Refused:
            return None

    def parse_table(self, table: pa.Table) -> ParsedBatch | None:
        """Rows of an Arrow table (a Parquet file, an existing segment) with the same
        conversions, or ``None`` when it needs the row path (nothing counted then). Narrow
        integer and float columns are widened first, as the row path sees them."""
        try:
            return self._columns(_widen(table), 0, table.num_rows, None, None)
        except _Refused:
            return None

    def _columns(
        self,
        table: pa.Table,
        nbytes: int,
        n_values: int,
        min_time: int | None,
        max_time: int | None,
    ) -> ParsedBatch:
        """The batch of a table read from the records; raises ``_Refused``."""
        times = self._times(table)
        keep = self._window(times, min_time, max_time)
        if keep is not None:
            idx = np.flatnonzero(keep)
            table = table.take(pa.array(idx))
            times = times[idx]
            record_index = idx.astype(np.int64)
        else:
            record_index = np.arange(len(times), dtype=np.int64)
        dims = {name: self._dimension(table, name, kind, conv) for name, kind, conv in self._dims}
        metrics = [
            None if kind is None or field is None else self._numeric(table, field, kind)
            for field, kind in self._metrics
        ]
        n = len(times)
        if nbytes:
            self.meters.add_processed_bytes(nbytes)
        self.meters.increment("processed", n)
        if n_values > n:
            self.meters.add_thrown_away(n_values - n)
        return ParsedBatch(ColumnBatch(times, dims, metrics), record_index)

    # ------------------------------------------------------------------ reading

    def _read(self, values: Sequence[bytes]) -> tuple[pa.Table, int]:
        if not values:
            raise _Refused
        n = len(values)
        data = b"\n".join(values)
        # Each record one line: then n rows means one object per record.
        if data.count(b"\n") != n - 1:
            raise _Refused
        return self._read_lines(data, np.fromiter(map(len, values), dtype=np.int64, count=n))

    def _read_block(self, block: bytes) -> tuple[pa.Table, int, int]:
        """``block`` is lines joined by ``\n``; the lengths come from one vectorised scan."""
        if not block:
            raise _Refused
        ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == _NEWLINE)
        n = len(ends) + 1
        bounds = np.empty(n + 1, dtype=np.int64)
        bounds[0] = -1
        bounds[1:n] = ends
        bounds[n] = len(block)
        lengths = np.diff(bounds) - 1
        table, nbytes = self._read_lines(block, lengths)
        return table, nbytes, n

    def _read_lines(
        self, data: bytes, lengths: np.ndarray[Any, np.dtype[np.int64]]
    ) -> tuple[pa.Table, int]:
        """Records ``data`` (joined by ``\n``, of ``lengths``) as a table, or ``_Refused``."""
        n = len(lengths)
        nbytes = len(data) - (n - 1)
        # No blank record (Arrow skips a blank line, the row count would not match).
        if int(lengths.max()) > _MAX_RECORD_BYTES or not int(lengths.min()):
            raise _Refused
        # Literals Arrow's reader accepts and orjson does not: false alarms only cost speed. A
        # one-byte search (memchr) is ~100x faster than a multi-byte one, so the rare first
        # byte is looked for first.
        if (
            (b"N" in data and b"NaN" in data)
            or (b"I" in data and b"Inf" in data)
            or b"\r" in data
            or (b"\xef" in data and b"\xef\xbb\xbf" in data)
        ):
            raise _Refused
        # A record starting with whitespace may be blank, and Arrow skips a blank line.
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        if np.isin(np.frombuffer(data, dtype=np.uint8)[starts], _SPACE).any():
            raise _Refused
        if not data.isascii():  # a scan without the copy decoding makes
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _Refused from e
        try:
            # Arrow infers timestamp[s] for ISO-looking strings: name the string columns.
            table = pj.read_json(io.BytesIO(data), read_options=_READ, parse_options=self._strict)
        except pa.ArrowInvalid:
            # Some string dimension holds lists (multi-value), or lists no more, or the
            # ``auto`` timestamps are numbers: learn the shapes from an inferring read.
            table = self._read_inferred(data)
        if table.num_rows != n:
            raise _Refused
        return table, nbytes

    def _read_inferred(self, data: bytes) -> pa.Table:
        try:
            table = pj.read_json(io.BytesIO(data), read_options=_READ)
        except pa.ArrowInvalid as e:
            raise _Refused from e
        types = {f.name: f.type for f in table.schema}
        lists = {n for n in self._string_dims if n in types and pa.types.is_list(types[n])}
        ts_type = types.get(self._ts_column)
        ts_string = ts_type is not None and (
            pa.types.is_string(ts_type) or pa.types.is_timestamp(ts_type)
        )
        if (lists, ts_string) != (self._list_dims, self._ts_string):
            # Read the next batches in the shapes this one has.
            self._list_dims, self._ts_string = lists, ts_string
            self._strict = self._parse_options()
        read_as = [types.get(n) for n in [*self._string_dims, self._ts_column]]
        if any(t is not None and pa.types.is_timestamp(t) for t in read_as):
            try:
                return pj.read_json(
                    io.BytesIO(data), read_options=_READ, parse_options=self._strict
                )
            except pa.ArrowInvalid as e:
                raise _Refused from e
        return table

    def _parse_options(self) -> pj.ParseOptions:
        fields = [
            (n, MULTI_TYPE if n in self._list_dims else pa.string()) for n in self._string_dims
        ]
        if self._ts_string:
            fields.append((self._ts_column, pa.string()))
        return pj.ParseOptions(explicit_schema=pa.schema(fields))

    def _times(self, table: pa.Table) -> np.ndarray[Any, np.dtype[np.int64]]:
        n = table.num_rows
        if self._ts_column not in table.column_names:
            if self._missing_ts is None:
                raise _Refused
            return np.full(n, self._missing_ts, dtype=np.int64)
        col = table.column(self._ts_column).combine_chunks()
        if col.null_count:
            if self._missing_ts is None:
                raise _Refused
            filled = self._times(table.drop_columns([self._ts_column]))
            present = self._times(table.filter(col.is_valid()))
            filled[np.flatnonzero(col.is_valid().to_numpy(zero_copy_only=False))] = present
            return filled
        t = col.type
        fmt = self._ts_format
        if pa.types.is_string(t):
            if fmt == "iso" or fmt == "auto":
                if bool(pc.all(pc.match_substring_regex(col, _CANONICAL_ISO)).as_py()):
                    try:  # the form both parsers read alike: no Python per value
                        ms = col.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
                        return np.asarray(ms.to_numpy(), dtype=np.int64)
                    except pa.ArrowInvalid as e:  # e.g. 2023-02-29
                        raise _Refused from e
                try:
                    return np.fromiter(
                        (self._parse_ts(v) for v in col.to_pylist()), dtype=np.int64, count=n
                    )
                except (ValueError, TypeError, OverflowError) as e:
                    raise _Refused from e
            raise _Refused
        if fmt == "iso" or not (pa.types.is_int64(t) or pa.types.is_float64(t)):
            raise _Refused
        raw = col.to_numpy()
        if pa.types.is_float64(t):
            if n and float(np.abs(raw).max()) >= _EXACT:
                raise _Refused
            raw = raw.astype(np.int64)  # truncation toward zero, as int(v)
        scale = _NUMERIC_TS[fmt]
        if scale > 1 and n and (int(raw.max()) >= _EXACT or int(raw.min()) <= -_EXACT):
            raise _Refused  # the row path's Python ints do not overflow
        if scale > 1:
            raw = raw * scale
        elif scale < 0:
            raw = raw // -scale
        return np.asarray(raw, dtype=np.int64)

    def _window(
        self,
        times: np.ndarray[Any, np.dtype[np.int64]],
        min_time: int | None,
        max_time: int | None,
    ) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
        keep: np.ndarray[Any, np.dtype[np.bool_]] | None = None
        if min_time is not None:
            keep = times >= min_time
        if max_time is not None:
            m = times < max_time
            keep = m if keep is None else keep & m
        if self._intervals is not None:
            inside = np.zeros(len(times), dtype=np.bool_)
            for s, e in self._intervals:
                inside |= (times >= s) & (times < e)
            keep = inside if keep is None else keep & inside
        if keep is not None and bool(keep.all()):
            return None
        return keep

    # ------------------------------------------------------------------ columns

    def _dimension(
        self, table: pa.Table, name: str, kind: str, conv: Callable[[Any], Any] | None
    ) -> pa.Array:
        n = table.num_rows
        if name not in table.column_names:
            return _nulls(n, kind)
        col = table.column(name).combine_chunks()
        t = col.type
        if kind != "string":
            return self._numeric(table, name, kind)
        if pa.types.is_null(t):
            return _nulls(n, kind)
        if pa.types.is_string(t):
            return col
        if pa.types.is_list(t) and (
            pa.types.is_string(t.value_type) or pa.types.is_null(t.value_type)
        ):
            # Multi-value: rare enough for the row path's own conversion, value by value.
            assert conv is not None
            values = [None if v is None else conv(v) for v in col.to_pylist()]
            lists = [v if type(v) is list or v is None else [v] for v in values]
            return pa.array(lists, type=MULTI_TYPE)
        raise _Refused

    def _numeric(self, table: pa.Table, name: str, kind: str) -> pa.Array:
        n = table.num_rows
        target = pa.int64() if kind == "long" else pa.float64()
        if name not in table.column_names:
            return pa.nulls(n, type=target)
        col = table.column(name).combine_chunks()
        t = col.type
        if pa.types.is_null(t):
            return pa.nulls(n, type=target)
        if pa.types.is_int64(t) or pa.types.is_boolean(t):
            return col.cast(target, safe=False)
        if pa.types.is_float64(t):
            if kind == "long":
                big = pc.max(pc.abs(col)).as_py()
                if big is not None and big >= _EXACT:
                    raise _Refused
                return col.cast(target, safe=False)
            return col
        raise _Refused


def _widen(table: pa.Table) -> pa.Table:
    """Integers to int64, floats to float64, dictionaries and large strings to string: the
    types a JSON read gives, which ``_dimension`` and ``_numeric`` know."""
    cols = []
    for col in table.columns:
        t = col.type
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
            t = col.type
        if pa.types.is_integer(t) and not pa.types.is_int64(t) and t != pa.uint64():
            col = col.cast(pa.int64())
        elif pa.types.is_floating(t) and not pa.types.is_float64(t):
            col = col.cast(pa.float64())
        elif pa.types.is_large_string(t):
            col = col.cast(pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _nulls(n: int, kind: str) -> pa.Array:
    if kind == "string":
        return pa.nulls(n, type=pa.string())
    return pa.nulls(n, type=pa.int64() if kind == "long" else pa.float64())
