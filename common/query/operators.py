"""Druid's window operators (``org.apache.druid.query.operator``), run at the broker on Arrow.

One engine for both ways in: the native ``windowOperator`` query's ``operatorDefinition`` and
SQL window functions (``common/query/sql/window.py`` turns its calls into these operators).

Operators, applied in order to the rows of the query's datasource:

- ``naiveSort`` ``{"columns": [{"column", "direction": ASC|DESC}]}``: sorts all rows (nulls
  first ascending, last descending; ties keep the input's order);
- ``naivePartition`` ``{"partitionColumns": [...]}``: splits the rows into runs of equal keys
  (as Druid's, it assumes rows sorted on them; an unsorted input gives more partitions);
- ``window`` ``{"processor": {...}}``: adds the processor's column(s), partition by partition.

Processors: ``rowNumber``, ``rank`` (``group``, ``asPercent``), ``denseRank``, ``cumeDist``
(``group``), ``percentile`` (``numBuckets``: NTILE), ``offset`` (``inputColumn``, ``offset``:
negative is LAG, positive LEAD; null past the partition's edge), ``first``/``last``
(``inputColumn``, optional ``frame``: the whole partition without), ``framedAgg`` (``frame``,
``aggregations`` of ``longSum``/``doubleSum``/``floatSum``, ``longMin``/``doubleMin``/
``floatMin``, ``longMax``/``doubleMax``/``floatMax``, ``count``, ``doubleMean`` and ``filtered``
with a ``not`` ``null`` filter, as Druid plans ``COUNT(x)``) and ``composing``
(``processors``). Frames: ``{"peerType": ROWS|RANGE, "lowUnbounded", "lowOffset",
"uppUnbounded", "uppOffset", "orderBy": [...]}``; RANGE offsets count peer groups, as Druid's.
Other types are refused (``QueryParseError``, 400) naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any

import pyarrow as pa

from common.errors import QueryParseError

OPERATOR_TYPES = ("naivePartition", "naiveSort", "window")
PROCESSOR_TYPES = (
    "composing",
    "cumeDist",
    "denseRank",
    "first",
    "framedAgg",
    "last",
    "offset",
    "percentile",
    "rank",
    "rowNumber",
)
_AGG_TYPES = {
    "longSum": ("SUM", pa.int64()),
    "doubleSum": ("SUM", pa.float64()),
    "floatSum": ("SUM", pa.float32()),
    "longMin": ("MIN", pa.int64()),
    "doubleMin": ("MIN", pa.float64()),
    "floatMin": ("MIN", pa.float32()),
    "longMax": ("MAX", pa.int64()),
    "doubleMax": ("MAX", pa.float64()),
    "floatMax": ("MAX", pa.float32()),
    "stringMin": ("MIN", pa.string()),  # kdruid's, for SQL MIN/MAX OVER a VARCHAR
    "stringMax": ("MAX", pa.string()),
    "count": ("COUNT", pa.int64()),
    "doubleMean": ("AVG", pa.float64()),
}
Order = list[tuple[str, bool]]  # (column, descending)


@dataclass(frozen=True)
class Frame:
    rows: bool  # ROWS; else RANGE (offsets count peer groups)
    low_unbounded: bool
    low: int
    upp_unbounded: bool
    upp: int
    order: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "peerType": "ROWS" if self.rows else "RANGE",
            "lowUnbounded": self.low_unbounded,
            "lowOffset": self.low,
            "uppUnbounded": self.upp_unbounded,
            "uppOffset": self.upp,
            "orderBy": [{"column": c, "direction": "ASC"} for c in self.order],
        }


WHOLE = Frame(True, True, 0, True, 0)


@dataclass(frozen=True)
class Agg:
    name: str
    func: str  # SUM, MIN, MAX, COUNT, AVG
    type: pa.DataType
    field: str | None  # None: count of rows


@dataclass
class Proc:
    type: str
    out: list[str] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    as_percent: bool = False
    buckets: int = 0
    input: str = ""
    offset: int = 0
    frame: Frame = WHOLE
    aggs: list[Agg] = field(default_factory=list)
    parts: list[Proc] = field(default_factory=list)


@dataclass
class Op:
    type: str
    columns: list[str] = field(default_factory=list)
    order: Order = field(default_factory=list)
    processor: Proc | None = None


def _obj(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise QueryParseError(f"windowOperator query: {what} must be a JSON object")
    return v


def _strs(v: Any, what: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise QueryParseError(f"windowOperator query: {what} must be a list of column names")
    return list(v)


def _order(v: Any, what: str) -> Order:
    out: Order = []
    for c in v or []:
        c = _obj(c, what)
        col, direction = c.get("column"), str(c.get("direction", "ASC")).upper()
        if not isinstance(col, str) or direction not in ("ASC", "DESC"):
            raise QueryParseError(f"windowOperator query: bad {what} entry {c}")
        out.append((col, direction == "DESC"))
    return out


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise QueryParseError(f"windowOperator query: {what} must be an integer")
    return v


def parse_frame(v: Any) -> Frame:
    f = _obj(v, "frame")
    peer = str(f.get("peerType", "")).upper()
    if peer not in ("ROWS", "RANGE"):
        raise QueryParseError(
            f"windowOperator query: frame peerType [{f.get('peerType')}] is not supported; "
            "ROWS or RANGE"
        )
    return Frame(
        peer == "ROWS",
        bool(f.get("lowUnbounded")),
        _int(f.get("lowOffset", 0), "lowOffset"),
        bool(f.get("uppUnbounded")),
        _int(f.get("uppOffset", 0), "uppOffset"),
        tuple(c for c, _ in _order(f.get("orderBy"), "frame orderBy")),
    )


def _agg(v: Any) -> Agg:
    a = _obj(v, "aggregation")
    typ = a.get("type")
    if typ == "filtered":
        flt, inner = _obj(a.get("filter"), "filter"), _obj(a.get("aggregator"), "aggregator")
        field_ = _obj(flt.get("field"), "filter") if flt.get("type") == "not" else {}
        col = field_.get("column") if field_.get("type") == "null" else None
        if inner.get("type") != "count" or not isinstance(col, str):
            raise QueryParseError(
                "windowOperator query: a [filtered] window aggregation must be a [count] under "
                "a [not] [null] filter (COUNT of a column)"
            )
        return Agg(str(a.get("name") or inner.get("name")), "COUNT", pa.int64(), col)
    if typ not in _AGG_TYPES:
        raise QueryParseError(
            f"windowOperator query: window aggregation type [{typ}] is not supported; known: "
            f"{sorted([*_AGG_TYPES, 'filtered'])}"
        )
    func, out = _AGG_TYPES[str(typ)]
    name = a.get("name")
    col = a.get("fieldName")
    if not isinstance(name, str) or (func != "COUNT" and not isinstance(col, str)):
        raise QueryParseError(f"windowOperator query: [{typ}] needs name and fieldName")
    return Agg(name, func, out, None if func == "COUNT" else col)


def parse_processor(v: Any) -> Proc:
    p = _obj(v, "processor")
    typ = p.get("type")
    if typ not in PROCESSOR_TYPES:
        raise QueryParseError(
            f"windowOperator query: could not resolve processor type [{typ}]; known: "
            f"{list(PROCESSOR_TYPES)}"
        )
    proc = Proc(str(typ))
    if typ == "composing":
        proc.parts = [parse_processor(x) for x in p.get("processors") or []]
        proc.out = [o for x in proc.parts for o in x.out]
        return proc
    if typ == "framedAgg":
        proc.frame = parse_frame(p.get("frame"))
        proc.aggs = [_agg(a) for a in p.get("aggregations") or []]
        proc.out = [a.name for a in proc.aggs]
        return proc
    out = p.get("outputColumn")
    if not isinstance(out, str):
        raise QueryParseError(f"windowOperator query: processor [{typ}] needs outputColumn")
    proc.out = [out]
    if typ in ("rank", "denseRank", "cumeDist"):
        proc.group = _strs(p.get("group"), f"{typ} group")
        proc.as_percent = bool(p.get("asPercent"))
    elif typ == "percentile":
        proc.buckets = _int(p.get("numBuckets"), "numBuckets")
        if proc.buckets <= 0:
            raise QueryParseError(f"numBuckets[{proc.buckets}] must be greater than zero")
    elif typ in ("offset", "first", "last"):
        col = p.get("inputColumn")
        if not isinstance(col, str):
            raise QueryParseError(f"windowOperator query: processor [{typ}] needs inputColumn")
        proc.input = col
        if typ == "offset":
            proc.offset = _int(p.get("offset"), "offset")
        elif p.get("frame") is not None:
            proc.frame = parse_frame(p["frame"])
    return proc


def parse_operators(v: Any) -> list[Op]:
    if not isinstance(v, list):
        raise QueryParseError("windowOperator query: operatorDefinition must be a list")
    ops: list[Op] = []
    for o in v:
        o = _obj(o, "operator")
        typ = o.get("type")
        if typ == "naivePartition":
            ops.append(Op("naivePartition", _strs(o.get("partitionColumns"), "partitionColumns")))
        elif typ == "naiveSort":
            ops.append(Op("naiveSort", order=_order(o.get("columns"), "naiveSort columns")))
        elif typ == "window":
            ops.append(Op("window", processor=parse_processor(o.get("processor"))))
        else:
            raise QueryParseError(
                f"windowOperator query: could not resolve operator type [{typ}]; known: "
                f"{list(OPERATOR_TYPES)}"
            )
    return ops


def check_columns(ops: list[Op], columns: list[str]) -> None:
    """Every column an operator reads exists (the input's or an earlier processor's)."""
    have = set(columns)

    def need(col: str | None, who: str) -> None:
        if col is not None and col not in have:
            raise QueryParseError(f"windowOperator query: {who} reads unknown column [{col}]")

    def proc_cols(p: Proc) -> None:
        for c in p.group:
            need(c, p.type)
        if p.input:
            need(p.input, p.type)
        for c in p.frame.order:
            need(c, p.type)
        for a in p.aggs:
            need(a.field, p.type)
        for x in p.parts:
            proc_cols(x)
        have.update(p.out)

    for op in ops:
        for c in op.columns:
            need(c, op.type)
        for c, _ in op.order:
            need(c, op.type)
        if op.processor is not None:
            proc_cols(op.processor)


# --- execution ---------------------------------------------------------------------------------


def _null_cmp(x: Any, y: Any, desc: bool) -> int:
    if x is None or y is None:
        if x is None and y is None:
            return 0
        return (-1 if x is None else 1) * (-1 if desc else 1)
    if x == y:
        return 0
    c = -1 if x < y else 1
    return -c if desc else c


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def run(table: pa.Table, ops: list[Op]) -> pa.Table:
    """``table`` with the processors' columns added, in the order the operators leave it."""
    check_columns(ops, table.column_names)
    types: dict[str, pa.DataType] = {n: table.schema.field(n).type for n in table.column_names}
    # timestamps as epoch milliseconds (Druid's eternity start is no Python datetime)
    cols: dict[str, list[Any]] = {
        n: (
            table.column(n).cast(pa.int64()) if pa.types.is_timestamp(types[n]) else table.column(n)
        ).to_pylist()
        for n in table.column_names
    }
    n = table.num_rows
    perm = list(range(n))  # current row order, as indexes into the input
    parts: list[list[int]] = [perm]
    for op in ops:
        if op.type == "naiveSort":
            order = op.order

            def cmp(a: int, b: int, order: Order = order) -> int:
                for col, desc in order:
                    c = _null_cmp(cols[col][a], cols[col][b], desc)
                    if c:
                        return c
                return a - b  # ties: the input's order

            perm = sorted(perm, key=cmp_to_key(cmp))
            parts = [perm]
        elif op.type == "naivePartition":
            parts = []
            prev: tuple[Any, ...] | None = None
            for r in perm:
                key = tuple(_hashable(cols[c][r]) for c in op.columns)
                if not parts or key != prev:
                    parts.append([])
                    prev = key
                parts[-1].append(r)
        else:
            assert op.processor is not None
            _apply(op.processor, cols, types, parts, n)
    return pa.table({c: _array([cols[c][r] for r in perm], types[c]) for c in cols})


def _array(values: list[Any], typ: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(typ):
        return pa.array(values, pa.int64()).cast(typ)
    return pa.array(values, typ)


def _apply(
    p: Proc,
    cols: dict[str, list[Any]],
    types: dict[str, pa.DataType],
    parts: list[list[int]],
    n: int,
) -> None:
    if p.type == "composing":
        for x in p.parts:
            _apply(x, cols, types, parts, n)
        return
    outs = {o: [None] * n for o in p.out}
    for rows in parts:
        for name, values in _partition(p, cols, rows).items():
            out = outs[name]
            for r, v in zip(rows, values, strict=True):
                out[r] = v
    for name, values in outs.items():
        typ = _out_type(p, name, types)
        cols[name] = values
        types[name] = typ


def _out_type(p: Proc, name: str, types: dict[str, pa.DataType]) -> pa.DataType:
    if p.type in ("rowNumber", "denseRank", "percentile"):
        return pa.int64()
    if p.type in ("rank",):
        return pa.float64() if p.as_percent else pa.int64()
    if p.type == "cumeDist":
        return pa.float64()
    if p.type == "framedAgg":
        return next(a.type for a in p.aggs if a.name == name)
    src = types[p.input]
    return pa.string() if pa.types.is_null(src) else src


def _groups(
    cols: dict[str, list[Any]], rows: list[int], keys: list[str] | tuple[str, ...]
) -> list[int]:
    """The start of each peer group of ``rows`` (equal values in ``keys``), then ``len(rows)``."""
    bounds = [0]
    for i in range(1, len(rows)):
        a, b = rows[i - 1], rows[i]
        if any(_null_cmp(cols[k][a], cols[k][b], False) for k in keys):
            bounds.append(i)
    if rows:
        bounds.append(len(rows))
    return bounds


def _spans(bounds: list[int]) -> tuple[list[int], list[int], list[int]]:
    """Per row: its group's index, first row and end (exclusive)."""
    gi: list[int] = []
    first: list[int] = []
    last: list[int] = []
    for g in range(len(bounds) - 1):
        for _ in range(bounds[g], bounds[g + 1]):
            gi.append(g)
            first.append(bounds[g])
            last.append(bounds[g + 1])
    return gi, first, last


def frame_bounds(
    frame: Frame, cols: dict[str, list[Any]], rows: list[int]
) -> list[tuple[int, int]]:
    """[lo, hi) of each row's frame within its partition ``rows``."""
    m = len(rows)
    if frame.rows:

        def rows_at(i: int) -> tuple[int, int]:
            lo = 0 if frame.low_unbounded else min(max(i + frame.low, 0), m)
            hi = m if frame.upp_unbounded else min(max(i + frame.upp + 1, 0), m)
            return lo, max(lo, hi)

        return [rows_at(i) for i in range(m)]
    bounds = _groups(cols, rows, frame.order)
    groups = len(bounds) - 1
    gi, _, _ = _spans(bounds)
    out = []
    for i in range(m):
        g = gi[i]
        lo = 0 if frame.low_unbounded else bounds[min(max(g + frame.low, 0), groups)]
        hi = m if frame.upp_unbounded else bounds[min(max(g + frame.upp + 1, 0), groups)]
        out.append((lo, max(lo, hi)))
    return out


def _partition(p: Proc, cols: dict[str, list[Any]], rows: list[int]) -> dict[str, list[Any]]:
    m = len(rows)
    name = p.out[0] if p.out else ""
    if p.type == "rowNumber":
        return {name: list(range(1, m + 1))}
    if p.type == "percentile":  # NTILE: the first m % n buckets hold one row more
        size, extra = divmod(m, p.buckets)
        big = extra * (size + 1)
        return {
            name: [
                i // (size + 1) + 1 if i < big else extra + (i - big) // size + 1 for i in range(m)
            ]
        }
    if p.type in ("rank", "denseRank", "cumeDist"):
        gi, first, last = _spans(_groups(cols, rows, p.group))
        if p.type == "denseRank":
            return {name: [g + 1 for g in gi]}
        if p.type == "cumeDist":
            return {name: [last[i] / m for i in range(m)]}
        if p.as_percent:
            return {name: [0.0 if m == 1 else first[i] / (m - 1) for i in range(m)]}
        return {name: [first[i] + 1 for i in range(m)]}
    if p.type == "offset":
        src = cols[p.input]
        return {
            name: [src[rows[i + p.offset]] if 0 <= i + p.offset < m else None for i in range(m)]
        }
    bounds = frame_bounds(p.frame, cols, rows)
    if p.type in ("first", "last"):
        src = cols[p.input]
        return {
            name: [
                (src[rows[lo] if p.type == "first" else rows[hi - 1]] if lo < hi else None)
                for lo, hi in bounds
            ]
        }
    out: dict[str, list[Any]] = {}
    for a in p.aggs:
        values = [cols[a.field][r] for r in rows] if a.field is not None else [1] * m
        got = _aggregates(a.func, values, bounds)
        if a.func != "COUNT" and pa.types.is_integer(a.type):
            got = [None if v is None else int(v) for v in got]
        out[a.name] = got
    return out


def _aggregates(func: str, values: list[Any], bounds: list[tuple[int, int]]) -> list[Any]:
    """The aggregate over each row's frame: frames that all start at the partition's first row
    (or all end at its last) are accumulated in one pass; others are aggregated one by one."""
    m = len(values)
    out: list[Any] = [None] * m
    if all(lo == 0 for lo, _ in bounds) or all(hi == m for _, hi in bounds):
        forward = all(lo == 0 for lo, _ in bounds)
        acc = _Acc(func)
        done = 0
        for i in range(m) if forward else reversed(range(m)):
            lo, hi = bounds[i]
            want = hi if forward else m - lo
            while done < want:
                acc.add(values[done] if forward else values[m - 1 - done])
                done += 1
            out[i] = acc.value()
        return out
    for i, (lo, hi) in enumerate(bounds):
        acc = _Acc(func)
        for v in values[lo:hi]:
            acc.add(v)
        out[i] = acc.value()
    return out


class _Acc:
    def __init__(self, func: str) -> None:
        self.func = func
        self.n = 0
        self.total: Any = None
        self.best: Any = None

    def add(self, v: Any) -> None:
        if v is None:
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


def result_rows(table: pa.Table, ops: list[Op], signature: list[str] | None) -> dict[str, Any]:
    """The ``windowOperator`` query's answer over ``table`` (the datasource's rows): the output
    columns (``outputSignature``'s, else all) and the rows as arrays, ``__time`` and other
    timestamps as epoch milliseconds, as in Druid's window tests."""
    out = run(table, ops)
    names = signature if signature else out.column_names
    missing = [c for c in names if c not in out.column_names]
    if missing:
        raise QueryParseError(f"windowOperator query: outputSignature names unknown {missing}")
    cols = []
    for c in names:
        col = out.column(c)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        cols.append(col.to_pylist())
    return {"columns": list(names), "events": [list(r) for r in zip(*cols, strict=True)]}
