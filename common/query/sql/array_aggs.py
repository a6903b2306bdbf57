"""``ARRAY_AGG``, ``ARRAY_CONCAT_AGG``, ``STRING_AGG`` and ``LISTAGG`` -> Druid's native
``expression`` aggregator, written as Druid's ``ArraySqlAggregator``,
``ArrayConcatSqlAggregator`` and ``StringSqlAggregator`` write it (pure).

- ``ARRAY_AGG([DISTINCT] expr[, maxBytes])``: fold ``array_append`` (``array_set_add``), combine
  ``array_concat`` (``array_set_add_all``), nulls included; the result is ``ARRAY<elem>``.
- ``ARRAY_CONCAT_AGG([DISTINCT] arrayExpr[, maxBytes])``: fold ``array_concat``
  (``array_set_add_all``), null arrays skipped; ``arrayExpr`` must be an ARRAY.
- ``STRING_AGG([DISTINCT] expr, separator[, maxBytes])`` (``LISTAGG`` the same): an
  ``array_append`` (``array_set_add``) fold over the non-null values inside a ``filtered``
  aggregator, finalized by ``if(array_length(o) == 0, null, array_to_string(o, sep))``; VARCHAR.

The input is the column itself or an expression virtual column (``druidexpr``). Over broker-side
tables (subqueries, system tables) these are refused with a 400.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from common.errors import PlanValidationError
from common.query.sql.arrays import ARRAY_ELEMENT
from common.query.sql.druidexpr import VirtualColumns
from common.query.sql.druidexpr_time import quote_ident, quote_string
from common.query.sql.functions import Unsupported
from common.query.sql.where import TIME

NAMES = ("ARRAY_AGG", "ARRAY_CONCAT_AGG", "STRING_AGG", "LISTAGG")


def is_array_agg(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.upper() in NAMES


def plan_array_agg(
    node: exp.Expression, name: str, vcs: VirtualColumns | None
) -> tuple[list[dict[str, Any]], str]:
    """(native aggregators, native output type: ``ARRAY<elem>`` or ``STRING``)."""
    assert isinstance(node, exp.Anonymous)
    fname = node.name.upper()
    if vcs is None:
        raise Unsupported(f"{fname} is only supported over a Druid datasource: [{node.sql()}]")
    args = list(node.expressions)
    distinct = len(args) == 1 and isinstance(args[0], exp.Distinct)
    if distinct:
        args = list(args[0].expressions)
    string = fname in ("STRING_AGG", "LISTAGG")
    want = (2, 3) if string else (1, 2)
    if not want[0] <= len(args) <= want[1]:
        shape = "expr, separator[, maxBytes]" if string else "expr[, maxBytes]"
        raise Unsupported(f"{fname} takes ([DISTINCT] {shape}): [{node.sql()}]")
    size = _max_bytes(args[want[1] - 1], fname) if len(args) == want[1] else None
    field, typ = _input(args[0], vcs, fname)
    if string:
        return [_string_agg(name, field, args[1], distinct, size)], "STRING"
    if fname == "ARRAY_CONCAT_AGG":
        if typ not in ARRAY_ELEMENT:
            raise Unsupported(
                f"ARRAY_CONCAT_AGG needs an ARRAY argument, got {typ}: [{node.sql()}]"
            )
        fold = "array_set_add_all" if distinct else "array_concat"
        agg = _expression_agg(name, field, typ, fold, distinct, size, null_inputs=False)
        return [agg], typ
    if typ in ARRAY_ELEMENT:
        raise Unsupported(f"ARRAY_AGG of an ARRAY (nested arrays) is not supported: [{node.sql()}]")
    elem = {"LONG": "LONG", "DOUBLE": "DOUBLE", "FLOAT": "DOUBLE"}.get(typ, "STRING")
    fold = "array_set_add" if distinct else "array_append"
    agg = _expression_agg(name, field, f"ARRAY<{elem}>", fold, distinct, size, null_inputs=True)
    return [agg], f"ARRAY<{elem}>"


def _max_bytes(node: exp.Expression, fname: str) -> int:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        value = int(node.this)
        if value > 0:
            return value
    raise Unsupported(f"{fname} maxBytes must be a positive integer literal: [{node.sql()}]")


def _input(arg: exp.Expression, vcs: VirtualColumns, fname: str) -> tuple[str, str]:
    """The input column (the column itself, or an expression virtual column) and its type."""
    if isinstance(arg, exp.Column):
        if arg.name not in vcs.types:
            raise PlanValidationError(f"Column '{arg.name}' not found in any table")
        t = vcs.types[arg.name]
        if arg.name == TIME:
            raise Unsupported(f"{fname} of a TIMESTAMP is not supported: [{arg.sql()}]")
        if t.startswith("COMPLEX"):
            raise Unsupported(f"Cannot use {fname} on complex input of type {t}")
        return arg.name, t
    vname, t = vcs.add(arg)
    if t == "TIMESTAMP":
        raise Unsupported(f"{fname} of a TIMESTAMP is not supported: [{arg.sql()}]")
    if t == "BOOLEAN":
        t = "LONG"
    return vname, t


def _expression_agg(
    name: str,
    field: str,
    array_type: str,
    fold: str,
    distinct: bool,
    size: int | None,
    *,
    null_inputs: bool,
) -> dict[str, Any]:
    combine = "array_set_add_all" if distinct else "array_concat"
    agg: dict[str, Any] = {
        "type": "expression",
        "name": name,
        "fields": [field],
        "accumulatorIdentifier": "__acc",
        "initialValue": f"{array_type}[]",
        "initialCombineValue": f"{array_type}[]",
        "isNullUnlessAggregated": True,
        "shouldAggregateNullInputs": null_inputs,
        "shouldCombineAggregateNullInputs": False,
        "fold": f'{fold}("__acc", {quote_ident(field)})',
        "combine": f'{combine}("__acc", {quote_ident(name)})',
    }
    if size is not None:
        agg["maxSizeBytes"] = size
    return agg


def _string_agg(
    name: str, field: str, sep_node: exp.Expression, distinct: bool, size: int | None
) -> dict[str, Any]:
    if not (isinstance(sep_node, exp.Literal) and sep_node.is_string):
        raise Unsupported(f"The STRING_AGG separator must be a string literal: [{sep_node.sql()}]")
    sep = str(sep_node.this)
    fold = "array_set_add" if distinct else "array_append"
    inner = _expression_agg(name, field, "ARRAY<STRING>", fold, distinct, size, null_inputs=False)
    inner["initialValue"] = inner["initialCombineValue"] = "[]"
    inner["finalize"] = f"if(array_length(o) == 0, null, array_to_string(o, {quote_string(sep)}))"
    # STRING_AGG ignores nulls: Druid wraps the aggregator in a not-null filter.
    return {
        "type": "filtered",
        "name": name,
        "filter": {"type": "not", "field": {"type": "null", "column": field}},
        "aggregator": inner,
    }


# BIT_AND/BIT_OR/BIT_XOR: Druid's BitwiseSqlAggregator.
BITWISE = {"BIT_AND": "bitwiseAnd", "BIT_OR": "bitwiseOr", "BIT_XOR": "bitwiseXor"}


def is_bitwise_agg(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.upper() in BITWISE


def plan_bitwise_agg(node: exp.Expression, name: str, vcs: VirtualColumns) -> dict[str, Any]:
    """Druid's plan: an ``expression`` aggregator folding ``bitwiseAnd/Or/Xor("__acc", x)``
    from ``0`` (so ``BIT_AND`` is 0 whenever a row is aggregated), null inputs skipped, inside a
    not-null filter on the input; a group with no non-null input is null."""
    assert isinstance(node, exp.Anonymous)
    fname = node.name.upper()
    args = list(node.expressions)
    if len(args) != 1 or isinstance(args[0], exp.Distinct):
        raise Unsupported(f"{fname} takes one argument: [{node.sql()}]")
    field, typ = _input(args[0], vcs, fname)
    if typ not in ("LONG", "BIGINT", "INTEGER", "DOUBLE", "FLOAT", "BOOLEAN"):
        raise Unsupported(f"{fname} needs a numeric argument, got {typ}: [{node.sql()}]")
    fold = f'{BITWISE[fname]}("__acc", {quote_ident(field)})'
    inner = {
        "type": "expression",
        "name": name,
        "fields": [field],
        "initialValue": "0",
        "shouldAggregateNullInputs": False,
        "shouldCombineAggregateNullInputs": False,
        "fold": fold,
    }
    return {
        "type": "filtered",
        "name": name,
        "filter": {"type": "not", "field": {"type": "null", "column": field}},
        "aggregator": inner,
    }
