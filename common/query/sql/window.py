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
from typing import Any

import pyarrow as pa
from sqlglot import exp

from common.errors import QueryParseError
from common.query.operators import parse_operators, run
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
    meta: dict[str, str] = field(default_factory=dict)  # native aggregation kind


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


def to_operators(calls: list[WindowCall]) -> list[dict[str, Any]]:
    """The native ``operatorDefinition`` computing ``calls``, as Druid plans them: the windows
    sharing partition and order keys share one sort and partitioning; windows without keys run
    first over the input's order, and the window with the most sort keys (the last of those) is
    sorted last, so the rows come out in its order."""
    groups: dict[tuple[Any, ...], list[WindowCall]] = {}
    for call in calls:
        for _, desc, nulls_first in call.order:
            if nulls_first == desc:
                raise Unsupported(
                    "A window ORDER BY with NULLS "
                    f"{'FIRST' if nulls_first else 'LAST'} {'DESC' if desc else 'ASC'} is not "
                    "supported: Druid's window operators sort nulls first ascending and last "
                    "descending"
                )
        groups.setdefault((tuple(call.partition), tuple(call.order)), []).append(call)
    last = _last_sorted(calls)
    keys = sorted(
        groups,
        key=lambda k: (bool(k[0] or k[1]), last is not None and last in groups[k]),
    )
    ops: list[dict[str, Any]] = []
    for key in keys:
        partition, order = list(key[0]), list(key[1])
        if partition or order:
            columns = [{"column": c, "direction": "ASC"} for c in partition]
            columns += [{"column": c, "direction": "DESC" if d else "ASC"} for c, d, _ in order]
            ops.append({"type": "naiveSort", "columns": columns})
        ops.append({"type": "naivePartition", "partitionColumns": partition})
        procs = [_processor(call) for call in groups[key]]
        proc = procs[0] if len(procs) == 1 else {"type": "composing", "processors": procs}
        ops.append({"type": "window", "processor": proc})
    return ops


def _frame_json(call: WindowCall) -> dict[str, Any]:
    order = [{"column": c, "direction": "DESC" if d else "ASC"} for c, d, _ in call.order]
    if call.frame is None:
        if call.order:  # up to the current row's last peer
            return {
                "peerType": "RANGE",
                "lowUnbounded": True,
                "lowOffset": 0,
                "uppUnbounded": False,
                "uppOffset": 0,
                "orderBy": order,
            }
        kind, start, end = "ROWS", ("UNBOUNDED_PRECEDING", 0), ("UNBOUNDED_FOLLOWING", 0)
    else:
        kind, start, end = call.frame

    def offset(b: Bound) -> int:
        return -b[1] if b[0] == "PRECEDING" else b[1] if b[0] == "FOLLOWING" else 0

    return {
        "peerType": kind,
        "lowUnbounded": start[0] == "UNBOUNDED_PRECEDING",
        "lowOffset": offset(start),
        "uppUnbounded": end[0] == "UNBOUNDED_FOLLOWING",
        "uppOffset": offset(end),
        "orderBy": order if kind == "RANGE" else [],
    }


def _processor(call: WindowCall) -> dict[str, Any]:
    out = call.out
    group = [c for c, _, _ in call.order]
    f = call.func
    if f == "ROW_NUMBER":
        return {"type": "rowNumber", "outputColumn": out}
    if f in ("RANK", "PERCENT_RANK"):
        return {"type": "rank", "group": group, "outputColumn": out, "asPercent": f != "RANK"}
    if f == "DENSE_RANK":
        return {"type": "denseRank", "group": group, "outputColumn": out}
    if f == "CUME_DIST":
        return {"type": "cumeDist", "group": group, "outputColumn": out}
    if f == "NTILE":
        return {"type": "percentile", "outputColumn": out, "numBuckets": call.consts[0]}
    if f in ("LAG", "LEAD"):
        k = call.consts[0]
        return {
            "type": "offset",
            "inputColumn": call.args[0],
            "outputColumn": out,
            "offset": -k if f == "LAG" else k,
        }
    if f in ("FIRST_VALUE", "LAST_VALUE"):
        return {
            "type": "first" if f == "FIRST_VALUE" else "last",
            "inputColumn": call.args[0],
            "outputColumn": out,
            "frame": _frame_json(call),
        }
    return {"type": "framedAgg", "frame": _frame_json(call), "aggregations": [_aggregation(call)]}


def _aggregation(call: WindowCall) -> dict[str, Any]:
    if call.star:
        return {"type": "count", "name": call.out}
    col = call.args[0]
    if call.func == "COUNT":
        return {
            "type": "filtered",
            "aggregator": {"type": "count", "name": call.out},
            "filter": {"type": "not", "field": {"type": "null", "column": col}},
            "name": call.out,
        }
    if call.func == "AVG":
        return {"type": "doubleMean", "name": call.out, "fieldName": col}
    kind = call.meta.get("kind", "double")
    return {"type": f"{kind}{call.func.capitalize()}", "name": call.out, "fieldName": col}


def type_calls(calls: list[WindowCall], schema: pa.Schema) -> None:
    """Each aggregate call's native kind (long, float, double) from its argument's type."""
    for call in calls:
        if call.func not in ("SUM", "MIN", "MAX") or not call.args:
            continue
        typ = schema.field(call.args[0]).type
        if pa.types.is_integer(typ) or pa.types.is_timestamp(typ):
            call.meta["kind"] = "long"
        elif pa.types.is_float32(typ):
            call.meta["kind"] = "float"
        elif pa.types.is_floating(typ) or pa.types.is_null(typ):
            call.meta["kind"] = "double"
        elif pa.types.is_string(typ) and call.func != "SUM":
            call.meta["kind"] = "string"
        else:
            raise Unsupported(f"{call.func} OVER a [{typ}] column is not supported")


def compute(table: pa.Table, calls: list[WindowCall]) -> pa.Table:
    """``table`` with one column per window call, computed by the native window operators
    (``common.query.operators``) that ``to_operators`` plans for them."""
    type_calls(calls, table.schema)
    ops = parse_operators(to_operators(calls))
    try:
        out = run(table, ops)
    except QueryParseError as exc:  # a plan of ours the engine refuses: a bug, say so
        raise Unsupported(str(exc)) from None
    for call in calls:
        if call.func == "AVG" and pa.types.is_integer(table.schema.field(call.args[0]).type):
            # AVG of a BIGINT is a BIGINT in Druid SQL (truncated), as the AVG aggregate.
            i = out.column_names.index(call.out)
            values = [None if v is None else int(v) for v in out.column(i).to_pylist()]
            out = out.set_column(i, call.out, pa.array(values, pa.int64()))
    return out


def _last_sorted(calls: list[WindowCall]) -> WindowCall | None:
    """The window Druid's operators sort last: the one with the most sort keys (the last of
    those), so that the windows with fewer keys run first."""
    best: WindowCall | None = None
    for call in calls:
        size = len(call.partition) + len(call.order)
        if size and (best is None or size >= len(best.partition) + len(best.order)):
            best = call
    return best


_NATIVE_TYPES = {
    "ROW_NUMBER": "LONG",
    "RANK": "LONG",
    "DENSE_RANK": "LONG",
    "NTILE": "LONG",
    "COUNT": "LONG",
    "PERCENT_RANK": "DOUBLE",
    "CUME_DIST": "DOUBLE",
}


def native_query(
    inner: dict[str, Any],
    names: dict[str, str],
    types: dict[str, str],
    calls: list[WindowCall],
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The ``windowOperator`` query computing ``calls`` over the native query ``inner`` whose
    output column ``names[c]`` is the inner SELECT's column ``c`` (of native type
    ``types[names[c]]``); and its output signature."""
    for call in calls:
        if call.func in ("SUM", "MIN", "MAX") and call.args:
            kind = types.get(names[call.args[0]], "DOUBLE")
            call.meta["kind"] = {"LONG": "long", "FLOAT": "float", "STRING": "string"}.get(
                kind, "double"
            )
    renamed = [
        WindowCall(
            out=c.out,
            func=c.func,
            args=[names[a] for a in c.args],
            consts=c.consts,
            partition=[names[p] for p in c.partition],
            order=[(names[o], d, nf) for o, d, nf in c.order],
            frame=c.frame,
            star=c.star,
            meta=c.meta,
        )
        for c in calls
    ]
    signature = [{"name": n, "type": types.get(n, "STRING")} for n in dict.fromkeys(names.values())]
    for c in renamed:
        typ = _NATIVE_TYPES.get(c.func)
        if typ is None:
            typ = "DOUBLE" if c.func == "AVG" else types.get(c.args[0], "STRING")
        signature.append({"name": c.out, "type": typ})
    query = {
        "queryType": "windowOperator",
        "dataSource": {"type": "query", "query": inner},
        "intervals": {
            "type": "intervals",
            "intervals": ["-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"],
        },
        "outputSignature": signature,
        "operatorDefinition": to_operators(renamed),
        "leafOperators": [],
        "context": dict(inner.get("context") or {}),
    }
    return query, signature
