"""Druid's implicit mapping of multi-value columns used as scalars.

Druid rewrites an expression that uses a multi-value column where a scalar is expected into
``map((x) -> <expression>, column)``: the expression is applied to every value and the result is
an array (a multi-value result). Here: when exactly one such column is read as a scalar, the
expression is evaluated once per value (rows exploded, then re-gathered into lists); a null or
empty multi-value row gives null. Two or more such columns would need Druid's ``cartesian_map``
and are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.expr.parse import ArrayLit, Binary, Call, ExpressionError, Ident, Node, Unary
from common.expr.registry import FUNCTIONS


def scalar_idents(node: Node) -> set[str]:
    """Identifiers read in a scalar position (not as a direct argument of an array function)."""
    if isinstance(node, Ident):
        return {node.name}
    if isinstance(node, Unary):
        return scalar_idents(node.arg)
    if isinstance(node, Binary):
        return scalar_idents(node.left) | scalar_idents(node.right)
    if isinstance(node, ArrayLit):
        out: set[str] = set()
        for i in node.items:
            out |= scalar_idents(i)
        return out
    if isinstance(node, Call):
        arrays = FUNCTIONS[node.name].arrays
        out = set()
        for a in node.args:
            if arrays and isinstance(a, Ident):
                continue
            out |= scalar_idents(a)
        return out
    return set()


ALIAS = "\x00value:"
"""Prefix of the name a mapped column's single value is bound to (never a real column)."""


def bind_scalar(node: Node, name: str) -> Node:
    """``node`` with the scalar uses of ``name`` reading ``ALIAS + name`` (one value) instead; its
    uses as an array-function argument keep reading the whole column."""
    if isinstance(node, Ident):
        return Ident(ALIAS + name) if node.name == name else node
    if isinstance(node, Unary):
        return Unary(node.op, bind_scalar(node.arg, name))
    if isinstance(node, Binary):
        return Binary(node.op, bind_scalar(node.left, name), bind_scalar(node.right, name))
    if isinstance(node, ArrayLit):
        return ArrayLit(tuple(bind_scalar(i, name) for i in node.items), node.elem_type)
    if isinstance(node, Call):
        arrays = FUNCTIONS[node.name].arrays
        args = tuple(
            a if arrays and isinstance(a, Ident) else bind_scalar(a, name) for a in node.args
        )
        return Call(node.name, args, node.pos)
    return node


def _one(names: list[str]) -> str:
    if len(names) > 1:
        raise ExpressionError(
            f"the multi-value columns {sorted(names)} are all used as scalars; Druid would need "
            "cartesian_map, which is not supported"
        )
    return names[0]


def mapped_column(node: Node, table: pa.Table) -> str | None:
    """The multi-value column to map over, if the expression reads one as a scalar."""
    listy = [
        c
        for c in sorted(scalar_idents(node))
        if c in table.column_names
        and (
            pa.types.is_list(table.schema.field(c).type)
            or pa.types.is_large_list(table.schema.field(c).type)
        )
    ]
    return _one(listy) if listy else None


def evaluate_mapped(name: str, table: pa.Table, run: Callable[[pa.Table], pa.Array]) -> pa.Array:
    """``run`` over one row per value of the list column ``name``, gathered back into lists."""
    col = table.column(name).combine_chunks()
    col = col.cast(pa.list_(col.type.value_type)) if pa.types.is_large_list(col.type) else col
    n = len(col)
    lengths = np.asarray(pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False))
    parents = pc.list_parent_indices(col)
    flat = table.take(parents).append_column(ALIAS + name, col.flatten())
    values = run(flat)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    empty = lengths == 0
    out = pa.ListArray.from_arrays(pa.array(offsets), values)
    if empty.any():
        out = pc.if_else(pa.array(~empty), out, pa.scalar(None, out.type))
    return out


def row_mapped(node_names: set[str], row: Mapping[str, Any]) -> str | None:
    listy = [c for c in sorted(node_names) if isinstance(row.get(c), list)]
    return _one(listy) if listy else None
