"""Druid's reverse lookup (its ``ReverseLookupRule``): in WHERE, ``LOOKUP(x, 'name') = 'v'`` and
``LOOKUP(x, 'name') IN ('v1', 'v2')`` become ``x IN (<keys mapping to those values>)`` (no key:
FALSE), so the data nodes filter on ``x`` itself (its dictionary, no lookup per row). The answer
is the same; only the plan changes.

Reversed only where the equivalence holds: comparisons reachable from the WHERE root through
AND/OR (never under NOT: a key missing from the lookup makes ``LOOKUP(x) <> 'v'`` unknown but
``x NOT IN (keys)`` true), of a string ``x``, with literal values; not when a value equals the
call's ``replaceMissingValueWith`` (then every missing key matches too). Context keys as Druid:
``sqlReverseLookup`` (default true) and ``sqlReverseLookupThreshold`` (default 10000: at most
that many keys, else the call stays).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from common.expr.lookups import current_lookups
from common.query.sql.druidexpr import Translator
from common.query.sql.functions import Unsupported, lookup_args

DEFAULT_THRESHOLD = 10_000


def reverse_lookups(
    where: exp.Expression,
    types: dict[str, str],
    context: Mapping[str, Any],
    now_ms: int,
    tz: str,
) -> exp.Expression:
    """``where`` with its reversible LOOKUP comparisons replaced."""
    if context.get("sqlReverseLookup", True) in (False, "false"):
        return where
    provider = current_lookups()
    if provider is None:
        return where
    try:
        threshold = int(context.get("sqlReverseLookupThreshold", DEFAULT_THRESHOLD))
    except (TypeError, ValueError) as exc:
        raise Unsupported(
            "Invalid value for context key [sqlReverseLookupThreshold]: "
            f"{context.get('sqlReverseLookupThreshold')}"
        ) from exc
    tr = Translator(dict(types), now_ms, tz)

    def reverse(call: exp.Expression, values: list[exp.Expression]) -> exp.Expression | None:
        if not (isinstance(call, exp.Anonymous) and call.name.upper() == "LOOKUP"):
            return None
        name, replace = lookup_args(list(call.expressions))
        lookup = provider.lookup(name)
        arg = call.expressions[0]
        if lookup is None or not all(isinstance(v, exp.Literal | exp.Null) for v in values):
            return None
        try:
            if tr.translate(arg)[1] != "STRING":
                return None
        except Unsupported:
            return None
        wanted = [str(v.this) for v in values if isinstance(v, exp.Literal) and v.is_string]
        if len(wanted) != sum(1 for v in values if not isinstance(v, exp.Null)):
            return None  # a number compared with the lookup's string: left to the planner
        if replace is not None and replace in wanted:
            return None
        keys = sorted({k for v in wanted for k in lookup.unapply(v)})
        if len(keys) > threshold:
            return None
        if not keys:
            return exp.false()
        return exp.In(this=arg.copy(), expressions=[exp.Literal.string(k) for k in keys])

    def visit(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Paren):
            return exp.Paren(this=visit(node.this))
        if isinstance(node, exp.And | exp.Or):
            return type(node)(this=visit(node.this), expression=visit(node.expression))
        if isinstance(node, exp.EQ):
            out = reverse(node.this, [node.expression]) or reverse(node.expression, [node.this])
            return out if out is not None else node
        if isinstance(node, exp.In) and node.args.get("query") is None:
            out = reverse(node.this, list(node.expressions))
            return out if out is not None else node
        return node

    return visit(where)
