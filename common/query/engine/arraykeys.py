"""ARRAY grouping keys: Druid groups an ``ARRAY<STRING|LONG|DOUBLE>`` dimension on whole arrays
(``ArrayDimensionHandler``), where a multi-value string dimension is exploded value by value.

Acero cannot group on list columns, so an array key is grouped on an integer code per distinct
array (null arrays keep a null code) and decoded back afterwards; ordering uses Druid's array
comparator: null first, then element by element (a null element first, numbers numerically,
strings lexicographically), a prefix before the longer array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def is_array(typ: pa.DataType) -> bool:
    return bool(pa.types.is_list(typ) or pa.types.is_large_list(typ))


def encode(col: Any) -> tuple[pa.Array, pa.Array]:
    """(an int64 code per row, null for a null array; the distinct arrays, indexed by code)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    ids: dict[tuple[Any, ...], int] = {}
    firsts: list[int] = []
    codes: list[int | None] = []
    for i, value in enumerate(col.to_pylist()):
        if value is None:
            codes.append(None)
            continue
        key = tuple(value)
        code = ids.get(key)
        if code is None:
            code = ids[key] = len(firsts)
            firsts.append(i)
        codes.append(code)
    distinct = col.take(pa.array(firsts, pa.int64())) if firsts else col.slice(0, 0)
    return pa.array(codes, pa.int64()), distinct


def decode(codes: Any, distinct: pa.Array) -> pa.Array:
    if isinstance(codes, pa.ChunkedArray):
        codes = codes.combine_chunks()
    return distinct.take(codes)


def _element_key(v: Any) -> tuple[int, Any]:
    return (0, 0) if v is None else (1, v)


def rank(col: Any) -> pa.Array:
    """An int64 per row ordering as Druid orders the arrays (null stays null: first)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    values = col.to_pylist()
    present = sorted(
        {tuple(v) for v in values if v is not None},
        key=lambda t: [_element_key(x) for x in t],
    )
    position = {t: i for i, t in enumerate(present)}
    out = np.zeros(len(values), dtype=np.int64)
    mask = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            mask[i] = True
        else:
            out[i] = position[tuple(v)]
    return pa.array(out, pa.int64(), mask=mask)
