"""Aggregator inputs computed only at the selected rows.

An aggregator over an expression (``"expression": "added * 2"``) reads its input through
``agg.inputs(table)``, which evaluates the expression for every row of the segment; the numpy
paths (``sorted_time.run_sorted``, ``dense.run_dense``) then keep only the rows the intervals and
the filter select. When the expression is numeric over null-free LONG/DOUBLE columns
(``common.expr.fastnum``), ``selected_inputs`` instead gathers those columns at the selected
rows and evaluates the expression on them: the same values (row by row, the expression does not
depend on other rows), computed for the selected rows only.

The values are cast to the aggregator's partial type as ``aggregators._numeric`` casts them
(LONG and boolean results to DOUBLE for ``double*``; a DOUBLE result for a ``long*``
aggregator, which Arrow truncates, is left to the general path). Anything else returns None and
the caller takes ``agg.inputs``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from common.expr import parse_expression
from common.expr.fastnum import evaluate_arrays, evaluate_at, numbers, numeric_columns
from common.query.aggregators import _SimpleAgg
from common.query.virtual import ExpressionVirtualColumn

#: (values, validity or None, Acero op, options): one gathered input of an aggregator.
Gathered = tuple[Any, Any, str, Any]


def selected_inputs(agg: Any, sub: pa.Table, keep: Any) -> list[Gathered] | None:
    """The aggregator's inputs at the rows ``keep`` (positions into ``sub``; None: every row),
    as numpy arrays; None when this aggregator is not computed this way."""
    plan = _expression_plan(agg, sub)
    if plan is None:
        return None
    node, names = plan
    out = evaluate_at(node, sub, names, keep)
    values = None if out is None else _as_input(agg, *out)
    if values is None:
        return None
    return [(values, None, agg.merge_op, None)]


def _expression_plan(agg: Any, sub: pa.Table) -> tuple[Any, list[str]] | None:
    """(expression, the columns it reads) of an aggregator over a numeric expression of
    null-free LONG/DOUBLE columns; None for any other aggregator."""
    if type(agg).inputs is not _SimpleAgg.inputs or agg.expression is None:
        return None
    node = parse_expression(agg.expression).node
    names = numeric_columns(node, sub)
    return None if names is None else (node, names)


def _castable(agg: Any, kind: str) -> bool:
    """Whether values of ``kind`` become the aggregator's partial type here as
    ``aggregators._numeric`` casts them: anything for a DOUBLE partial; LONG or boolean for a
    LONG one (Arrow truncates a DOUBLE: the general path)."""
    if pa.types.is_float64(agg.partial_type):
        return True
    return bool(pa.types.is_int64(agg.partial_type)) and kind != "DOUBLE"


def _first_kind(node: Any, names: list[str], table: pa.Table) -> str | None:
    """The kind fastnum gives the expression over ``table``'s columns ``names``, read off its
    first row (it depends on the types only); None when fastnum does not evaluate it."""
    if not table.num_rows:
        return None
    first = {name: numbers(table.column(name).slice(0, 1)) for name in names}
    out = evaluate_arrays(node, first, 1)
    return None if out is None else out[1]


def _as_input(agg: Any, values: Any, kind: str) -> Any:
    """The expression's values cast to the aggregator's partial type as
    ``aggregators._numeric`` casts them; None where this path does not give the same."""
    if not _castable(agg, kind):
        return None
    if pa.types.is_float64(agg.partial_type):
        if kind != "DOUBLE":
            values = values.astype(np.float64)
    elif kind == "BOOL":
        values = values.astype(np.int64)
    if agg.merge_op in ("min", "max") and values.dtype.kind == "f":
        if bool(np.any((values == 0) & np.signbit(values))):
            return None  # -0.0: which zero Acero keeps depends on its order
    return values


class BatchExpression:
    """An aggregator's numeric expression input evaluated batch by batch, at a batch's selected
    rows only: its columns are read in place for rows ``[a, b)``, gathered at the positions
    kept there, and the expression evaluated on those values."""

    def __init__(self, agg: Any, node: Any, names: list[str], sub: pa.Table) -> None:
        self.agg, self.node = agg, node
        self.columns = {name: sub.column(name) for name in names}
        self.is_float = pa.types.is_float64(agg.partial_type)

    def read(self, a: int, b: int, pos: Any) -> tuple[Any, Any] | None:
        """(values, None) at rows ``[a, b)`` (those at ``pos`` of them; None: all), or None
        when this path cannot give the general path's values."""
        cols = {}
        for name, col in self.columns.items():
            values = numbers(col.slice(a, b - a))
            cols[name] = values if pos is None else values.take(pos, mode="clip")
        n = b - a if pos is None else len(pos)
        out = evaluate_arrays(self.node, cols, n)
        values = None if out is None else _as_input(self.agg, *out)
        return None if values is None else (values, None)


def batch_expression(agg: Any, sub: pa.Table) -> BatchExpression | None:
    """A ``BatchExpression`` of ``agg``'s input, when it is a numeric expression over null-free
    LONG/DOUBLE columns of ``sub`` cast as the general path casts it; None otherwise."""
    plan = _expression_plan(agg, sub)
    if plan is None:
        return None
    node, names = plan
    kind = _first_kind(node, names, sub)
    if kind is None or not _castable(agg, kind):
        return None
    return BatchExpression(agg, node, names, sub)


def defer_virtual_inputs(query: Any, table: pa.Table) -> Any:
    """``query`` with each expression virtual column that only aggregators read by
    ``fieldName`` moved into those aggregators' ``expression`` (as Druid's SQL planner writes
    ``SUM(added * 2)``: a virtual column ``v0`` and ``longSum(v0)``), so that it is computed at
    the selected rows only instead of for the whole segment in ``prepare_segment``.

    Only where the answer cannot change: a LONG or DOUBLE column (not shadowing a stored one)
    whose expression ``fastnum`` evaluates over this segment (null-free numeric inputs) to a
    value its output type keeps as it is (LONG or boolean for LONG; any number for DOUBLE, read
    by ``double*`` aggregators only), read by nothing else in the query (its name appears in no
    filter, other virtual column, other aggregator or post-aggregator)."""
    if not query.virtualColumns or query.dataSourceSpec is not None:
        return query
    candidates = {
        vc.name: vc
        for vc in query.virtualColumns
        if isinstance(vc, ExpressionVirtualColumn) and _keeps_value(vc, table)
    }
    aggs = list(query.aggregations)
    while candidates:
        moved: dict[int, Any] = {}
        for i, agg in enumerate(aggs):
            vc = candidates.get(agg.fieldName or "") if isinstance(agg, _SimpleAgg) else None
            if vc is None or type(agg).inputs is not _SimpleAgg.inputs:
                continue
            if vc.outputType == "DOUBLE" and not pa.types.is_float64(agg.partial_type):
                continue
            moved[i] = agg.model_copy(update={"fieldName": None, "expression": vc.expression})
        body = query.model_dump(mode="json", include={"filter", "postAggregations"})
        body["virtualColumns"] = [
            vc.model_dump(mode="json") for vc in query.virtualColumns if vc.name not in candidates
        ]
        body["aggregations"] = [
            a.model_dump(mode="json") for i, a in enumerate(aggs) if i not in moved
        ]
        text = json.dumps(body)
        read_elsewhere = {name for name in candidates if name in text}
        if read_elsewhere:
            for name in read_elsewhere:
                del candidates[name]
            continue
        used = {aggs[i].fieldName for i in moved}
        return query.model_copy(
            update={
                "aggregations": [moved.get(i, a) for i, a in enumerate(aggs)],
                "virtualColumns": [vc for vc in query.virtualColumns if vc.name not in used],
            }
        )
    return query


def _keeps_value(vc: ExpressionVirtualColumn, table: pa.Table) -> bool:
    if vc.outputType not in ("LONG", "DOUBLE") or vc.name in table.column_names:
        return False
    node = vc.expr.node
    names = numeric_columns(node, table)
    kind = None if names is None else _first_kind(node, names, table)
    return kind is not None and (vc.outputType == "DOUBLE" or kind != "DOUBLE")
