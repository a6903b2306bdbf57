"""Vectorised evaluation of an expression AST over an Arrow table.

Each node evaluates to an Arrow array of the table's length or, for constants, an Arrow scalar
(so constant arguments such as patterns and periods stay constants). Operators and the common
functions run as Arrow/numpy kernels (``common.expr.kernels``); any other function maps its row
implementation over the values, on the distinct values only when one argument varies. An
expression that reads a single dictionary-encoded column is evaluated once per dictionary entry.
Apply functions (``common.expr.apply``) evaluate their lambda over the flattened elements.
Before anything, an expression reading multi-value columns as scalars is rewritten as Druid
rewrites it (``common.expr.mvmap``) and those columns homogenized.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.expr import fastnum
from common.expr import kernels as k
from common.expr.apply import vector_apply
from common.expr.fn_kernels import KERNELS
from common.expr.mvmap import mapped
from common.expr.parse import (
    Apply,
    ArrayLit,
    Binary,
    Call,
    Ident,
    Literal,
    Node,
    Unary,
    columns_of,
)
from common.expr.registry import FUNCTIONS, Fn

V = Any  # pa.Array | pa.Scalar


def column(table: pa.Table, name: str) -> pa.Array:
    """A column as an expression input: dictionaries decoded, ``__time`` as epoch millis, narrow
    numbers widened to int64/float64; a missing column is all-null. A multi-value string column
    (``list``; an ARRAY is a ``large_list``) reads a row with no value, or with one null value,
    as null, as Druid's selectors do."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    col = table.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else _combined(table, name)
    if pa.types.is_list(col.type) and len(col):
        nullish = _nullish(col)
        if pc.any(nullish).as_py():
            col = pc.if_else(nullish, pa.scalar(None, col.type), col)
    return k.normalise(col)


def _nullish(col: Any) -> Any:
    """Rows of a list column that are empty or hold exactly one null."""
    lengths = pc.fill_null(pc.list_value_length(col), -1)
    one = pc.equal(lengths, 1)
    if not pc.any(one).as_py():
        return pc.equal(lengths, 0)
    first = pc.list_element(pc.if_else(one, col, pa.scalar([None], col.type)), 0)
    return pc.or_(pc.equal(lengths, 0), pc.and_(one, pc.is_null(first)))


def multi_value_columns(table: pa.Table, names: Any) -> frozenset[str]:
    """Which of ``names`` are multi-value string columns of ``table`` (an ARRAY, ``large_list``,
    is never implicitly mapped)."""
    return frozenset(
        c for c in names if c in table.column_names and pa.types.is_list(table.schema.field(c).type)
    )


def homogenize(table: pa.Table, names: Any, single: bool) -> pa.Table:
    """Multi-value columns as an implicitly mapped expression reads them (Druid homogenizes
    null, ``[]`` and ``[null]`` to ``[null]``; an expression of one column, through Druid's
    deferred selector, gives a row with no values no value at all), held as ``large_list`` so
    they are read whole."""
    for name in names:
        col = table.column(name).combine_chunks()
        lengths = pc.fill_null(pc.list_value_length(col), -1)
        one_null = pa.scalar([None], col.type)
        col = pc.if_else(pc.equal(lengths, -1), one_null, col)
        empty = pc.equal(lengths, 0)
        col = pc.if_else(empty, pa.scalar(None, col.type) if single else one_null, col)
        col = col.cast(pa.large_list(col.type.value_type))
        table = table.set_column(table.column_names.index(name), name, col)
    return table


def _combined(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = table.select([name]).unify_dictionaries().column(name)
    return col.combine_chunks()


def evaluate(
    node: Node, table: pa.Table, *, encoded: bool = False, chunked: bool = False, text: str = ""
) -> Any:
    """The expression's value for every row of ``table`` (an Arrow array). With ``encoded``, a
    string result computed per distinct dictionary value may come back dictionary-encoded; with
    ``chunked``, a table of several record batches (memory-mapped segments) is evaluated batch by
    batch without copying its columns, and the result may be a ChunkedArray."""
    free = columns_of(node)
    node, needs = mapped(node, text, multi_value_columns(table, free))
    if needs:
        table = homogenize(table, sorted(multi_value_columns(table, free)), len(free) == 1)
    else:
        fast = fastnum.evaluate(node, table)
        if fast is not None:
            return fast
    if chunked:
        parts = _by_batch(node, table)
        if parts is not None:
            return parts
    return _evaluate(node, table, encoded)


def _by_batch(node: Node, table: pa.Table) -> pa.ChunkedArray | None:
    cols = [c for c in sorted(columns_of(node)) if c in table.column_names]
    if not cols or all(pa.types.is_dictionary(table.schema.field(c).type) for c in cols):
        return None  # nothing to read, or the per-dictionary-value path is better
    sub = table.select(cols)
    if all(sub.column(c).num_chunks <= 1 for c in cols):
        return None
    parts = [_evaluate(node, pa.Table.from_batches([b]), False) for b in sub.to_batches()]
    types = {p.type for p in parts if p.null_count < len(p)}
    if len(types) > 1:
        return None  # batches disagree on the type (row fallbacks): evaluate in one piece
    typ = types.pop() if types else parts[0].type
    same = [p if p.type == typ else pa.nulls(len(p), typ) for p in parts]  # all-null ones
    return pa.chunked_array(same, type=typ)


def _evaluate(node: Node, table: pa.Table, encoded: bool) -> pa.Array:
    n = table.num_rows
    if n > 0:
        out = _on_dictionaries(node, table, n, encoded)
        if out is not None:
            return out
    return k.finish(k.full(_eval(node, table, n), n))


MAX_COMBINATIONS = 1 << 20
"""Dictionary-value combinations beyond which an expression is evaluated row by row."""


def _on_dictionaries(node: Node, table: pa.Table, n: int, encoded: bool) -> pa.Array | None:
    """When every column read is dictionary-encoded and their value combinations are fewer than
    the rows, evaluate once per combination present and map the answers back."""
    cols = sorted(columns_of(node))
    if not cols or any(
        c not in table.column_names or not pa.types.is_dictionary(table.schema.field(c).type)
        for c in cols
    ):
        return None
    dicts = [
        _combined(table, c) if table.column(c).num_chunks != 1 else table.column(c).chunk(0)
        for c in cols
    ]
    sizes = [len(d.dictionary) + 1 for d in dicts]  # + 1: null
    product = 1
    for size in sizes:
        product *= size
    if product > min(MAX_COMBINATIONS, n):
        return None
    combined = np.zeros(n, dtype=np.int64)
    stride = 1
    for d, size in zip(dicts, sizes, strict=True):
        codes = pc.fill_null(d.indices, size - 1).to_numpy(zero_copy_only=False)
        combined += np.asarray(codes, dtype=np.int64) * stride
        stride *= size
    present = np.zeros(product, dtype=bool)
    present[combined] = True
    uniq = np.flatnonzero(present)
    remap = np.zeros(product, dtype=np.int32)
    remap[uniq] = np.arange(len(uniq), dtype=np.int32)
    inverse = pa.array(remap[combined])
    sub: dict[str, Any] = {}
    rest = uniq
    for c, d, size in zip(cols, dicts, sizes, strict=True):
        values = k.normalise(d.dictionary)
        values = pa.concat_arrays([values, pa.nulls(1, values.type)])
        sub[c] = values.take(pa.array(rest % size))
        rest = rest // size
    m = len(uniq)
    result = k.finish(k.full(_eval(node, pa.table(sub), m), m))
    if encoded and pa.types.is_string(result.type):
        enc = result.dictionary_encode()  # unique values: equal strings share one code
        return pa.DictionaryArray.from_arrays(enc.indices.take(inverse), enc.dictionary)
    return result.take(inverse)


def _eval(node: Node, table: pa.Table, n: int) -> V:
    if isinstance(node, Literal):
        return k.literal(node.value)
    if isinstance(node, Ident):
        return column(table, node.name)
    if isinstance(node, ArrayLit):
        items = [_eval(i, table, n) for i in node.items]
        if all(isinstance(i, pa.Scalar) for i in items):
            return k.literal([i.as_py() for i in items], node.elem_type)
        return k.row_map(lambda a: list(a), items, n, None)
    if isinstance(node, Unary):
        v = _eval(node.arg, table, n)
        k.refuse_array(v, f"operator {node.op}")
        return k.negate(v) if node.op == "-" else k.not_(v)
    if isinstance(node, Binary):
        a, b = _eval(node.left, table, n), _eval(node.right, table, n)
        k.refuse_array(a, f"operator {node.op}")
        k.refuse_array(b, f"operator {node.op}")
        if node.op in ("&&", "||"):
            return k.logical(node.op, a, b)
        if node.op in ("==", "!=", "<", "<=", ">", ">="):
            return k.compare(node.op, a, b)
        return k.arith(node.op, a, b)
    if isinstance(node, Apply):
        return vector_apply(
            node,
            table,
            n,
            lambda body, sub: _evaluate(body, sub, False),
            _eval,
            column,
            lambda row: _row_apply(node)(row),
        )
    assert isinstance(node, Call)
    fn = FUNCTIONS[node.name]
    args = [_eval(a, table, n) for a in node.args]
    if not fn.arrays:
        for a in args:
            k.refuse_array(a, f"function {fn.name}()")
    return call(fn, args, n)


def call(fn: Fn, args: list[V], n: int) -> V:
    kernel = KERNELS.get(fn.name)
    if kernel is not None:
        try:
            out = kernel(args, n)
        except k.NoKernel:
            out = None
        if out is not None:
            return out
    return k.row_map(fn.row, args, n, fn.out)


def _row_apply(node: Apply) -> Any:
    from common.expr import row_evaluator  # the row evaluator lives with the Expr type

    return row_evaluator(node)
