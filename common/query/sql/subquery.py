"""Queries that are more than one native query: CTEs, derived tables, ``IN (SELECT ...)``,
scalar subqueries and ``UNION ALL``, run the way Druid's broker runs the outer layers.

Each inner query is planned and run on its own (a native query, or constant rows), and its
result is materialised at the broker as an Arrow table, within ``maxSubqueryRows`` (Druid's
``druid.server.http.maxSubqueryRows``, default 100000; the context key overrides it), counted
over all the subqueries of the request as Druid counts them. Then:

- a derived table (``FROM (SELECT ...)``, a CTE named in FROM, a ``UNION ALL`` in FROM) becomes
  the outer query's table, which the planner evaluates at the broker (WHERE, GROUP BY,
  aggregates, HAVING, ORDER BY, LIMIT in pyarrow, as for system tables);
- ``x [NOT] IN (SELECT ...)`` becomes ``x [NOT] IN (v1, v2, ...)``, which the outer query's
  native filter takes; a null among the values keeps SQL's three-valued meaning;
- a scalar subquery ``(SELECT MAX(x) FROM t)`` becomes its one value (no row: NULL);
- ``UNION ALL`` concatenates its branches (names from the first, types unified as SQL does).

Refused with a 400: ``UNION`` without ``ALL``, ``INTERSECT``/``EXCEPT``, ``EXISTS``, and
correlated subqueries (their outer columns are unknown to the inner query).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from common.errors import ResourceLimitExceeded
from common.query.sql import window
from common.query.sql.execute import ResultSet
from common.query.sql.functions import Unsupported
from common.query.sql.inline import INLINE
from common.query.sql.join import attach, detach_join, lookup_table
from common.query.sql.unnest import UNNEST_WHERE, is_unnest_join, left_filter

DEFAULT_MAX_SUBQUERY_ROWS = 100_000
#: Runs one SELECT (no subquery left in it) over an optional materialised FROM table.
RunSelect = Callable[[exp.Select, pa.Table | None], Awaitable[ResultSet]]


def max_subquery_rows(context: dict[str, Any], default: int) -> int:
    value = context.get("maxSubqueryRows", default)
    try:
        rows = int(value)
    except (TypeError, ValueError) as exc:
        raise Unsupported(f"Invalid value [{value}] for context key [maxSubqueryRows]") from exc
    return rows if rows >= 0 else 2**62  # Druid: a negative limit means no limit


def row_limit_message(limit: int) -> str:
    """Druid's ``ClientQuerySegmentWalker`` message, word for word."""
    return (
        f"Cannot issue the query, subqueries generated results beyond maximum[{limit}] rows. "
        "Try setting the 'maxSubqueryBytes' in the query context to 'auto' for enabling byte "
        "based limit, which chooses an optimal limit based on memory size and result's heap "
        "usage or manually configure the values of either 'maxSubqueryBytes' or "
        "'maxSubqueryRows' in the query context. Manually alter the value carefully as it can "
        "cause the broker to go out of memory."
    )


def has_subqueries(tree: exp.Expression) -> bool:
    return any(
        isinstance(
            n, exp.Subquery | exp.SetOperation | exp.With | exp.Exists | exp.Join | exp.Window
        )
        for n in tree.walk()
        if n is not tree
    ) or isinstance(tree, exp.SetOperation)


class Subqueries:
    """Runs one request's query tree; ``run_select`` runs a flat SELECT."""

    def __init__(self, run_select: RunSelect, max_rows: int) -> None:
        self.run_select = run_select
        self.max_rows = max_rows
        self.rows = 0

    async def run(self, tree: exp.Expression) -> ResultSet:
        tree = _inline_ctes(tree, {})
        return await self._query(tree)

    async def _query(self, tree: exp.Expression) -> ResultSet:
        if isinstance(tree, exp.Subquery):
            return await self._query(tree.this)
        if isinstance(tree, exp.SetOperation):
            return await self._set_operation(tree)
        if not isinstance(tree, exp.Select):
            raise Unsupported(f"Unsupported query [{tree.sql()}]")
        return await self._select(tree)

    async def _materialise(self, tree: exp.Expression) -> ResultSet:
        _refuse_correlated(tree)
        rs = await self._query(tree)
        self.rows += rs.num_rows
        if self.rows > self.max_rows:
            raise ResourceLimitExceeded(row_limit_message(self.max_rows))
        return rs

    async def _select(self, sel: exp.Select) -> ResultSet:
        sel = sel.copy()
        for key in ("where", "having"):
            clause = sel.args.get(key)
            if clause is not None:
                await self._replace_subqueries(clause)
        for e in list(sel.expressions):
            await self._replace_subqueries(e)
        if window.has_window(sel):
            # Window functions: the rest of the query first, the windows on its rows here.
            inner, calls, outer = window.split(sel)
            rows = window.compute(to_table(await self._query(inner)), calls)
            outer.set("from_", exp.From(this=exp.Table(this=exp.to_identifier(INLINE))))
            return await self.run_select(outer, rows)
        frm = sel.args.get("from_") or sel.args.get("from")
        table: pa.Table | None = None
        if is_unnest_join(sel):
            # One native query over an unnest datasource; a filtered left side is its base.
            sel, where = left_filter(sel)
            if where is not None:
                sel.meta[UNNEST_WHERE] = where
            return await self.run_select(sel, None)
        if sel.args.get("joins"):
            if frm is None or not isinstance(frm.this, exp.Table):
                raise Unsupported("The left side of a JOIN must be a datasource")
            right = detach_join(sel)
            if isinstance(right, exp.Table):  # lookup.<name>: Druid's lookup datasource
                return await self.run_select(attach(sel, lookup_table(right), right.name), None)
            inner = right.this if isinstance(right, exp.Subquery) else exp.select("*").from_(right)
            right_table = to_table(await self._materialise(inner))
            return await self.run_select(attach(sel, right_table), None)
        if frm is not None and isinstance(frm.this, exp.Subquery):
            table = to_table(await self._materialise(frm.this.this))
            # The planner reads the materialised rows in place of the derived table.
            frm.set(
                "this", exp.Table(this=exp.to_identifier(INLINE), alias=frm.this.args.get("alias"))
            )
        return await self.run_select(sel, table)

    async def _replace_subqueries(self, node: exp.Expression) -> None:
        for n in list(node.walk()):
            if isinstance(n, exp.Exists):
                raise Unsupported(f"EXISTS is not supported: [{n.sql()}]")
        ins = [n for n in node.walk() if isinstance(n, exp.In) and n.args.get("query")]
        for n in ins:
            rs = await self._materialise(n.args["query"].this)
            if len(rs.columns) != 1:
                raise Unsupported(f"The subquery of IN must have one column: [{n.sql()}]")
            n.replace(_in_values(n, rs.columns[0]))
        scalars = [
            n
            for n in node.walk()
            if isinstance(n, exp.Subquery) and not isinstance(n.parent, exp.From | exp.Join)
        ]
        for n in scalars:
            rs = await self._materialise(n.this)
            if len(rs.columns) != 1:
                raise Unsupported(f"A scalar subquery must have one column: [{n.sql()}]")
            if rs.num_rows > 1:
                raise Unsupported(f"A scalar subquery returned {rs.num_rows} rows: [{n.sql()}]")
            value = rs.columns[0][0] if rs.num_rows else pa.scalar(None, rs.columns[0].type)
            n.replace(literal(value))

    async def _set_operation(self, tree: exp.SetOperation) -> ResultSet:
        if not isinstance(tree, exp.Union) or tree.args.get("distinct") is not False:
            kind = type(tree).__name__.upper()
            raise Unsupported(f"{kind} is not supported; only UNION ALL is")
        order, limit, offset = (tree.args.get(k) for k in ("order", "limit", "offset"))
        if order is not None or limit is not None or offset is not None:
            # ORDER BY / LIMIT of the whole union: an outer SELECT over the concatenation.
            inner = tree.copy()
            for k in ("order", "limit", "offset"):
                inner.set(k, None)
            outer = exp.select("*").from_(exp.Subquery(this=inner))
            for k, v in (("order", order), ("limit", limit), ("offset", offset)):
                if v is not None:
                    outer.set(k, v.copy())
            return await self._select(outer)
        branches: list[ResultSet] = []
        for side in (tree.this, tree.expression):
            branches.append(await self._query(side))
        return union_all(branches)


def _refuse_correlated(tree: exp.Expression) -> None:
    """A column qualified by a name no FROM inside ``tree`` defines belongs to an outer query."""
    names = {n.alias_or_name for n in tree.walk() if isinstance(n, exp.Table | exp.Subquery)}
    for col in tree.find_all(exp.Column):
        if col.table and col.table not in names:
            raise Unsupported(
                f"Correlated subqueries are not supported: [{col.sql()}] refers to an outer query"
            )


def _inline_ctes(tree: exp.Expression, outer: dict[str, exp.Expression]) -> exp.Expression:
    """Replace every FROM reference to a CTE by the CTE's query, as a derived table."""
    tree = tree.copy()
    ctes = dict(outer)
    with_ = tree.args.get("with_") or tree.args.get("with")
    if with_ is not None:
        if with_.args.get("recursive"):
            raise Unsupported("WITH RECURSIVE is not supported")
        for cte in with_.expressions:
            ctes[cte.alias_or_name] = _inline_ctes(cte.this, ctes)
        tree.set("with_" if "with_" in tree.args else "with", None)
    if not ctes:
        return tree

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.db and node.name in ctes:
            alias = node.alias or node.name
            return exp.Subquery(
                this=ctes[node.name].copy(), alias=exp.TableAlias(this=exp.to_identifier(alias))
            )
        if node is not tree and (node.args.get("with_") or node.args.get("with")):
            return _inline_ctes(node, ctes)
        return node

    return tree.transform(swap)


def to_table(rs: ResultSet) -> pa.Table:
    if len(set(rs.names)) != len(rs.names):
        dupes = sorted({n for n in rs.names if rs.names.count(n) > 1})
        raise Unsupported(f"A subquery has more than one column named {dupes}; alias them")
    return pa.table(dict(zip(rs.names, rs.columns, strict=True)))


def union_all(branches: list[ResultSet]) -> ResultSet:
    first = branches[0]
    width = len(first.columns)
    for b in branches[1:]:
        if len(b.columns) != width:
            raise Unsupported(
                f"UNION ALL branches have {width} and {len(b.columns)} columns; they must match"
            )
    columns = []
    for j in range(width):
        parts = [b.columns[j] for b in branches]
        typ = _union_type([p.type for p in parts], first.names[j])
        columns.append(pa.concat_arrays([_cast(p, typ) for p in parts]))
    types = [(t, s) for t, s in zip(first.native_types, first.sql_types, strict=True)]
    for j, col in enumerate(columns):
        if col.type != first.columns[j].type:
            types[j] = ("DOUBLE", "DOUBLE") if pa.types.is_floating(col.type) else types[j]
    return ResultSet(
        list(first.names), [t for t, _ in types], [s for _, s in types], columns, first.time_zone
    )


def _union_type(types: list[pa.DataType], name: str) -> pa.DataType:
    known = [t for t in types if t != pa.null()]
    if not known:
        return pa.string()
    if all(t == known[0] for t in known):
        return known[0]
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in known):
        return pa.float64() if any(pa.types.is_floating(t) for t in known) else pa.int64()
    raise Unsupported(f"UNION ALL column [{name}] has incompatible types {sorted(map(str, known))}")


def _cast(arr: pa.Array, typ: pa.DataType) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr if arr.type == typ else pc.cast(arr, typ)


def literal(value: pa.Scalar) -> exp.Expression:
    """A SQL literal for one value of a subquery result."""
    if not value.is_valid:
        return exp.Null()
    py = value.as_py()
    if pa.types.is_timestamp(value.type):
        millis = int(value.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).as_py())
        text = datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        text += f".{millis % 1000:03d}"
        return exp.Cast(this=exp.Literal.string(text), to=exp.DataType.build("TIMESTAMP"))
    if isinstance(py, bool):
        return exp.Boolean(this=py)
    if isinstance(py, int | float):
        return exp.Literal.number(repr(py) if isinstance(py, float) else py)
    if isinstance(py, str):
        return exp.Literal.string(py)
    raise Unsupported(f"A subquery value of type [{value.type}] cannot be used here")


def _in_values(node: exp.In, column: pa.Array) -> exp.Expression:
    """``x IN (subquery)`` with the subquery's values, in SQL's three-valued logic."""
    values = pc.unique(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    has_null = values.null_count > 0
    items = [literal(v) for v in values if v.is_valid]
    polarity = _polarity(node)
    if has_null and polarity is not None:
        if polarity < 0:
            # NOT (x IN (..., NULL)) is never true: let the IN be true so its negation is false.
            return exp.true()
        has_null = False  # x IN (..., NULL) is true exactly when x matches a value
    if has_null:
        items.append(exp.Null())
    if not items:
        return exp.false()  # x IN (empty) is false, even for a null x
    return exp.In(this=node.this.copy(), expressions=items)


def _polarity(node: exp.Expression) -> int | None:
    """+1 / -1 when ``node`` sits in a WHERE/HAVING predicate under an even / odd number of
    NOTs (only AND, OR, NOT and parentheses between), else None."""
    sign = 1
    cur = node
    while cur.parent is not None:
        parent = cur.parent
        if isinstance(parent, exp.Where | exp.Having):
            return sign
        if isinstance(parent, exp.Not):
            sign = -sign
        elif not isinstance(parent, exp.And | exp.Or | exp.Paren):
            return None
        cur = parent
    return None
