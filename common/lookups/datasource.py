"""Druid's ``lookup`` datasource (``{"type": "lookup", "lookup": "name"}``), resolved at the broker.

The broker replaces each lookup datasource in a native query (top level, either side of a
``join``, inside a ``query`` datasource) with an ``inline`` datasource of two STRING columns,
``k`` and ``v``, built from the lookup as loaded on that broker; the query then runs as any query
over an inline datasource (as a join's right side: a broadcast hash join). A lookup this broker
has not loaded is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.errors import InvalidInput

GetLookup = Callable[[str], dict[str, Any] | None]


def inline_lookups(query: Any, get: GetLookup) -> Any:
    """``query`` (decoded native JSON) with every lookup datasource made inline."""
    if not isinstance(query, dict) or "dataSource" not in query:
        return query
    return {**query, "dataSource": _resolve(query["dataSource"], get)}


def _resolve(ds: Any, get: GetLookup) -> Any:
    if not isinstance(ds, dict):
        return ds
    typ = ds.get("type")
    if typ == "lookup":
        name = ds.get("lookup")
        if not isinstance(name, str) or not name:
            raise InvalidInput("lookup datasource: [lookup] must name a lookup")
        mapping = get(name)
        if mapping is None:
            raise InvalidInput(f"lookup datasource: lookup [{name}] is not loaded on this broker")
        return {
            "type": "inline",
            "columnNames": ["k", "v"],
            "columnTypes": ["STRING", "STRING"],
            "rows": [[k, v] for k, v in mapping.items()],
        }
    if typ == "join":
        return {
            **ds,
            "left": _resolve(ds.get("left"), get),
            "right": _resolve(ds.get("right"), get),
        }
    if typ == "query":
        return {**ds, "query": inline_lookups(ds.get("query"), get)}
    return ds
