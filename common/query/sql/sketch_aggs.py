"""DataSketches SQL functions -> native sketch aggregators and post-aggregators (pure).

Aggregates: ``APPROX_COUNT_DISTINCT_DS_HLL(expr[, lgK[, tgtHllType]])``,
``APPROX_COUNT_DISTINCT_DS_THETA(expr[, size])``, ``DS_HLL(expr[, lgK[, tgtHllType]])``,
``DS_THETA(expr[, size])``, ``DS_QUANTILES_SKETCH(expr[, k])`` and
``APPROX_QUANTILE_DS(expr, probability[, k])``. The sketch-valued ones (``DS_*``) answer the
sketch itself, base64 in results, typed ``COMPLEX<HLLSketch>`` / ``COMPLEX<thetaSketch>`` /
``COMPLEX<quantilesDoublesSketch>``, as Druid. The estimate functions ``HLL_SKETCH_ESTIMATE(
DS_HLL(...)[, round])``, ``THETA_SKETCH_ESTIMATE(DS_THETA(...))`` and
``DS_GET_QUANTILE(DS_QUANTILES_SKETCH(...), fraction)`` are planned with the sketch aggregate they
wrap, as a post-aggregator over it; their argument must be that aggregate call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from common.errors import PlanValidationError
from common.query.sql.functions import Unsupported

SKETCH_AGGS = frozenset(
    {
        "APPROX_COUNT_DISTINCT_DS_HLL",
        "APPROX_COUNT_DISTINCT_DS_THETA",
        "DS_HLL",
        "DS_THETA",
        "DS_QUANTILES_SKETCH",
        "APPROX_QUANTILE_DS",
    }
)
ESTIMATES = {
    "HLL_SKETCH_ESTIMATE": "DS_HLL",
    "THETA_SKETCH_ESTIMATE": "DS_THETA",
    "DS_GET_QUANTILE": "DS_QUANTILES_SKETCH",
}
FUNCTIONS = SKETCH_AGGS | frozenset(ESTIMATES)


@dataclass
class SketchPlan:
    aggregators: list[dict[str, Any]]
    post: dict[str, Any] | None
    native_type: str
    round: bool = False


def is_sketch_call(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.upper() in FUNCTIONS


def _literal(arg: exp.Expression, what: str) -> Any:
    while isinstance(arg, exp.Cast | exp.Paren):
        arg = arg.this
    if isinstance(arg, exp.Boolean):
        return bool(arg.this)
    if isinstance(arg, exp.Neg) and isinstance(arg.this, exp.Literal):
        return -float(arg.this.this)
    if isinstance(arg, exp.Literal):
        if arg.is_string:
            return str(arg.this)
        text = str(arg.this)
        return float(text) if any(c in text for c in ".eE") else int(text)
    raise Unsupported(f"{what} must be a literal, got [{arg.sql()}]")


def _int(arg: exp.Expression, what: str) -> int:
    v = _literal(arg, what)
    if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
        raise PlanValidationError(f"{what} must be an integer, got [{arg.sql()}]")
    return int(v)


def _fraction(arg: exp.Expression, fname: str) -> float:
    v = _literal(arg, f"{fname} probability")
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= float(v) <= 1.0:
        raise PlanValidationError(f"{fname}: the probability must be between 0 and 1")
    return float(v)


def _args(node: exp.Anonymous, fname: str, lo: int, hi: int) -> list[exp.Expression]:
    args = list(node.expressions)
    if not lo <= len(args) <= hi:
        raise PlanValidationError(f"{fname} takes {lo} to {hi} arguments, got {len(args)}")
    return args


def plan_sketch(
    node: exp.Anonymous,
    name: str,
    types: Mapping[str, str],
    column_of: Callable[[exp.Expression | None], str],
) -> tuple[SketchPlan, str]:
    """The native plan of one sketch call named ``name``, and the column it reads."""
    fname = node.name.upper()
    if fname in ESTIMATES:
        return _estimate(node, fname, name, types, column_of)
    plan, column = _aggregate(node, fname, name, types, column_of)
    return plan, column


def _aggregate(
    node: exp.Anonymous,
    fname: str,
    name: str,
    types: Mapping[str, str],
    column_of: Callable[[exp.Expression | None], str],
) -> tuple[SketchPlan, str]:
    if fname == "APPROX_QUANTILE_DS":
        args = _args(node, fname, 2, 3)
    else:
        args = _args(node, fname, 1, 3 if "HLL" in fname else 2)
    column = column_of(args[0])
    if column not in types:
        raise PlanValidationError(f"Column '{column}' not found in any table")
    ctype = types[column]
    finalize = fname.startswith("APPROX_")
    agg: dict[str, Any]
    if "HLL" in fname:
        typ = "HLLSketchMerge" if ctype.startswith("COMPLEX") else "HLLSketchBuild"
        agg = {"type": typ, "name": name, "fieldName": column, "round": True}
        if len(args) > 1:
            agg["lgK"] = _int(args[1], f"{fname} lgK")
        if len(args) > 2:
            agg["tgtHllType"] = str(_literal(args[2], f"{fname} tgtHllType"))
        if not finalize:
            agg["shouldFinalize"] = False
            return SketchPlan([agg], None, "COMPLEX<HLLSketch>"), column
        return SketchPlan([agg], None, "LONG"), column
    if "THETA" in fname:
        agg = {"type": "thetaSketch", "name": name, "fieldName": column}
        if len(args) > 1:
            agg["size"] = _int(args[1], f"{fname} size")
        if not finalize:
            agg["shouldFinalize"] = False
            return SketchPlan([agg], None, "COMPLEX<thetaSketch>"), column
        return SketchPlan([agg], None, "DOUBLE", round=True), column
    if ctype not in ("LONG", "DOUBLE", "FLOAT", "COMPLEX<quantilesDoublesSketch>"):
        raise Unsupported(f"{fname} of a {ctype} column [{column}] is not supported")
    agg = {"type": "quantilesDoublesSketch", "name": name, "fieldName": column}
    if fname == "DS_QUANTILES_SKETCH":
        if len(args) > 1:
            agg["k"] = _int(args[1], f"{fname} k")
        agg["shouldFinalize"] = False
        return SketchPlan([agg], None, "COMPLEX<quantilesDoublesSketch>"), column
    fraction = _fraction(args[1], fname)
    if len(args) > 2:
        agg["k"] = _int(args[2], f"{fname} k")
    agg["name"] = f"{name}:agg"
    post = {
        "type": "quantilesDoublesSketchToQuantile",
        "name": name,
        "field": {"type": "fieldAccess", "fieldName": f"{name}:agg"},
        "fraction": fraction,
    }
    return SketchPlan([agg], post, "DOUBLE"), column


def _estimate(
    node: exp.Anonymous,
    fname: str,
    name: str,
    types: Mapping[str, str],
    column_of: Callable[[exp.Expression | None], str],
) -> tuple[SketchPlan, str]:
    inner_name = ESTIMATES[fname]
    args = _args(node, fname, 1, 2)
    inner = args[0]
    if not (isinstance(inner, exp.Anonymous) and inner.name.upper() == inner_name):
        raise Unsupported(
            f"{fname} is supported over a {inner_name}(...) call only, got [{inner.sql()}]"
        )
    plan, column = _aggregate(inner, inner_name, f"{name}:agg", types, column_of)
    field = {"type": "fieldAccess", "fieldName": f"{name}:agg"}
    post: dict[str, Any]
    if fname == "HLL_SKETCH_ESTIMATE":
        rnd = bool(_literal(args[1], f"{fname} round")) if len(args) > 1 else False
        post = {"type": "HLLSketchEstimate", "name": name, "field": field, "round": rnd}
    elif fname == "THETA_SKETCH_ESTIMATE":
        if len(args) > 1:
            raise PlanValidationError(f"{fname} takes 1 argument")
        post = {"type": "thetaSketchEstimate", "name": name, "field": field}
    else:
        if len(args) != 2:
            raise PlanValidationError(f"{fname} takes 2 arguments")
        post = {
            "type": "quantilesDoublesSketchToQuantile",
            "name": name,
            "field": field,
            "fraction": _fraction(args[1], fname),
        }
    return SketchPlan(plan.aggregators, post, "DOUBLE"), column
