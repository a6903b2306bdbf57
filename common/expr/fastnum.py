"""Numeric expressions over null-free numeric columns, evaluated with numpy in whole columns.

The common shape of query expressions (``added * 2``, ``delta < 5.0 && added > 500``,
``(added / 100) * 100 + if(delta > 0, 1, 0)``) reads only LONG/DOUBLE columns without nulls and
uses arithmetic, comparisons, logic and ``if``. Those evaluate here in one numpy pass per
operator over each column (no per-batch Python, no Arrow null bitmaps), with the semantics of
``common.expr.kernels``: LONG op LONG stays LONG and wraps on overflow (as Arrow's unchecked
kernels), anything with a DOUBLE is DOUBLE, ``/`` between LONGs truncates toward zero, ``%``
takes the dividend's sign, comparisons and logic give 1/0, numbers are true when > 0.

Anything that could produce a null (a nullable column, a LONG division by something other than a
non-zero literal, a null literal) or that is not listed returns None, and the general evaluator
(``common.expr.vector``) runs instead; so do strings, arrays and other functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from common.expr.parse import Binary, Call, Ident, Literal, Node, Unary, columns_of

#: Rows evaluated at a time: numpy's temporaries stay small, and each call is long enough that
#: the segments' processing threads rarely wait for the GIL between calls (at 64 Ki rows, two
#: threads ran no faster than one).
STEP = 256 * 1024


class _Bail(Exception):
    """Not an expression this path handles (the general evaluator runs)."""


# A value: (numpy array or numpy scalar, kind) where kind is "LONG", "DOUBLE" or "BOOL".
Value = tuple[Any, str]


def evaluate(node: Node, table: pa.Table) -> pa.Array | None:
    """The expression's value as ``common.expr.vector`` gives it (LONG 1/0 for booleans), or
    None when this path does not apply."""
    out = _run(node, table)
    if out is None:
        return None
    values, kind = out
    if kind == "BOOL":
        return pa.array(values.astype(np.int64))
    return pa.array(values, pa.int64() if kind == "LONG" else pa.float64())


def truth_mask(node: Node, table: pa.Table) -> np.ndarray[Any, Any] | None:
    """Where the expression is true (> 0), as a numpy boolean array; None when not applicable.
    (No null can arise on this path, so there is no unknown.)"""
    out = _run(node, table)
    if out is None:
        return None
    values, kind = out
    mask: np.ndarray[Any, Any] = values if kind == "BOOL" else np.greater(values, 0)
    return mask


def numeric_columns(node: Node, table: pa.Table) -> list[str] | None:
    """The columns the expression reads, when every one is a null-free LONG/DOUBLE (or ms
    timestamp) column of ``table``; None otherwise (or when it reads none)."""
    names = sorted(columns_of(node))
    if not names:
        return None
    for name in names:
        if name not in table.column_names or table.column(name).null_count:
            return None
        typ = table.schema.field(name).type
        if not (
            pa.types.is_integer(typ)
            or pa.types.is_floating(typ)
            or (pa.types.is_timestamp(typ) and typ.unit == "ms")
        ):
            return None
    return names


def _run(node: Node, table: pa.Table) -> Value | None:
    n = table.num_rows
    names = numeric_columns(node, table)
    if n == 0 or names is None:
        return None
    # Slice by slice (record batches, at most STEP rows): numpy's temporaries stay in cache and
    # the columns are read in place, not copied.
    batches = (
        {name: _numbers(batch.column(i)) for i, name in enumerate(names)}
        for batch in table.select(names).to_batches(max_chunksize=STEP)
        if batch.num_rows
    )
    return _evaluate_batches(node, batches, n)


def evaluate_arrays(node: Node, columns: dict[str, Any], n: int) -> Value | None:
    """The expression's (values, kind) over numpy columns of ``n`` rows each (int64 or float64,
    as ``numeric_columns`` admits them and ``numbers`` reads them), or None when this path does
    not apply. Kind is "LONG", "DOUBLE" or "BOOL"."""
    if n == 0:
        return None
    cols = {name: (a, "DOUBLE" if a.dtype.kind == "f" else "LONG") for name, a in columns.items()}
    batches = (
        {name: (a[at : at + STEP], kind) for name, (a, kind) in cols.items()}
        for at in range(0, n, STEP)
    )
    return _evaluate_batches(node, batches, n)


def evaluate_at(node: Node, table: pa.Table, names: list[str], rows: Any) -> Value | None:
    """``evaluate_arrays`` of the columns ``names`` (as ``numeric_columns`` gives them) at the
    sorted positions ``rows`` (None: every row): record batch by record batch, each batch's
    rows gathered from it and evaluated at once, so no column is gathered whole first."""
    n = table.num_rows if rows is None else len(rows)
    if n == 0:
        return None

    def batches() -> Any:
        start = at = 0
        for batch in table.select(names).to_batches(max_chunksize=STEP):
            m = batch.num_rows
            cols = {name: _numbers(batch.column(i)) for i, name in enumerate(names)}
            if rows is None:
                if m:
                    yield cols
            else:
                stop = int(np.searchsorted(rows, start + m))
                if stop > at:
                    picked = np.subtract(rows[at:stop], start)
                    yield {k: (v.take(picked, mode="clip"), kind) for k, (v, kind) in cols.items()}
                at = stop
            start += m

    return _evaluate_batches(node, batches(), n)


def _evaluate_batches(node: Node, batches: Any, n: int) -> Value | None:
    out: Any = None
    kind = ""
    at = 0
    try:
        for cols in batches:
            # After the first batch, the last operation writes its result straight into the
            # output (a ufunc's out=) when its type is the output's.
            dest = None
            if out is not None:
                m = len(next(iter(cols.values()))[0])
                dest = out[at : at + m]
            values, kind = _eval(node, cols, dest)
            if np.ndim(values) == 0:
                return None  # a constant: the general path makes the column
            m = len(values)
            if out is None:
                out = np.empty(n, dtype=values.dtype)
            elif values.dtype != out.dtype:
                return None
            if values is not dest:
                out[at : at + m] = values
            at += m
    except _Bail:
        return None
    return (out, kind) if out is not None and at == n else None


def numbers(col: Any, rows: Any = None) -> Any:
    """A null-free numeric (or ms timestamp) column as one numpy array, int64 or float64: every
    row, or those at the sorted positions ``rows``, gathered chunk by chunk (a column of
    several chunks is never copied whole)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if len(chunks) <= 1:
        one = _numbers(chunks[0] if chunks else pa.array([], col.type))[0]
        return one if rows is None else one[rows]
    if rows is None:
        return np.concatenate([_numbers(c)[0] for c in chunks])
    sizes = [len(c) for c in chunks]
    first = _numbers(chunks[0])[0]
    out = np.empty(len(rows), dtype=first.dtype)
    cuts = np.searchsorted(rows, np.cumsum(sizes))
    at = start = 0
    for i, (chunk, size, cut) in enumerate(zip(chunks, sizes, cuts, strict=True)):
        if cut > at:
            values = first if i == 0 else _numbers(chunk)[0]
            # mode "clip": the positions are in range, and "raise" would buffer ``out``
            np.take(values, np.subtract(rows[at:cut], start), out=out[at:cut], mode="clip")
            at = int(cut)
        start += size
    return out


def _numbers(arr: Any) -> Value:
    typ = arr.type
    if pa.types.is_timestamp(typ):
        return arr.to_numpy().view(np.int64), "LONG"
    if pa.types.is_integer(typ):
        return np.asarray(arr.to_numpy(), dtype=np.int64), "LONG"
    return np.asarray(arr.to_numpy(), dtype=np.float64), "DOUBLE"


def _literal(value: Any) -> Value:
    if isinstance(value, bool) or value is None:
        raise _Bail
    if isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            raise _Bail
        return np.int64(value), "LONG"
    if isinstance(value, float):
        return np.float64(value), "DOUBLE"
    raise _Bail


def _eval(node: Node, cols: dict[str, Value], out: Any = None) -> Value:
    """The node's value; ``out``: where the result may be written (when of its type)."""
    if isinstance(node, Literal):
        return _literal(node.value)
    if isinstance(node, Ident):
        return cols[node.name]
    if isinstance(node, Unary):
        v, kind = _eval(node.arg, cols)
        if node.op == "!":
            return np.logical_not(_truth(v, kind)), "BOOL"
        return np.negative(_number(v, kind)), "DOUBLE" if kind == "DOUBLE" else "LONG"
    if isinstance(node, Binary):
        return _binary(node, cols, out)
    if isinstance(node, Call) and node.name == "if" and len(node.args) == 3:
        cond, ck = _eval(node.args[0], cols)
        a, ak = _eval(node.args[1], cols)
        b, bk = _eval(node.args[2], cols)
        if np.ndim(cond) == 0:
            raise _Bail
        pick = _truth(cond, ck)
        x, y = _number(a, ak), _number(b, bk)
        if ak == "DOUBLE" or bk == "DOUBLE":
            return np.where(
                pick, np.float64(x) if np.ndim(x) == 0 else x.astype(np.float64), y
            ), "DOUBLE"
        # y + pick * (x - y): exact in wrapping int64 arithmetic, and much faster than np.where;
        # in place in the one new array, skipping a multiply by 1 and an add of 0 (if(c, 1, 0))
        value = pick.astype(np.int64)
        with np.errstate(all="ignore"):
            diff = np.subtract(x, y)
            if np.ndim(diff) or int(diff) != 1:
                np.multiply(value, diff, out=value)
            if np.ndim(y) or int(y) != 0:
                np.add(value, y, out=value)
        return value, "LONG"
    raise _Bail


_COMPARE = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


def _into(out: Any, dtype: Any, *operands: Any) -> Any:
    """``out`` when the result, of ``dtype``, may be written there: a column (not a constant of
    constants) of the output's type; else None (numpy allocates)."""
    if out is None or out.dtype != dtype or not any(np.ndim(v) for v in operands):
        return None
    return out


def _binary(node: Binary, cols: dict[str, Value], out: Any = None) -> Value:
    op = node.op
    a, ak = _eval(node.left, cols)
    b, bk = _eval(node.right, cols)
    if op in ("&&", "||"):
        f = np.logical_and if op == "&&" else np.logical_or
        x, y = _truth(a, ak), _truth(b, bk)
        return f(x, y, out=_into(out, np.bool_, x, y)), "BOOL"
    x, y = _number(a, ak), _number(b, bk)
    if op in _COMPARE:
        return _COMPARE[op](x, y, out=_into(out, np.bool_, x, y)), "BOOL"
    longs = ak != "DOUBLE" and bk != "DOUBLE"
    kind = "LONG" if longs else "DOUBLE"
    if longs and op in ("/", "%"):
        return _long_divide(op, node.right, x, y), "LONG"
    dest = _into(out, np.int64 if longs else np.float64, x, y)
    with np.errstate(all="ignore"):
        if op == "+":
            return np.add(x, y, out=dest), kind
        if op == "-":
            return np.subtract(x, y, out=dest), kind
        if op == "*":
            return np.multiply(x, y, out=dest), kind
        if op == "/":
            x = np.float64(x) if np.ndim(x) == 0 else x
            return np.divide(x, y, dtype=np.float64, out=_into(out, np.float64, x, y)), kind
        if op == "%":
            return np.fmod(x, y, dtype=np.float64, out=_into(out, np.float64, x, y)), kind
    raise _Bail  # ^ and anything else


def _long_divide(op: str, right: Node, x: Any, y: Any) -> Any:
    """LONG ``/`` (truncating) and ``%`` (dividend's sign) by a non-zero literal: no null, and
    no overflow (-1 is left to the general path, as ``MIN / -1`` would overflow)."""
    if not isinstance(right, Literal) or np.ndim(y) != 0 or int(y) in (0, -1):
        raise _Bail
    if op == "%":
        return np.fmod(x, y)
    q = np.floor_divide(x, y)
    if (int(y) > 0 and int(np.min(x)) >= 0) or (int(y) < 0 and int(np.max(x)) <= 0):
        return q  # same signs everywhere: floor is truncation
    # floor -> truncation: one more where the division was inexact and the signs differ
    inexact = np.not_equal(np.multiply(q, y), x)
    if int(y) > 0:
        return q + (inexact & np.less(x, 0))
    return q + (inexact & np.greater(x, 0))


def _number(v: Any, kind: str) -> Any:
    if kind == "BOOL":
        return v.astype(np.int64) if np.ndim(v) else np.int64(int(v))
    return v


def _truth(v: Any, kind: str) -> Any:
    if kind == "BOOL":
        return v
    return np.greater(v, 0)
