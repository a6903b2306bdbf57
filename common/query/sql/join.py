"""SQL ``JOIN`` of a datasource with a subquery or ``VALUES`` -> Druid's ``join`` datasource (pure).

As Druid plans it: the left side is the table, the right side is materialised first (the
subquery runs at the broker within ``maxSubqueryRows``; ``VALUES`` are the rows themselves) and
travels as an ``inline`` datasource, its columns renamed with ``rightPrefix`` ``j0.``; the ON
clause, equalities ``<expression of left columns> = <right column>`` joined by AND, becomes the
condition ``(<left> == "j0.<col>")``. INNER and LEFT joins only; anything else is a 400.
The SELECT is rewritten over the joined row (left names, ``j0.`` right names) so the planner
plans it as one native query over one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from common.errors import PlanValidationError
from common.expr.lookups import current_lookups
from common.query.sql.druidexpr import Translator
from common.query.sql.druidexpr_time import quote_ident
from common.query.sql.functions import Unsupported
from common.query.sql.inline import native_types

PREFIX = "j0."
META = "kdruid_join"


@dataclass
class JoinRight:
    """A materialised right side, attached to the SELECT (``sel.meta[META]``)."""

    table: pa.Table
    alias: str
    kind: str  # INNER or LEFT
    on: exp.Expression
    lookup: str | None = None  # a ``lookup.<name>`` right side: the native lookup datasource


def detach_join(sel: exp.Select) -> exp.Expression:
    """Check the join's shape; return its right side (a Subquery or Values) to materialise."""
    joins = sel.args.get("joins") or []
    if len(joins) != 1:
        raise Unsupported("Only one JOIN per SELECT is supported")
    join = joins[0]
    side = (join.args.get("side") or "").upper()
    kind = (join.args.get("kind") or "").upper()
    if side not in ("", "LEFT") or kind not in ("", "INNER", "OUTER") or join.args.get("using"):
        what = " ".join(x for x in (side, kind) if x) or "this"
        raise Unsupported(f"{what} JOIN is not supported; only INNER and LEFT joins with ON are")
    if join.args.get("on") is None:
        raise Unsupported("A JOIN needs an ON condition (equalities)")
    right = join.this
    if isinstance(right, exp.Table) and (right.db or "").upper() == "LOOKUP":
        return right
    if not isinstance(right, exp.Subquery | exp.Values):
        raise Unsupported(
            f"JOIN of [{right.sql()}] is not supported; the right side must be a subquery or "
            "VALUES, or a lookup.<name> table"
        )
    return right


def lookup_table(right: exp.Table) -> pa.Table:
    """The rows of a ``lookup.<name>`` right side as the planning broker has the lookup."""
    provider = current_lookups()
    found = provider.lookup(right.name) if provider is not None else None
    if found is None:
        raise PlanValidationError(f"Object '{right.name}' not found within '{right.db}'")
    keys = list(found.mapping)
    return pa.table(
        {
            "k": pa.array(keys, pa.string()),
            "v": pa.array([found.mapping[k] for k in keys], pa.string()),
        }
    )


def attach(sel: exp.Select, table: pa.Table, lookup: str | None = None) -> exp.Select:
    """The SELECT without its join clause, carrying the materialised right side (for a lookup
    table, its rows for planning and its name for the native ``lookup`` datasource)."""
    join = sel.args["joins"][0]
    right = join.this
    alias = right.alias_or_name if right.alias_or_name else ""
    if not alias:
        raise Unsupported("The right side of a JOIN needs an alias")
    out = sel.copy()
    out.set("joins", None)
    side = (join.args.get("side") or "").upper()
    kind = "LEFT" if side == "LEFT" else "INNER"
    out.meta[META] = JoinRight(table, alias, kind, join.args["on"], lookup)
    return out


def plan_join(
    sel: exp.Select, left: str, left_alias: str, left_types: dict[str, str], now_ms: int, tz: str
) -> tuple[exp.Select, dict[str, Any], dict[str, str]]:
    """(SELECT over the joined row, the ``join`` datasource, the joined row's column types)."""
    jr: JoinRight = sel.meta[META]
    right_types = native_types(jr.table)
    for field in jr.table.schema:
        if pa.types.is_list(field.type) or pa.types.is_struct(field.type):
            raise Unsupported(f"Right-side column [{field.name}] of type {field.type} in a JOIN")
    types = dict(left_types)
    for c, t in right_types.items():
        types[PREFIX + c] = t
    lefts = {left, left_alias}

    def resolve(col: exp.Column) -> exp.Expression:
        q, name = col.table, col.name
        if q and q == jr.alias:
            if name not in right_types:
                raise PlanValidationError(f"Column '{q}.{name}' not found in any table")
            return exp.Column(this=exp.to_identifier(PREFIX + name, quoted=True))
        if q and q not in lefts:
            raise PlanValidationError(f"Table '{q}' not found")
        if not q and name in right_types and name in left_types:
            raise PlanValidationError(f"Column '{name}' is ambiguous")
        if not q and name in right_types:
            return exp.Column(this=exp.to_identifier(PREFIX + name, quoted=True))
        return exp.Column(this=exp.to_identifier(name))

    def swap(node: exp.Expression) -> exp.Expression:
        return resolve(node) if isinstance(node, exp.Column) else node

    out = sel.copy()
    out.meta.pop(META, None)
    items = []
    for e in out.expressions:
        if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)):
            raise Unsupported("SELECT * over a JOIN is not supported; name the columns")
        if isinstance(e, exp.Column):
            e = exp.Alias(this=e, alias=exp.to_identifier(e.name))
        items.append(e.transform(swap))
    out.set("expressions", items)
    for key in ("where", "group", "having", "order"):
        part = out.args.get(key)
        if part is not None:
            out.set(key, part.transform(swap))
    on = jr.on.transform(swap)
    condition = _condition(on, types, now_ms, tz)
    datasource = {
        "type": "join",
        "left": left,
        "right": {"type": "lookup", "lookup": jr.lookup}
        if jr.lookup is not None
        else _inline(jr.table, right_types),
        "rightPrefix": PREFIX,
        "condition": condition,
        "joinType": jr.kind,
    }
    return out, datasource, types


def _condition(on: exp.Expression, types: dict[str, str], now_ms: int, tz: str) -> str:
    tr = Translator(types, now_ms, tz)
    terms: list[str] = []
    stack = [on]
    while stack:
        node = stack.pop(0)
        if isinstance(node, exp.Paren):
            stack.insert(0, node.this)
            continue
        if isinstance(node, exp.And):
            stack[:0] = [node.this, node.expression]
            continue
        if not isinstance(node, exp.EQ):
            raise Unsupported(f"JOIN condition [{node.sql()}] is not an equality")
        a, b = node.this, node.expression
        if _is_right(a):
            a, b = b, a
        if not _is_right(b) or any(_is_right(c) for c in a.find_all(exp.Column)):
            raise Unsupported(
                f"JOIN condition [{node.sql()}] must compare left-side columns with one "
                "right-side column"
            )
        if not list(a.find_all(exp.Column)):
            raise Unsupported(f"JOIN condition [{node.sql()}] compares a constant")
        text, t = tr.translate(a)
        rtype = types[b.name]
        if (t == "STRING") != (rtype == "STRING"):
            raise Unsupported(
                f"JOIN condition [{node.sql()}] compares a {t} with a {rtype}; CAST one side"
            )
        terms.append(f"({text} == {quote_ident(b.name)})")
    return " && ".join(terms)


def _is_right(node: exp.Expression) -> bool:
    return isinstance(node, exp.Column) and node.name.startswith(PREFIX)


def _inline(table: pa.Table, types: dict[str, str]) -> dict[str, Any]:
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
        elif pa.types.is_boolean(col.type):
            col = col.cast(pa.int64())
        cols.append(col.to_pylist())
    rows = [list(r) for r in zip(*cols, strict=True)] if cols else []
    return {
        "type": "inline",
        "columnNames": list(table.column_names),
        "columnTypes": [types[n].lower() for n in table.column_names],
        "rows": rows,
    }
