"""Druid's expression language, one implementation for ingestion transforms and queries.

``parse_expression(text)`` parses and validates once (unknown functions, wrong argument counts,
bad literal patterns/periods/types are a 400 ``ExpressionError`` naming them) and returns an
``Expr`` that evaluates either one row mapping (``evaluate(row)``, for ingestion, where rows come
one record at a time) or a whole Arrow table at once (``evaluate_table(table)``, for queries).
Both use the same function table (``common.expr.registry``) and the same value rules
(``common.expr.values``). See docs/native-queries.md for the supported functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pyarrow as pa

from common.expr import (  # noqa: F401 - importing registers the functions
    fns_array,
    fns_lookup,
    fns_misc,
    fns_scalar,
    fns_string,
    fns_time,
)
from common.expr import values as _v
from common.expr.mvmap import ALIAS, bind_scalar, row_mapped, scalar_idents
from common.expr.parse import (
    ArrayLit,
    Binary,
    Call,
    ExpressionError,
    Ident,
    Literal,
    Node,
    Unary,
    columns_of,
    parse,
)
from common.expr.registry import FUNCTIONS, lookup
from common.expr.values import as_bool, truth
from common.expr.vector import evaluate as _evaluate_table

Row = Mapping[str, Any]
Evaluator = Callable[[Row], Any]

__all__ = [
    "FUNCTIONS",
    "Expr",
    "ExpressionError",
    "as_bool",
    "compile_expression",
    "parse_expression",
    "truth",
]


@dataclass(frozen=True)
class Expr:
    """A parsed, validated expression."""

    text: str
    node: Node
    columns: frozenset[str]
    evaluate: Evaluator = field(repr=False)

    def evaluate_table(
        self, table: pa.Table, *, encoded: bool = False, chunked: bool = False
    ) -> Any:
        """The value for every row of ``table`` (vectorised); ``encoded`` allows a
        dictionary-encoded string result, ``chunked`` a ChunkedArray (no column copies)."""
        return _evaluate_table(self.node, table, encoded=encoded, chunked=chunked)


@lru_cache(maxsize=4096)
def parse_expression(text: str) -> Expr:
    """Parse and validate ``text`` (cached: queries re-read their expressions per segment)."""
    node = parse(text)
    _validate(node)
    return Expr(text, node, frozenset(columns_of(node)), _mapping_row(node))


compile_expression = parse_expression


def _validate(node: Node) -> None:
    if isinstance(node, Unary):
        _validate(node.arg)
    elif isinstance(node, Binary):
        _validate(node.left)
        _validate(node.right)
    elif isinstance(node, ArrayLit):
        for i in node.items:
            _validate(i)
    elif isinstance(node, Call):
        fn = lookup(node.name, len(node.args), node.pos)
        lits: list[Any] = []
        for pos, arg in enumerate(node.args):
            _validate(arg)
            if pos in fn.literals and not isinstance(arg, Literal):
                raise ExpressionError(f"argument {pos + 1} of {node.name}() must be a literal")
            lits.append(arg.value if isinstance(arg, Literal) else None)
        if fn.check is not None:
            fn.check(lits)


def _mapping_row(node: Node) -> Evaluator:
    """The row evaluator, applying the expression per value when it reads one multi-value
    field as a scalar (Druid's implicit ``map``); a null or empty list gives null."""
    inner = _row(node)
    scalars = scalar_idents(node)
    if not scalars:
        return inner
    bound = {name: _row(bind_scalar(node, name)) for name in scalars}

    def ev(row: Row) -> Any:
        name = row_mapped(scalars, row)
        if name is None:
            return inner(row)
        values = row[name]
        if not values:
            return None
        alias = ALIAS + name
        return [bound[name]({**row, alias: v}) for v in values]

    return ev


def _refuse_list(v: Any, where: str) -> Any:
    if isinstance(v, list):
        raise ExpressionError(
            f"{where} cannot take a multi-value or array input; use an array/mv_ function"
        )
    return v


def _row(node: Node) -> Evaluator:
    if isinstance(node, Literal):
        const = node.value
        return lambda row: const
    if isinstance(node, Ident):
        name = node.name
        return lambda row: row.get(name)
    if isinstance(node, ArrayLit):
        items = [_row(i) for i in node.items]
        return lambda row: [i(row) for i in items]
    if isinstance(node, Unary):
        inner = _row(node.arg)
        op = _v.negate if node.op == "-" else _v.not_
        where = f"operator {node.op}"
        return lambda row: op(_refuse_list(inner(row), where))
    if isinstance(node, Binary):
        left, right, o = _row(node.left), _row(node.right), node.op
        where = f"operator {o}"
        if o in ("&&", "||"):
            f: Callable[[str, Any, Any], Any] = _v.logical
        elif o in ("==", "!=", "<", "<=", ">", ">="):
            f = _v.compare
        else:
            f = _v.arith
        return lambda row: f(o, _refuse_list(left(row), where), _refuse_list(right(row), where))
    assert isinstance(node, Call)
    fn = FUNCTIONS[node.name]
    args = [_row(a) for a in node.args]
    impl = fn.row
    if fn.arrays:
        return lambda row: impl([a(row) for a in args])
    where = f"function {fn.name}()"
    return lambda row: impl([_refuse_list(a(row), where) for a in args])
