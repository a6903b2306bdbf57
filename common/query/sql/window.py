"""Window functions, computed at the broker on the native result (as Druid runs its window
operators after the native query).

A SELECT whose items are window calls is split: the rest of the query (with the windows'
arguments, partition and order keys as extra columns, without ORDER BY/LIMIT) runs as usual, the
windows are computed here over its rows, then ORDER BY / LIMIT / OFFSET apply. Without an ORDER
BY the rows come out in the order of the last window's sort (its partition keys, then its order
keys), as from Druid's window operators: the window with the most sort keys is sorted last.

Functions: ``ROW_NUMBER``, ``RANK``, ``DENSE_RANK``, ``PERCENT_RANK``, ``CUME_DIST``,
``NTILE(n)`` (these need ORDER BY, except ROW_NUMBER, and take no frame), ``LAG``, ``LEAD``,
``FIRST_VALUE``, ``LAST_VALUE`` and ``SUM``/``COUNT``/``MIN``/``MAX``/``AVG`` (over the frame).
Frames: the default (with ORDER BY every row up to the current row's last peer; without, the
whole partition), ``ROWS`` between any of ``UNBOUNDED PRECEDING``, ``n PRECEDING``, ``CURRENT
ROW``, ``n FOLLOWING``, ``UNBOUNDED FOLLOWING`` (``ROWS n PRECEDING`` is from there to the
current row, ``ROWS n FOLLOWING`` from the current row, as Calcite reads them), and ``RANGE``
between ``UNBOUNDED`` bounds and ``CURRENT ROW`` (the current row's peers). Over an empty frame
``COUNT`` is 0 and the others null. ``OVER w`` names a window of the query's ``WINDOW`` clause.
A window inside a larger expression, ``RANGE`` with an offset (Druid counts peer groups there,
not values), a frame on a ranking function and other functions are refused (400). Nulls sort
first ascending and last descending, as in the rest of kdruid's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cmp_to_key, partial
from typing import Any

import pyarrow as pa
from sqlglot import exp

from common.query.sql.aggregates import is_agg
from common.query.sql.functions import Unsupported

_RANKING = {"ROW_NUMBER", "RANK", "DENSE_RANK", "PERCENT_RANK", "CUME_DIST", "NTILE"}
_RANK_CLASSES = {
    exp.Rank: "RANK",
    exp.DenseRank: "DENSE_RANK",
    exp.PercentRank: "PERCENT_RANK",
    exp.CumeDist: "CUME_DIST",
}
_AGGS = {exp.Sum: "SUM", exp.Count: "COUNT", exp.Min: "MIN", exp.Max: "MAX", exp.Avg: "AVG"}
_VALUES = {exp.FirstValue: "FIRST_VALUE", exp.LastValue: "LAST_VALUE"}

Bound = tuple[str, int]
"""A frame bound: ("UNBOUNDED", 0), ("PRECEDING", n), ("CURRENT", 0) or ("FOLLOWING", n)."""


@dataclass
class WindowCall:
    out: str  # the column the window's values go to
    func: str
    args: list[str] = field(default_factory=list)  # inner-query columns of the arguments
    consts: list[Any] = field(default_factory=list)  # LAG/LEAD offset and default
    partition: list[str] = field(default_factory=list)
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # col, desc, nulls first
    frame: tuple[str, Bound, Bound] | None = None  # (ROWS | RANGE, start, end); None: default
    star: bool = False  # COUNT(*)


def has_window(sel: exp.Expression) -> bool:
    return any(isinstance(n, exp.Window) for e in sel.expressions for n in e.walk())


def split(sel: exp.Select) -> tuple[exp.Select, list[WindowCall], exp.Select]:
    """(inner SELECT, the window calls, outer SELECT over the inner rows plus window columns).

    The outer SELECT reads a table named by ``from_name`` later replaced by the caller."""
    for key, value in sel.args.items():
        if key in ("expressions", "windows"):
            continue
        for part in value if isinstance(value, list) else [value]:
            if not isinstance(part, exp.Expression):
                continue
            for n in part.walk():
                if isinstance(n, exp.Window):
                    raise Unsupported(
                        f"A window function in the {key.upper()} clause is not supported: "
                        f"[{n.sql()}]"
                    )
    for e in sel.expressions:
        for w in e.find_all(exp.Window):
            if any(isinstance(n, exp.Window) and n is not w for n in w.walk()):
                raise Unsupported(
                    f"A window function inside a window is not supported: [{w.sql()}]"
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

    named = {w.name: w for w in sel.args.get("windows") or []}
    calls: list[WindowCall] = []
    outer_items: list[exp.Expression] = []
    names: list[tuple[str, str]] = []  # (output name, outer column)
    for i, e in enumerate(sel.expressions):
        alias = e.alias if isinstance(e, exp.Alias) else None
        body = e.this if isinstance(e, exp.Alias) else e
        if isinstance(body, exp.Window):
            col = f"_w{len(calls)}"
            calls.append(_call(body, col, column_for, named))
            name = alias or f"EXPR${i}"
            item: exp.Expression = exp.column(col)
        elif body.find(exp.Window) is not None:
            # A window inside an expression: the expression is computed over the inner rows
            # and the window columns (its columns and aggregates come from the inner query).
            name = alias or f"EXPR${i}"
            item = _over_windows(body, calls, column_for, named)
            col = name
        else:
            col = f"_s{i}"
            inner_items.append(exp.Alias(this=body.copy(), alias=exp.to_identifier(col)))
            name = alias or (body.name if isinstance(body, exp.Column) else f"EXPR${i}")
            item = exp.column(col)
        names.append((name, col))
        outer_items.append(exp.Alias(this=item, alias=exp.to_identifier(name, quoted=True)))
    inner = sel.copy()
    for key in ("order", "limit", "offset", "windows"):
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


def _over_windows(
    body: exp.Expression,
    calls: list[WindowCall],
    column_for: Any,
    named: dict[str, exp.Window],
) -> exp.Expression:
    """``body`` with each window call replaced by its column, and each column and aggregate
    call outside the windows by the inner query's column of it."""

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Window):
            col = f"_w{len(calls)}"
            calls.append(_call(node, col, column_for, named))
            return exp.column(col)
        if isinstance(node, exp.Column) or is_agg(node):
            return exp.column(column_for(node))
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                node.set(key, rewrite(value))
            elif isinstance(value, list):
                node.set(key, [rewrite(v) if isinstance(v, exp.Expression) else v for v in value])
        return node

    return rewrite(body.copy())


def _named(w: exp.Window, named: dict[str, exp.Window]) -> exp.Window:
    """``OVER w``: the window ``w`` of the query's WINDOW clause, with this call's function."""
    alias = w.args.get("alias")
    if alias is None:
        return w
    name = alias.name if isinstance(alias, exp.Expression) else str(alias)
    if name not in named:
        raise Unsupported(f"Window [{name}] is not defined")
    if w.args.get("partition_by") or w.args.get("order") or w.args.get("spec"):
        raise Unsupported(f"A window extending the named window [{name}] is not supported")
    resolved = named[name].copy()
    resolved.set("this", w.this.copy())
    resolved.set("alias", None)
    return resolved


def _call(w: exp.Window, out: str, column_for: Any, named: dict[str, exp.Window]) -> WindowCall:
    w = _named(w, named)
    fn = w.this
    if w.args.get("alias") is not None or isinstance(fn, exp.Filter):
        raise Unsupported(f"Unsupported window [{w.sql()}]")
    call = WindowCall(out=out, func="")
    if isinstance(fn, exp.RowNumber):
        call.func = "ROW_NUMBER"
    elif type(fn) in _RANK_CLASSES:
        call.func = _RANK_CLASSES[type(fn)]
        if fn.expressions or fn.args.get("this") is not None:
            raise Unsupported(f"{call.func} takes no arguments")
    elif isinstance(fn, exp.Ntile):
        call.func = "NTILE"
        tiles = fn.this
        if not (isinstance(tiles, exp.Literal) and not tiles.is_string and tiles.this.isdigit()):
            raise Unsupported("NTILE takes a positive integer literal")
        if int(tiles.this) <= 0:
            raise Unsupported("NTILE takes a positive integer literal")
        call.consts = [int(tiles.this)]
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
        if default is not None and not isinstance(default, exp.Null):
            # Druid's window operator ignores it (apache/druid#15270: null past the edge), as
            # its documented example shows; kdruid refuses rather than answer either way.
            raise Unsupported(
                f"{call.func} with a default value is not supported (Druid ignores the default "
                f"and answers null past the partition's edge): [{fn.sql()}]"
            )
        call.consts = [k, None]
    elif type(fn) in _VALUES:
        call.func = _VALUES[type(fn)]
        call.args = [column_for(fn.this)]
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
        if call.func in _RANKING or call.func in ("LAG", "LEAD"):
            raise Unsupported(f"A window frame is not allowed with {call.func}: [{spec.sql()}]")
        call.frame = _frame(spec)
    if call.func in _RANKING and not call.order and call.func != "ROW_NUMBER":
        raise Unsupported(f"{call.func} needs ORDER BY in its window")
    return call


def _bound(value: Any, side: Any, spec: exp.Expression) -> Bound:
    text = str(value or "").upper()
    side_text = str(side or "").upper()
    if text == "UNBOUNDED":
        return ("UNBOUNDED_" + side_text, 0)
    if text == "CURRENT ROW":
        return ("CURRENT", 0)
    if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
        if side_text in ("PRECEDING", "FOLLOWING"):
            return (side_text, int(value.this))
    raise Unsupported(f"Window frame [{spec.sql()}] is not supported")


def _frame(spec: exp.Expression) -> tuple[str, Bound, Bound]:
    """(ROWS or RANGE, start, end) of a frame clause; ``ROWS x`` alone is Calcite's shorthand:
    from x to the current row, or from the current row to x when x follows it."""
    kind = str(spec.args.get("kind") or "").upper()
    if kind not in ("ROWS", "RANGE"):
        raise Unsupported(f"Window frame [{spec.sql()}] is not supported")
    start = _bound(spec.args.get("start"), spec.args.get("start_side"), spec)
    if spec.args.get("end") is None:
        end: Bound = ("CURRENT", 0)
        if start[0] in ("FOLLOWING", "UNBOUNDED_FOLLOWING"):
            start, end = ("CURRENT", 0), start
    else:
        end = _bound(spec.args.get("end"), spec.args.get("end_side"), spec)
    order = ["UNBOUNDED_PRECEDING", "PRECEDING", "CURRENT", "FOLLOWING", "UNBOUNDED_FOLLOWING"]
    if start[0] == "UNBOUNDED_FOLLOWING" or end[0] == "UNBOUNDED_PRECEDING":
        raise Unsupported(f"Window frame [{spec.sql()}] is not supported")
    if order.index(start[0]) > order.index(end[0]):
        raise Unsupported(f"Window frame [{spec.sql()}] ends before it starts")
    if kind == "RANGE" and (
        start[0] in ("PRECEDING", "FOLLOWING") or end[0] in ("PRECEDING", "FOLLOWING")
    ):
        raise Unsupported(
            f"Window frame [{spec.sql()}] is not supported: RANGE takes UNBOUNDED and CURRENT ROW "
            "bounds only"
        )
    return kind, start, end


def compute(table: pa.Table, calls: list[WindowCall]) -> pa.Table:
    """``table`` with one column per window call, its rows in the last window's order."""
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
    last = _last_sorted(calls)
    if last is None:
        return table
    keys = [(c, False, True) for c in last.partition] + last.order
    order = sorted(range(n), key=cmp_to_key(partial(_cmp, cols, keys)))
    return table.take(pa.array(order, pa.int64()))


def _last_sorted(calls: list[WindowCall]) -> WindowCall | None:
    """The window Druid's operators sort last: the one with the most sort keys (the last of
    those), so that the windows with fewer keys run first."""
    best: WindowCall | None = None
    for call in calls:
        size = len(call.partition) + len(call.order)
        if size and (best is None or size >= len(best.partition) + len(best.order)):
            best = call
    return best


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
    # the first and last (exclusive) index of each row's peer group
    first = list(range(m))
    last = [i + 1 for i in range(m)]
    i = 0
    while i < m:
        j = i + 1
        while j < m and peers(j, i):
            j += 1
        for t in range(i, j):
            first[t], last[t] = i, j
        i = j
    if call.func in _RANKING:
        _ranking(call, rows, first, last, out)
        return
    if call.func in ("LAG", "LEAD"):
        k, default = call.consts
        lagged = cols[call.args[0]]
        for i, r in enumerate(rows):
            j = i - k if call.func == "LAG" else i + k
            out[r] = lagged[rows[j]] if 0 <= j < m else default
        return
    bounds = [_frame_of(call, i, m, first, last) for i in range(m)]
    src = cols[call.args[0]] if call.args else None
    if call.func in ("FIRST_VALUE", "LAST_VALUE"):
        assert src is not None
        for i, r in enumerate(rows):
            lo, hi = bounds[i]
            if lo < hi:
                out[r] = src[rows[lo] if call.func == "FIRST_VALUE" else rows[hi - 1]]
        return
    values = [src[r] for r in rows] if src is not None else [1] * m
    for r, v in zip(rows, _aggregates(call, values, bounds), strict=True):
        out[r] = v


def _ranking(
    call: WindowCall, rows: list[int], first: list[int], last: list[int], out: list[Any]
) -> None:
    m = len(rows)
    dense = 0
    for i, r in enumerate(rows):
        if i == first[i]:
            dense += 1
        rank = first[i] + 1
        if call.func == "ROW_NUMBER":
            out[r] = i + 1
        elif call.func == "RANK":
            out[r] = rank
        elif call.func == "DENSE_RANK":
            out[r] = dense
        elif call.func == "PERCENT_RANK":
            out[r] = 0.0 if m == 1 else (rank - 1) / (m - 1)
        elif call.func == "CUME_DIST":
            out[r] = last[i] / m
        else:  # NTILE: the first m % n tiles hold one row more
            tiles = call.consts[0]
            size, extra = divmod(m, tiles)
            big = extra * (size + 1)
            out[r] = i // (size + 1) + 1 if i < big else extra + (i - big) // size + 1


def _frame_of(
    call: WindowCall, i: int, m: int, first: list[int], last: list[int]
) -> tuple[int, int]:
    """[lo, hi) of row ``i``'s frame within its sorted partition of ``m`` rows."""
    if call.frame is None:
        return (0, last[i]) if call.order else (0, m)
    kind, start, end = call.frame
    if kind == "RANGE":  # UNBOUNDED or CURRENT ROW bounds: the current row's peers
        lo = 0 if start[0] == "UNBOUNDED_PRECEDING" else (first[i] if call.order else 0)
        hi = m if end[0] == "UNBOUNDED_FOLLOWING" else (last[i] if call.order else m)
        return lo, hi

    def at(b: Bound, is_end: bool) -> int:
        side, n = b
        if side == "UNBOUNDED_PRECEDING":
            return 0
        if side == "UNBOUNDED_FOLLOWING":
            return m
        pos = i - n if side == "PRECEDING" else i + n if side == "FOLLOWING" else i
        return min(max(pos + (1 if is_end else 0), 0), m)

    lo, hi = at(start, False), at(end, True)
    return lo, max(lo, hi)


def _aggregates(call: WindowCall, values: list[Any], bounds: list[tuple[int, int]]) -> list[Any]:
    """The aggregate over each row's frame: frames that all start at the partition's first row
    (or all end at its last) are accumulated in one pass; other frames (bounded by offsets or
    peers) are aggregated one by one."""
    m = len(values)
    out: list[Any] = [None] * m
    if all(lo == 0 for lo, _ in bounds) or all(hi == m for _, hi in bounds):
        forward = all(lo == 0 for lo, _ in bounds)
        acc = _Acc(call.func, call.star)
        done = 0  # values added so far, from the front (forward) or the back
        for i in range(m) if forward else reversed(range(m)):
            lo, hi = bounds[i]
            want = hi if forward else m - lo
            while done < want:
                acc.add(values[done] if forward else values[m - 1 - done])
                done += 1
            out[i] = acc.value()
        return out
    for i, (lo, hi) in enumerate(bounds):
        acc = _Acc(call.func, call.star)
        for v in values[lo:hi]:
            acc.add(v)
        out[i] = acc.value()
    return out


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
    if call.func in ("PERCENT_RANK", "CUME_DIST", "AVG"):
        return pa.float64()
    if call.func in _RANKING or call.func == "COUNT":
        return pa.int64()
    src = table.schema.field(call.args[0]).type
    if call.func in ("LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE") and pa.types.is_null(src):
        return pa.string()
    return src
