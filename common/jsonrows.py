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
    keys = [(b"," if i else b"") + orjson.dumps(name) + b":" for i, name in enumerate(names)]
    return _splice(b"{", keys, b"}", columns, rows, before, after)


def arrays_json(columns: Sequence[list[bytes]], rows: int) -> bytes:
    """``[[value, ...], ...]``: ``rows`` arrays, array ``i`` holding ``columns[k][i]``."""
    return _splice(b"[", [b"," if i else b"" for i in range(len(columns))], b"]", columns, rows)


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
