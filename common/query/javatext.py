"""Numbers in Druid's JSON as Druid's Jackson writes them: a double as Java's
``Double.toString`` (``9.11526338E8``, ``0.001``, ``1.0``), NaN and the infinities as the strings
``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (``QUOTE_NON_NUMERIC_NUMBERS``). Druid's own expected
results show it (``integration-tests/.../wikipedia_editstream_queries.json``: ``"added":
9.11526338E8``). Native results (``common.query.engine.finalize_json``) and SQL results
(``common.query.sql.results``) both write doubles through here."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from common.expr.values import java_double
from common.jsonrows import OPTIONS, column_texts, text_array

_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})


def double_texts(col: pa.Array | pa.ChunkedArray) -> list[str | None]:
    """Java's ``Double.toString`` of each value (None for null), vectorised: Arrow's shortest
    round-trip text of the values in [1e-3, 1e7) (where Java writes plain decimals) with ``.0``
    added to whole numbers, the digits of whole numbers in [1e7, 2**53) laid out as ``1.5E7``;
    ``java_double`` for the others (zeros, other exponents, NaN, infinities)."""
    text, odd, odd_texts = _double_texts(col)
    out: list[str | None] = text.to_pylist()
    for i, t in zip(odd, odd_texts, strict=True):
        out[i] = t
    return out


def double_json_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``double_json_texts`` as a binary array (no nulls), built in Arrow."""
    text, odd, odd_texts = _double_texts(col)
    if odd:
        mask = np.zeros(len(text), dtype=bool)
        mask[odd] = True
        quoted = pa.array([jackson_text(t) for t in odd_texts], pa.string())
        text = pc.replace_with_mask(text, pa.array(mask), quoted)
    return pc.fill_null(text, "null").cast(pa.binary())


def _double_texts(col: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, list[int], list[str]]:
    """``double_texts`` in parts: the texts Arrow writes (null where the value is null, and
    where it is odd), the odd values' positions and their ``java_double`` texts."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    col = col.cast(pa.float64())  # a FLOAT prints as the double it is, as before
    text = pc.cast(col, pa.string())
    magnitude = pc.abs(col)
    plain = pc.and_(pc.greater_equal(magnitude, 1e-3), pc.less(magnitude, 1e7))
    plain = pc.fill_null(plain, False)
    whole = pc.invert(pc.match_substring(text, "."))
    text = pc.if_else(pc.and_(plain, whole), pc.binary_join_element_wise(text, ".0", ""), text)
    # whole numbers in [1e7, 2**53): their digits, in Java's d.dddE<n> layout, vectorised
    big = pc.and_(pc.greater_equal(magnitude, 1e7), pc.less(magnitude, 2.0**53))
    big = pc.fill_null(big, False)
    big = pc.and_(big, pc.equal(pc.floor(col), col))
    if pc.any(big).as_py():
        digits = pc.cast(pc.cast(pc.if_else(big, magnitude, 1e7), pa.int64()), pa.string())
        rest = pc.utf8_rtrim(pc.utf8_slice_codeunits(digits, 1), characters="0")
        rest = pc.if_else(pc.equal(rest, ""), "0", rest)
        power = pc.cast(pc.subtract(pc.utf8_length(digits), 1), pa.string())
        sign = pc.if_else(pc.less(col, 0), "-", "")
        first = pc.utf8_slice_codeunits(digits, 0, 1)
        java = pc.binary_join_element_wise(sign, first, ".", rest, "E", power, "")
        text = pc.if_else(big, java, text)
    done = pc.or_(plain, big)
    odd = pc.indices_nonzero(pc.and_(pc.invert(done), col.is_valid())).to_pylist()
    odd_texts: list[str] = []
    if odd:
        values = col.take(pa.array(odd, pa.int64())).to_pylist()
        odd_texts = [java_double(v) for v in values]
    return text, odd, odd_texts


def jackson_text(text: str) -> str:
    """A double's Java text as Jackson writes it in JSON: NaN and the infinities quoted."""
    return f'"{text}"' if text in _NON_FINITE else text


def double_json_texts(col: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """Each double's JSON text, as Jackson writes it (``null`` for a null)."""
    cells = ["null" if t is None else jackson_text(t) for t in double_texts(col)]
    return "\0".join(cells).encode().split(b"\0") if cells else []  # no NUL in the texts


def result_texts(col: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """A result column's JSON texts (``common.jsonrows.column_texts``), doubles as Druid
    writes them."""
    return double_json_texts(col) if pa.types.is_floating(col.type) else column_texts(col)


def result_text_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``result_texts`` as a binary array (no nulls), built in Arrow where the column's type
    allows (numbers, booleans, strings), else from ``result_texts``."""
    if pa.types.is_floating(col.type):
        return double_json_array(col)
    texts = text_array(col)
    return texts if texts is not None else pa.array(column_texts(col), pa.binary())


def double_json(d: float) -> orjson.Fragment:
    return orjson.Fragment(jackson_text(java_double(d)))


def java_numbers(value: Any) -> Any:
    """``value`` (decoded JSON: dicts, lists, scalars) with every double, at any depth, as an
    ``orjson.Fragment`` of its Jackson text; the rest as it is."""
    if isinstance(value, float):
        return double_json(value)
    if isinstance(value, dict):
        return {k: java_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [java_numbers(v) for v in value]
    return value


def druid_json(value: Any) -> bytes:
    """``value`` (decoded JSON) as Druid writes it: ``java_numbers``, then orjson."""
    return orjson.dumps(java_numbers(value), option=OPTIONS)
