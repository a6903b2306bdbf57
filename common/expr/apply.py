"""Druid's apply functions (``ApplyFunction``): a lambda applied to array inputs.

``map((x) -> body, arr)``, ``cartesian_map((x, y) -> body, a, b...)``, ``filter((x) -> cond,
arr)``, ``fold((x, acc) -> body, arr, init)``, ``cartesian_fold((x, y, acc) -> body, a, b...,
init)``, ``any((x) -> cond, arr)`` and ``all((x) -> cond, arr)``, with Druid's answers for the
edge cases: a null array gives null (``any``/``all``: 0); ``map`` of an empty array is that
empty array; ``cartesian_map``/``cartesian_fold`` with any empty input give an empty array;
``filter`` keeping nothing gives null; ``all`` of an empty array is 1; the cartesian product
varies the first array slowest; ``fold`` answers in the type of its initial value. A scalar
where an array is expected is a one-element array. Lambda parameters shadow columns of the
same name inside the body.

Both evaluators are here: over one row of Python values (``row_apply``) and vectorised over an
Arrow table (``vector_apply``): ``map``, ``cartesian_map``, ``filter``, ``any`` and ``all``
evaluate their body ONCE over the flattened elements (outer columns taken by each element's
row); ``fold`` and ``cartesian_fold`` are sequential by nature and run per row.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.expr import kernels as k
from common.expr.parse import Apply, ExpressionError, Node, columns_of
from common.expr.values import to_str, truth

Row = Mapping[str, Any]
RowEval = Callable[[Row], Any]


def validate_apply(node: Apply) -> None:
    """Druid's ``validateArguments``: argument counts and the lambda's arity."""
    name, nargs, nparams = node.name, len(node.args), len(node.params)
    if name in ("map", "filter", "any", "all"):
        want: int | None = 1
    elif name == "fold":
        want = 2
    else:
        want = None  # cartesian_map / cartesian_fold: at least 1
    if want is not None and nargs != want:
        raise ExpressionError(f"Function[{name}] requires {want + 1} arguments")
    if want is None and nargs < 1:
        raise ExpressionError(f"Function[{name}] requires at least 2 arguments")
    if nparams != nargs:
        raise ExpressionError(
            f"Function[{name}] lambda expression argument count of {nparams} does not match "
            f"the {nargs} arguments passed to it"
        )


def array_inputs(node: Apply) -> tuple[int, ...]:
    """Positions of ``node.args`` that are array inputs (Druid's ``getArrayInputs``)."""
    if node.name == "cartesian_map":
        return tuple(range(len(node.args)))
    if node.name == "cartesian_fold":
        return tuple(range(len(node.args) - 1))
    return (0,)


# ------------------------------------------------------------------------------------------
# one row


def _as_array(v: Any) -> list[Any] | None:
    if v is None:
        return None
    return v if isinstance(v, list) else [v]


def _true(v: Any) -> bool:
    return truth(v) is True


def _least_restrictive(values: list[Any]) -> list[Any]:
    """A map's results as one element type, as Druid casts them (LONG < DOUBLE < STRING)."""
    present = [v for v in values if v is not None]
    if any(isinstance(v, str) for v in present) and not all(isinstance(v, str) for v in present):
        return [None if v is None else to_str(v) for v in values]
    if any(isinstance(v, float) for v in present):
        return [None if v is None else float(v) for v in values]
    return values


def _fold_result(acc: Any, init: Any) -> Any:
    """``ExprEval.ofType(accumulatorType, acc)``: the fold answers in its initial value's type."""
    if acc is None or init is None or isinstance(acc, list) or isinstance(init, list):
        return acc
    if isinstance(init, str):
        return to_str(acc)
    if isinstance(init, float) and isinstance(acc, int | float):
        return float(acc)
    if isinstance(init, int) and isinstance(acc, float):
        return int(acc)
    return acc


def row_apply(node: Apply, body: RowEval, args: list[RowEval], row: Row) -> Any:
    """``node`` over one row (``body``/``args``: the row evaluators of its parts)."""
    name, params = node.name, node.params
    if name in ("map", "filter", "any", "all"):
        arr = _as_array(args[0](row))
        if arr is None:
            return 0 if name in ("any", "all") else None
        if name == "map":
            if not arr:
                return arr
            return _least_restrictive([body({**row, params[0]: v}) for v in arr])
        hits = [_true(body({**row, params[0]: v})) for v in arr]
        if name == "any":
            return 1 if any(hits) else 0
        if name == "all":
            return 1 if all(hits) else 0
        kept = [v for v, hit in zip(arr, hits, strict=True) if hit]
        return kept or None
    if name == "fold":
        arr = _as_array(args[0](row))
        if arr is None:
            return None
        init = acc = args[1](row)
        for v in arr:
            acc = body({**row, params[0]: v, params[1]: acc})
        return _fold_result(acc, init)
    inputs = args if name == "cartesian_map" else args[:-1]
    maybe = [_as_array(a(row)) for a in inputs]
    arrays = [a for a in maybe if a is not None]
    if len(arrays) < len(maybe):
        return None
    if any(not a for a in arrays):
        return []
    product = itertools.product(*arrays)
    if name == "cartesian_map":
        return _least_restrictive(
            [body({**row, **dict(zip(params, c, strict=True))}) for c in product]
        )
    init = acc = args[-1](row)
    for combo in product:
        acc = body({**row, **dict(zip(params[:-1], combo, strict=True)), params[-1]: acc})
    return _fold_result(acc, init)


# ------------------------------------------------------------------------------------------
# vectorised

Evaluate = Callable[[Node, pa.Table], pa.Array]
"""Evaluates a node over every row of a table (an array of the table's length)."""
EvalValue = Callable[[Node, pa.Table, int], Any]
"""Evaluates a node to an Arrow array or a constant scalar."""
Column = Callable[[pa.Table, str], pa.Array]


def _lists(v: Any, n: int) -> pa.ListArray:
    """``v`` (an array or a constant) as a list array of ``n`` rows: a scalar value is a
    one-element array, null stays null."""
    if isinstance(v, pa.Scalar):
        if not v.is_valid:
            return pa.nulls(n, pa.list_(pa.string()))
        v = pa.repeat(v, n)
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    if pa.types.is_large_list(v.type):
        v = v.cast(pa.list_(v.type.value_type))
    if pa.types.is_list(v.type):
        return v
    v = k.normalise(v)
    if pa.types.is_null(v.type):
        return pa.nulls(n, pa.list_(pa.string()))
    offsets = pa.array(np.arange(n + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, v, mask=pc.is_null(v))


def _lengths(arr: pa.ListArray) -> np.ndarray[Any, Any]:
    return np.asarray(
        pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False), dtype=np.int64
    )


def _null_mask(arr: Any) -> np.ndarray[Any, Any]:
    return np.asarray(pc.is_null(arr).to_numpy(zero_copy_only=False), dtype=bool)


def _bound(
    table: pa.Table,
    node: Apply,
    parents: np.ndarray[Any, Any],
    params: dict[str, Any],
    column: Column,
) -> pa.Table:
    """One row per element: the body's outer columns taken by each element's row, and the
    lambda parameters bound to the elements."""
    rows = pa.array(parents, pa.int64())
    cols: dict[str, Any] = {}
    for name in sorted(columns_of(node.body) - set(node.params)):
        if name in table.column_names:
            cols[name] = column(table, name).take(rows)
    cols.update(params)
    if not cols:
        cols["\x00rows"] = pa.nulls(len(parents))
    return pa.table(cols)


def _rebuild(lengths: np.ndarray[Any, Any], values: pa.Array, null: np.ndarray[Any, Any]) -> Any:
    if pa.types.is_null(values.type):
        values = values.cast(pa.string())
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    mask = pa.array(null) if null.any() else None
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def _truths(values: pa.Array) -> np.ndarray[Any, Any]:
    t = k.truth(values)
    if isinstance(t, pa.Scalar):
        return np.full(len(values), t.as_py() is True)
    return np.asarray(pc.fill_null(t, False).to_numpy(zero_copy_only=False), dtype=bool)


def vector_apply(
    node: Apply,
    table: pa.Table,
    n: int,
    evaluate: Evaluate,
    eval_value: EvalValue,
    column: Column,
    row_fn: Callable[[Row], Any],
) -> Any:
    """``node`` over every row of ``table``."""
    name = node.name
    if name in ("fold", "cartesian_fold"):
        return _per_row(node, table, n, column, row_fn)
    if name == "cartesian_map":
        return _cartesian_map(node, table, n, evaluate, eval_value, column)
    arr = _lists(eval_value(node.args[0], table, n), n)
    lengths = _lengths(arr)
    null = _null_mask(arr)
    values = arr.flatten()
    parents = np.repeat(np.arange(n), lengths)
    sub = _bound(table, node, parents, {node.params[0]: values}, column)
    out = evaluate(node.body, sub) if len(values) else pa.array([], pa.string())
    if name == "map":
        return _rebuild(lengths, out if len(values) else values, null)
    hit = _truths(out) if len(values) else np.zeros(0, dtype=bool)
    counts = np.bincount(parents[hit], minlength=n)
    if name == "any":
        return pa.array(counts > 0, pa.bool_())
    if name == "all":
        return pa.array((counts == lengths) & ~null, pa.bool_())
    kept = values.filter(pa.array(hit)) if len(values) else values
    return _rebuild(counts, kept, null | (counts == 0))


def _cartesian_map(
    node: Apply,
    table: pa.Table,
    n: int,
    evaluate: Evaluate,
    eval_value: EvalValue,
    column: Column,
) -> Any:
    arrays = [_lists(eval_value(a, table, n), n) for a in node.args]
    lengths = [_lengths(a) for a in arrays]
    null = np.zeros(n, dtype=bool)
    for a in arrays:
        null |= _null_mask(a)
    sizes = np.ones(n, dtype=np.int64)
    for length in lengths:
        sizes *= length
    sizes[null] = 0
    total = int(sizes.sum())
    parents = np.repeat(np.arange(n), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    index = np.arange(total, dtype=np.int64) - starts  # position inside the row's product
    params: dict[str, Any] = {}
    stride = np.ones(n, dtype=np.int64)
    for i in range(len(arrays) - 1, -1, -1):  # the last array varies fastest
        length = lengths[i]
        axis = (index // stride[parents]) % np.maximum(length[parents], 1)
        first = np.cumsum(length) - length  # where each row's elements start when flattened
        params[node.params[i]] = arrays[i].flatten().take(pa.array(first[parents] + axis))
        stride = stride * length
    sub = _bound(table, node, parents, params, column)
    out = evaluate(node.body, sub) if total else pa.array([], pa.string())
    return _rebuild(sizes, out, null)


def _per_row(
    node: Apply, table: pa.Table, n: int, column: Column, row_fn: Callable[[Row], Any]
) -> Any:
    names = sorted(c for c in columns_of(node) if c in table.column_names)
    values = {c: column(table, c).to_pylist() for c in names}
    results = [row_fn({c: values[c][i] for c in names}) for i in range(n)]
    return k.to_arrow(results, None)
