"""Input formats of native batch ingestion: a split's bytes -> ``InputRow``s.

``json``: one JSON object per line (Druid's newline-delimited JSON), read in blocks of a few
MiB column-wise (``BatchParser.parse_block``) when the schema allows it, a refused block line
by line (in batches, column-wise where a batch allows it, else row by row); ``csv``/``tsv``:
the whole split through the delimited decoder (each file has its own header and
``skipHeaderRows``);
``parquet``: the file read with pyarrow, timestamp columns as epoch milliseconds (so
``timestampSpec`` ``millis``/``auto`` reads them), binary columns as UTF-8 text with
``binaryAsString``. Every row goes through the streaming ``RowParser``: the same timestampSpec,
dimensions, transforms, filter, ``intervals`` (rows outside are thrown away) and row counters.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.ingest.batch import BatchParser, ColumnBatch
from common.ingest.batch_input.spec import ParquetInputFormat
from common.ingest.parser import InputRow, RowParser
from common.ingest.spec import DelimitedInputFormat, JsonInputFormat

#: Rows handed to the parser at a time from columnar inputs (bounds the dicts alive at once).
EVENT_BATCH = 10_000
#: Rows per column-wise batch of a table.
TABLE_BATCH = 262_144
#: Bytes of JSON lines read column-wise at a time (Arrow's reader on the file's own bytes).
JSON_BLOCK_BYTES = 4 << 20


def _lines(data: bytes) -> Iterator[bytes]:
    for line in data.split(b"\n"):
        if line.strip():
            yield line


def _blocks(data: bytes) -> Iterator[bytes]:
    """``data`` in pieces of about ``JSON_BLOCK_BYTES`` that end at a line end (the newline
    itself left out)."""
    pos, size = 0, len(data)
    if data.endswith(b"\n"):
        size -= 1  # the last line's end
    while pos < size:
        end = -1
        if pos + JSON_BLOCK_BYTES < size:
            end = data.find(b"\n", pos + JSON_BLOCK_BYTES, size)
        if end < 0:
            end = size
        yield data[pos:end]
        pos = end + 1


def _json_lines(
    parser: RowParser, columnar: BatchParser | None, data: bytes, now_ms: int
) -> Iterator[list[InputRow] | ColumnBatch]:
    batch: list[bytes] = []
    for line in _lines(data):
        batch.append(line)
        if len(batch) >= EVENT_BATCH:
            yield _json_batch(parser, columnar, batch, now_ms)
            batch = []
    if batch:
        yield _json_batch(parser, columnar, batch, now_ms)


def _json_batch(
    parser: RowParser, columnar: BatchParser | None, lines: list[bytes], now_ms: int
) -> list[InputRow] | ColumnBatch:
    if columnar is not None:
        parsed = columnar.parse(lines)
        if parsed is not None:
            return parsed.rows
    return parser.parse_many(lines, now_ms)


def parse_bytes(
    parser: RowParser,
    fmt: JsonInputFormat | DelimitedInputFormat | ParquetInputFormat,
    data: bytes,
    now_ms: int,
    columnar: BatchParser | None = None,
) -> Iterator[list[InputRow] | ColumnBatch]:
    """Batches of rows of one split (blocking; counts into the parser's meters). JSON lines go
    through ``columnar`` (the streaming path's vectorised parser) when given, a block at a
    time; what it refuses goes line by line, with the same result."""
    if isinstance(fmt, JsonInputFormat):
        if columnar is None:
            yield from _json_lines(parser, None, data, now_ms)
            return
        for block in _blocks(data):
            parsed = columnar.parse_block(block)
            if parsed is not None:
                yield parsed.rows
            else:  # this block only: line batches, column-wise where they allow it
                yield from _json_lines(parser, columnar, block, now_ms)
    elif isinstance(fmt, DelimitedInputFormat):
        yield parser.parse(data, now_ms)
    else:
        table = pq.read_table(io.BytesIO(data))
        yield from parse_table(
            parser, table, now_ms, binary_as_string=fmt.binaryAsString, columnar=columnar
        )


def _plain_column(col: pa.ChunkedArray, binary_as_string: bool) -> pa.ChunkedArray:
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pc.cast(pc.cast(col, pa.timestamp("ms")), pa.int64())
    if binary_as_string and (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
        return pc.cast(col, pa.string())
    if pa.types.is_dictionary(t):
        return pc.cast(col, t.value_type)
    return col


def parse_table(
    parser: RowParser,
    table: pa.Table,
    now_ms: int,
    *,
    binary_as_string: bool = True,
    columnar: BatchParser | None = None,
) -> Iterator[list[InputRow] | ColumnBatch]:
    """Rows of an Arrow table (a Parquet file, or an existing segment for ``druid`` input):
    column-wise through ``columnar`` when it takes the batch, else row by row."""
    columns = {
        name: _plain_column(table.column(name), binary_as_string) for name in table.column_names
    }
    plain = pa.table(columns)
    for rb in plain.to_batches(max_chunksize=TABLE_BATCH if columnar else EVENT_BATCH):
        if columnar is not None:
            parsed = columnar.parse_table(pa.Table.from_batches([rb]))
            if parsed is not None:
                yield parsed.rows
                continue
        for offset in range(0, rb.num_rows, EVENT_BATCH):
            events: list[dict[str, Any]] = rb.slice(offset, EVENT_BATCH).to_pylist()
            yield parser.parse_events(events, now_ms)
