"""EXPLAIN PLAN FOR in Druid's native-query explain shape (PLAN, RESOURCES, ATTRIBUTES), as
Druid's own tests spell it: ``[{"query", "signature", "columnMappings"}]`` with the native
output columns (``a0``) mapped to the SQL ones (``EXPR$0``)."""

from __future__ import annotations

import orjson

from tests.unit.test_sql_time import run


def explain(text: str) -> tuple[list[dict], list[dict], dict]:
    rs = run(f"EXPLAIN PLAN FOR {text}", {})
    assert rs.names == ["PLAN", "RESOURCES", "ATTRIBUTES"]
    assert rs.sql_types == ["VARCHAR"] * 3
    plan, resources, attributes = (orjson.loads(v) for v in rs.rows()[0])
    return plan, resources, attributes


def test_timeseries_count() -> None:
    plan, resources, attributes = explain("SELECT COUNT(*) FROM ds")
    (entry,) = plan
    assert list(entry) == ["query", "signature", "columnMappings"]
    query = entry["query"]
    assert query["queryType"] == "timeseries"
    assert query["dataSource"] == {"type": "table", "name": "ds"}
    assert query["aggregations"] == [{"type": "count", "name": "a0"}]
    assert query["context"]["sqlQueryId"] == "q"  # the request's sqlQueryId
    assert entry["signature"] == [{"name": "a0", "type": "LONG"}]
    assert entry["columnMappings"] == [{"queryColumn": "a0", "outputColumn": "EXPR$0"}]
    assert resources == [{"name": "ds", "type": "DATASOURCE"}]
    assert attributes == {"statementType": "SELECT"}


def test_group_by_and_scan_signatures() -> None:
    (entry,), _, _ = explain("SELECT page, COUNT(*) AS c, SUM(delta) AS s FROM ds GROUP BY page")
    assert entry["query"]["queryType"] == "groupBy"
    assert entry["signature"] == [
        {"name": "d0", "type": "STRING"},
        {"name": "a0", "type": "LONG"},
        {"name": "a1", "type": "DOUBLE"},
    ]
    assert [m["outputColumn"] for m in entry["columnMappings"]] == ["page", "c", "s"]
    (entry,), _, _ = explain("SELECT __time, page, added FROM ds LIMIT 3")
    assert entry["query"]["queryType"] == "scan"
    assert entry["signature"] == [
        {"name": "__time", "type": "LONG"},
        {"name": "page", "type": "STRING"},
        {"name": "added", "type": "LONG"},
    ]
    assert entry["columnMappings"] == [
        {"queryColumn": c, "outputColumn": c} for c in ("__time", "page", "added")
    ]
