"""SQL expressions -> Druid native expressions and ``expression`` virtual columns (pure).

As Druid's SQL planner (its ``sql/calcite/expression`` operator conversions), an SQL expression
that a native query needs as a dimension, an aggregator input or a filter operand becomes a
virtual column named ``v0``, ``v1``... whose ``outputType`` is the expression's SQL type; a
condition no native filter can express becomes an ``expression`` filter. The result type is
tracked as LONG, DOUBLE, STRING, TIMESTAMP (millis, a LONG natively) or BOOLEAN (a LONG 1/0).
What has no translation is refused with a 400 naming it, never approximated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
from sqlglot import exp

from common.query.sql import arrays
from common.query.sql import druidexpr_time as dt
from common.query.sql.druidexpr_fns import ANON_FNS, NODE_FNS
from common.query.sql.druidexpr_time import quote_ident, quote_string
from common.query.sql.functions import (
    Unsupported,
    evaluate,
    fold_timestamp,
    is_constant,
    known_lookup,
    lookup_args,
)

TIME = "__time"
_NUMERIC = ("LONG", "DOUBLE")
_OPS: dict[type[exp.Expression], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
    exp.EQ: "==",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}
_MATH1 = {
    exp.Abs: "abs",
    exp.Sqrt: "sqrt",
    exp.Exp: "exp",
    exp.Ln: "log",
}
_STR1 = {exp.Upper: "upper", exp.Lower: "lower", exp.Length: "strlen"}


def native_output_type(t: str) -> str:
    """The virtual column ``outputType`` of an SQL expression type."""
    return {"TIMESTAMP": "LONG", "BOOLEAN": "LONG"}.get(t, t)


class Translator:
    """Translates sqlglot expressions over ``types`` (column -> native type)."""

    def __init__(self, types: dict[str, str], now_ms: int | None, tz: str) -> None:
        self.types = types
        self.now_ms = now_ms
        self.tz = tz

    def translate(self, node: exp.Expression) -> tuple[str, str]:
        """(Druid expression text, SQL type)."""
        if isinstance(node, exp.Paren):
            return self.translate(node.this)
        if isinstance(node, exp.Column):
            return self._column(node)
        if isinstance(node, exp.Array):
            return arrays.translate_array(self, node)
        call = arrays.call_of(node)
        if call is not None:
            return arrays.translate_call(self, *call)
        if is_constant(node):
            try:
                return self._constant(node)
            except Unsupported:
                if isinstance(node, exp.Literal | exp.Null | exp.Boolean):
                    raise
                # not foldable here (a function only Druid's expressions have): translate it
        if type(node) in _OPS:
            return self._binary(node)
        if isinstance(node, exp.DPipe):
            return self._call("concat", [node.this, node.expression], "STRING")
        if isinstance(node, exp.And | exp.Or):
            op = "&&" if isinstance(node, exp.And) else "||"
            a, b = self._bool(node.this), self._bool(node.expression)
            return f"({a} {op} {b})", "BOOLEAN"
        if isinstance(node, exp.Not):
            if isinstance(node.this, exp.Is) and isinstance(node.this.expression, exp.Null):
                return f"notnull({self.translate(node.this.this)[0]})", "BOOLEAN"
            return f"!{self._bool(node.this)}", "BOOLEAN"
        if isinstance(node, exp.Neg):
            text, t = self.translate(node.this)
            self._need(t in _NUMERIC, node, "a number")
            return f"-{text}", t
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            return f"isnull({self.translate(node.this)[0]})", "BOOLEAN"
        for cls, name in _MATH1.items():
            if isinstance(node, cls):
                text, t = self.translate(node.this)
                self._need(t in _NUMERIC, node, "a number")
                return f"{name}({text})", t if cls is exp.Abs else "DOUBLE"
        for cls, name in _STR1.items():
            if isinstance(node, cls):
                text, _ = self.translate(node.this)
                return f"{name}({text})", "LONG" if cls is exp.Length else "STRING"
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        if isinstance(node, exp.Anonymous):
            fn = _ANON.get(node.name.upper())
            if fn is not None:
                return fn(self, node.expressions)
            raise Unsupported(f"Function [{node.name.upper()}] is not supported")
        raise Unsupported(f"Expression [{node.sql()}] is not supported")

    # ---- leaves
    def _column(self, node: exp.Column) -> tuple[str, str]:
        name = node.name
        if name not in self.types:
            raise Unsupported(f"Column '{name}' not found in any table")
        t = self.types[name]
        if t.startswith("COMPLEX") or (t.startswith("ARRAY") and t not in arrays.ARRAY_ELEMENT):
            raise Unsupported(f"Column [{name}] of type {t} cannot be used in an expression")
        if name == TIME:
            t = "TIMESTAMP"
        return quote_ident(name), {"FLOAT": "DOUBLE"}.get(t, t)

    def _constant(self, node: exp.Expression) -> tuple[str, str]:
        if isinstance(node, exp.Null):
            return "null", "NULL"
        if isinstance(node, exp.Boolean):
            return ("1" if node.this else "0"), "BOOLEAN"
        value = evaluate(node, {}, 1, self.now_ms, self.tz)
        typ = value.type if isinstance(value, pa.Scalar) else None
        py = value.as_py() if isinstance(value, pa.Scalar) else value
        if typ is not None and pa.types.is_timestamp(typ):
            return str(fold_timestamp(node, self.now_ms)), "TIMESTAMP"
        if py is None:
            return "null", "NULL"
        if isinstance(py, bool):
            return ("1" if py else "0"), "BOOLEAN"
        if isinstance(py, int):
            return str(py), "LONG"
        if isinstance(py, float):
            return repr(py), "DOUBLE"
        if isinstance(py, str):
            return quote_string(py), "STRING"
        raise Unsupported(f"Constant [{node.sql()}] is not supported in native queries")

    # ---- helpers
    def _need(self, ok: bool, node: exp.Expression, what: str) -> None:
        if not ok:
            raise Unsupported(f"[{node.sql()}] needs {what}")

    def _bool(self, node: exp.Expression) -> str:
        return self.translate(node)[0]

    def _lit_str(self, node: exp.Expression, what: str) -> str:
        if isinstance(node, exp.Literal) and node.is_string:
            return str(node.this)
        raise Unsupported(f"{what} must be a string literal: [{node.sql()}]")

    def _lit_int(self, node: exp.Expression, what: str) -> int:
        text, t = self.translate(node)
        if t != "LONG" or not is_constant(node):
            raise Unsupported(f"{what} must be an integer literal: [{node.sql()}]")
        return int(text)

    def _call(self, name: str, args: list[exp.Expression], out: str) -> tuple[str, str]:
        return f"{name}({','.join(self.translate(a)[0] for a in args)})", out

    def _binary(self, node: exp.Expression) -> tuple[str, str]:
        op = _OPS[type(node)]
        (a, ta), (b, tb) = self.translate(node.this), self.translate(node.expression)
        if ta.startswith("ARRAY") or tb.startswith("ARRAY"):
            raise Unsupported(f"Operator [{op}] on arrays is not supported: [{node.sql()}]")
        if op in ("+", "-", "*", "/", "%"):
            if "TIMESTAMP" in (ta, tb) and op in ("+", "-"):
                raise Unsupported(f"Timestamp arithmetic [{node.sql()}] is not supported")
            for t in (ta, tb):
                self._need(t in (*_NUMERIC, "NULL", "BOOLEAN"), node, "numbers")
            out = "DOUBLE" if "DOUBLE" in (ta, tb) else "LONG"
            return f"({a} {op} {b})", out
        if "TIMESTAMP" in (ta, tb) and "STRING" in (ta, tb):
            raise Unsupported(f"Compare timestamps with TIMESTAMP literals: [{node.sql()}]")
        return f"({a} {op} {b})", "BOOLEAN"

    def common_type(self, types: list[str], node: exp.Expression) -> str:
        real = {t for t in types if t != "NULL"}
        if not real:
            return "STRING"
        if real <= {"LONG", "BOOLEAN"}:
            return "LONG" if "LONG" in real else "BOOLEAN"
        if real <= {"LONG", "DOUBLE", "BOOLEAN"}:
            return "DOUBLE"
        if len(real) == 1:
            return real.pop()
        raise Unsupported(f"Mixed types {sorted(real)} in [{node.sql()}]")


def _case(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    assert isinstance(node, exp.Case)
    subject = node.this
    parts: list[str] = []
    types: list[str] = []
    for when in node.args.get("ifs") or []:
        cond = when.this if subject is None else exp.EQ(this=subject, expression=when.this)
        parts.append(tr.translate(cond)[0])
        text, t = tr.translate(when.args["true"])
        parts.append(text)
        types.append(t)
    default = node.args.get("default")
    text, t = tr.translate(default) if default is not None else ("null", "NULL")
    parts.append(text)
    types.append(t)
    return f"case_searched({','.join(parts)})", tr.common_type(types, node)


def _if(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    cond = tr.translate(node.this)[0]
    (a, ta), (b, tb) = tr.translate(node.args["true"]), tr.translate(node.args["false"])
    return f"if({cond},{a},{b})", tr.common_type([ta, tb], node)


def _coalesce(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    args = [node.this, *node.expressions]
    done = [tr.translate(a) for a in args]
    text = done[-1][0]
    for t, _ in reversed(done[:-1]):
        text = f"nvl({t},{text})"
    return text, tr.common_type([t for _, t in done], node)


def _nullif(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    (a, ta), (b, _) = tr.translate(node.this), tr.translate(node.expression)
    return f"case_searched(({a} == {b}),null,{a})", ta


def _concat(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    return tr._call("concat", list(node.expressions), "STRING")


def _substring(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    text = tr.translate(node.this)[0]
    start = tr._lit_int(node.args["start"], "SUBSTRING start")
    length = node.args.get("length")
    n = tr._lit_int(length, "SUBSTRING length") if length is not None else -1
    return f"substring({text}, {max(start - 1, 0)}, {n})", "STRING"


def _trim(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    text = tr.translate(node.this)[0]
    chars = node.args.get("expression")
    c = quote_string(tr._lit_str(chars, "TRIM characters")) if chars is not None else "' '"
    pos = str(node.args.get("position") or "BOTH").upper()
    name = {"LEADING": "ltrim", "TRAILING": "rtrim"}.get(pos, "trim")
    return f"{name}({text},{c})", "STRING"


def _replace(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    args = [node.this, node.expression, node.args["replacement"]]
    return tr._call("replace", args, "STRING")


def _strpos(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    s, sub = tr.translate(node.this)[0], tr.translate(node.args["substr"])[0]
    start = node.args.get("position")
    if start is not None:  # POSITION(sub IN s FROM start), as Druid's PositionOperatorConversion
        return f"(strpos({s},{sub},({tr.translate(start)[0]} - 1)) + 1)", "LONG"
    return f"(strpos({s},{sub}) + 1)", "LONG"


def _regexp_extract(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    s = tr.translate(node.this)[0]
    pat = quote_string(tr._lit_str(node.expression, "REGEXP_EXTRACT pattern"))
    idx = node.args.get("group") or node.args.get("position")
    if node.args.get("position") is not None and node.args.get("group") is None:
        idx = node.args["position"]
    tail = f",{tr._lit_int(idx, 'REGEXP_EXTRACT index')}" if idx is not None else ""
    return f"regexp_extract({s},{pat}{tail})", "STRING"


def _like(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    escape = None
    if isinstance(node, exp.Escape):
        escape = quote_string(tr._lit_str(node.expression, "LIKE escape"))
        node = node.this
    s = tr.translate(node.this)[0]
    pat = quote_string(tr._lit_str(node.expression, "LIKE pattern"))
    return f"like({s},{pat}{',' + escape if escape else ''})", "BOOLEAN"


def _in(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    if node.args.get("query") is not None:
        raise Unsupported(f"IN with a subquery is not supported here: [{node.sql()}]")
    s = tr.translate(node.this)[0]
    terms = [f"({s} == {tr.translate(v)[0]})" for v in node.expressions]
    return "(" + " || ".join(terms) + ")", "BOOLEAN"


def _between(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    s = tr.translate(node.this)[0]
    lo, hi = tr.translate(node.args["low"])[0], tr.translate(node.args["high"])[0]
    return f"(({s} >= {lo}) && ({s} <= {hi}))", "BOOLEAN"


def _math2(name: str) -> Callable[[Translator, exp.Expression], tuple[str, str]]:
    def fn(tr: Translator, node: exp.Expression) -> tuple[str, str]:
        return tr._call(name, [node.this, node.expression], "DOUBLE")

    return fn


def _log(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    base = node.this
    if isinstance(base, exp.Literal) and base.this == "10" and node.expression is not None:
        return tr._call("log10", [node.expression], "DOUBLE")
    if node.expression is None:
        return tr._call("log", [base], "DOUBLE")
    raise Unsupported(f"LOG with base [{base.sql()}] is not supported")


def _round(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    text, t = tr.translate(node.this)
    tr._need(t in _NUMERIC, node, "a number")
    dec = node.args.get("decimals")
    if dec is None:
        return f"round({text})", t
    return f"round({text},{tr._lit_int(dec, 'ROUND digits')})", t


def _greatest(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    args = [node.this, *node.expressions]
    types = [tr.translate(a)[1] for a in args]
    name = "greatest" if isinstance(node, exp.Greatest) else "least"
    return tr._call(name, args, tr.common_type(types, node))


def _left_right(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    name = "left" if isinstance(node, exp.Left) else "right"
    return tr._call(name, [node.this, node.expression], "STRING")


_CASTS = {
    exp.DataType.Type.BIGINT: "LONG",
    exp.DataType.Type.INT: "LONG",
    exp.DataType.Type.SMALLINT: "LONG",
    exp.DataType.Type.TINYINT: "LONG",
    exp.DataType.Type.DOUBLE: "DOUBLE",
    exp.DataType.Type.FLOAT: "DOUBLE",
    exp.DataType.Type.DECIMAL: "DOUBLE",
    exp.DataType.Type.VARCHAR: "STRING",
    exp.DataType.Type.CHAR: "STRING",
    exp.DataType.Type.TEXT: "STRING",
}


def _cast(tr: Translator, node: exp.Expression) -> tuple[str, str]:
    text, t = tr.translate(node.this)
    to = node.args["to"]
    if to.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ):
        if t == "TIMESTAMP":
            return text, t
        if t == "STRING":
            return f"timestamp_parse({text},null,{quote_string(tr.tz)})", "TIMESTAMP"
        if t == "LONG":
            return text, "TIMESTAMP"
    target = _CASTS.get(to.this)
    if target is None or (t == "TIMESTAMP" and target != "LONG"):
        raise Unsupported(f"CAST [{node.sql()}] is not supported in native queries")
    if t == "TIMESTAMP" or t == target:
        return text, target
    return f"CAST({text}, '{target}')", target


def _plain(name: str, out: str, n: tuple[int, int]) -> Callable[..., tuple[str, str]]:
    def fn(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
        if not n[0] <= len(args) <= n[1]:
            raise Unsupported(f"{name.upper()} takes {n[0]} to {n[1]} arguments")
        return tr._call(name, args, out)

    return fn


def _regexp_like(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    if len(args) != 2:
        raise Unsupported("REGEXP_LIKE takes (string, pattern)")
    pat = quote_string(tr._lit_str(args[1], "REGEXP_LIKE pattern"))
    return f"regexp_like({tr.translate(args[0])[0]},{pat})", "BOOLEAN"


def _lookup(tr: Translator, args: list[exp.Expression]) -> tuple[str, str]:
    """``LOOKUP(expr, 'name'[, 'replace'])``: Druid's ``lookup`` expression (its input as a
    string); the lookup must be known to the planning broker."""
    name, replace = lookup_args(args)
    known_lookup(name)
    text, _ = tr.translate(args[0])
    tail = f",{quote_string(replace)}" if replace is not None else ""
    return f"lookup({text},{quote_string(name)}{tail})", "STRING"


_HANDLERS: dict[type[exp.Expression], Callable[[Translator, exp.Expression], tuple[str, str]]] = {
    exp.Case: _case,
    exp.If: _if,
    exp.Coalesce: _coalesce,
    exp.Nullif: _nullif,
    exp.Concat: _concat,
    exp.Substring: _substring,
    exp.Trim: _trim,
    exp.Replace: _replace,
    exp.StrPosition: _strpos,
    exp.RegexpExtract: _regexp_extract,
    exp.Like: _like,
    exp.Escape: _like,
    exp.In: _in,
    exp.Between: _between,
    exp.Pow: _math2("pow"),
    exp.Log: _log,
    exp.Floor: dt.floor_ceil,
    exp.Ceil: dt.floor_ceil,
    exp.Round: _round,
    exp.Greatest: _greatest,
    exp.Least: _greatest,
    exp.Left: _left_right,
    exp.Right: _left_right,
    exp.Cast: _cast,
    exp.Extract: dt.extract,
    **NODE_FNS,
}
_ANON: dict[str, Callable[[Translator, list[exp.Expression]], tuple[str, str]]] = {
    "TIME_FLOOR": dt.time_floor,
    "TIME_SHIFT": dt.time_shift,
    "TIME_EXTRACT": dt.time_extract,
    "TIME_FORMAT": dt.time_format,
    "TIME_PARSE": dt.time_parse,
    "MILLIS_TO_TIMESTAMP": dt.millis_to_ts,
    "TIMESTAMP_TO_MILLIS": dt.ts_to_millis,
    "REGEXP_LIKE": _regexp_like,
    "LOOKUP": _lookup,
    "LPAD": _plain("lpad", "STRING", (3, 3)),
    "RPAD": _plain("rpad", "STRING", (3, 3)),
    "REVERSE": _plain("reverse", "STRING", (1, 1)),
    "REPEAT": _plain("repeat", "STRING", (2, 2)),
    **ANON_FNS,
}


class VirtualColumns:
    """The ``v0``, ``v1``... virtual columns of one native query, one per distinct expression.

    Each virtual column's type is added to ``types`` so filters and aggregators read it."""

    def __init__(self, types: dict[str, str], now_ms: int, tz: str) -> None:
        self.types = types
        self.tr = Translator(types, now_ms, tz)
        self.specs: list[dict[str, Any]] = []
        self.sql_types: dict[str, str] = {}  # name -> SQL-side type (TIMESTAMP, BOOLEAN...)
        self._by_text: dict[tuple[str, str], str] = {}

    def add(self, node: exp.Expression) -> tuple[str, str]:
        """(virtual column name, SQL type) for ``node``."""
        text, t = self.tr.translate(node)
        if t.startswith("ARRAY") and t not in arrays.ARRAY_ELEMENT:
            raise Unsupported(f"An array value [{node.sql()}] cannot be a column here")
        if t == "NULL":
            t = "STRING"
        out = native_output_type(t)
        key = (text, out)
        name = self._by_text.get(key)
        if name is None:
            name = f"v{len(self.specs)}"
            while name in self.types:
                name = "_" + name
            self._by_text[key] = name
            self.specs.append(
                {"type": "expression", "name": name, "expression": text, "outputType": out}
            )
            self.types[name] = out
            self.sql_types[name] = t
        return name, t

    def expression_filter(self, node: exp.Expression) -> dict[str, Any]:
        text, _ = self.tr.translate(node)
        return {"type": "expression", "expression": text}
