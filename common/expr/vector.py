"""Vectorised evaluation of an expression AST over an Arrow table.

Each node evaluates to an Arrow array of the table's length or, for constants, an Arrow scalar
(so constant arguments such as patterns and periods stay constants). Operators and the common
functions run as Arrow/numpy kernels (``common.expr.kernels``); any other function maps its row
implementation over the values, on the distinct values only when one argument varies. An
expression that reads a single dictionary-encoded column is evaluated once per dictionary entry.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.expr import kernels as k
from common.expr.mvmap import bind_scalar, evaluate_mapped, mapped_column
from common.expr.parse import ArrayLit, Binary, Call, Ident, Literal, Node, Unary, columns_of
from common.expr.registry import FUNCTIONS, Fn

V = Any  # pa.Array | pa.Scalar


def column(table: pa.Table, name: str) -> pa.Array:
    """A column as an expression input: dictionaries decoded, ``__time`` as epoch millis, narrow
    numbers widened to int64/float64; a missing column is all-null."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    col = table.column(name)
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return k.normalise(arr)


def evaluate(node: Node, table: pa.Table) -> pa.Array:
    """The expression's value for every row of ``table``."""
    mapped = mapped_column(node, table)
    if mapped is not None:
        bound = bind_scalar(node, mapped)
        return evaluate_mapped(mapped, table, lambda flat: _evaluate(bound, flat))
    return _evaluate(node, table)


def _evaluate(node: Node, table: pa.Table) -> pa.Array:
    n = table.num_rows
    single = _single_dictionary_column(node, table)
    if single is not None and n > 0:
        col = table.column(single).combine_chunks()
        if isinstance(col, pa.DictionaryArray) and len(col.dictionary) < n:
            values = k.normalise(col.dictionary)
            # One extra row for null codes.
            values = pa.concat_arrays([values, pa.nulls(1, values.type)])
            on_dict = k.full(_eval(node, pa.table({single: values}), len(values)), len(values))
            codes = pc.fill_null(col.indices.cast(pa.int32()), len(values) - 1)
            return on_dict.take(codes)
    return k.full(_eval(node, table, n), n)


def _single_dictionary_column(node: Node, table: pa.Table) -> str | None:
    cols = columns_of(node)
    if len(cols) != 1:
        return None
    (name,) = cols
    if name in table.column_names and pa.types.is_dictionary(table.schema.field(name).type):
        return name
    return None


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
    assert isinstance(node, Call)
    fn = FUNCTIONS[node.name]
    args = [_eval(a, table, n) for a in node.args]
    if not fn.arrays:
        for a in args:
            k.refuse_array(a, f"function {fn.name}()")
    return call(fn, args, n)


def call(fn: Fn, args: list[V], n: int) -> V:
    kernel = k.KERNELS.get(fn.name)
    if kernel is not None:
        try:
            out = kernel(args, n)
        except k.NoKernel:
            out = None
        if out is not None:
            return out
    return k.row_map(fn.row, args, n, fn.out)
