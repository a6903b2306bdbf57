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
    if type(agg).inputs is not _SimpleAgg.inputs or agg.expression is None:
        return None
    node = parse_expression(agg.expression).node
    names = numeric_columns(node, sub)
    if names is None:
        return None
    out = evaluate_at(node, sub, names, keep)
    if out is None:
        return None
    values, kind = out
    if pa.types.is_float64(agg.partial_type):
        if kind != "DOUBLE":
            values = values.astype(np.float64)
    elif pa.types.is_int64(agg.partial_type):
        if kind == "DOUBLE":
            return None
        if kind == "BOOL":
            values = values.astype(np.int64)
    else:
        return None
    if agg.merge_op in ("min", "max") and values.dtype.kind == "f":
        if bool(np.any((values == 0) & np.signbit(values))):
            return None  # -0.0: see sorted_time.numpy_input
    return [(values, None, agg.merge_op, None)]


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
    if names is None or not table.num_rows:
        return False
    first = {name: numbers(table.column(name).slice(0, 1)) for name in names}
    out = evaluate_arrays(node, first, 1)  # the value's kind depends on the types only
    return out is not None and (vc.outputType == "DOUBLE" or out[1] != "DOUBLE")
