"""Vectorised evaluation of SQL scalar expressions over Arrow columns (pyarrow compute).

The planner pushes filters, grouping and aggregation into the native query; what is left (the
select list's expressions, HAVING, ORDER BY keys, constant folding of ``TIMESTAMP '...'`` and
``CURRENT_TIMESTAMP - INTERVAL ...``) is evaluated here, one Arrow kernel per node, never a
Python loop per row (``TIME_PARSE`` of non-ISO text aside). Timestamps are
``timestamp[ms, UTC]``; Druid's SQL-compatible null handling applies (null in, null out).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from common.errors import PlanValidationError
from common.expr import ExpressionError, parse_expression
from common.expr.lookups import MapLookup, current_lookups, extract, resolve
from common.segments.granularity import Granularity, parse_granularity
from common.segments.period import add_months_local

TS = pa.timestamp("ms", tz="UTC")
Value = Any  # a pa.Array / pa.ChunkedArray (one value per row) or a pa.Scalar

_UNIT_MS = {
    "SECOND": 1000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": 86_400_000,
    "WEEK": 7 * 86_400_000,
}
_FLOOR_UNITS = {
    "SECOND": "PT1S",
    "MINUTE": "PT1M",
    "HOUR": "PT1H",
    "DAY": "P1D",
    "WEEK": "P1W",
    "MONTH": "P1M",
    "QUARTER": "P3M",
    "YEAR": "P1Y",
}


#: DATE_TRUNC's units beyond FLOOR's (Druid's ``DateTruncOperatorConversion``).
_TRUNC_UNITS = {
    "MILLISECOND": "PT0.001S",
    "MILLISECONDS": "PT0.001S",
    "DECADE": "P10Y",
    "CENTURY": "P100Y",
    "MILLENNIUM": "P1000Y",
}


class Unsupported(PlanValidationError):
    """An expression this engine cannot evaluate; the message names it."""


class _NotHere(Exception):
    """This form of the function is evaluated by Druid's expression language instead."""


def sql_of(node: exp.Expression) -> str:
    return node.sql()


# ---- time floors: shared by the planner (granularity) and the evaluator


def time_floor_of(node: exp.Expression) -> tuple[exp.Expression, dict[str, Any]] | None:
    """``(argument, period granularity JSON)`` when ``node`` floors a timestamp, else None."""
    if isinstance(node, exp.Floor) and node.args.get("to") is not None:
        unit = node.args["to"].name.upper()
        return node.this, _period(_unit_period(unit), None, None)
    if isinstance(node, exp.DateTrunc | exp.TimestampTrunc):
        unit = node.args.get("unit")
        name = unit.name.upper() if unit is not None else ""
        period = _TRUNC_UNITS.get(name) or _unit_period(name)
        return node.this, _period(period, None, None)
    if isinstance(node, exp.Anonymous) and node.name.upper() == "TIME_FLOOR":
        args = node.expressions
        if not 2 <= len(args) <= 4:
            raise Unsupported("TIME_FLOOR takes (timestamp, period[, origin[, timezone]])")
        period = _const_str(args[1], "TIME_FLOOR period")
        origin = None
        if len(args) > 2 and not isinstance(args[2], exp.Null):
            origin = _iso(fold_timestamp(args[2]))
        tz = _const_str(args[3], "TIME_FLOOR timezone") if len(args) > 3 else None
        return args[0], _period(period, origin, tz)
    return None


def _unit_period(unit: str) -> str:
    if unit not in _FLOOR_UNITS:
        raise Unsupported(f"Unsupported time unit [{unit}]")
    return _FLOOR_UNITS[unit]


def _period(period: str, origin: str | None, tz: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "period", "period": period}
    if tz is not None:
        spec["timeZone"] = tz
    if origin is not None:
        spec["origin"] = origin
    try:
        parse_granularity(spec)
    except Exception as e:
        raise Unsupported(f"Bad time floor [{period}]: {e}") from e
    return spec


def _const_str(node: exp.Expression, what: str) -> str:
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    raise Unsupported(f"{what} must be a string literal, got [{node.sql()}]")


def _iso(millis: int) -> str:
    return iso_millis(millis)


def iso_millis(millis: int) -> str:
    dt = datetime.fromtimestamp(millis / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def parse_timestamp_text(text: str) -> int | None:
    """Druid's ISO-8601 reading of a timestamp literal, in epoch millis (None if unreadable)."""
    t = text.strip().replace(" ", "T", 1)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


# ---- constant folding


def fold_timestamp(node: exp.Expression, now_ms: int | None = None) -> int:
    """A constant timestamp expression in epoch millis, or ``Unsupported``."""
    v = evaluate(node, {}, 1, now_ms)
    if isinstance(v, pa.Scalar) and pa.types.is_timestamp(v.type) and v.is_valid:
        return int(v.cast(pa.int64()).as_py())
    raise Unsupported(f"Expected a constant timestamp, got [{node.sql()}]")


def lookup_args(args: list[exp.Expression]) -> tuple[str, str | None]:
    """``LOOKUP(expr, 'name'[, replaceMissingValueWith])``: (name, replacement), both
    literals as Druid requires."""
    if not 2 <= len(args) <= 3:
        raise Unsupported("LOOKUP takes (expr, lookupName[, replaceMissingValueWith])")
    name = args[1]
    if not (isinstance(name, exp.Literal) and name.is_string and name.this):
        raise Unsupported(f"LOOKUP's lookup name must be a string literal: [{name.sql()}]")
    replace: str | None = None
    if len(args) == 3 and not isinstance(args[2], exp.Null):
        r = args[2]
        if not isinstance(r, exp.Literal):
            raise Unsupported(f"LOOKUP's replaceMissingValueWith must be a literal: [{r.sql()}]")
        replace = str(r.this)
    return str(name.this), replace


def known_lookup(name: str) -> MapLookup:
    """The lookup as the planning broker has it; an unknown one is a 400 naming it."""
    provider = current_lookups()
    found = provider.lookup(name) if provider is not None else None
    if found is None:
        raise PlanValidationError(f"Lookup [{name}] not found")
    return found


def is_constant(node: exp.Expression) -> bool:
    return node.find(exp.Column) is None and not any(
        isinstance(n, exp.AggFunc) for n in node.walk()
    )


# ---- evaluation


def evaluate(
    node: exp.Expression,
    columns: Mapping[str, Value],
    n: int,
    now_ms: int | None = None,
    tz: str = "UTC",
) -> Value:
    """Evaluate ``node`` over ``columns`` (name -> Arrow array of ``n`` rows)."""
    return _Eval(columns, n, now_ms, tz).ev(node)


# The nodes being translated for ``_Eval.via_druid``: a constant sub-expression the translator
# folds by evaluating it must not come back to the same fallback (it is translated instead).
_TRANSLATING: ContextVar[frozenset[int]] = ContextVar("_TRANSLATING", default=frozenset())


def _native_type(v: Value) -> str:
    t = v.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return "LONG"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or t == pa.null():
        return "STRING"
    if pa.types.is_list(t) and pa.types.is_string(t.value_type):
        return "STRING"  # a multi-value string
    raise Unsupported(f"A column of type [{t}] cannot be used in an expression here")


def _native_column(v: Value, n: int) -> pa.Array | pa.ChunkedArray:
    a = to_array(v, n)
    t = a.type
    if pa.types.is_dictionary(t):
        a = a.cast(t.value_type)
    elif pa.types.is_timestamp(t) or pa.types.is_boolean(t):
        a = a.cast(pa.int64())
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        a = a.cast(pa.float64())
    elif t == pa.null():
        a = a.cast(pa.string())
    return a


def _sql_value(out: Any, sql_type: str) -> Value:
    """A Druid expression result as the SQL layer holds a value of ``sql_type``."""
    if pa.types.is_list(out.type):
        return out
    if sql_type == "TIMESTAMP":
        return out.cast(pa.int64()).cast(TS)
    if sql_type == "BOOLEAN":
        return pc.not_equal(out.cast(pa.float64()), 0.0)
    target = {"LONG": pa.int64(), "DOUBLE": pa.float64()}.get(sql_type, pa.string())
    return out if out.type == target else out.cast(target)


def to_array(v: Value, n: int) -> pa.Array | pa.ChunkedArray:
    if isinstance(v, pa.Scalar):
        if v.type == pa.null():
            return pa.nulls(n, pa.string())
        return pa.repeat(v, n)
    return v


class _Eval:
    def __init__(
        self, columns: Mapping[str, Value], n: int, now_ms: int | None, tz: str = "UTC"
    ) -> None:
        self.columns = columns
        self.n = n
        self.now_ms = now_ms
        self.tz = tz

    def ev(self, node: exp.Expression) -> Value:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        floor = time_floor_of(node)
        if floor is not None:
            arg, spec = floor
            g: Granularity = parse_granularity(spec)
            return g.bucket_starts(to_array(self._ts(self.ev(arg)), self.n))
        if isinstance(node, exp.Anonymous):
            fn = _ANON.get(node.name.upper())
            if fn is not None:
                try:
                    return fn(self, node.expressions)
                except _NotHere:
                    pass
        from common.query.sql import arrays  # imports this module

        if arrays.is_array_node(node):
            return arrays.evaluate_at_broker(node, self.columns, self.n, self.now_ms)
        return self.via_druid(node)

    def via_druid(self, node: exp.Expression) -> Value:
        """Evaluate ``node`` the way a data node would: translated to Druid's expression
        language (``druidexpr``) and run by ``common.expr``, one definition of each function for
        the native query and for what the broker computes."""
        # druidexpr imports this module for constant folding: import it when first needed.
        from common.query.sql.druidexpr import Translator

        active = _TRANSLATING.get()
        if id(node) in active:
            raise Unsupported(f"Unsupported expression [{node.sql()}]")
        types = {name: _native_type(v) for name, v in self.columns.items()}
        token = _TRANSLATING.set(active | {id(node)})
        try:
            text, sql_type = Translator(types, self.now_ms, self.tz).translate(node)
        finally:
            _TRANSLATING.reset(token)
        try:
            expr = parse_expression(text)
        except ExpressionError as exc:
            raise Unsupported(f"Unsupported expression [{node.sql()}]: {exc}") from exc
        cols = {
            c: _native_column(self.columns[c], self.n) for c in expr.columns if c in self.columns
        }
        table = pa.table(cols) if cols else pa.table({"_": pa.nulls(self.n, pa.int64())})
        out = expr.evaluate_table(table)
        if isinstance(out, pa.Scalar):
            out = pa.repeat(out, self.n)
        value = _sql_value(out, sql_type)
        return value[0] if not cols else value

    def _ts(self, v: Value) -> Value:
        if pa.types.is_timestamp(v.type):
            return v.cast(TS)
        if pa.types.is_string(v.type):
            return _parse_ts(v)
        raise Unsupported(f"Expected a timestamp, got type [{v.type}]")

    # leaves
    def column(self, node: exp.Expression) -> Value:
        name = node.name
        if name not in self.columns:
            raise Unsupported(f"Column [{name}] is not available here")
        return self.columns[name]

    def literal(self, node: exp.Expression) -> Value:
        assert isinstance(node, exp.Literal)
        if node.is_string:
            return pa.scalar(str(node.this), pa.string())
        text = str(node.this)
        if re.fullmatch(r"-?\d+", text):
            return pa.scalar(int(text), pa.int64())
        return pa.scalar(float(text), pa.float64())

    def binary(self, node: exp.Expression) -> Value:
        op = _BINARY[type(node)]
        if isinstance(node, exp.Add | exp.Sub) and _is_interval(node.expression):
            a = self.ev(node.this)
            if not pa.types.is_timestamp(a.type):
                raise Unsupported(f"Interval arithmetic needs a timestamp: [{node.sql()}]")
            months = _interval_months(node.expression)
            if months is not None:
                sign = 1 if isinstance(node, exp.Add) else -1
                return _add_months(a, sign * months)
            ms = self.ev(node.expression).cast(pa.int64())
            out = op(a.cast(pa.int64()), ms)
            return out.cast(TS)
        a, b = _coerce_pair(self.ev(node.this), self.ev(node.expression))
        if isinstance(node, exp.Div):
            return _divide(a, b)
        if isinstance(node, exp.Mod):
            return _mod(a, b)
        return op(a, b)

    def interval(self, node: exp.Expression) -> Value:
        unit = _interval_unit(node)
        if unit in _MONTH_UNITS:
            # A calendar interval has no fixed length: it only means something added to a
            # timestamp (``binary``), where calendar months are added.
            raise Unsupported(f"INTERVAL of unit [{unit}] outside timestamp +/- is not supported")
        if unit not in _UNIT_MS:
            raise Unsupported(
                f"Unsupported INTERVAL unit [{unit}] (use SECOND, MINUTE, HOUR, DAY, WEEK, "
                "MONTH, QUARTER or YEAR)"
            )
        this = node.this
        amount = float(this.this) if isinstance(this, exp.Literal) else None
        if amount is None:
            raise Unsupported(f"INTERVAL needs a literal amount: [{node.sql()}]")
        return pa.scalar(int(amount * _UNIT_MS[unit]), pa.int64())

    def compare(self, node: exp.Expression) -> Value:
        a, b = _coerce_pair(self.ev(node.this), self.ev(node.expression))
        return _COMPARE[type(node)](a, b)

    def logic(self, node: exp.Expression) -> Value:
        a, b = self._bool(node.this), self._bool(node.expression)
        return pc.and_kleene(a, b) if isinstance(node, exp.And) else pc.or_kleene(a, b)

    def _bool(self, node: exp.Expression) -> Value:
        v = self.ev(node)
        if v.type == pa.null():
            return pa.scalar(None, pa.bool_())
        if not pa.types.is_boolean(v.type):
            return pc.not_equal(v.cast(pa.float64()), 0.0)
        return v

    def not_(self, node: exp.Expression) -> Value:
        return pc.invert(self._bool(node.this))

    def paren(self, node: exp.Expression) -> Value:
        return self.ev(node.this)

    def neg(self, node: exp.Expression) -> Value:
        return pc.negate(self.ev(node.this))

    def null(self, node: exp.Expression) -> Value:
        return pa.scalar(None, pa.null())

    def boolean(self, node: exp.Expression) -> Value:
        return pa.scalar(bool(node.this), pa.bool_())

    def is_(self, node: exp.Expression) -> Value:
        if not isinstance(node.expression, exp.Null):
            return self.via_druid(node)  # IS [NOT] TRUE / FALSE
        v = self.ev(node.this)
        return pc.is_null(v) if not isinstance(v, pa.Scalar) else pa.scalar(not v.is_valid)

    def in_(self, node: exp.Expression) -> Value:
        v = self.ev(node.this)
        items = [self.ev(e) for e in node.expressions]
        if not all(isinstance(i, pa.Scalar) for i in items):
            raise Unsupported(f"IN needs constant values: [{node.sql()}]")
        values = [i.as_py() for i in items]
        wanted = [x for x in values if x is not None]
        arr = pa.array(wanted, v.type) if wanted else pa.array([], v.type)
        hit = pc.is_in(to_array(v, self.n), value_set=arr)
        # SQL: x IN (...) is unknown when x is null, or when no match and a null is listed.
        hit = pc.if_else(pc.is_null(to_array(v, self.n)), pa.scalar(None, pa.bool_()), hit)
        if len(wanted) != len(values):
            hit = pc.if_else(hit, True, pa.scalar(None, pa.bool_()))
        return hit

    def between(self, node: exp.Expression) -> Value:
        v = self.ev(node.this)
        lo = _coerce_pair(v, self.ev(node.args["low"]))
        hi = _coerce_pair(v, self.ev(node.args["high"]))
        return pc.and_kleene(pc.greater_equal(*lo), pc.less_equal(*hi))

    def like(self, node: exp.Expression) -> Value:
        v = self.ev(node.this)
        pat = node.expression
        if not (isinstance(pat, exp.Literal) and pat.is_string):
            raise Unsupported(f"LIKE needs a literal pattern: [{node.sql()}]")
        return pc.match_like(v, str(pat.this))

    def case(self, node: exp.Expression) -> Value:
        subject = node.this
        conds, vals = [], []
        for branch in node.args.get("ifs") or []:
            cond = branch.this
            if subject is not None:
                cond = exp.EQ(this=subject, expression=cond)
            c = to_array(self._bool(cond), self.n)
            conds.append(pc.fill_null(c, False))
            vals.append(self.ev(branch.args["true"]))
        default = node.args.get("default")
        dv = self.ev(default) if default is not None else pa.scalar(None, pa.null())
        typ = _common_type([*vals, dv])
        arrays = [to_array(_cast(x, typ), self.n) for x in [*vals, dv]]
        if not conds:
            return arrays[-1]
        names = [f"c{i}" for i in range(len(conds))]
        cond_struct = pa.StructArray.from_arrays(
            [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in conds], names
        )
        return pc.case_when(cond_struct, *arrays)

    def cast(self, node: exp.Expression) -> Value:
        to = node.args["to"]
        return cast_sql(self.ev(node.this), to.this.value if hasattr(to.this, "value") else "")

    def coalesce(self, node: exp.Expression) -> Value:
        args = [self.ev(node.this), *[self.ev(e) for e in node.expressions]]
        typ = _common_type(args)
        return pc.coalesce(*[_cast(a, typ) for a in args])

    def lower(self, node: exp.Expression) -> Value:
        return pc.utf8_lower(self._str(node.this))

    def upper(self, node: exp.Expression) -> Value:
        return pc.utf8_upper(self._str(node.this))

    def _str(self, node: exp.Expression) -> Value:
        return cast_sql(self.ev(node), "VARCHAR")

    def lookup(self, args: list[exp.Expression]) -> Value:
        name, replace = lookup_args(args)
        values = self._str(args[0])
        if isinstance(values, pa.Scalar) and self.n != 1:
            values = to_array(values, self.n)
        return extract(resolve(name), values, replace)

    def concat(self, node: exp.Expression) -> Value:
        parts = (
            [node.this, node.expression] if isinstance(node, exp.DPipe) else list(node.expressions)
        )
        vals = [self._str(p) for p in parts]
        if all(isinstance(v, pa.Scalar) for v in vals):
            if any(not v.is_valid for v in vals):
                return pa.scalar(None, pa.string())
            return pa.scalar("".join(v.as_py() for v in vals), pa.string())
        return pc.binary_join_element_wise(*[to_array(v, self.n) for v in vals], "")

    def substring(self, node: exp.Expression) -> Value:
        v = self._str(node.this)
        start = self.ev(node.args["start"])
        length = node.args.get("length")
        if not isinstance(start, pa.Scalar):
            raise Unsupported("SUBSTRING needs constant positions")
        begin = max(int(start.as_py()) - 1, 0)
        if length is None:
            return pc.utf8_slice_codeunits(v, begin)
        ln = self.ev(length)
        if not isinstance(ln, pa.Scalar):
            raise Unsupported("SUBSTRING needs constant positions")
        return pc.utf8_slice_codeunits(v, begin, begin + int(ln.as_py()))

    def length(self, node: exp.Expression) -> Value:
        return pc.utf8_length(self._str(node.this)).cast(pa.int64())

    def abs_(self, node: exp.Expression) -> Value:
        return pc.abs(self.ev(node.this))

    def current_timestamp(self, node: exp.Expression) -> Value:
        if self.now_ms is None:
            raise Unsupported("CURRENT_TIMESTAMP is not available here")
        return pa.scalar(self.now_ms, pa.int64()).cast(TS)

    def plain_floor(self, node: exp.Expression) -> Value:
        return pc.floor(self.ev(node.this))

    def date_lit(self, node: exp.Expression) -> Value:
        return _parse_ts(pa.scalar(str(node.this), pa.string()))

    # Druid's own functions (sqlglot parses them as anonymous calls)
    def time_format(self, args: list[exp.Expression]) -> Value:
        if not 1 <= len(args) <= 3:
            raise Unsupported("TIME_FORMAT takes (timestamp[, pattern[, timezone]])")
        ts = self._ts(self.ev(args[0]))
        pattern = _const_str(args[1], "TIME_FORMAT pattern") if len(args) > 1 else None
        tz = _const_str(args[2], "TIME_FORMAT timezone") if len(args) > 2 else None
        try:
            return format_time(ts, pattern, tz)
        except Unsupported:
            raise _NotHere from None  # a zone or pattern letter only Druid's expressions have

    def time_parse(self, args: list[exp.Expression]) -> Value:
        if len(args) != 1:
            raise _NotHere  # a pattern or a zone: Druid's timestamp_parse
        return _parse_ts(self._str(args[0]))

    def millis_to_ts(self, args: list[exp.Expression]) -> Value:
        if len(args) != 1:
            raise Unsupported("MILLIS_TO_TIMESTAMP takes one argument")
        return self.ev(args[0]).cast(pa.int64()).cast(TS)

    def ts_to_millis(self, args: list[exp.Expression]) -> Value:
        if len(args) != 1:
            raise Unsupported("TIMESTAMP_TO_MILLIS takes one argument")
        return self._ts(self.ev(args[0])).cast(pa.int64())


def _is_interval(node: exp.Expression) -> bool:
    return isinstance(node, exp.Interval)


_MONTH_UNITS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}


def _interval_unit(node: exp.Expression) -> str:
    unit = str(node.args["unit"].name).upper() if node.args.get("unit") else ""
    if unit.endswith("S") and (unit[:-1] in _UNIT_MS or unit[:-1] in _MONTH_UNITS):
        unit = unit[:-1]
    return unit


def _interval_months(node: exp.Expression) -> int | None:
    """Months in ``INTERVAL 'n' MONTH|QUARTER|YEAR`` (None for fixed-length units)."""
    unit = _interval_unit(node)
    if unit not in _MONTH_UNITS:
        return None
    this = node.this
    text = str(this.this) if isinstance(this, exp.Literal) else ""
    if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
        raise Unsupported(f"INTERVAL needs a whole literal amount: [{node.sql()}]")
    return int(text) * _MONTH_UNITS[unit]


def _add_months(ts: Value, months: int) -> Value:
    """Calendar months added in UTC, the day clamped to the month's end (Joda's plusMonths)."""
    if isinstance(ts, pa.Scalar):
        if not ts.is_valid:
            return ts
        return pa.scalar(
            add_months_local(int(ts.cast(pa.int64()).as_py()), months), pa.int64()
        ).cast(TS)
    arr = ts.combine_chunks() if isinstance(ts, pa.ChunkedArray) else ts
    millis = arr.cast(pa.int64()).to_pylist()
    out = [None if m is None else add_months_local(m, months) for m in millis]
    return pa.array(out, pa.int64()).cast(TS)


def _divide(a: Value, b: Value) -> Value:
    if pa.types.is_integer(a.type) and pa.types.is_integer(b.type):
        # Java long division truncates toward zero; x / 0 is null in SQL-compatible mode.
        zero = pc.equal(b, 0)
        safe_b = pc.if_else(zero, 1, b)
        q = pc.divide(a.cast(pa.float64()), safe_b.cast(pa.float64()))
        q = pc.trunc(q).cast(pa.int64())
        return pc.if_else(zero, pa.scalar(None, pa.int64()), q)
    return pc.divide(a.cast(pa.float64()), b.cast(pa.float64()))


def _mod(a: Value, b: Value) -> Value:
    if pa.types.is_integer(a.type) and pa.types.is_integer(b.type):
        zero = pc.equal(b, 0)
        safe_b = pc.if_else(zero, 1, b)
        q = pc.trunc(pc.divide(a.cast(pa.float64()), safe_b.cast(pa.float64()))).cast(pa.int64())
        r = pc.subtract(a, pc.multiply(q, safe_b))
        return pc.if_else(zero, pa.scalar(None, pa.int64()), r)
    raise Unsupported("MOD of non-integers is not supported")


def _common_type(vals: list[Value]) -> pa.DataType:
    types = [v.type for v in vals if v.type != pa.null()]
    if not types:
        return pa.string()
    if all(t == types[0] for t in types):
        return types[0]
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
        return pa.float64()
    return pa.string()


def _cast(v: Value, typ: pa.DataType) -> Value:
    if v.type == typ:
        return v
    if typ == pa.string():
        return cast_sql(v, "VARCHAR")
    return v.cast(typ)


def _coerce_pair(a: Value, b: Value) -> tuple[Value, Value]:
    ta, tb = a.type, b.type
    if ta == tb:
        return a, b
    if ta == pa.null():
        return pa.scalar(None, tb), b
    if tb == pa.null():
        return a, pa.scalar(None, ta)
    if pa.types.is_timestamp(ta) and pa.types.is_string(tb):
        return a, _parse_ts(b)
    if pa.types.is_string(ta) and pa.types.is_timestamp(tb):
        return _parse_ts(a), b
    if pa.types.is_timestamp(ta) and pa.types.is_timestamp(tb):
        return a.cast(TS), b.cast(TS)
    num = (pa.types.is_integer, pa.types.is_floating)
    if any(f(ta) for f in num) and any(f(tb) for f in num):
        return a.cast(pa.float64()), b.cast(pa.float64())
    if pa.types.is_string(ta) and any(f(tb) for f in num):
        return cast_sql(a, "DOUBLE"), b.cast(pa.float64())
    if any(f(ta) for f in num) and pa.types.is_string(tb):
        return a.cast(pa.float64()), cast_sql(b, "DOUBLE")
    raise Unsupported(f"Cannot compare [{ta}] with [{tb}]")


def _parse_ts(v: Value) -> Value:
    if isinstance(v, pa.Scalar):
        if not v.is_valid:
            return pa.scalar(None, TS)
        ms = parse_timestamp_text(str(v.as_py()))
        return pa.scalar(ms, pa.int64()).cast(TS)
    arr = v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v
    out = [None if s is None else parse_timestamp_text(s) for s in arr.to_pylist()]
    return pa.array(out, pa.int64()).cast(TS)


def cast_sql(v: Value, type_name: str) -> Value:
    """``CAST(v AS type)`` with Druid's meaning: bad numbers become null, doubles truncate."""
    t = type_name.upper()
    src = v.type
    if t in ("VARCHAR", "CHAR", "TEXT", "STRING"):
        if pa.types.is_string(src):
            return v
        if pa.types.is_timestamp(src):
            return format_time(v.cast(TS), "yyyy-MM-dd HH:mm:ss", None)
        if pa.types.is_floating(src):
            return _java_double_strings(v)
        return v.cast(pa.string())
    if t in ("BIGINT", "INT", "INTEGER", "SMALLINT", "TINYINT"):
        if pa.types.is_timestamp(src):
            return v.cast(TS).cast(pa.int64())
        if pa.types.is_string(src):
            return pc.trunc(_str_to_double(v)).cast(pa.int64())
        if pa.types.is_floating(src):
            return pc.trunc(v).cast(pa.int64())
        return v.cast(pa.int64())
    if t in ("DOUBLE", "FLOAT", "REAL", "DECIMAL"):
        if pa.types.is_string(src):
            return _str_to_double(v)
        if pa.types.is_timestamp(src):
            return v.cast(TS).cast(pa.int64()).cast(pa.float64())
        return v.cast(pa.float64())
    if t in ("TIMESTAMP", "DATETIME", "DATE"):
        if pa.types.is_string(src):
            out = _parse_ts(v)
        elif pa.types.is_integer(src):
            out = v.cast(pa.int64()).cast(TS)
        elif pa.types.is_timestamp(src):
            out = v.cast(TS)
        else:
            raise Unsupported(f"Cannot CAST [{src}] AS {t}")
        if t == "DATE":
            out = (
                parse_granularity("day").bucket_starts(out)
                if not isinstance(out, pa.Scalar)
                else out
            )
        return out
    if t == "BOOLEAN":
        return pc.not_equal(v.cast(pa.float64()), 0.0)
    raise Unsupported(f"Unsupported CAST target type [{type_name}]")


def _str_to_double(v: Value) -> Value:
    if isinstance(v, pa.Scalar):
        try:
            return (
                pa.scalar(float(v.as_py()), pa.float64())
                if v.is_valid
                else pa.scalar(None, pa.float64())
            )
        except ValueError:
            return pa.scalar(None, pa.float64())
    ok = pc.match_substring_regex(v, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
    cleaned = pc.if_else(ok, pc.utf8_trim_whitespace(v), pa.scalar(None, pa.string()))
    return cleaned.cast(pa.float64())


def java_double(x: float) -> str:
    """Java's ``Double.toString``: how Druid (Jackson) prints a double."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if str(x).startswith("-") else "0.0"
    ax = abs(x)
    if 1e-3 <= ax < 1e7:
        r = repr(x)
        if "e" in r or "E" in r:
            r = f"{x:f}".rstrip("0")
        return r if "." in r else r + ".0"
    digits = repr(x)
    # shortest round-trip digits, re-laid out as d.dddE±n
    m = re.match(r"(-?)(\d+)\.?(\d*)(?:e([-+]?\d+))?$", digits)
    assert m is not None
    sign, ip, fp, ex = m.group(1), m.group(2), m.group(3), int(m.group(4) or 0)
    allds = (ip + fp).lstrip("0")
    lead_zeros = len(ip + fp) - len((ip + fp).lstrip("0"))
    e10 = len(ip) - 1 + ex - lead_zeros
    allds = allds.rstrip("0") or "0"
    frac = allds[1:] or "0"
    return f"{sign}{allds[0]}.{frac}E{e10}"


def _java_double_strings(v: Value) -> Value:
    if isinstance(v, pa.Scalar):
        return pa.scalar(None if not v.is_valid else java_double(v.as_py()), pa.string())
    return pa.array([None if x is None else java_double(x) for x in v.to_pylist()], pa.string())


# ---- TIME_FORMAT with Joda patterns

_JODA = re.compile(r"'[^']*'|yyyy|yy|MM|dd|HH|mm|ss|SSS|ZZ|Z|EEE|[A-Za-z]+|[^A-Za-z']+")
_JODA_STRF = {
    "yyyy": "%Y",
    "yy": "%y",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "mm": "%M",
    "EEE": "%a",
}


def format_time(ts: Value, pattern: str | None, tz: str | None) -> Value:
    """Druid's ``TIME_FORMAT``: Joda pattern (default ISO-8601 with millis) in a time zone."""
    if tz is not None and tz.upper() not in ("UTC", "Z", "ETC/UTC"):
        raise Unsupported(f"TIME_FORMAT in time zone [{tz}] is not supported (UTC only)")
    if pattern is None:
        pattern = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
    parts: list[Value] = []
    for tok in _JODA.findall(pattern):
        if tok.startswith("'"):
            parts.append(pa.scalar(tok[1:-1] or "'", pa.string()))
        elif tok in _JODA_STRF:
            parts.append(pc.strftime(ts, format=_JODA_STRF[tok]))
        elif tok == "ss":
            parts.append(pc.utf8_slice_codeunits(pc.strftime(ts, format="%S"), 0, 2))
        elif tok == "SSS":
            parts.append(pc.utf8_lpad(pc.cast(pc.millisecond(ts), pa.string()), 3, "0"))
        elif tok in ("Z", "ZZ"):
            parts.append(pa.scalar("Z" if tok == "ZZ" else "+0000", pa.string()))
        elif tok[0].isalpha():
            raise Unsupported(f"Unsupported TIME_FORMAT pattern letter [{tok}]")
        else:
            parts.append(pa.scalar(tok, pa.string()))
    if isinstance(ts, pa.Scalar):
        arrs = [to_array(p, 1) if isinstance(p, pa.Scalar) else p for p in parts]
        if not ts.is_valid:
            return pa.scalar(None, pa.string())
        return pc.binary_join_element_wise(*[to_array(a, 1) for a in arrs], "")[0]
    n = len(ts)
    return pc.binary_join_element_wise(*[to_array(p, n) for p in parts], "")


_BINARY: dict[type, Callable[[Value, Value], Value]] = {
    exp.Add: pc.add,
    exp.Sub: pc.subtract,
    exp.Mul: pc.multiply,
    exp.Div: pc.divide,
    exp.Mod: pc.divide,
}
_COMPARE: dict[type, Callable[[Value, Value], Value]] = {
    exp.EQ: pc.equal,
    exp.NEQ: pc.not_equal,
    exp.GT: pc.greater,
    exp.GTE: pc.greater_equal,
    exp.LT: pc.less,
    exp.LTE: pc.less_equal,
}
_HANDLERS: dict[type, Callable[[_Eval, Any], Value]] = {
    exp.Column: _Eval.column,
    exp.Literal: _Eval.literal,
    exp.Null: _Eval.null,
    exp.Boolean: _Eval.boolean,
    exp.Paren: _Eval.paren,
    exp.Neg: _Eval.neg,
    exp.Not: _Eval.not_,
    exp.And: _Eval.logic,
    exp.Or: _Eval.logic,
    exp.Is: _Eval.is_,
    exp.In: _Eval.in_,
    exp.Between: _Eval.between,
    exp.Like: _Eval.like,
    exp.Case: _Eval.case,
    exp.Cast: _Eval.cast,
    exp.TryCast: _Eval.cast,
    exp.Coalesce: _Eval.coalesce,
    exp.Lower: _Eval.lower,
    exp.Upper: _Eval.upper,
    exp.Concat: _Eval.concat,
    exp.DPipe: _Eval.concat,
    exp.Substring: _Eval.substring,
    exp.Length: _Eval.length,
    exp.Abs: _Eval.abs_,
    exp.CurrentTimestamp: _Eval.current_timestamp,
    exp.Interval: _Eval.interval,
    **dict.fromkeys(_BINARY, _Eval.binary),
    **dict.fromkeys(_COMPARE, _Eval.compare),
}
_ANON: dict[str, Callable[[_Eval, list[exp.Expression]], Value]] = {
    "TIME_FORMAT": _Eval.time_format,
    "TIME_PARSE": _Eval.time_parse,
    "MILLIS_TO_TIMESTAMP": _Eval.millis_to_ts,
    "TIMESTAMP_TO_MILLIS": _Eval.ts_to_millis,
    "LOOKUP": _Eval.lookup,
}
