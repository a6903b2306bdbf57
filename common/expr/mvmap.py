"""Druid's implicit mapping of multi-value columns used as scalars (``Parser.
applyUnappliedBindings``, planned by ``ExpressionPlanner``).

An identifier is an ARRAY use when it is directly an array input of a function (Druid's
``getArrayInputs``: ``array_length(x)``, the array of ``map(.., x)``...) and a SCALAR use
anywhere else; using one identifier both ways is invalid, as in Druid. When multi-value columns
are used as scalars the expression is rewritten, as Druid rewrites it:

- the whole expression (or an array-input argument of a function) that reads them becomes
  ``map((x) -> expr, x)``, with two or more ``cartesian_map((x, y) -> expr, x, y)``;
- an apply function whose lambda reads them gets them as further lambda arguments
  (``map((x) -> x + y, x)`` => ``cartesian_map((x, y) -> x + y, x, y)``; ``fold`` becomes
  ``cartesian_fold``). Druid's rewrite of ``filter``/``any``/``all`` here discards their lambda
  (a bug), so those are refused with a 400 instead.

When mapping is in play every multi-value input's null and empty rows read as ``[null]`` (Druid
homogenizes them, so the expression is evaluated with a null input), except that an expression
of one column keeps an empty row empty (Druid's deferred single-input selector evaluates
nothing for a row with no values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from common.expr.apply import array_inputs
from common.expr.parse import (
    Apply,
    ArrayLit,
    Binary,
    Call,
    ExpressionError,
    Ident,
    Literal,
    Node,
    Unary,
)
from common.expr.registry import FUNCTIONS


@dataclass
class Bindings:
    """Druid's ``BindingAnalysis``: free identifiers in order of appearance, and which are
    used as scalars and which as arrays."""

    free: list[str]
    scalars: set[str]
    arrays: set[str]


def _array_arg(node: Call, pos: int) -> bool:
    if node.name == "cast" and pos == 0:
        target = node.args[1] if len(node.args) > 1 else None
        return isinstance(target, Literal) and "ARRAY" in str(target.value).upper()
    return FUNCTIONS[node.name].is_array_arg(pos)


def analyze(node: Node) -> Bindings:
    out = Bindings([], set(), set())
    _walk(node, frozenset(), out)
    return out


def _walk(node: Node, bound: frozenset[str], out: Bindings, as_array: bool = False) -> None:
    if isinstance(node, Ident):
        if node.name in bound:
            return
        if node.name not in out.free:
            out.free.append(node.name)
        (out.arrays if as_array else out.scalars).add(node.name)
    elif isinstance(node, Unary):
        _walk(node.arg, bound, out)
    elif isinstance(node, Binary):
        _walk(node.left, bound, out)
        _walk(node.right, bound, out)
    elif isinstance(node, ArrayLit):
        for i in node.items:
            _walk(i, bound, out)
    elif isinstance(node, Call):
        for pos, a in enumerate(node.args):
            _walk(a, bound, out, _array_arg(node, pos))
    elif isinstance(node, Apply):
        _walk(node.body, bound | set(node.params), out)
        arrays = array_inputs(node)
        for pos, a in enumerate(node.args):
            _walk(a, bound, out, pos in arrays)


def check_bindings(node: Node, text: str) -> Bindings:
    """The analysis, refusing an identifier used both as a scalar and as an array (Druid's
    ``Parser.validateExpr``)."""
    found = analyze(node)
    both = found.scalars & found.arrays
    if both:
        raise ExpressionError(
            f"Invalid expression: {text}; {sorted(both)} used as both scalar and array variables"
        )
    return found


# ------------------------------------------------------------------------------------------
# the rewrite


def _transform(node: Node, fn: Callable[[Node], Node]) -> Node:
    """Druid's ``Expr.visit``: children first, then ``fn`` on the rebuilt node."""
    if isinstance(node, Unary):
        node = Unary(node.op, _transform(node.arg, fn))
    elif isinstance(node, Binary):
        node = Binary(node.op, _transform(node.left, fn), _transform(node.right, fn))
    elif isinstance(node, ArrayLit):
        node = ArrayLit(tuple(_transform(i, fn) for i in node.items), node.elem_type)
    elif isinstance(node, Call):
        node = Call(node.name, tuple(_transform(a, fn) for a in node.args), node.pos)
    elif isinstance(node, Apply):
        node = Apply(
            node.name,
            node.params,
            _transform(node.body, fn),
            tuple(_transform(a, fn) for a in node.args),
            node.pos,
        )
    return fn(node)


def apply_unapplied(node: Node, to_apply: tuple[str, ...]) -> Node:
    """``node`` with the multi-value columns ``to_apply`` (used as scalars) mapped over."""
    used = [u for u in to_apply if u in analyze(node).free]
    if not used:
        return node

    def visit(child: Node) -> Node:
        if isinstance(child, Apply):
            return _lift(child, used)
        if isinstance(child, Call):
            args = tuple(
                apply_unapplied(a, to_apply)
                if not isinstance(a, Ident) and _array_arg(child, pos)
                else a
                for pos, a in enumerate(child.args)
            )
            return Call(child.name, args, child.pos)
        return child

    new = _transform(node, visit)
    arrays = analyze(new).arrays
    remaining = [u for u in used if u not in arrays]
    if not remaining:
        return new
    return _wrap(new, remaining)


def _wrap(node: Node, remaining: list[str]) -> Node:
    params = tuple(v for v in analyze(node).free if v in remaining)
    if not params:
        return node
    name = "map" if len(params) == 1 else "cartesian_map"
    return Apply(name, params, node, tuple(Ident(p) for p in params), 0)


def _lift(node: Apply, unapplied: list[str]) -> Apply:
    """Druid's ``liftApplyLambda``: multi-value columns the lambda reads become arguments."""
    arrays = analyze(node).arrays
    here = tuple(v for v in analyze(node).free if v in unapplied and v not in arrays)
    args = tuple(apply_unapplied(a, here) for a in node.args)
    lifted = [v for v in analyze(node.body).free if v not in node.params and v in unapplied]
    if not lifted:
        return Apply(node.name, node.params, node.body, args, node.pos)
    extra = tuple(Ident(v) for v in lifted)
    if node.name in ("map", "cartesian_map"):
        return Apply("cartesian_map", (*node.params, *lifted), node.body, (*args, *extra), node.pos)
    if node.name in ("fold", "cartesian_fold"):
        return Apply(
            "cartesian_fold",
            (*node.params[:-1], *lifted, node.params[-1]),
            node.body,
            (*node.args[:-1], *extra, node.args[-1]),
            node.pos,
        )
    raise ExpressionError(
        f"{node.name}() with a lambda reading the multi-value column(s) {lifted} as scalars is "
        "not supported (Druid's rewrite of it drops the lambda); pass the column as an array "
        "argument instead"
    )


@lru_cache(maxsize=4096)
def mapped(node: Node, text: str, multi_value: frozenset[str]) -> tuple[Node, tuple[str, ...]]:
    """(the expression to evaluate, the multi-value columns it maps over) given which of the
    columns it reads are multi-value; raises on inconsistent scalar/array use."""
    found = check_bindings(node, text)
    needs = tuple(c for c in found.free if c in multi_value and c in found.scalars)
    if not needs:
        return node, ()
    return apply_unapplied(node, needs), needs
