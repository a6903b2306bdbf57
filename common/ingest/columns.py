"""Arrow column building, type unification and vectorised rollup for the incremental index.

Column kinds, ordered by how they widen when chunks disagree (a discovered column may see an
integer first and a string later): ``long`` (int64) < ``double`` (float64) < ``string``
(``dictionary<int32, string>``) < ``multi`` (``list<string>``). Sketch metrics are ``binary``
(serialised sketches; never widened). These are the segment format's types
(``common.segments.format``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DIM_TYPE = pa.dictionary(pa.int32(), pa.string())
MULTI_TYPE = pa.list_(pa.string())
KINDS = ("long", "double", "string", "multi", "binary")
_RANK = {k: i for i, k in enumerate(KINDS)}
_TYPES = {
    "long": pa.int64(),
    "double": pa.float64(),
    "string": DIM_TYPE,
    "multi": MULTI_TYPE,
    "binary": pa.binary(),
}

Combine = str | Callable[[Any], pa.Array]
"""How a metric's rolled-up values merge: ``"sum"``, ``"min"``, ``"max"``, or a function from the
group's ``list<binary>`` of sketches to one sketch per group."""


def kind_of(t: pa.DataType) -> str:
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_integer(t):
        return "long"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_list(t):
        return "multi"
    return "string"


def wider(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def _strings(values: Sequence[Any]) -> pa.Array:
    if any(type(v) is list for v in values):
        lists = [v if type(v) is list or v is None else [v] for v in values]
        return pa.array(lists, type=MULTI_TYPE)
    return pa.array(values, type=pa.string()).dictionary_encode()


def build_dimension(values: Sequence[Any], kind: str | None) -> pa.Array:
    """An Arrow column for one dimension; ``kind`` None means infer (schema discovery)."""
    if kind == "long":
        return pa.array(values, type=pa.int64())
    if kind == "double":
        return pa.array(values, type=pa.float64())
    if kind == "string":
        return _strings(values)
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return _strings([v if v is None or type(v) is list else str(v) for v in values])
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return arr.cast(pa.int64() if pa.types.is_integer(t) else pa.float64())
    if pa.types.is_null(t) or pa.types.is_string(t):
        return _strings(values)
    if pa.types.is_list(t):
        return _strings([v if v is None or type(v) is str else _str_list(v) for v in values])
    return _strings([None if v is None else str(v) for v in values])


def _str_list(v: Any) -> Any:
    return [None if x is None else str(x) for x in v] if type(v) is list else str(v)


def build_metric(values: Sequence[Any] | None, n: int, kind: str) -> pa.Array:
    """A metric column; ``None`` values is ``count`` (one per row)."""
    if values is None:
        return pa.array(np.ones(n, dtype=np.int64))
    return pa.array(values, type=pa.int64() if kind == "long" else pa.float64())


def cast_to(col: pa.ChunkedArray | pa.Array, kind: str) -> pa.ChunkedArray | pa.Array:
    """Widen ``col`` to ``kind``."""
    have = kind_of(col.type)
    if have == kind:
        return col
    if kind == "double":
        return col.cast(pa.float64())
    if kind == "string":
        return pc.dictionary_encode(col.cast(pa.string()))
    # to multi-value: each scalar becomes a one-element list, a null stays null
    if isinstance(col, pa.ChunkedArray):
        return pa.chunked_array([cast_to(c, kind) for c in col.chunks], type=MULTI_TYPE)
    values = col.cast(pa.string())
    offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values, mask=values.is_null())


def null_column(n: int, kind: str) -> pa.Array:
    return pa.nulls(n, type=_TYPES[kind])


def group_key(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column ``group_by`` can hash: multi-value lists become their joined text."""
    if pa.types.is_list(col.type):
        return pc.binary_join(col, "\x1f")
    return col


def rollup(
    table: pa.Table, key_columns: Sequence[str], metrics: Sequence[tuple[str, Combine]]
) -> pa.Table:
    """Combine rows with equal keys: ``metrics`` are ``(name, how)`` (see ``Combine``). Keys and
    metrics keep their names and order; rows come out sorted by the first key (``__time``), then
    in the order their keys first occur."""
    if table.num_rows <= 1:
        return table
    row_ids = pa.array(np.arange(table.num_rows, dtype=np.int64))
    keyed = {f"k{i}": group_key(table.column(c)) for i, c in enumerate(key_columns)}
    work = pa.table(
        {**keyed, **{f"m{i}": table.column(m) for i, (m, _) in enumerate(metrics)}, "_row": row_ids}
    )
    ops = [how if isinstance(how, str) else "list" for _, how in metrics]
    aggs = [(f"m{i}", op) for i, op in enumerate(ops)] + [("_row", "min")]
    grouped = work.group_by(list(keyed), use_threads=False).aggregate(aggs)
    first_rows = grouped.column("_row_min")
    # The hash group-by's output order is its own: order by time, then by first occurrence, so
    # rolling up in steps (compactions, persists) gives the rows in the order one pass would.
    firsts = pa.table({"t": table.column(key_columns[0]).take(first_rows), "r": first_rows})
    order = pc.sort_indices(firsts, sort_keys=[("t", "ascending"), ("r", "ascending")])
    first_rows = first_rows.take(order)
    cols: dict[str, Any] = {c: table.column(c).take(first_rows) for c in key_columns}
    for i, (m, how) in enumerate(metrics):
        merged = grouped.column(f"m{i}_{ops[i]}").take(order)
        cols[m] = merged if isinstance(how, str) else how(merged.combine_chunks())
    return pa.table(cols).select(list(table.column_names))
