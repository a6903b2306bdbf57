"""``lookup(expr, 'lookupName'[, 'replaceMissingValueWith'])``: Druid's ``LookupExprMacro``.

The value of ``expr`` (as a string: ``6`` is ``'6'``) is looked up in the registered lookup of
the node evaluating the query (``common.expr.lookups``); a null or missing key gives the third
argument, default null. The lookup name and the replacement must be literals. A lookup the node
does not have is a 400 ``Lookup [name] not found`` when the expression is evaluated.
"""

from __future__ import annotations

from typing import Any

from common.expr.fn_kernels import KERNELS
from common.expr.kernels import V, strs
from common.expr.lookups import extract, resolve
from common.expr.parse import ExpressionError
from common.expr.registry import register
from common.expr.values import to_str


def _check(lits: list[Any]) -> None:
    if not isinstance(lits[1], str) or not lits[1]:
        raise ExpressionError("Function[lookup] second argument must be a registered lookup name")


def replacement(args: list[Any]) -> str | None:
    """The third argument as a string (Druid's ``Evals.asString`` of the literal)."""
    return to_str(args[2]) if len(args) > 2 else None


def _row(a: list[Any]) -> Any:
    got = resolve(str(a[1])).apply(to_str(a[0]))
    return got if got is not None else replacement(a)


def _kernel(args: list[V], n: int) -> V:
    consts = [None, *(a.as_py() for a in args[1:])]  # the name and replacement are literals
    return extract(resolve(str(consts[1])), strs(args[0]), replacement(consts))


register("lookup", 2, 3, _row, out="STRING", literals=(1, 2), check=_check)
KERNELS["lookup"] = _kernel
