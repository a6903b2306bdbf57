"""One type per column across partials of different segments, as Druid merges column types.

Segments of one datasource need not agree on a column's type: schema discovery, or a spec that
changed between tasks, make a dimension a plain string in one segment and multi-value in the
next, a number ``long`` in one and ``double`` in another, and leave a column out of some. Druid
reads each segment with its own type and merges the answers; kdruid concatenates Arrow partials,
so before concatenating each column is cast to the least restrictive of its types (Druid's
``ColumnType.leastRestrictiveType``, the broker's default column-type merge policy):

- a column a partial does not have, or where it holds only nulls, takes the others' type;
- dictionary-encoded strings count as strings;
- multi-value (``list<string>``) wins over everything: a single value becomes a one-value list
  (which scan prints as the plain value again, as Druid prints a one-value row), a null stays null;
- then ``string`` wins over numbers (numbers as Druid prints them);
- then ``double`` wins over ``long``;
- any other mix (a sketch column against a number) is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.errors import InvalidInput

MULTI_VALUE = pa.list_(pa.string())


def _base(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def _is_string(typ: pa.DataType) -> bool:
    return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ))


def _is_list(typ: pa.DataType) -> bool:
    return bool(pa.types.is_list(typ) or pa.types.is_large_list(typ))


def _is_number(typ: pa.DataType) -> bool:
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ))


def merged_type(name: str, types: Sequence[pa.DataType]) -> pa.DataType | None:
    """The type every partial's ``name`` column is cast to; None when they already agree."""
    present = {t for t in types if not pa.types.is_null(t)}
    typed = {t for t in present if not (_is_list(t) and pa.types.is_null(t.value_type))}
    if typed and len(typed) < len(present) and all(_is_list(t) for t in typed):
        # lists of nothing but nulls and empties (list<null>) take the others' element type
        if len(typed) == 1:
            return next(iter(typed))
        present = typed
    if len(present) <= 1:
        return None  # one type besides all-null columns: Arrow promotes those itself
    distinct = {_base(t) for t in present}
    if len(distinct) == 1:
        return distinct.pop()  # dictionary-encoded and plain strings
    if distinct and all(pa.types.is_large_list(t) for t in distinct):
        # ARRAYs (large_list) of different element types: Druid's least restrictive element
        inner = merged_type(name, [t.value_type for t in distinct])
        return pa.large_list(inner) if inner is not None else None
    if any(_is_list(t) for t in distinct):
        return MULTI_VALUE
    if any(_is_string(t) for t in distinct) and all(
        _is_string(t) or _is_number(t) or _is_list(t) for t in distinct
    ):
        return pa.string()
    if all(_is_number(t) for t in distinct):
        return pa.float64() if any(pa.types.is_floating(t) for t in distinct) else pa.int64()
    kinds = " vs ".join(sorted(str(t) for t in distinct))
    raise InvalidInput(
        f"Column [{name}] has types that cannot be merged across segments: {kinds}",
        column=name,
    )


def cast_column(col: Any, target: pa.DataType) -> Any:
    """``col`` (an Array or ChunkedArray) as ``target``, the merged type of ``merged_type``."""
    if isinstance(col, pa.ChunkedArray):
        chunks = [cast_column(c, target) for c in col.chunks]
        return pa.chunked_array(chunks, type=target)
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), target)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if col.type == target:
        return col
    if pa.types.is_large_list(target) and _is_list(col.type):
        return col.cast(target)
    if target == MULTI_VALUE:
        if _is_list(col.type):
            return col.cast(MULTI_VALUE)
        values = col if _is_string(col.type) else pc.cast(col, pa.string())
        values = values.cast(pa.string())
        offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, values, mask=values.is_null())
    return pc.cast(col, target)


def unify_tables(tables: Sequence[pa.Table]) -> list[pa.Table]:
    """``tables`` with every column shared by name cast to its merged type. A column that is all
    null in a table (or that the table lacks: ``concat_tables`` fills those) does not vote: it
    takes the type of the others."""
    voters: dict[str, list[pa.DataType]] = {}
    every: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for f in t.schema:
            every.setdefault(f.name, set()).add(f.type)
            col = t.column(f.name)
            if col.null_count < len(col):
                voters.setdefault(f.name, []).append(f.type)
    targets: dict[str, pa.DataType] = {}
    for name, types in every.items():
        if len(types) <= 1:
            continue
        votes = voters.get(name) or list(types)
        target = merged_type(name, votes)
        if target is None:
            target = next((t for t in votes if not pa.types.is_null(t)), votes[0])
        targets[name] = target
    if not targets:
        return list(tables)
    out = []
    for t in tables:
        for name, target in targets.items():
            if name in t.column_names and t.schema.field(name).type != target:
                col = t.column(name)
                if col.null_count == len(col):
                    cast = pa.chunked_array([pa.nulls(len(col), target)], type=target)
                else:
                    cast = cast_column(col, target)
                idx = t.column_names.index(name)
                t = t.set_column(idx, t.schema.field(name).with_type(target), cast)
        out.append(t)
    return out
