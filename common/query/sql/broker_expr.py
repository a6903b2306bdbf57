"""What the broker computes with Druid's expression language (pure): an SQL expression the
Arrow evaluator (``functions``) has no kernel for is translated to a Druid expression
(``druidexpr``) and run by ``common.expr`` over the same columns, so a function has one
definition whether a data node computes it (a virtual column) or the broker does (over an
aggregated or materialised result, or for a constant ``SELECT``)."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from common.expr import ExpressionError, parse_expression
from common.query.sql.druidexpr import Translator
from common.query.sql.functions import TS, Unsupported, Value, to_array

# The nodes being translated for ``_Eval.via_druid``: a constant sub-expression the translator
# folds by evaluating it must not come back to the same fallback (it is translated instead).
_TRANSLATING: ContextVar[frozenset[int]] = ContextVar("_TRANSLATING", default=frozenset())


def _native_type(v: Value) -> str:
    t = v.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return "LONG"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or t == pa.null():
        return "STRING"
    if pa.types.is_list(t) and pa.types.is_string(t.value_type):
        return "STRING"  # a multi-value string
    raise Unsupported(f"A column of type [{t}] cannot be used in an expression here")


def _native_column(v: Value, n: int) -> pa.Array | pa.ChunkedArray:
    a = to_array(v, n)
    t = a.type
    if pa.types.is_dictionary(t):
        a = a.cast(t.value_type)
    elif pa.types.is_timestamp(t) or pa.types.is_boolean(t):
        a = a.cast(pa.int64())
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        a = a.cast(pa.float64())
    elif t == pa.null():
        a = a.cast(pa.string())
    return a


def _sql_value(out: Any, sql_type: str) -> Value:
    """A Druid expression result as the SQL layer holds a value of ``sql_type``."""
    if pa.types.is_list(out.type):
        return out
    if sql_type == "TIMESTAMP":
        return out.cast(pa.int64()).cast(TS)
    if sql_type == "BOOLEAN":
        return pc.not_equal(out.cast(pa.float64()), 0.0)
    target = {"LONG": pa.int64(), "DOUBLE": pa.float64()}.get(sql_type, pa.string())
    return out if out.type == target else out.cast(target)


def evaluate_as_druid(
    node: exp.Expression, columns: Mapping[str, Value], n: int, now_ms: int | None, tz: str
) -> Value:
    """``node`` over ``columns`` (``n`` rows): a Scalar when it reads none of them."""
    active = _TRANSLATING.get()
    if id(node) in active:
        raise Unsupported(f"Unsupported expression [{node.sql()}]")
    types = {name: _native_type(v) for name, v in columns.items()}
    token = _TRANSLATING.set(active | {id(node)})
    try:
        text, sql_type = Translator(types, now_ms, tz).translate(node)
    finally:
        _TRANSLATING.reset(token)
    try:
        expr = parse_expression(text)
    except ExpressionError as exc:
        raise Unsupported(f"Unsupported expression [{node.sql()}]: {exc}") from exc
    cols = {c: _native_column(columns[c], n) for c in expr.columns if c in columns}
    table = pa.table(cols) if cols else pa.table({"_": pa.nulls(n, pa.int64())})
    out = expr.evaluate_table(table)
    if isinstance(out, pa.Scalar):
        out = pa.repeat(out, n)
    value = _sql_value(out, sql_type)
    return value[0] if not cols else value
