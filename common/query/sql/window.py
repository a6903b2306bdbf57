"""Window functions, computed at the broker on the native result (as Druid runs its window
operators after the native query).

A SELECT whose items are window calls (``ROW_NUMBER``, ``RANK``, ``DENSE_RANK``, ``LAG``,
``LEAD``, and ``SUM``/``COUNT``/``MIN``/``MAX``/``AVG`` ``OVER (PARTITION BY ... ORDER BY ...)``)
is split: the rest of the query (with the windows' arguments, partition and order keys as extra
columns, without ORDER BY/LIMIT) runs as usual, the windows are computed here over its rows,
then ORDER BY / LIMIT / OFFSET apply. Frames: the default (with ORDER BY: every row up to the
current row's last peer; without: the whole partition) and ``ROWS BETWEEN UNBOUNDED PRECEDING
AND CURRENT ROW``. A window inside a larger expression, other functions and other frames are
refused (400). Nulls sort first ascending and last descending, as in the rest of kdruid's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cmp_to_key, partial
from typing import Any

import pyarrow as pa
from sqlglot import exp

from common.query.sql.functions import Unsupported

_RANKING = {"ROW_NUMBER", "RANK", "DENSE_RANK"}
_AGGS = {exp.Sum: "SUM", exp.Count: "COUNT", exp.Min: "MIN", exp.Max: "MAX", exp.Avg: "AVG"}


@dataclass
class WindowCall:
    out: str  # the column the window's values go to
    func: str
    args: list[str] = field(default_factory=list)  # inner-query columns of the arguments
    consts: list[Any] = field(default_factory=list)  # LAG/LEAD offset and default
    partition: list[str] = field(default_factory=list)
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # col, desc, nulls first
    rows_frame: bool = False  # ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW: no peers
    star: bool = False  # COUNT(*)


def has_window(sel: exp.Expression) -> bool:
    return any(isinstance(n, exp.Window) for e in sel.expressions for n in e.walk())


def split(sel: exp.Select) -> tuple[exp.Select, list[WindowCall], exp.Select]:
    """(inner SELECT, the window calls, outer SELECT over the inner rows plus window columns).

    The outer SELECT reads a table named by ``from_name`` later replaced by the caller."""
    for n in sel.walk():
        if isinstance(n, exp.Window) and not any(n is e or n is e.this for e in sel.expressions):
            raise Unsupported(
                f"A window function inside an expression or clause is not supported: [{n.sql()}]"
            )
    if sel.args.get("distinct"):
        raise Unsupported("SELECT DISTINCT with window functions is not supported")
    inner_items: list[exp.Expression] = []
    extra: dict[str, str] = {}  # sql text of a key/argument -> inner column

    def column_for(node: exp.Expression) -> str:
        text = node.sql()
        if text not in extra:
            extra[text] = f"_k{len(extra)}"
            inner_items.append(exp.Alias(this=node.copy(), alias=exp.to_identifier(extra[text])))
        return extra[text]

    calls: list[WindowCall] = []
    outer_items: list[exp.Expression] = []
    names: list[tuple[str, str]] = []  # (output name, outer column)
    for i, e in enumerate(sel.expressions):
        alias = e.alias if isinstance(e, exp.Alias) else None
        body = e.this if isinstance(e, exp.Alias) else e
        if isinstance(body, exp.Window):
            col = f"_w{len(calls)}"
            calls.append(_call(body, col, column_for))
            name = alias or f"EXPR${i}"
        else:
            col = f"_s{i}"
            inner_items.append(exp.Alias(this=body.copy(), alias=exp.to_identifier(col)))
            name = alias or (body.name if isinstance(body, exp.Column) else f"EXPR${i}")
        names.append((name, col))
        outer_items.append(
            exp.Alias(this=exp.column(col), alias=exp.to_identifier(name, quoted=True))
        )
    inner = sel.copy()
    for key in ("order", "limit", "offset"):
        inner.set(key, None)
    inner.set("expressions", inner_items)
    outer = exp.select(*outer_items)
    order = sel.args.get("order")
    if order is not None:
        keys = []
        by_name = dict(names)
        by_text = {
            (e.this if isinstance(e, exp.Alias) else e).sql(): col
            for e, (_, col) in zip(sel.expressions, names, strict=True)
        }
        for o in order.expressions:
            key = o.this
            if isinstance(key, exp.Literal) and not key.is_string:
                k = int(key.this)
                if not 1 <= k <= len(names):
                    raise Unsupported(f"Ordinal out of range: {k}")
                col = names[k - 1][1]
            elif isinstance(key, exp.Column) and not key.table and key.name in by_name:
                col = by_name[key.name]
            elif key.sql() in by_text:
                col = by_text[key.sql()]
            else:
                raise Unsupported(
                    f"ORDER BY [{key.sql()}] with window functions must name a select item"
                )
            new = o.copy()
            new.set("this", exp.column(col))
            keys.append(new)
        outer.set("order", exp.Order(expressions=keys))
    for key in ("limit", "offset"):
        if sel.args.get(key) is not None:
            outer.set(key, sel.args[key].copy())
    return inner, calls, outer


def _call(w: exp.Window, out: str, column_for: Any) -> WindowCall:
    fn = w.this
    if w.args.get("alias") is not None or isinstance(fn, exp.Filter):
        raise Unsupported(f"Unsupported window [{w.sql()}]")
    call = WindowCall(out=out, func="")
    if isinstance(fn, exp.RowNumber):
        call.func = "ROW_NUMBER"
    elif isinstance(fn, exp.Rank | exp.DenseRank):
        call.func = "RANK" if isinstance(fn, exp.Rank) else "DENSE_RANK"
        if fn.expressions:
            raise Unsupported(f"{call.func} takes no arguments")
    elif isinstance(fn, exp.Lag | exp.Lead):
        call.func = "LAG" if isinstance(fn, exp.Lag) else "LEAD"
        call.args = [column_for(fn.this)]
        offset = fn.args.get("offset")
        k = 1
        if offset is not None:
            if not (isinstance(offset, exp.Literal) and not offset.is_string):
                raise Unsupported(f"{call.func} offset must be an integer literal")
            k = int(offset.this)
        default = fn.args.get("default")
        call.consts = [k, default]
    elif type(fn) in _AGGS:
        call.func = _AGGS[type(fn)]
        arg = fn.this
        if isinstance(arg, exp.Distinct):
            raise Unsupported(f"{call.func}(DISTINCT) OVER is not supported")
        if call.func == "COUNT" and (arg is None or isinstance(arg, exp.Star)):
            call.star = True
        else:
            call.args = [column_for(arg)]
    else:
        raise Unsupported(f"Window function [{fn.sql()}] is not supported")
    call.partition = [column_for(p) for p in w.args.get("partition_by") or []]
    order = w.args.get("order")
    for o in order.expressions if order is not None else []:
        desc = bool(o.args.get("desc"))
        nulls_first = o.args.get("nulls_first")
        nf = (not desc) if nulls_first is None else bool(nulls_first)
        call.order.append((column_for(o.this), desc, nf))
    spec = w.args.get("spec")
    if spec is not None:
        kind = str(spec.args.get("kind") or "").upper()
        start = f"{spec.args.get('start')} {spec.args.get('start_side') or ''}".strip().upper()
        end = str(spec.args.get("end") or "").upper()
        if not (
            kind in ("ROWS", "RANGE") and start == "UNBOUNDED PRECEDING" and end == "CURRENT ROW"
        ):
            raise Unsupported(f"Window frame [{spec.sql()}] is not supported")
        call.rows_frame = kind == "ROWS"
    if call.func in _RANKING and not call.order and call.func != "ROW_NUMBER":
        raise Unsupported(f"{call.func} needs ORDER BY in its window")
    if call.func in ("LAG", "LEAD") and call.consts[1] is not None:
        call.consts[1] = _const(call.consts[1])
    return call


def _const(node: exp.Expression) -> Any:
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else _number(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -_number(node.this.this)
    raise Unsupported(f"LAG/LEAD default must be a literal: [{node.sql()}]")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def compute(table: pa.Table, calls: list[WindowCall]) -> pa.Table:
    """``table`` with one column per window call."""
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    n = table.num_rows
    for call in calls:
        values: list[Any] = [None] * n
        parts: dict[tuple[Any, ...], list[int]] = {}
        for r in range(n):
            key = tuple(_hashable(cols[c][r]) for c in call.partition)
            parts.setdefault(key, []).append(r)
        for rows in parts.values():
            rows.sort(key=cmp_to_key(partial(_cmp, cols, call.order)))
            _fill(call, cols, rows, values)
        typ = _type(call, table)
        if call.func == "AVG" and pa.types.is_integer(table.schema.field(call.args[0]).type):
            # AVG of a BIGINT is a BIGINT in Druid SQL (truncated), as the AVG aggregate.
            values = [None if v is None else int(v) for v in values]
            typ = pa.int64()
        cols[call.out] = values
        table = table.append_column(call.out, pa.array(values, typ))
    return table


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _cmp(cols: dict[str, list[Any]], order: list[tuple[str, bool, bool]], a: int, b: int) -> int:
    for col, desc, nulls_first in order:
        x, y = cols[col][a], cols[col][b]
        if x is None or y is None:
            if x is None and y is None:
                continue
            return (-1 if x is None else 1) * (1 if nulls_first else -1)
        if x != y:
            c = -1 if x < y else 1
            return -c if desc else c
    return 0


def _fill(call: WindowCall, cols: dict[str, list[Any]], rows: list[int], out: list[Any]) -> None:
    def peers(i: int, j: int) -> bool:
        return _cmp(cols, call.order, rows[i], rows[j]) == 0

    m = len(rows)
    if call.func in _RANKING:
        rank = dense = 0
        for i, r in enumerate(rows):
            if i == 0 or not peers(i, i - 1):
                rank, dense = i + 1, dense + 1
            out[r] = {"ROW_NUMBER": i + 1, "RANK": rank, "DENSE_RANK": dense}[call.func]
        return
    if call.func in ("LAG", "LEAD"):
        k, default = call.consts
        lagged = cols[call.args[0]]
        for i, r in enumerate(rows):
            j = i - k if call.func == "LAG" else i + k
            out[r] = lagged[rows[j]] if 0 <= j < m else default
        return
    src = cols[call.args[0]] if call.args else None
    # the end (exclusive) of each row's frame
    ends = [m] * m
    if call.order:
        if call.rows_frame:
            ends = [i + 1 for i in range(m)]
        else:
            i = 0
            while i < m:
                j = i + 1
                while j < m and peers(j, i):
                    j += 1
                for t in range(i, j):
                    ends[t] = j
                i = j
    acc = _Acc(call.func, call.star)
    done = 0
    for i, r in enumerate(rows):
        while done < ends[i]:
            acc.add(src[rows[done]] if src is not None else 1)
            done += 1
        out[r] = acc.value()


class _Acc:
    def __init__(self, func: str, star: bool) -> None:
        self.func, self.star = func, star
        self.n = 0
        self.total: Any = None
        self.best: Any = None

    def add(self, v: Any) -> None:
        if v is None and not self.star:
            return
        self.n += 1
        if self.func in ("SUM", "AVG"):
            self.total = v if self.total is None else self.total + v
        elif self.func in ("MIN", "MAX") and (
            self.best is None or (v < self.best if self.func == "MIN" else v > self.best)
        ):
            self.best = v

    def value(self) -> Any:
        if self.func == "COUNT":
            return self.n
        if self.func == "SUM":
            return self.total
        if self.func == "AVG":
            return None if not self.n else self.total / self.n
        return self.best


def _type(call: WindowCall, table: pa.Table) -> pa.DataType:
    if call.func in _RANKING or call.func == "COUNT":
        return pa.int64()
    if call.func == "AVG":
        return pa.float64()
    src = table.schema.field(call.args[0]).type
    if call.func in ("LAG", "LEAD") and pa.types.is_null(src):
        return pa.string()
    return src
