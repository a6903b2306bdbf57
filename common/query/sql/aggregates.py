"""SQL aggregate calls -> native aggregators (pure).

``COUNT`` (``*``, a constant, a column, ``DISTINCT``), ``SUM``, ``MIN``, ``MAX``, ``AVG`` (a sum, a
non-null count and a ``quotient`` post-aggregator), ``APPROX_COUNT_DISTINCT*``, the
DataSketches functions (``common.query.sql.sketch_aggs``) and ``EARLIEST``/``LATEST``/``ANY_VALUE``,
each maybe with ``FILTER (WHERE ...)`` (a ``filtered`` aggregator). ``COUNT``/``SUM``/``MIN``/
``MAX``/``AVG`` over an expression read an ``expression`` virtual column (``druidexpr``), as Druid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from common.errors import PlanValidationError
from common.query.sql.array_aggs import (
    is_array_agg,
    is_bitwise_agg,
    plan_array_agg,
    plan_bitwise_agg,
)
from common.query.sql.druidexpr import VirtualColumns
from common.query.sql.druidexpr_time import quote_ident
from common.query.sql.functions import Unsupported
from common.query.sql.sketch_aggs import ESTIMATES, is_sketch_call, plan_sketch
from common.query.sql.sketch_aggs import FUNCTIONS as SKETCH_FUNCTIONS
from common.query.sql.where import TIME, FilterPlanner

_APPROX = {
    "APPROX_COUNT_DISTINCT": "builtin",
    "APPROX_COUNT_DISTINCT_BUILTIN": "builtin",
}

# The druid-stats aggregates: (estimator, standard deviation rather than variance).
STATS = {
    "VAR_POP": ("population", False),
    "VAR_SAMP": (None, False),
    "VARIANCE": (None, False),
    "STDDEV_POP": ("population", True),
    "STDDEV_SAMP": (None, True),
    "STDDEV": (None, True),
}

# Aggregate functions of Druid's reference kdruid does not build: a 400 naming the function.
# They need extensions kdruid has no native aggregator for (approximate histograms, bloom
# filters, T-Digest, tuple sketches).
UNBUILT = frozenset(
    {
        "APPROX_QUANTILE",
        "APPROX_QUANTILE_FIXED_BUCKETS",
        "BLOOM_FILTER",
        "TDIGEST_QUANTILE",
        "TDIGEST_GENERATE_SKETCH",
        "DS_TUPLE_DOUBLES",
    }
)


@dataclass
class AggSpec:
    """One SQL aggregate: its native aggregators/post-aggregator and its output column."""

    name: str
    kind: str  # count, sum, min, max, avg, distinct
    column: str | None
    native_type: str  # LONG or DOUBLE: the type of the output column
    aggregators: list[dict[str, Any]] = field(default_factory=list)
    post: dict[str, Any] | None = None
    truncate: bool = False  # AVG of a LONG column: Druid answers a truncated LONG
    round: bool = False  # theta estimates are BIGINT in SQL
    sql: str = ""  # the aggregate's SQL text, to reuse one spec for repeated calls
    timestamp: bool = False  # MIN/MAX of __time: a TIMESTAMP in SQL, as Druid
    distinct: bool = False  # COUNT(DISTINCT col): exact when useApproximateCountDistinct=false
    filtered: bool = False  # agg FILTER (WHERE ...)


def plan_aggregate(
    node: exp.Expression,
    i: int,
    fp: FilterPlanner,
    system: bool,
    types: Mapping[str, str],
    vcs: VirtualColumns | None = None,
) -> AggSpec:
    """One SQL aggregate call as native aggregators (or, for broker-side tables, a kind and
    a column for pyarrow's hash aggregation)."""
    flt: dict[str, Any] | None = None
    whole = node  # its SQL text names it in errors
    filtered = isinstance(node, exp.Filter)
    if isinstance(node, exp.Filter):
        if system:
            raise Unsupported("Aggregate FILTER on system tables is not supported")
        flt = fp.filter(node.expression.this)
        node = node.this
    name = f"a{i}"
    fname = node.name.upper() if isinstance(node, exp.Anonymous) else ""
    if fname in UNBUILT or isinstance(node, exp.Grouping):
        raise Unsupported(f"Aggregate function [{fname or 'GROUPING'}] is not supported")
    if fname in STATS:
        if system or vcs is None:
            raise Unsupported(f"[{whole.sql()}] is only supported over a Druid datasource")
        spec = plan_variance(node, name, vcs)
        spec.filtered = filtered
        if flt is not None:
            spec.aggregators = [_filtered(a, flt) for a in spec.aggregators]
        return spec
    if is_sketch_call(node):
        if flt is None:
            node, flt = _estimate_filter(node, fp)
            filtered = flt is not None
        return _sketch_spec(node, name, flt, filtered, system, types, vcs)
    if is_bitwise_agg(node):
        if system or vcs is None:
            raise Unsupported(f"[{whole.sql()}] is only supported over a Druid datasource")
        bit_agg = plan_bitwise_agg(node, name, vcs)
        if flt is not None:
            bit_agg = _filtered(bit_agg, flt)
        spec = AggSpec(name=name, kind="bitwise", column=None, native_type="LONG")
        spec.aggregators, spec.filtered = [bit_agg], filtered
        return spec
    if is_array_agg(node):
        array_aggs, native_type = plan_array_agg(node, name, None if system else vcs)
        if flt is not None:
            array_aggs = [_filtered(a, flt) for a in array_aggs]
        spec = AggSpec(name=name, kind="array", column=None, native_type=native_type)
        spec.aggregators, spec.filtered = array_aggs, filtered
        return spec
    if first_last_kind(node) is not None:
        if system or vcs is None:
            raise Unsupported(f"[{whole.sql()}] is only supported over a Druid datasource")
        spec = plan_first_last(node, name, vcs)
        spec.filtered = filtered
        if flt is not None:
            spec.aggregators = [_filtered(a, flt) for a in spec.aggregators]
        return spec
    kind, column = _agg_kind(node, vcs)
    if vcs is not None:
        types = vcs.types
    distinct = isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct)
    if column is not None and column not in types:
        raise PlanValidationError(f"Column '{column}' not found in any table")
    ctype = types.get(column or "", "STRING")
    spec = AggSpec(name=name, kind=kind, column=column, native_type="LONG")
    spec.distinct, spec.filtered = distinct, filtered
    if system:
        spec.native_type = _system_agg_type(kind, ctype)
        return spec
    aggs: list[dict[str, Any]]
    if kind == "count":
        aggs = [{"type": "count", "name": name}]
        if column is not None:
            aggs = [
                _filtered(aggs[0], {"type": "not", "field": {"type": "null", "column": column}})
            ]
    elif kind in ("sum", "min", "max"):
        if ctype not in ("LONG", "DOUBLE", "FLOAT"):
            raise Unsupported(f"{kind.upper()} of a {ctype} column [{column}] is not supported")
        prefix = "long" if ctype == "LONG" else "double"
        spec.native_type = "LONG" if ctype == "LONG" else "DOUBLE"
        aggs = [{"type": f"{prefix}{kind.capitalize()}", "name": name, "fieldName": column}]
        is_ts = column == TIME or (
            vcs is not None and vcs.sql_types.get(column or "") == "TIMESTAMP"
        )
        spec.timestamp = is_ts and kind in ("min", "max")
    elif kind == "avg":
        if ctype not in ("LONG", "DOUBLE", "FLOAT"):
            raise Unsupported(f"AVG of a {ctype} column [{column}] is not supported")
        prefix = "long" if ctype == "LONG" else "double"
        s, c = f"{name}:sum", f"{name}:count"
        aggs = [
            {"type": f"{prefix}Sum", "name": s, "fieldName": column},
            _filtered(
                {"type": "count", "name": c},
                {"type": "not", "field": {"type": "null", "column": column}},
            ),
        ]
        spec.post = {
            "type": "arithmetic",
            "name": name,
            "fn": "quotient",
            "fields": [
                {"type": "fieldAccess", "fieldName": s},
                {"type": "fieldAccess", "fieldName": c},
            ],
        }
        spec.native_type = "DOUBLE"
        spec.truncate = ctype == "LONG"
    elif kind == "builtin":
        if ctype == "COMPLEX<hyperUnique>":
            aggs = [{"type": "hyperUnique", "name": name, "fieldName": column, "round": True}]
        else:
            aggs = [{"type": "cardinality", "name": name, "fields": [column], "round": True}]
    else:  # pragma: no cover - _agg_kind only returns the kinds above
        raise Unsupported(f"Unsupported aggregate [{whole.sql()}]")
    if flt is not None:
        aggs = [_filtered(a, flt) for a in aggs]
    spec.aggregators = aggs
    return spec


def _estimate_filter(
    node: exp.Expression, fp: FilterPlanner
) -> tuple[exp.Expression, dict[str, Any] | None]:
    """``HLL_SKETCH_ESTIMATE(DS_HLL(x) FILTER (WHERE c))``: the estimate of the filtered sketch
    aggregate, as the filter applied to the whole call."""
    args = node.expressions if isinstance(node, exp.Anonymous) else []
    if node.name.upper() not in ESTIMATES or not args or not isinstance(args[0], exp.Filter):
        return node, None
    inner = args[0]
    flt = fp.filter(inner.expression.this)
    node = node.copy()
    node.set("expressions", [inner.this.copy(), *[a.copy() for a in args[1:]]])
    return node, flt


def _sketch_spec(
    node: exp.Expression,
    name: str,
    flt: dict[str, Any] | None,
    filtered: bool,
    system: bool,
    types: Mapping[str, str],
    vcs: VirtualColumns | None = None,
) -> AggSpec:
    assert isinstance(node, exp.Anonymous)
    if system:
        raise Unsupported(f"{node.name.upper()} on system tables is not supported")
    if vcs is not None:
        types = vcs.types

    def column_of(arg: exp.Expression | None) -> str:
        if isinstance(arg, exp.Column):
            return arg.name
        if vcs is not None and arg is not None:
            # an expression: a virtual column, as Druid's sketch aggregators read one
            vname, typ = vcs.add(arg)
            if typ.startswith("ARRAY") or typ.startswith("COMPLEX"):
                raise Unsupported(f"{node.name.upper()} of a {typ} expression: [{node.sql()}]")
            return vname
        what = arg.sql() if arg is not None else ""
        raise Unsupported(
            f"Aggregate over an expression is not supported: [{node.sql()}] ({what}); "
            "aggregate a column"
        )

    plan, column = plan_sketch(node, name, types, column_of)
    fname = node.name.upper()
    kind = "hll" if fname == "APPROX_COUNT_DISTINCT_DS_HLL" else "sketch"
    if fname == "APPROX_COUNT_DISTINCT_DS_THETA":
        kind = "theta"
    aggs = plan.aggregators
    if flt is not None:
        aggs = [_filtered(a, flt) for a in aggs]
    spec = AggSpec(
        name=name,
        kind=kind,
        column=column,
        native_type=plan.native_type,
        aggregators=aggs,
        post=plan.post,
        round=plan.round,
    )
    spec.filtered = filtered
    return spec


def _filtered(agg: dict[str, Any], flt: dict[str, Any]) -> dict[str, Any]:
    return {"type": "filtered", "name": agg["name"], "filter": flt, "aggregator": agg}


def _system_agg_type(kind: str, ctype: str) -> str:
    if kind in ("sum", "min", "max"):
        return "LONG" if ctype == "LONG" else "DOUBLE"
    if kind == "avg":
        return "DOUBLE"
    return "LONG"


def is_agg(n: exp.Expression) -> bool:
    if isinstance(n, exp.Filter):
        return is_agg(n.this)
    if first_last_kind(n) is not None or is_array_agg(n) or is_bitwise_agg(n):
        return True
    if isinstance(n, exp.Count | exp.Sum | exp.Min | exp.Max | exp.Avg | exp.ApproxDistinct):
        return True
    if isinstance(n, exp.Grouping):
        return True
    names = (*_APPROX, *SKETCH_FUNCTIONS, *STATS, *UNBUILT)
    return isinstance(n, exp.Anonymous) and n.name.upper() in names


def has_agg(e: exp.Expression) -> bool:
    return any(isinstance(n, exp.Expression) and is_agg(n) for n in e.walk())


def _agg_kind(node: exp.Expression, vcs: VirtualColumns | None) -> tuple[str, str | None]:
    """(kind, column) of an aggregate call; an expression argument of COUNT/SUM/MIN/MAX/AVG
    becomes a virtual column when ``vcs`` is given, other aggregates need a column."""

    def column_of(arg: exp.Expression | None, virtual: bool = False) -> str:
        if isinstance(arg, exp.Column):
            return arg.name
        if virtual and vcs is not None and arg is not None:
            name, typ = vcs.add(arg)
            if typ.startswith("ARRAY") and not isinstance(node, exp.Count):
                # Calcite's operand check: only COUNT (and the array aggregates) take ARRAYs.
                fname = type(node).__name__.upper()
                raise Unsupported(
                    f"Cannot apply '{fname}' to arguments of type '{fname}(<{typ}>)': "
                    f"[{node.sql()}]"
                )
            if typ in ("STRING", "BOOLEAN") and not isinstance(node, exp.Count):
                raise Unsupported(f"Aggregate over a {typ} expression: [{node.sql()}]")
            return name
        what = arg.sql() if arg is not None else ""
        raise Unsupported(
            f"Aggregate over an expression is not supported: [{node.sql()}] ({what}); "
            "aggregate a column"
        )

    if isinstance(node, exp.Count):
        arg = node.this
        if arg is None or isinstance(arg, exp.Star):
            return "count", None
        if isinstance(arg, exp.Literal | exp.Boolean):
            return "count", None  # COUNT(1): a constant is never null, as COUNT(*) (Druid)
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1:
                raise Unsupported("COUNT(DISTINCT) of several columns is not supported")
            return "builtin", column_of(arg.expressions[0])
        return "count", column_of(arg, True)
    if isinstance(node, exp.ApproxDistinct):
        return "builtin", column_of(node.this)
    for cls, kind in ((exp.Sum, "sum"), (exp.Min, "min"), (exp.Max, "max"), (exp.Avg, "avg")):
        if isinstance(node, cls):
            if isinstance(node.this, exp.Distinct):
                raise Unsupported(f"{kind.upper()}(DISTINCT) is not supported")
            return kind, column_of(node.this, True)
    assert isinstance(node, exp.Anonymous)
    fname = node.name.upper()
    if len(node.expressions) != 1:
        raise Unsupported(f"{fname} with options is not supported")
    return _APPROX[fname], column_of(node.expressions[0])


# ---- EARLIEST / LATEST / EARLIEST_BY / LATEST_BY / ANY_VALUE (sqlx) ------------------------
# As Druid's EarliestLatestAnySqlAggregator: the first/last aggregator of the expression's type
# (long/float/double/string), over a column or an expression virtual column; ``*_BY`` take the
# time from a TIMESTAMP expression; strings carry ``maxStringBytes`` (default 1024). ANY_VALUE
# is planned as the ``*First`` aggregator, one of the values Druid's ``*Any`` may answer
# (``ANY_VALUE(expr, maxBytesPerValue)`` too; its ``aggregateMultipleValues`` flag is refused).

_FIRST_LAST = {
    "EARLIEST": ("First", False),
    "LATEST": ("Last", False),
    "EARLIEST_BY": ("First", True),
    "LATEST_BY": ("Last", True),
}


def first_last_kind(node: exp.Expression) -> tuple[str, bool] | None:
    """("First" or "Last", takes a time argument) for the first/last aggregate calls."""
    if isinstance(node, exp.Anonymous):
        if node.name.upper() == "ANY_VALUE":
            return "First", False
        return _FIRST_LAST.get(node.name.upper())
    return None


def plan_first_last(node: exp.Expression, name: str, vcs: VirtualColumns) -> AggSpec:
    kind = first_last_kind(node)
    assert kind is not None
    suffix, by = kind
    assert isinstance(node, exp.Anonymous)
    fname = node.name.upper()
    args = list(node.expressions)
    if fname == "ANY_VALUE" and len(args) == 3:
        raise Unsupported("ANY_VALUE's aggregateMultipleValues argument is not supported")
    want = 2 if by else 1
    if not want <= len(args) <= want + 1:
        raise Unsupported(f"{fname} takes (expr{', timestamp' if by else ''}[, maxBytesPerString])")
    column, typ = _input_column(args[0], vcs)
    agg: dict[str, Any] = {"type": "", "name": name, "fieldName": column}
    if by:
        time_col, time_type = _input_column(args[1], vcs)
        direct = next((s for s in vcs.specs if s["name"] == time_col), None)
        if direct is not None and direct["expression"] == quote_ident(_bare(args[1])):
            time_col = _bare(args[1])  # MILLIS_TO_TIMESTAMP(l1): the column itself, as Druid
        if time_type != "TIMESTAMP":
            raise Unsupported(
                f"Cannot apply '{fname}' to a non-TIMESTAMP time argument [{args[1].sql()}]"
            )
        agg["timeColumn"] = time_col
    if typ in ("LONG", "BOOLEAN", "TIMESTAMP"):
        prefix, native_type = "long", "LONG"
    elif typ == "FLOAT":
        prefix, native_type = "float", "DOUBLE"
    elif typ == "DOUBLE":
        prefix, native_type = "double", "DOUBLE"
    elif typ == "STRING":
        prefix, native_type = "string", "STRING"
    else:
        raise Unsupported(f"{fname} of a {typ} value [{args[0].sql()}] is not supported")
    agg["type"] = f"{prefix}{suffix}"
    if len(args) > want:
        size = args[want]
        if isinstance(size, exp.Cast):
            size = size.this
        if not (isinstance(size, exp.Literal) and not size.is_string and size.this.isdigit()):
            raise Unsupported(f"{fname} maxBytesPerString must be an integer literal")
        if prefix != "string":
            raise Unsupported(f"{fname} maxBytesPerString applies to strings only")
        agg["maxStringBytes"] = int(size.this)
    elif prefix == "string":
        agg["maxStringBytes"] = 1024
    spec = AggSpec(name=name, kind="first_last", column=column, native_type=native_type)
    spec.timestamp = typ == "TIMESTAMP"
    spec.aggregators = [agg]
    return spec


def _bare(arg: exp.Expression) -> str:
    inner = arg.expressions[0] if isinstance(arg, exp.Anonymous) and arg.expressions else arg
    return inner.name if isinstance(inner, exp.Column) else ""


def _input_column(arg: exp.Expression, vcs: VirtualColumns) -> tuple[str, str]:
    """A column (its own type, FLOAT kept) or an expression virtual column."""
    if isinstance(arg, exp.Column):
        if arg.name not in vcs.types:
            raise PlanValidationError(f"Column '{arg.name}' not found in any table")
        t = vcs.types[arg.name]
        if t.startswith("COMPLEX") or t.startswith("ARRAY"):
            raise Unsupported(f"Column [{arg.name}] of type {t} is not supported here")
        return arg.name, "TIMESTAMP" if arg.name == TIME else t
    return vcs.add(arg)


# ---- VAR_POP / VAR_SAMP / VARIANCE / STDDEV_POP / STDDEV_SAMP / STDDEV (druid-stats) ------
# As Druid's BaseVarianceSqlAggregator: a ``variance`` aggregator over the column (or an
# expression virtual column) with the input type of its SQL type, the ``population`` estimator
# for the *_POP forms; the STDDEV forms add a ``stddev`` post-aggregator over it. DOUBLE.

_INPUT_TYPES = {"LONG": "long", "FLOAT": "float", "DOUBLE": "double"}


def plan_variance(node: exp.Expression, name: str, vcs: VirtualColumns) -> AggSpec:
    assert isinstance(node, exp.Anonymous)
    fname = node.name.upper()
    estimator, stddev = STATS[fname]
    args = list(node.expressions)
    if len(args) != 1 or isinstance(args[0], exp.Distinct):
        raise Unsupported(f"{fname} takes one argument: [{node.sql()}]")
    column, typ = _input_column(args[0], vcs)
    if typ not in _INPUT_TYPES:
        raise Unsupported(f"{fname} of a {typ} value [{args[0].sql()}] is not supported")
    agg_name = f"{name}:agg" if stddev else name
    agg: dict[str, Any] = {
        "type": "variance",
        "name": agg_name,
        "fieldName": column,
        "inputType": _INPUT_TYPES[typ],
    }
    if estimator is not None:
        agg["estimator"] = estimator
    spec = AggSpec(name=name, kind="variance", column=column, native_type="DOUBLE")
    spec.aggregators = [agg]
    if stddev:
        spec.post = {"type": "stddev", "name": name, "fieldName": agg_name}
        if estimator is not None:
            spec.post["estimator"] = estimator
    return spec
