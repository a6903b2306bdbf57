"""SQL WHERE (and aggregate FILTER) -> Druid native filter JSON and query intervals.

Top-level ``AND`` terms comparing ``__time`` with constants narrow the query's ``intervals``
(as Druid does); ``__time`` tests anywhere else become ``interval`` filters. Comparisons of a
column with a constant become ``equals`` / ``range`` / ``in`` / ``like`` / ``null`` filters in
SQL-compatible mode (three-valued logic, so ``NOT`` keeps unknown rows out). A test on an
expression of columns reads an ``expression`` virtual column (``druidexpr``) through the same
filters; a condition no native filter expresses becomes an ``expression`` filter. What has no
translation is refused with ``Plan validation failed`` naming the term.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from sqlglot import exp

from common.query.sql import arrays
from common.query.sql.druidexpr import VirtualColumns
from common.query.sql.functions import Unsupported, evaluate, fold_timestamp, is_constant
from common.segments.intervals import ETERNITY, Interval
from common.segments.isotime import MAX_INSTANT, MIN_INSTANT

TIME = "__time"
_FLIP: dict[type[exp.Expression], type[exp.Expression]] = {
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
    exp.EQ: exp.EQ,
}
_NUMERIC_TYPES = {"LONG": "LONG", "DOUBLE": "DOUBLE", "FLOAT": "DOUBLE"}


class FilterPlanner:
    def __init__(
        self, column_types: Mapping[str, str], now_ms: int, vcs: VirtualColumns | None = None
    ) -> None:
        self.types = vcs.types if vcs is not None else column_types
        self.now_ms = now_ms
        self.vcs = vcs

    # ---- intervals
    def split(self, where: exp.Expression | None) -> tuple[list[Interval], dict[str, Any] | None]:
        """The query intervals and the filter for the rest of ``where``."""
        if where is None:
            return [ETERNITY], None
        lo, hi = MIN_INSTANT, MAX_INSTANT
        rest: list[exp.Expression] = []
        for term in _conjuncts(where):
            bounds = self._time_bounds(term)
            if bounds is None:
                rest.append(term)
            else:
                lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        intervals = [Interval(lo, hi)] if lo < hi else []
        filters = [self.filter(t) for t in rest]
        if not intervals:
            # An empty time range: keep one interval and a filter nothing passes.
            return [Interval(MIN_INSTANT, MIN_INSTANT + 1)], {"type": "false"}
        if not filters:
            return intervals, None
        return intervals, filters[0] if len(filters) == 1 else {"type": "and", "fields": filters}

    def _time_bounds(self, term: exp.Expression) -> tuple[int, int] | None:
        """``[lo, hi)`` millis when ``term`` is ``__time <op> constant`` (or BETWEEN)."""
        if isinstance(term, exp.Between) and _is_time(term.this):
            low, high = term.args["low"], term.args["high"]
            if is_constant(low) and is_constant(high):
                return self._ts(low), self._ts(high) + 1
            return None
        if type(term) not in _FLIP:
            return None
        left, right, op = term.this, term.expression, type(term)
        if _is_time(right) and not _is_time(left):
            left, right, op = right, left, _FLIP[op]
        if not _is_time(left) or not is_constant(right):
            return None
        t = self._ts(right)
        bounds: dict[type[exp.Expression], tuple[int, int]] = {
            exp.GT: (t + 1, MAX_INSTANT),
            exp.GTE: (t, MAX_INSTANT),
            exp.LT: (MIN_INSTANT, t),
            exp.LTE: (MIN_INSTANT, t + 1),
            exp.EQ: (t, t + 1),
        }
        return bounds[op]

    def _ts(self, node: exp.Expression) -> int:
        if isinstance(node, exp.Literal) and node.is_string:
            node = exp.Cast(this=node, to=exp.DataType.build("TIMESTAMP"))
        return fold_timestamp(node, self.now_ms)

    # ---- filters
    def filter(self, node: exp.Expression) -> dict[str, Any]:
        try:
            return self._filter(node)
        except Unsupported:
            if self.vcs is None or isinstance(node, exp.And | exp.Or | exp.Not | exp.Paren):
                raise
            try:
                return self.vcs.expression_filter(node)
            except Unsupported:
                pass
            raise

    def _filter(self, node: exp.Expression) -> dict[str, Any]:
        if isinstance(node, exp.Paren):
            return self.filter(node.this)
        if isinstance(node, exp.And):
            return {"type": "and", "fields": [self.filter(t) for t in _conjuncts(node)]}
        if isinstance(node, exp.Or):
            return {"type": "or", "fields": [self.filter(node.this), self.filter(node.expression)]}
        if isinstance(node, exp.Not):
            return {"type": "not", "field": self.filter(node.this)}
        if isinstance(node, exp.Boolean):
            return {"type": "true" if node.this else "false"}
        if _is_time_term(node):
            bounds = self._time_bounds(node)
            if bounds is not None:
                return {"type": "interval", "dimension": TIME, "intervals": [_itv(*bounds)]}
        if isinstance(node, exp.NEQ):
            return {
                "type": "not",
                "field": self.filter(exp.EQ(this=node.this, expression=node.expression)),
            }
        if type(node) in _FLIP:
            return self._compare(node)
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            return {"type": "null", "column": self._column(node.this, node)}
        if isinstance(node, exp.In):
            return self._in(node)
        if isinstance(node, exp.Between):
            col = self._column(node.this, node)
            lo, hi = self._const(node.args["low"], node), self._const(node.args["high"], node)
            return self._range(col, lo, hi, False, False)
        if isinstance(node, exp.Like):
            pat = node.expression
            if not (isinstance(pat, exp.Literal) and pat.is_string):
                raise Unsupported(f"LIKE needs a literal pattern: [{node.sql()}]")
            return {"type": "like", "dimension": self._column(node.this, node), "pattern": pat.this}
        if isinstance(node, exp.Escape) and isinstance(node.this, exp.Like):
            like = self.filter(node.this)
            like["escape"] = self._const(node.expression, node)
            return like
        array_filter = self._array_filter(node)
        if array_filter is not None:
            return array_filter
        raise Unsupported(f"Unsupported WHERE condition [{node.sql()}]")

    def _array_filter(self, node: exp.Expression) -> dict[str, Any] | None:
        """``MV_OVERLAP(col, ARRAY[...])`` and ``MV_CONTAINS(col, ARRAY[...])`` (and the ARRAY_
        spellings) of a string column and literals: an ``in`` filter and an AND of ``equals``
        filters, as Druid's ArrayOverlap/ArrayContainsOperatorConversion plan them. A null
        literal is a ``null`` filter there, so it matches the rows with no value (the
        expression would not: a null array overlaps nothing)."""
        call = arrays.call_of(node)
        if call is None or call[0] not in _ARRAY_FILTERS or len(call[1]) != 2:
            return None
        col_node, arr = call[1]
        if not (isinstance(col_node, exp.Column) and isinstance(arr, exp.Array)):
            return None
        if self.types.get(col_node.name) != "STRING" or not all(
            is_constant(v) for v in arr.expressions
        ):
            return None
        col = self._column(col_node, node)
        values = [self._const(v, node) for v in arr.expressions]
        if not values:
            return None
        if _ARRAY_FILTERS[call[0]] == "overlap":
            return {"type": "in", "dimension": col, "values": [_as_str(v) for v in values]}
        fields = [
            {"type": "null", "column": col}
            if v is None
            else {
                "type": "equals",
                "column": col,
                "matchValueType": "STRING",
                "matchValue": _as_str(v),
            }
            for v in values
        ]
        return fields[0] if len(fields) == 1 else {"type": "and", "fields": fields}

    def _compare(self, node: exp.Expression) -> dict[str, Any]:
        left, right, op = node.this, node.expression, type(node)
        if (isinstance(left, exp.Column) is False and isinstance(right, exp.Column)) or (
            is_constant(left) and not is_constant(right)
        ):
            left, right, op = right, left, _FLIP[op]
        if not is_constant(right):
            raise Unsupported(f"Comparison with a non-constant is not supported: [{node.sql()}]")
        col = self._column(left, node)
        if self.vcs is not None and self.vcs.sql_types.get(col) == "TIMESTAMP":
            if not is_constant(right):
                raise Unsupported(f"Comparison with a non-constant: [{node.sql()}]")
            value: Any = self._ts(right)
        else:
            value = self._const(right, node)
        if value is None:
            # x = NULL (or < NULL) is never true.
            return {"type": "false"}
        array_type = self.types.get(col, "") if self.types.get(col, "").startswith("ARRAY") else ""
        if array_type or isinstance(value, list):
            if op is not exp.EQ or not array_type or not isinstance(value, list):
                raise Unsupported(
                    f"Only = of an ARRAY with an ARRAY literal is supported: [{node.sql()}]"
                )
            # Druid's EqualityFilter on an ARRAY: the whole array equals the literal
            return {
                "type": "equals",
                "column": col,
                "matchValueType": array_type,
                "matchValue": value,
            }
        if op is exp.EQ:
            return {
                "type": "equals",
                "column": col,
                "matchValueType": self._match_type(col, value),
                "matchValue": value,
            }
        if op in (exp.GT, exp.GTE):
            return self._range(col, value, None, op is exp.GT, False)
        return self._range(col, None, value, False, op is exp.LT)

    def _range(self, col: str, lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> dict[str, Any]:
        value = lo if lo is not None else hi
        spec: dict[str, Any] = {
            "type": "range",
            "column": col,
            "matchValueType": self._match_type(col, value),
        }
        if lo is not None:
            spec["lower"] = lo
        if hi is not None:
            spec["upper"] = hi
        if lo_open:
            spec["lowerOpen"] = True
        if hi_open:
            spec["upperOpen"] = True
        return spec

    def _in(self, node: exp.In) -> dict[str, Any]:
        if node.args.get("query") is not None:
            raise Unsupported(f"IN with a subquery is not supported: [{node.sql()}]")
        col = self._column(node.this, node)
        values = [self._const(v, node) for v in node.expressions]
        if self.types.get(col, "STRING") == "STRING":
            return {"type": "in", "dimension": col, "values": [_as_str(v) for v in values]}
        fields: list[dict[str, Any]] = [
            {
                "type": "equals",
                "column": col,
                "matchValueType": self._match_type(col, v),
                "matchValue": v,
            }
            if v is not None
            else {"type": "false"}
            for v in values
        ]
        return {"type": "or", "fields": fields}

    def _match_type(self, col: str, value: Any) -> str:
        typ = self.types.get(col, "STRING")
        if typ in _NUMERIC_TYPES:
            return _NUMERIC_TYPES[typ] if not isinstance(value, float) else "DOUBLE"
        if isinstance(value, bool | str):
            return "STRING"
        return "LONG" if isinstance(value, int) else "DOUBLE"

    def _column(self, node: exp.Expression, term: exp.Expression) -> str:
        if isinstance(node, exp.Column):
            name = node.name
            if name not in self.types:
                raise Unsupported(f"Column '{name}' not found in any table")
            if name == TIME:
                raise Unsupported(f"Unsupported __time condition [{term.sql()}]")
            if self.types[name].startswith("COMPLEX"):
                raise Unsupported(f"Cannot filter on complex column [{name}]")
            return name
        if self.vcs is not None and not is_constant(node):
            name, typ = self.vcs.add(node)
            if typ == "BOOLEAN":
                raise Unsupported(f"Comparison of a condition: [{term.sql()}]")
            return name
        raise Unsupported(f"Filter on an expression is not supported: [{term.sql()}]")

    def _const(self, node: exp.Expression, term: exp.Expression) -> Any:
        if not is_constant(node):
            raise Unsupported(f"Comparison with a non-constant is not supported: [{term.sql()}]")
        v = evaluate(node, {}, 1, self.now_ms)
        py = v.as_py() if isinstance(v, pa.Scalar) else v.to_pylist()[0]
        if hasattr(py, "timestamp"):
            raise Unsupported(f"Timestamp comparison on a non-time column: [{term.sql()}]")
        return py


_ARRAY_FILTERS = {
    "MV_OVERLAP": "overlap",
    "ARRAY_OVERLAP": "overlap",
    "MV_CONTAINS": "contains",
    "ARRAY_CONTAINS": "contains",
}


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    if isinstance(node, exp.And):
        return [*_conjuncts(node.this), *_conjuncts(node.expression)]
    return [node]


def _is_time(node: exp.Expression) -> bool:
    return isinstance(node, exp.Column) and node.name == TIME


def _is_time_term(node: exp.Expression) -> bool:
    if isinstance(node, exp.Between):
        return _is_time(node.this)
    return type(node) in _FLIP and (_is_time(node.this) or _is_time(node.expression))


def _itv(lo: int, hi: int) -> str:
    return str(Interval(lo, hi)) if lo < hi else str(Interval(MIN_INSTANT, MIN_INSTANT))


def _as_str(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    return str(v)
