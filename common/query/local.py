"""Queries the broker answers itself, without data nodes.

- ``inline`` datasource: the ordinary per-segment engine runs on the inline rows as one segment
  covering all time.
- ``query`` datasource: the inner query's results become rows (``results_table``) and the outer
  query runs on them the same way. As Druid, at most ``maxSubqueryRows`` rows (context, default
  100000) may be materialised; more is a ResourceLimitExceeded 400.
- ``union`` datasource: one query per member table (``union_members``), merged by the caller.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from common.errors import ResourceLimitExceeded
from common.query.datasource import (
    InlineDataSource,
    QueryDataSource,
    UnionDataSource,
    innermost,
)
from common.query.engine import run_segment
from common.segments.intervals import ETERNITY
from common.segments.isotime import parse_iso

DEFAULT_MAX_SUBQUERY_ROWS = 100_000  # druid.server.http.maxSubqueryRows


def is_local(query: Any) -> bool:
    """Over inline rows (directly, or as the base of an unnest or filter datasource)."""
    return isinstance(innermost(getattr(query, "dataSourceSpec", None)), InlineDataSource)


def run_local(query: Any) -> pa.Table:
    """The partial of ``query`` over its inline rows (an unnest or filter over them is applied
    by the engine, as on a data node)."""
    spec = innermost(query.dataSourceSpec)
    assert isinstance(spec, InlineDataSource)
    return run_on_rows(query, spec.table())


def run_on_rows(query: Any, table: pa.Table) -> pa.Table:
    return run_segment(query, table, interval=ETERNITY, segment_id="inline")


def union_members(query: Any) -> list[Any] | None:
    """For a query over a ``union`` datasource, one query per member table; else None."""
    spec = getattr(query, "dataSourceSpec", None)
    if not isinstance(spec, UnionDataSource):
        return None
    return [
        query.model_copy(update={"dataSource": name, "dataSourceSpec": None})
        for name in dict.fromkeys(spec.dataSources)
    ]


def subquery_of(query: Any) -> Any | None:
    """The inner query of a ``query`` datasource (sharing the outer query's id, so a cancel
    reaches it), or None."""
    spec = getattr(query, "dataSourceSpec", None)
    if not isinstance(spec, QueryDataSource):
        return None
    inner = spec.parsed()
    ctx = inner.context.model_copy(update={"queryId": query.query_id})
    return inner.model_copy(update={"context": ctx})


def max_subquery_rows(query: Any) -> int:
    value = (query.context.model_extra or {}).get("maxSubqueryRows")
    return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_SUBQUERY_ROWS


def results_table(inner: Any, results: list[dict[str, Any]], max_rows: int) -> pa.Table:
    """Druid result JSON of ``inner`` as rows: ``__time`` from each result's timestamp."""
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        if len(rows) >= max_rows:
            raise ResourceLimitExceeded(
                f"Subquery generated results beyond maximum[{max_rows}] (maxSubqueryRows)"
            )
        rows.append(row)

    qtype = inner.queryType
    for r in results:
        if qtype == "scan":
            for event in r.get("events", []):
                if isinstance(event, list):
                    event = dict(zip(r.get("columns", []), event, strict=False))
                add(dict(event))
            continue
        t = parse_iso(r["timestamp"])
        if qtype == "timeseries":
            add({"__time": t, **r["result"]})
        elif qtype == "topN":
            for item in r["result"]:
                add({"__time": t, **item})
        else:
            add({"__time": t, **r["event"]})
    if not rows:
        return pa.table({"__time": pa.array([], pa.timestamp("ms", tz="UTC"))})
    names = list(dict.fromkeys(k for row in rows for k in row))
    cols: dict[str, Any] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if name == "__time":
            cols[name] = pa.array(values, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
            continue
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = pa.array([None if v is None else str(v) for v in values], pa.string())
        cols[name] = arr.cast(pa.string()) if pa.types.is_null(arr.type) else arr
    return pa.table(cols)


def window_result(query: Any, inner_results: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The answer of a ``windowOperator`` query: its operators over the rows of its inline
    datasource, or over ``inner_results`` (the finalized results of its query datasource)."""
    from common.query.operators import result_rows

    inner = subquery_of(query)
    if inner is None:
        spec = query.dataSourceSpec
        assert isinstance(spec, InlineDataSource)
        table = spec.table()
    else:
        table = results_table(inner, inner_results or [], max_subquery_rows(query))
    signature = [str(c["name"]) for c in query.outputSignature or []]
    answer = result_rows(table, query.operators(), signature or None)
    return [answer] if answer["events"] else []
