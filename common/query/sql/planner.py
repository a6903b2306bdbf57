"""Plan a parsed SELECT onto one native query plus a post-processing step (pure, no I/O).

- No aggregate and no GROUP BY: ``scan`` (ORDER BY only on ``__time``, as Druid).
- GROUP BY only a floor of ``__time`` (or nothing): ``timeseries`` with that granularity.
- One dimension, no time floor, ORDER BY one aggregate and LIMIT, no HAVING/OFFSET: ``topN``.
- Otherwise ``groupBy`` (ORDER BY/LIMIT pushed into ``limitSpec`` when it can be).

Aggregates become native aggregators (AVG a sum, a count and a ``quotient`` post-aggregator);
the select list, HAVING and ORDER BY are rewritten over the native output columns (``d0..``
dimensions, ``a0..`` aggregators, ``p0..`` post-aggregators, ``__time``) and evaluated by
``functions.evaluate`` after the native query returns. ``INFORMATION_SCHEMA`` and ``sys`` tables
are planned the same way over an Arrow table the catalog supplies (``native`` is then None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlglot import exp

from common.errors import PlanValidationError
from common.expr.lookups import current_lookups
from common.query.sql.aggregates import AggSpec, has_agg, is_agg, plan_aggregate
from common.query.sql.arrays import ARRAY_ELEMENT
from common.query.sql.context import floor_in_zone, refuse_zone_dependent, time_zone
from common.query.sql.druidexpr import VirtualColumns, native_output_type
from common.query.sql.functions import (
    Unsupported,
    known_lookup,
    lookup_args,
    time_floor_of,
)
from common.query.sql.inline import INLINE, native_types, no_from_table, values_table
from common.query.sql.join import META as JOIN_META
from common.query.sql.join import plan_join
from common.query.sql.local import Computed
from common.query.sql.parse import Statement
from common.query.sql.reverse_lookup import reverse_lookups
from common.query.sql.unnest import (
    UNNEST_WHERE,
    constant_table,
    is_unnest_join,
    left_filter,
    plan_unnest,
)
from common.query.sql.where import TIME, FilterPlanner

SYSTEM_SCHEMAS = ("INFORMATION_SCHEMA", "SYS")
#: The columns of every ``lookup.<name>`` table, as Druid's ``LookupSchema``.
LOOKUP_COLUMNS = {"k": "STRING", "v": "STRING"}


@dataclass
class Plan:
    table: str  # datasource, or "schema.table" for a system table
    system: bool
    native: dict[str, Any] | None
    query_type: str  # timeseries/topN/groupBy/scan, or "system"
    outputs: list[tuple[str, exp.Expression]]  # output name, expression over base columns
    base_types: dict[str, str]  # base column -> native type (STRING/LONG/DOUBLE/...)
    aggs: list[AggSpec] = field(default_factory=list)
    dims: list[tuple[str, str]] = field(default_factory=list)  # (outputName, column)
    filter_expr: exp.Expression | None = None  # system tables: WHERE, evaluated locally
    having: exp.Expression | None = None
    order: list[tuple[exp.Expression, bool]] = field(default_factory=list)  # (expr, desc)
    limit: int | None = None
    offset: int = 0
    aggregate_all: bool = False  # aggregation without GROUP BY: always one row
    has_time_key: bool = False
    explain: bool = False
    time_zone: str = "UTC"  # sqlTimeZone
    now_ms: int | None = None  # CURRENT_TIMESTAMP
    inline: pa.Table | None = None  # SELECT without FROM, VALUES: the rows themselves
    exact_distinct: str | None = None  # the groupBy dimension whose non-null values are counted
    computed: dict[str, exp.Expression] = field(default_factory=dict)  # broker-side tables


def plan_sql(
    stmt: Statement,
    schemas: Mapping[str, Mapping[str, str]],
    *,
    now_ms: int,
    context: Mapping[str, Any] | None = None,
    system_columns: Mapping[str, Mapping[str, str]] | None = None,
    from_table: pa.Table | None = None,
) -> Plan:
    """Plan ``stmt``; ``schemas`` maps datasource -> ordered {column: native type}.

    ``from_table`` is the materialised result of the FROM subquery, if there is one."""
    planner = _Planner(stmt, schemas, system_columns or {}, now_ms, dict(context or {}))
    planner.from_table = from_table
    return planner.plan()


class _Planner:
    def __init__(
        self,
        stmt: Statement,
        schemas: Mapping[str, Mapping[str, str]],
        system: Mapping[str, Mapping[str, str]],
        now_ms: int,
        context: dict[str, Any],
    ) -> None:
        self.stmt = stmt
        self.sel = stmt.select
        self.schemas = schemas
        self.system_tables = system
        self.now_ms = now_ms
        self.context = context
        self.tz = time_zone(context)
        self.inline: pa.Table | None = None
        self.from_table: pa.Table | None = None
        self.join_ds: dict[str, Any] | None = None
        #: The native datasource of a ``lookup.<name>`` table (else the table name).
        self.table_ds: dict[str, Any] | None = None
        #: GROUP BY LOOKUP(column, ...) keys: dimension output name -> its extractionFn.
        self.extractions: dict[str, dict[str, Any]] = {}

    def plan(self) -> Plan:
        joined = self._unnest() or self._join()
        sel = self.sel
        for key in ("joins", "laterals", "windows", "qualify", "with_", "with"):
            if sel.args.get(key):
                raise Unsupported(f"{key.rstrip('_').upper()} is not supported")
        if any(isinstance(n, exp.Window) for n in sel.walk()):
            raise Unsupported("Window functions are not supported")
        if any(isinstance(n, exp.Subquery | exp.Union) for n in sel.walk() if n is not sel):
            raise Unsupported("Subqueries are not supported")
        table, system, types = joined if joined is not None else self._table()
        self.types = dict(types)
        self.limit, self.offset = self._limit()
        items = self._select_items()
        group = sel.args.get("group")
        group_exprs = [self._resolve(e, items) for e in (group.expressions if group else [])]
        aggregating = (
            bool(group_exprs) or any(has_agg(e) for _, e in items) or sel.args.get("distinct")
        )
        if sel.args.get("distinct"):
            if group_exprs:
                raise Unsupported("SELECT DISTINCT with GROUP BY is not supported")
            group_exprs = [e for _, e in items]
        if self.tz != "UTC":
            refuse_zone_dependent(sel, self.tz, {g.sql() for g in group_exprs})
        if sel.args.get("having") is not None and not aggregating:
            raise Unsupported("HAVING without aggregation is not supported")
        where = sel.args.get("where")
        where_expr = where.this if where is not None else None
        if where_expr is not None and not system:
            where_expr = reverse_lookups(where_expr, self.types, self.context, self.now_ms, self.tz)
        if aggregating:
            plan = self._aggregate(table, system, items, group_exprs, where_expr)
        else:
            plan = self._scan(table, system, items, where_expr)
        plan.explain = self.stmt.explain
        plan.time_zone = self.tz
        plan.now_ms = self.now_ms
        plan.inline = self.inline
        return plan

    # ---- FROM
    def _join(self) -> tuple[str, bool, Mapping[str, str]] | None:
        """A JOIN (its right side materialised by ``subquery``): the SELECT over the joined
        row, and the ``join`` datasource the native query reads."""
        if JOIN_META not in self.sel.meta:
            return None
        table, system, types = self._table()
        if system:
            raise Unsupported("JOIN of a system table or of inline rows is not supported")
        if self.table_ds is not None:
            raise Unsupported(
                "A lookup on the left side of a JOIN is not supported; put the datasource first"
            )
        frm = self.sel.args.get("from_") or self.sel.args.get("from")
        alias = frm.this.alias_or_name if frm is not None else table
        assert isinstance(self.sel, exp.Select)
        sel, ds, joined = plan_join(self.sel, table, alias, dict(types), self.now_ms, self.tz)
        self.sel = sel
        self.join_ds = ds
        return table, False, joined

    def _unnest(self) -> tuple[str, bool, Mapping[str, str]] | None:
        """``FROM ds CROSS JOIN UNNEST(...)``: the SELECT over the unnested rows, and the
        ``unnest`` datasource the native query reads."""
        if not is_unnest_join(self.sel):
            return None
        assert isinstance(self.sel, exp.Select)
        sel, base_where = left_filter(self.sel)
        if base_where is None:
            base_where = self.sel.meta.get(UNNEST_WHERE)
        self.sel = sel
        table, system, types = self._table()
        if system:
            raise Unsupported(
                "UNNEST over a system table, inline rows or a subquery is not supported; "
                "unnest over a datasource"
            )
        base_filter = None
        if base_where is not None:
            base_filter = FilterPlanner(dict(types), self.now_ms).filter(base_where)
        sel, ds, unnested = plan_unnest(
            self.sel, table, dict(types), self.now_ms, self.tz, base_filter
        )
        self.sel = sel
        self.join_ds = ds
        return table, False, unnested

    def _table(self) -> tuple[str, bool, Mapping[str, str]]:
        frm = self.sel.args.get("from_") or self.sel.args.get("from")
        if frm is None:
            self.inline = no_from_table()
            return INLINE, True, {}
        t = frm.this
        if isinstance(t, exp.Table) and t.name == INLINE and self.from_table is not None:
            self.inline = self.from_table
            return INLINE, True, native_types(self.inline)
        if isinstance(t, exp.Values):
            self.inline = values_table(t, self.now_ms, self.tz)
            return INLINE, True, native_types(self.inline)
        if isinstance(t, exp.Unnest):
            self.inline = constant_table(t, self.now_ms)
            return INLINE, True, native_types(self.inline)
        if not isinstance(t, exp.Table) or not t.name:
            raise Unsupported(f"Unsupported FROM clause [{frm.sql()}]")
        db = t.db.upper() if t.db else ""
        if db in SYSTEM_SCHEMAS:
            key = f"{db}.{t.name.upper()}"
            cols = self.system_tables.get(key)
            if cols is None:
                raise PlanValidationError(f"Object '{t.name}' not found within '{t.db}'")
            return key, True, cols
        if db == "LOOKUP":
            provider = current_lookups()
            if provider is None or provider.lookup(t.name) is None:
                raise PlanValidationError(f"Object '{t.name}' not found within '{t.db}'")
            self.table_ds = {"type": "lookup", "lookup": t.name}
            return t.name, False, dict(LOOKUP_COLUMNS)
        if db and db != "DRUID":
            raise PlanValidationError(f"Object '{t.db}' not found")
        if t.name not in self.schemas:
            raise PlanValidationError(f"Object '{t.name}' not found")
        return t.name, False, self.schemas[t.name]

    def _limit(self) -> tuple[int | None, int]:
        def num(key: str) -> int | None:
            node = self.sel.args.get(key)
            if node is None:
                return None
            v = node.expression if node.expression is not None else node.this
            if not (isinstance(v, exp.Literal) and not v.is_string and v.this.isdigit()):
                raise Unsupported(f"{key.upper()} must be a non-negative integer literal")
            return int(v.this)

        return num("limit"), num("offset") or 0

    def _select_items(self) -> list[tuple[str, exp.Expression]]:
        items: list[tuple[str, exp.Expression]] = []
        for i, e in enumerate(self.sel.expressions):
            if isinstance(e, exp.Star) or (
                isinstance(e, exp.Column) and isinstance(e.this, exp.Star)
            ):
                items.extend((c, exp.column(c)) for c in self.types)
                continue
            if isinstance(e, exp.Alias):
                items.append((e.alias, e.this))
            elif isinstance(e, exp.Column):
                items.append((e.name, e))
            else:
                items.append((f"EXPR${i}", e))
        for _, e in items:
            for col in e.find_all(exp.Column):
                if col.name not in self.types:
                    raise PlanValidationError(f"Column '{col.name}' not found in any table")
        return items

    def _resolve(
        self, node: exp.Expression, items: list[tuple[str, exp.Expression]]
    ) -> exp.Expression:
        """GROUP BY / ORDER BY ordinals and select aliases -> the select expression."""
        if isinstance(node, exp.Literal) and not node.is_string:
            k = int(node.this)
            if not 1 <= k <= len(items):
                raise PlanValidationError(f"Ordinal out of range: {k}")
            return items[k - 1][1]
        if isinstance(node, exp.Column) and not node.table and node.name not in self.types:
            for name, e in items:
                if name == node.name:
                    return e
            raise PlanValidationError(f"Column '{node.name}' not found in any table")
        return node

    # ---- scan
    def _scan(
        self,
        table: str,
        system: bool,
        items: list[tuple[str, exp.Expression]],
        where: exp.Expression | None,
    ) -> Plan:
        order = self._order(items, lambda e: e)
        plan = Plan(
            table=table,
            system=system,
            native=None,
            query_type="system" if system else "scan",
            outputs=items,
            base_types=self.types,
            order=order,
            limit=self.limit,
            offset=self.offset,
        )
        if system:
            plan.filter_expr = where
            return plan
        vcs = VirtualColumns(dict(self.types), self.now_ms, self.tz)
        intervals, flt = FilterPlanner(self.types, self.now_ms, vcs).split(where)
        items = self._scan_virtual(items, vcs, plan)
        columns: list[str] = []
        for _, e in items:
            for c in e.find_all(exp.Column):
                if c.name not in columns:
                    columns.append(c.name)
        scan_order = "none"
        if order:
            if len(order) != 1 or not (
                isinstance(order[0][0], exp.Column) and order[0][0].name == TIME
            ):
                keys = ", ".join(e.sql() for e, _ in order)
                raise Unsupported(
                    f"SQL query requires ordering a table by non-time column [{keys}], "
                    "which is not supported."
                )
            scan_order = "descending" if order[0][1] else "ascending"
            if TIME not in columns:
                columns.append(TIME)
        native: dict[str, Any] = {
            "queryType": "scan",
            "dataSource": self.join_ds or self.table_ds or table,
            "intervals": {"type": "intervals", "intervals": [str(i) for i in intervals]},
            "resultFormat": "compactedList",
            "columns": columns or [TIME],
            "legacy": False,
            "context": self.context,
        }
        if vcs.specs:
            native["virtualColumns"] = vcs.specs
        if flt is not None:
            native["filter"] = flt
        if scan_order != "none":
            native["order"] = scan_order
        if self.limit is not None:
            native["limit"] = self.limit
        if self.offset:
            native["offset"] = self.offset
        plan.native = native
        plan.order, plan.limit, plan.offset = [], None, 0
        return plan

    def _scan_virtual(
        self, items: list[tuple[str, exp.Expression]], vcs: VirtualColumns, plan: Plan
    ) -> list[tuple[str, exp.Expression]]:
        """Select-list expressions of a scan become virtual columns, as Druid plans them;
        one with no Druid translation is computed at the broker instead."""
        out: list[tuple[str, exp.Expression]] = []
        base = dict(self.types)
        for name, e in items:
            if isinstance(e, exp.Column) or not any(True for _ in e.find_all(exp.Column)):
                out.append((name, e))
                continue
            try:
                _, typ = vcs.tr.translate(e)
            except Unsupported:
                out.append((name, e))
                continue
            if typ in ("NULL",):
                out.append((name, e))
                continue
            vname, typ = vcs.add(e)
            # a condition is a LONG 1/0 virtual column, read back as a BOOLEAN (as Druid)
            base[vname] = typ if typ in ("TIMESTAMP", "BOOLEAN") else native_output_type(typ)
            out.append((name, exp.Column(this=exp.to_identifier(vname))))
        plan.outputs = out
        plan.base_types = base
        return out

    def _order(
        self, items: list[tuple[str, exp.Expression]], rewrite: Any
    ) -> list[tuple[exp.Expression, bool]]:
        order = self.sel.args.get("order")
        out: list[tuple[exp.Expression, bool]] = []
        aliases = {name: e for name, e in items}
        for o in order.expressions if order else []:
            key = o.this
            # ORDER BY names an output column first (SQL), the table's column second.
            if isinstance(key, exp.Column) and not key.table and key.name in aliases:
                node = aliases[key.name]
            else:
                node = self._resolve(key, items)
            out.append((rewrite(node), bool(o.args.get("desc"))))
        return out

    # ---- aggregation
    def _aggregate(
        self,
        table: str,
        system: bool,
        items: list[tuple[str, exp.Expression]],
        group_exprs: list[exp.Expression],
        where: exp.Expression | None,
    ) -> Plan:
        vcs = None if system else VirtualColumns(dict(self.types), self.now_ms, self.tz)
        fp = FilterPlanner(self.types, self.now_ms, vcs)
        computed = Computed(self.types) if system else None
        keys: dict[str, str] = {}  # sql text of a group key -> base column
        dims: list[tuple[str, str]] = []
        granularity: Any = "all"
        has_time = False
        for g in group_exprs:
            floor = (
                time_floor_of(g)
                if not (isinstance(g, exp.Column) and g.name == TIME)
                else (g, "none")
            )
            arg = floor[0] if floor is not None else None
            if (
                floor is not None
                and not system
                and not has_time
                and isinstance(arg, exp.Column)
                and arg.name == TIME
            ):
                spec = floor[1]
                has_time = True
                granularity = floor_in_zone(spec, self.tz) if isinstance(spec, dict) else spec
                keys[g.sql()] = TIME
                continue
            if g.sql() in keys:
                continue
            if not isinstance(g, exp.Column) and computed is not None:
                name = f"d{len(dims)}"
                keys[g.sql()] = name
                dims.append((name, computed.column(g).name))
                continue
            extraction = self._lookup_extraction(g) if vcs is not None else None
            if extraction is not None:
                name = f"d{len(dims)}"
                keys[g.sql()] = name
                dims.append((name, extraction[0]))
                self.extractions[name] = extraction[1]
                continue
            if not isinstance(g, exp.Column) and vcs is not None:
                vname, vtype = vcs.add(g)
                if vtype == "BOOLEAN":
                    raise Unsupported(f"GROUP BY a condition [{g.sql()}] is not supported")
                name = f"d{len(dims)}"
                keys[g.sql()] = name
                dims.append((name, vname))
                continue
            if not isinstance(g, exp.Column):
                raise Unsupported(
                    f"GROUP BY expression [{g.sql()}] is not supported (needs virtual columns); "
                    "group by the column and compute the expression in the select list"
                )
            if self.types[g.name].startswith("COMPLEX"):
                raise Unsupported(f"Cannot GROUP BY complex column [{g.name}]")
            name = f"d{len(dims)}"
            keys[g.sql()] = name
            dims.append((name, g.name))
        aggs: list[AggSpec] = []
        # Only a node of a group key's class can have a group key's text: the others are not
        # rendered (``sql()`` of every node was a third of planning).
        key_classes = {type(g) for g in group_exprs}

        def rewrite(node: exp.Expression) -> exp.Expression:
            def fn(n: exp.Expression) -> exp.Expression:
                agg = is_agg(n)
                if not agg and type(n) not in key_classes:
                    return n
                text = n.sql()
                if text in keys:
                    return exp.column(keys[text])
                if agg:
                    for a in aggs:
                        if a.sql == text:
                            return exp.column(a.name)
                    agg_node = computed.aggregate(n) if computed is not None else n
                    spec = plan_aggregate(agg_node, len(aggs), fp, system, self.types, vcs)
                    spec.sql = text
                    aggs.append(spec)
                    return exp.column(spec.name)
                return n

            out = node.transform(fn)  # transform copies the tree first
            base = set(keys.values()) | {a.name for a in aggs}
            for c in out.find_all(exp.Column):
                if c.name not in base:
                    raise PlanValidationError(f"Expression '{c.name}' is not being grouped")
            return out

        outputs = [(name, rewrite(e)) for name, e in items]
        having_node = self.sel.args.get("having")
        having = rewrite(having_node.this) if having_node is not None else None
        order = self._order(items, rewrite)
        base_types: dict[str, str] = {TIME: "LONG"}
        col_types = vcs.types if vcs is not None else self.types
        for name, col in dims:
            base_types[name] = (
                col_types[col]
                if col_types[col] in ("LONG", "DOUBLE", "FLOAT", *ARRAY_ELEMENT)
                else "STRING"
            )
            if col == TIME or (vcs is not None and vcs.sql_types.get(col) == "TIMESTAMP"):
                base_types[name] = "TIMESTAMP"
        for a in aggs:
            base_types[a.name] = a.native_type
        plan = Plan(
            table=table,
            system=system,
            native=None,
            query_type="system",
            outputs=outputs,
            base_types=base_types,
            aggs=aggs,
            dims=dims,
            having=having,
            order=order,
            limit=self.limit,
            offset=self.offset,
            aggregate_all=not group_exprs,
            has_time_key=has_time,
        )
        if system:
            plan.filter_expr = where
            plan.computed = computed.columns if computed is not None else {}
            return plan
        intervals, flt = fp.split(where)
        common: dict[str, Any] = {
            "dataSource": self.join_ds or self.table_ds or table,
            "intervals": {"type": "intervals", "intervals": [str(i) for i in intervals]},
            "granularity": granularity,
        }
        if vcs is not None and vcs.specs:
            common["virtualColumns"] = vcs.specs
        if flt is not None:
            common["filter"] = flt
        if any(a.distinct for a in aggs) and self.context.get("useApproximateCountDistinct") in (
            False,
            "false",
        ):
            self._exact_distinct(plan, common, dims)
            return plan
        common["aggregations"] = [x for a in aggs for x in a.aggregators]
        posts = [a.post for a in aggs if a.post is not None]
        if posts:
            common["postAggregations"] = posts
        self._choose(plan, common, dims)
        return plan

    def _choose(self, plan: Plan, common: dict[str, Any], dims: list[tuple[str, str]]) -> None:
        ctx = dict(self.context)
        order_cols = [(e.name, desc) for e, desc in plan.order if isinstance(e, exp.Column)]
        simple_order = len(order_cols) == len(plan.order)
        if not dims:
            native = {"queryType": "timeseries", **common}
            if plan.has_time_key:
                ctx["skipEmptyBuckets"] = True
            if plan.having is None and simple_order and all(c == TIME for c, _ in order_cols):
                if order_cols and order_cols[0][1]:
                    native["descending"] = True
                if plan.limit and not plan.offset:
                    native["limit"] = plan.limit
                    plan.limit = None
                plan.order = []
            native["context"] = ctx
            plan.native, plan.query_type = native, "timeseries"
            return
        agg_names = {a.name for a in plan.aggs} | {a.post["name"] for a in plan.aggs if a.post}
        if (
            len(dims) == 1
            and plan.base_types.get(dims[0][0]) not in ARRAY_ELEMENT  # topN has no arrays
            and not plan.has_time_key
            and plan.having is None
            and not plan.offset
            and plan.limit is not None
            and plan.limit > 0
            and len(order_cols) == 1
            and simple_order
            and order_cols[0][0] in agg_names
        ):
            name, desc = order_cols[0]
            metric: dict[str, Any] = {"type": "numeric", "metric": name}
            if not desc:
                metric = {"type": "inverted", "metric": metric}
            native = {
                "queryType": "topN",
                **common,
                "dimension": self._dim_spec(plan, dims[0]),
                "metric": metric,
                "threshold": plan.limit,
                "context": ctx,
            }
            plan.native, plan.query_type = native, "topN"
            plan.order, plan.limit = [], None
            return
        native = {
            "queryType": "groupBy",
            **common,
            "dimensions": [self._dim_spec(plan, d) for d in dims],
        }
        dim_names = {d for d, _ in dims}
        if (
            plan.having is None
            and simple_order
            and all(c in dim_names or c in agg_names for c, _ in order_cols)
            and (plan.order or plan.limit is not None)
        ):
            columns = [
                {
                    "dimension": c,
                    "direction": "descending" if desc else "ascending",
                    "dimensionOrder": _comparator(plan.base_types.get(c)),
                }
                for c, desc in order_cols
            ]
            spec: dict[str, Any] = {"type": "default", "columns": columns}
            if plan.limit is not None:
                spec["limit"] = plan.limit
            if plan.offset:
                spec["offset"] = plan.offset
            if plan.limit != 0:
                native["limitSpec"] = spec
                plan.order, plan.limit, plan.offset = [], None, 0
        native["context"] = ctx
        plan.native, plan.query_type = native, "groupBy"

    def _exact_distinct(
        self, plan: Plan, common: dict[str, Any], dims: list[tuple[str, str]]
    ) -> None:
        """Exact ``COUNT(DISTINCT col)``: a groupBy over the dimensions and ``col``, whose rows
        with a non-null ``col`` are counted per group at the broker (Druid plans a nested
        groupBy the same way). Only the one-aggregate shape is built; the rest is refused."""
        a = plan.aggs[0]
        if (
            len(plan.aggs) != 1
            or a.filtered
            or plan.has_time_key
            or a.column is None
            or a.column not in self.types
            or "virtualColumns" in common
        ):
            raise Unsupported(
                "Exact COUNT(DISTINCT) (useApproximateCountDistinct=false) is supported as the "
                "only aggregate, without FILTER or a time floor; set "
                "useApproximateCountDistinct=true for the approximate count"
            )
        if self.types[a.column].startswith("COMPLEX"):
            raise Unsupported(f"Exact COUNT(DISTINCT) of complex column [{a.column}]")
        value = f"{a.name}:value"
        plan.base_types[value] = (
            self.types[a.column] if self.types[a.column] in ("LONG", "DOUBLE") else "STRING"
        )
        plan.exact_distinct = value
        native = {
            "queryType": "groupBy",
            **common,
            "dimensions": [self._dim_spec(plan, d) for d in [*dims, (value, a.column)]],
            "aggregations": [],
            "context": dict(self.context),
        }
        plan.native, plan.query_type = native, "groupBy"

    def _lookup_extraction(self, g: exp.Expression) -> tuple[str, dict[str, Any]] | None:
        """``LOOKUP(<string column>, 'name'[, 'replace'])`` as a GROUP BY key: Druid's
        ``extraction`` dimension spec with a ``registeredLookup`` function (its
        ``QueryLookupOperatorConversion`` of a simple extraction)."""
        if not (isinstance(g, exp.Anonymous) and g.name.upper() == "LOOKUP" and g.expressions):
            return None
        arg = g.expressions[0]
        if not isinstance(arg, exp.Column) or arg.name == TIME:
            return None
        if self.types.get(arg.name) != "STRING":
            return None
        name, replace = lookup_args(list(g.expressions))
        known_lookup(name)
        fn: dict[str, Any] = {"type": "registeredLookup", "lookup": name, "optimize": False}
        fn["retainMissingValue"] = False
        if replace is not None:
            fn["replaceMissingValueWith"] = replace
        return arg.name, fn

    def _dim_spec(self, plan: Plan, dim: tuple[str, str]) -> dict[str, Any]:
        name, col = dim
        fn = self.extractions.get(name)
        if fn is not None:
            return {
                "type": "extraction",
                "dimension": col,
                "outputName": name,
                "outputType": "STRING",
                "extractionFn": fn,
            }
        return {
            "type": "default",
            "dimension": col,
            "outputName": name,
            "outputType": {"TIMESTAMP": "LONG"}.get(plan.base_types[name], plan.base_types[name]),
        }


def _comparator(native_type: str | None) -> str:
    """Druid's ``Calcites.getStringComparatorForValueType``: numbers numeric, strings
    lexicographic, anything else (ARRAYs) natural."""
    if native_type == "STRING":
        return "lexicographic"
    if native_type in ARRAY_ELEMENT:
        return "natural"
    return "numeric"
