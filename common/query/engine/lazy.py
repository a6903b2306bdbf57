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

from typing import Any

import numpy as np
import pyarrow as pa

from common.expr import parse_expression
from common.expr.fastnum import evaluate_arrays, numbers, numeric_columns
from common.query.aggregators import _SimpleAgg

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
    columns = {}
    for name in names:
        columns[name] = numbers(sub.column(name), keep)
    n = sub.num_rows if keep is None else len(keep)
    out = evaluate_arrays(node, columns, n)
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
