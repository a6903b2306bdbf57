"""Partials on the wire: Arrow IPC streams (schema metadata included)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc

from common.errors import InvalidInput


def to_ipc(table: pa.Table) -> bytes:
    """Serialise a partial result table as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_ipc(data: bytes) -> pa.Table:
    """Read a partial result table back from an Arrow IPC stream."""
    try:
        with ipc.open_stream(pa.py_buffer(data)) as reader:
            return reader.read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"not an Arrow IPC stream: {exc}") from None
