"""SQL ``UNNEST`` -> Druid's native ``unnest`` datasource (pure).

- ``FROM ds CROSS JOIN UNNEST(expr) AS t(col)`` (or ``FROM ds, UNNEST(...)``): the rest of the
  query runs as one native query over ``{"type": "unnest", "base": ds, "virtualColumn": {"name":
  "j0.unnest", "expression": <expr>, "outputType": ...}}``, as Druid plans it; the data nodes
  unnest each segment (``common.query.unnest``). ``col`` (or ``t.col``) is the column
  ``j0.unnest``. ``expr`` is an ARRAY (``MV_TO_ARRAY(dim)``, ``ARRAY[a, b]``,
  ``STRING_TO_ARRAY(...)``...) or a multi-value string column, which unnests to its values. A
  left side ``(SELECT * FROM ds WHERE ...)`` becomes a ``filter`` datasource under the unnest.
- ``FROM UNNEST(ARRAY[...]) [AS t(col)]``: the constant array is evaluated at the broker and its
  elements are the rows (column ``EXPR$0`` without a name), like ``VALUES``.

Refused (400): several UNNESTs or an UNNEST with JOINs in one SELECT, ``WITH ORDINALITY``, other
left sides, an UNNEST whose argument is not an array or a string.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlglot import exp

from common.query.sql.arrays import ARRAY_ELEMENT
from common.query.sql.druidexpr import Translator
from common.query.sql.functions import Unsupported, evaluate, is_constant, to_array

UNNEST_COLUMN = "j0.unnest"
UNNEST_WHERE = "kdruid_unnest_where"  # sel.meta: the WHERE of a (SELECT * FROM ds WHERE ...) left
DEFAULT_NAME = "EXPR$0"


def is_unnest_join(sel: exp.Expression) -> bool:
    joins = sel.args.get("joins") or []
    return any(isinstance(j.this, exp.Unnest) for j in joins)


def _names(node: exp.Unnest) -> tuple[str, str]:
    """(table alias, column name) of ``UNNEST(...) AS t(col)``."""
    alias = node.args.get("alias")
    if node.args.get("offset"):
        raise Unsupported("UNNEST WITH ORDINALITY is not supported")
    if len(node.expressions) != 1:
        raise Unsupported("UNNEST of several arrays is not supported; unnest one at a time")
    if alias is None:
        return "", DEFAULT_NAME
    cols = alias.args.get("columns") or []
    if len(cols) > 1:
        raise Unsupported("UNNEST produces one column; name one in AS t(col)")
    name = cols[0].name if cols else ""
    return alias.name, name or (alias.name if not cols else DEFAULT_NAME)


def constant_table(node: exp.Unnest, now_ms: int) -> pa.Table:
    """``FROM UNNEST(<constant array>)``: its elements as rows, evaluated here."""
    _, name = _names(node)
    arg = node.expressions[0]
    if not is_constant(arg):
        raise Unsupported(f"FROM UNNEST needs a constant array here: [{arg.sql()}]")
    value = to_array(evaluate(arg, {}, 1, now_ms), 1)
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if not (pa.types.is_list(value.type) or pa.types.is_large_list(value.type)):
        raise Unsupported(f"UNNEST needs an array: [{arg.sql()}]")
    elements = value.flatten() if value[0].is_valid else pa.array([], value.type.value_type)
    if pa.types.is_null(elements.type):
        elements = elements.cast(pa.string())
    return pa.table({name: elements})


def left_filter(sel: exp.Select) -> tuple[exp.Select, exp.Expression | None]:
    """A left side ``(SELECT * FROM ds [WHERE w])``: FROM ds, and ``w`` for a filter datasource."""
    frm = sel.args.get("from_") or sel.args.get("from")
    left = frm.this if frm is not None else None
    if not isinstance(left, exp.Subquery):
        return sel, None
    inner = left.this
    simple = (
        isinstance(inner, exp.Select)
        and len(inner.expressions) == 1
        and isinstance(inner.expressions[0], exp.Star)
        and not any(
            inner.args.get(k) for k in ("group", "having", "order", "limit", "offset", "joins")
        )
        and isinstance(_from_this(inner), exp.Table)
    )
    if not simple:
        raise Unsupported(
            "The left side of an UNNEST must be a datasource or (SELECT * FROM datasource "
            "[WHERE ...])"
        )
    assert isinstance(inner, exp.Select)
    out = sel.copy()
    source = _from_this(inner)
    assert source is not None  # checked by ``simple`` above
    table = source.copy()
    if left.alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(left.alias)))
    out.set("from_" if "from_" in out.args else "from", exp.From(this=table))
    where = inner.args.get("where")
    return out, where.this if where is not None else None


def plan_unnest(
    sel: exp.Select,
    table: str,
    types: dict[str, str],
    now_ms: int,
    tz: str,
    base_filter: dict[str, Any] | None,
) -> tuple[exp.Select, dict[str, Any], dict[str, str]]:
    """(SELECT over the unnested rows, the ``unnest`` datasource, the rows' column types)."""
    joins = sel.args.get("joins") or []
    if len(joins) != 1:
        raise Unsupported("Only one UNNEST (and no other JOIN) per SELECT is supported")
    join = joins[0]
    if join.args.get("on") is not None or (join.args.get("side") or "").upper():
        raise Unsupported("UNNEST is supported with CROSS JOIN or a comma, without ON")
    node = join.this
    assert isinstance(node, exp.Unnest)
    alias, name = _names(node)
    arg = node.expressions[0]
    text, typ = Translator(dict(types), now_ms, tz).translate(arg)
    if typ in ARRAY_ELEMENT:
        elem = ARRAY_ELEMENT[typ]
    elif typ == "STRING":
        elem = "STRING"  # a multi-value string: its values
    else:
        raise Unsupported(
            f"UNNEST needs an array or a multi-value string, got {typ}: [{arg.sql()}]"
        )
    base: dict[str, Any] = {"type": "table", "name": table}
    if base_filter is not None:
        base = {"type": "filter", "base": base, "filter": base_filter}
    ds = {
        "type": "unnest",
        "base": base,
        "virtualColumn": {
            "type": "expression",
            "name": UNNEST_COLUMN,
            "expression": text,
            "outputType": typ,
        },
        "unnestFilter": None,
    }
    out_types = dict(types)
    out_types[UNNEST_COLUMN] = elem

    def is_unnested(col: exp.Column) -> bool:
        if col.table:
            return col.table == alias and col.name == name
        return col.name == name and name not in types

    def swap(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Column) and is_unnested(n):
            return exp.Column(this=exp.to_identifier(UNNEST_COLUMN, quoted=True))
        if isinstance(n, exp.Column) and n.table:
            return exp.Column(this=n.this.copy())  # a left column, qualified
        return n

    out = sel.copy()
    out.set("joins", None)
    items: list[exp.Expression] = []
    for e in out.expressions:
        if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)):
            items.extend(exp.column(c) for c in types)
            items.append(
                exp.Alias(
                    this=exp.Column(this=exp.to_identifier(UNNEST_COLUMN, quoted=True)),
                    alias=exp.to_identifier(name),
                )
            )
            continue
        if isinstance(e, exp.Column) and is_unnested(e):
            e = exp.Alias(this=e, alias=exp.to_identifier(name))
        items.append(e.transform(swap))
    out.set("expressions", items)
    for key in ("where", "group", "having", "order"):
        part = out.args.get(key)
        if part is not None:
            out.set(key, part.transform(swap))
    return out, ds, out_types


def _from_this(select: exp.Expression) -> exp.Expression | None:
    """What a SELECT reads FROM (sqlglot names the arg ``from_`` or ``from`` by version)."""
    src = select.args.get("from_") or select.args.get("from")
    return src.this if src is not None else None
