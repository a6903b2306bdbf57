"""JSON arrays of objects written straight from columns, without a Python dict per row.

A groupBy of 10,000 groups finalized as ``[{"version": ..., "timestamp": ..., "event": {...}}]``
built 20,000 dicts that the cyclic GC then walked, and orjson read them back: on this machine
that was 10-30 ms of the broker's time for a 2 ms merge. Here each column becomes the JSON text
of its values at once (``column_texts``), and the rows are spliced from those texts and constant
key texts in one ``bytes.join``. The bytes are the same as
``orjson.dumps`` of the dicts (``tests/unit/test_jsonrows.py`` compares them).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

#: orjson options of every JSON response (``common.jsonresp.dumps``): numpy scalars and
#: non-string keys.
OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def column_texts(col: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """``value_texts`` of ``col.to_pylist()``, binary values as base64 strings (as Druid writes
    sketches)."""
    values: list[Any] = col.to_pylist()
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        values = [None if v is None else base64.b64encode(v).decode() for v in values]
    return value_texts(values)


_NONE = type(None)
_SCALARS = frozenset({int, float, bool, _NONE})
_STRINGS = frozenset({str, _NONE})


def value_texts(values: list[Any]) -> list[bytes]:
    """Each value's JSON text, as ``orjson.dumps(values, option=OPTIONS)`` writes it.

    For a list of numbers, booleans and nulls, or of strings and nulls, one orjson call cut into
    values: numbers, booleans and nulls hold no comma, and in a list of JSON strings the bytes
    ``","`` only ever stand between two strings (inside one, a quote is always escaped). Other
    values one orjson call each: ~1 us a call, 50 ms for 40,000 values."""
    if not values:
        return []
    kinds = set(map(type, values))
    if kinds <= _SCALARS:
        return orjson.dumps(values)[1:-1].split(b",")
    if not kinds <= _STRINGS:
        try:
            return list(map(orjson.dumps, values))  # no per-call options: fastest
        except orjson.JSONEncodeError:  # a non-string key or a numpy value needs the options
            return [orjson.dumps(v, option=OPTIONS) for v in values]
    if _NONE not in kinds:
        return _string_texts(values)
    cells = np.array(values, dtype=object)
    present = cells != None  # noqa: E711 - elementwise, on an object array
    if not present.any():
        return [b"null"] * len(values)
    texts = np.empty(int(present.sum()), dtype=object)
    texts[:] = _string_texts(cells[present].tolist())  # kept as bytes objects
    cells[present] = texts
    cells[~present] = b"null"
    out: list[bytes] = cells.tolist()
    return out


def _string_texts(strings: list[str]) -> list[bytes]:
    # '","' -> '"\0"' (a JSON text holds no raw NUL) keeps each string's quotes when cut
    return orjson.dumps(strings)[1:-1].replace(b'","', b'"\0"').split(b"\0")


#: The bytes orjson escapes in a string: the quote, the backslash and the controls below 0x20.
_ESCAPED = np.zeros(256, dtype=bool)
_ESCAPED[:0x20] = True
_ESCAPED[[ord('"'), ord("\\")]] = True


def text_array(col: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """``column_texts`` as a binary array (no nulls: a null's text is ``null``), built in Arrow:
    integers as Arrow writes them (as orjson does), booleans, and strings (dictionary-encoded
    too) that hold nothing orjson escapes, in quotes. None for any other column, or a string
    that needs escaping (``column_texts`` then)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    typ = col.type
    if pa.types.is_dictionary(typ):
        values = text_array(col.dictionary)
        if values is None:
            return None
        return pc.fill_null(values.take(col.indices), b"null")
    if pa.types.is_integer(typ):
        texts = pc.cast(col, pa.string())
    elif pa.types.is_boolean(typ):
        texts = pc.if_else(col, "true", "false")
    elif pa.types.is_string(typ):
        if _needs_escape(col):
            return None
        texts = pc.binary_join_element_wise('"', col, '"', "")
    else:
        return None
    return pc.fill_null(texts, "null").cast(pa.binary())


def _needs_escape(col: pa.Array) -> bool:
    """A string column's bytes hold one that orjson escapes (of the column's slice)."""
    data = col.buffers()[2]
    if data is None or not len(col):
        return False
    start, end = _data_span(col)
    return bool(_ESCAPED[np.frombuffer(data, dtype=np.uint8)[start:end]].any())


def _data_span(col: pa.Array) -> tuple[int, int]:
    """Where a (non-empty) string or binary array's values lie in its data buffer."""
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)
    return int(offsets[col.offset]), int(offsets[col.offset + len(col)])


#: From this many rows on, ``objects_json_arrays`` is the faster (measured: 1.5x at 100 rows, 6x at
#: 10,000); below, its dozen Arrow calls per column cost more than Python's lists.
ARROW_ROWS = 64


def objects_json_arrays(
    names: Sequence[str],
    columns: Sequence[pa.Array],
    before: bytes | pa.Array = b"",
    after: bytes = b"",
) -> bytes:
    """``objects_json`` of columns of JSON texts held as binary arrays with no nulls
    (``text_array``): each row's text is joined in Arrow, and the rows are one slice of the
    result's data buffer."""
    return _splice_arrays(b"{", _object_keys(names), b"}", columns, before, after)


def arrays_json_arrays(columns: Sequence[pa.Array]) -> bytes:
    """``arrays_json`` of columns of JSON texts held as binary arrays (``objects_json_arrays``)."""
    return _splice_arrays(b"[", _array_keys(len(columns)), b"]", columns)


def _splice_arrays(
    opening: bytes,
    keys: list[bytes],
    closing: bytes,
    columns: Sequence[pa.Array],
    before: bytes | pa.Array = b"",
    after: bytes = b"",
) -> bytes:
    """``_splice`` in Arrow: one ``binary_join_element_wise`` writes every row (constant pieces
    as scalars), rows end in a comma, and the body is one slice of the joined data buffer."""
    rows = len(columns[0]) if columns else len(before) if isinstance(before, pa.Array) else 0
    if not rows:
        return b"[]"
    pieces: list[Any] = []
    lead = opening
    if isinstance(before, pa.Array):
        pieces.append(before)
    else:
        lead = before + lead
    for key, texts in zip(keys, columns, strict=True):
        pieces += [pa.scalar(lead + key, pa.binary()), texts]
        lead = b""
    pieces.append(pa.scalar(lead + closing + after + b",", pa.binary()))
    joined = pc.binary_join_element_wise(*pieces, pa.scalar(b"", pa.binary()))
    start, end = _data_span(joined)
    return b"[" + memoryview(joined.buffers()[2])[start : end - 1].tobytes() + b"]"


def objects_json(
    names: Sequence[str],
    columns: Sequence[list[bytes]],
    rows: int,
    before: bytes | list[bytes] = b"",
    after: bytes = b"",
) -> bytes:
    """``[before{"name": value, ...}after, ...]``: ``rows`` objects, object ``i`` holding
    ``columns[k][i]`` (JSON text, see ``value_texts``) under ``names[k]``, written between
    ``before`` (one for every row, or one per row) and ``after``. A repeated name is written
    each time (as Druid's SQL writer does); a dict would keep one value, so a caller matching
    dicts checks that the names are distinct."""
    return _splice(b"{", _object_keys(names), b"}", columns, rows, before, after)


def arrays_json(columns: Sequence[list[bytes]], rows: int) -> bytes:
    """``[[value, ...], ...]``: ``rows`` arrays, array ``i`` holding ``columns[k][i]``."""
    return _splice(b"[", _array_keys(len(columns)), b"]", columns, rows)


def _object_keys(names: Sequence[str]) -> list[bytes]:
    """What precedes each value in an object: ``"name":``, after a comma but for the first."""
    return [(b"," if i else b"") + orjson.dumps(name) + b":" for i, name in enumerate(names)]


def _array_keys(count: int) -> list[bytes]:
    """What precedes each value in an array: a comma but for the first."""
    return [b"," if i else b"" for i in range(count)]


def _splice(
    opening: bytes,
    keys: list[bytes],
    closing: bytes,
    columns: Sequence[list[bytes]],
    rows: int,
    before: bytes | list[bytes] = b"",
    after: bytes = b"",
) -> bytes:
    """One ``bytes.join`` over the rows laid out side by side: per row ``before``, ``opening``,
    then each column's ``keys[k]`` and value text, ``closing`` and ``after``, rows separated
    by commas, the whole in brackets."""
    if not rows:
        return b"[]"
    k = len(keys)
    width = 2 * k + 3  # before, opening, (key, value) * k, closing + after + ","
    flat: list[bytes] = [b""] * (rows * width)
    flat[0::width] = before if isinstance(before, list) else [before] * rows
    flat[1::width] = [opening] * rows
    for i, (key, texts) in enumerate(zip(keys, columns, strict=True)):
        flat[2 + 2 * i :: width] = [key] * rows
        flat[3 + 2 * i :: width] = texts
    flat[width - 1 :: width] = [closing + after + b","] * rows
    flat[-1] = closing + after  # no comma after the last row
    return b"[" + b"".join(flat) + b"]"
