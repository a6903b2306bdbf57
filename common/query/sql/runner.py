"""One SQL request end to end: parse, plan, run the native query, post-process, format.

The I/O is injected: ``run_native(query_json)`` returns the finalized native result (the broker
runs it in-process): Druid's JSON rows, or for a groupBy its finalized columns (``NativeTable``);
a ``Catalog`` supplies datasource columns and system rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from common.errors import PlanValidationError
from common.expr.lookups import current_lookups
from common.query.sql import window
from common.query.sql.catalog import SYSTEM_TABLES, Catalog, information_schema, to_table
from common.query.sql.context import current_timestamp
from common.query.sql.execute import NativeTable, ResultSet, native_base, post_process
from common.query.sql.parse import Statement, parse_sql
from common.query.sql.planner import Plan, plan_sql
from common.query.sql.subquery import DEFAULT_MAX_SUBQUERY_ROWS, Subqueries, has_subqueries
from common.query.sql.subquery import max_subquery_rows as max_rows_of
from common.query.sql.where import TIME

NativeResult = list[dict[str, Any]] | NativeTable
NativeRunner = Callable[[dict[str, Any]], Awaitable[NativeResult]]


class SqlQuery(BaseModel):
    """Druid's ``SqlQuery`` request body."""

    model_config = ConfigDict(extra="ignore")

    query: str
    resultFormat: str = "object"
    header: bool = False
    typesHeader: bool = False
    sqlTypesHeader: bool = False
    context: dict[str, Any] = Field(default_factory=dict)
    parameters: list[dict[str, Any]] = Field(default_factory=list)

    def sql_query_id(self) -> str:
        qid = self.context.get("sqlQueryId")
        return str(qid) if qid else str(uuid.uuid4())


@dataclass
class SqlAnswer:
    result: ResultSet
    plan: Plan
    timings: dict[str, float] = field(default_factory=dict)


async def run_sql(
    req: SqlQuery,
    catalog: Catalog,
    run_native: NativeRunner,
    *,
    sql_query_id: str,
    now_ms: int | None = None,
    max_subquery_rows: int = DEFAULT_MAX_SUBQUERY_ROWS,
) -> SqlAnswer:
    now = current_timestamp(req.context, int(time.time() * 1000) if now_ms is None else now_ms)
    t0 = time.perf_counter()
    stmt = parse_sql(req.query, req.parameters)
    context = {k: v for k, v in req.context.items() if k != "sqlQueryId"}
    context["sqlQueryId"] = sql_query_id
    context.setdefault("queryId", sql_query_id)
    plans: list[Plan] = []

    async def run_select(sel: exp.Select, table: pa.Table | None) -> ResultSet:
        schemas = await _schemas(sel, catalog) if table is None else {}
        plan = plan_sql(
            Statement(sel, False),
            schemas,
            now_ms=now,
            context=context,
            system_columns=SYSTEM_TABLES,
            from_table=table,
        )
        plans.append(plan)
        if plan.system:
            if plan.inline is not None:
                base = plan.inline
            elif plan.table.startswith("INFORMATION_SCHEMA."):
                provider = current_lookups()
                names = provider.lookup_names() if provider is not None else []
                base = information_schema(plan.table, schemas, names)
            else:
                base = to_table(plan.table, await catalog.system_rows(plan.table))
        else:
            assert plan.native is not None
            base = native_base(plan, await run_native(plan.native))
        result = post_process(plan, base)
        result.time_zone = plan.time_zone
        return result

    if stmt.explain and isinstance(stmt.select, exp.Select) and window.has_window(stmt.select):
        wsel, calls, outer = window.split(stmt.select)
        if has_subqueries(wsel):
            raise PlanValidationError(
                "EXPLAIN of a window query with subqueries, CTEs or UNION ALL is not supported"
            )
        plan = plan_sql(
            Statement(wsel, True),
            await _schemas(wsel, catalog),
            now_ms=now,
            context=context,
            system_columns=SYSTEM_TABLES,
        )
        return SqlAnswer(window_explain(plan, calls, outer), plan, {})
    if has_subqueries(stmt.select):
        if stmt.explain:
            raise PlanValidationError(
                "EXPLAIN of a query with subqueries, CTEs or UNION ALL is not supported: "
                "its inner queries run first and the rest runs at the broker"
            )
        limit = max_rows_of(context, max_subquery_rows)
        result = await Subqueries(run_select, limit).run(stmt.select)
        result.stringify_arrays = stringify_arrays(req.context)
        return SqlAnswer(result, plans[-1], {"total": time.perf_counter() - t0})
    if stmt.explain:
        sel = stmt.select
        plan = plan_sql(
            stmt,
            await _schemas(sel, catalog),
            now_ms=now,
            context=context,
            system_columns=SYSTEM_TABLES,
        )
        return SqlAnswer(explain_result(plan), plan, {"plan": time.perf_counter() - t0})
    assert isinstance(stmt.select, exp.Select)
    result = await run_select(stmt.select, None)
    result.stringify_arrays = stringify_arrays(req.context)
    return SqlAnswer(result, plans[-1], {"total": time.perf_counter() - t0})


def stringify_arrays(context: dict[str, Any]) -> bool:
    """Druid's ``sqlStringifyArrays`` context key (default true)."""
    value = context.get("sqlStringifyArrays", True)
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return bool(value)


async def _schemas(sel: exp.Expression, catalog: Catalog) -> dict[str, dict[str, str]]:
    """The columns of the datasource(s) a flat SELECT reads."""
    frm = sel.args.get("from_") or sel.args.get("from")
    db = (frm.this.db or "").upper() if frm is not None and hasattr(frm.this, "db") else ""
    name = frm.this.name if frm is not None and isinstance(frm.this, exp.Table) else ""
    schemas: dict[str, dict[str, str]] = {}
    if db == "INFORMATION_SCHEMA":
        for ds in await catalog.datasources():
            cols = await catalog.columns(ds)
            if cols is not None:
                schemas[ds] = cols
    elif db not in ("SYS", "LOOKUP") and name:
        cols = await catalog.columns(name)
        if cols is not None:
            schemas[name] = cols
    return schemas


def window_explain(plan: Plan, calls: list[window.WindowCall], outer: exp.Select) -> ResultSet:
    """``EXPLAIN PLAN FOR`` a window query: the native ``windowOperator`` query over the native
    query of the rest of the SELECT. The outer ORDER BY / LIMIT and expressions over window
    columns run at the broker after it."""
    if plan.native is None:
        raise PlanValidationError(
            "EXPLAIN of a window query over system tables or inline rows is not supported"
        )
    inner = dict(plan.native)
    if isinstance(inner.get("dataSource"), str):
        inner["dataSource"] = {"type": "table", "name": inner["dataSource"]}
    names: dict[str, str] = {}
    types: dict[str, str] = {}
    for name, e in plan.outputs:
        if not isinstance(e, exp.Column):
            raise PlanValidationError(
                f"EXPLAIN of this window query is not supported: [{e.sql()}] is computed at the "
                "broker before the window operators"
            )
        names[name] = e.name
        typ = plan.base_types.get(e.name, "STRING")
        types[e.name] = "LONG" if typ == "TIMESTAMP" or e.name == TIME else typ
    query, signature = window.native_query(inner, names, types, calls)
    renamed = {**names, **{c.out: c.out for c in calls}}
    mappings = []
    for item in outer.expressions:
        name = item.alias_or_name
        body = item.this if isinstance(item, exp.Alias) else item
        if isinstance(body, exp.Column) and body.name in renamed:
            mappings.append({"queryColumn": renamed[body.name], "outputColumn": name})
        else:
            mappings.append({"queryColumn": body.sql(), "outputColumn": name})
    body_json = [{"query": query, "signature": signature, "columnMappings": mappings}]
    resources = [{"name": plan.table, "type": "DATASOURCE"}]
    values = [orjson.dumps(x).decode() for x in (body_json, resources, {"statementType": "SELECT"})]
    return ResultSet(
        ["PLAN", "RESOURCES", "ATTRIBUTES"],
        ["STRING"] * 3,
        ["VARCHAR"] * 3,
        [pa.array([v], pa.string()) for v in values],
    )


def explain_result(plan: Plan) -> ResultSet:
    """Druid's ``EXPLAIN PLAN FOR`` (native query explain): one row of PLAN, RESOURCES and
    ATTRIBUTES, each JSON text. PLAN is ``[{"query", "signature", "columnMappings"}]``: the
    native query (its ``dataSource`` written as Druid serialises it), the native output columns
    with their types, and which native column each SQL output column is. An output computed at
    the broker from native columns (an expression in the select list) maps from its SQL text."""
    if plan.native is None:
        raise PlanValidationError(
            "EXPLAIN of a query over system tables or inline rows is not supported"
        )
    query = dict(plan.native)
    if isinstance(query.get("dataSource"), str):
        query["dataSource"] = {"type": "table", "name": query["dataSource"]}
    signature: list[dict[str, str]] = []
    mappings: list[dict[str, str]] = []
    for name, e in plan.outputs:
        column = e.name if isinstance(e, exp.Column) else None
        if column is None:
            mappings.append({"queryColumn": e.sql(), "outputColumn": name})
            continue
        mappings.append({"queryColumn": column, "outputColumn": name})
        if all(s["name"] != column for s in signature):
            typ = plan.base_types.get(column, "STRING")
            signature.append(
                {"name": column, "type": "LONG" if typ == "TIMESTAMP" or column == TIME else typ}
            )
    body = [{"query": query, "signature": signature, "columnMappings": mappings}]
    ds = query.get("dataSource")
    # a lookup is read without permission (as in Druid), so it is no resource to authorize
    is_lookup = isinstance(ds, dict) and ds.get("type") == "lookup"
    resources = [] if is_lookup else [{"name": plan.table, "type": "DATASOURCE"}]
    attributes = {"statementType": "SELECT"}
    values = [orjson.dumps(x).decode() for x in (body, resources, attributes)]
    return ResultSet(
        ["PLAN", "RESOURCES", "ATTRIBUTES"],
        ["STRING"] * 3,
        ["VARCHAR"] * 3,
        [pa.array([v], pa.string()) for v in values],
    )
