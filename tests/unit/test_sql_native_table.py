"""A groupBy's or scan's finalized columns (``NativeTable``, what the broker hands the SQL layer)
give the same SQL answers as Druid's JSON rows of the same query, over Druid's ``foo`` datasource:
nulls and ``''``, FLOAT and DOUBLE, time floors (in a time zone too), HAVING, ORDER BY and
LIMIT, post-aggregators, exact COUNT(DISTINCT), sketches, TIMESTAMP and string aggregators,
multi-value and numeric dimensions, arrays, subqueries and answers with no row."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pyarrow as pa
import pytest

from common.query import finalize, merge, parse_query, run_segment
from common.query.engine import finalized_table
from common.query.models import GroupByQuery
from common.query.sql.execute import NativeTable, ResultSet
from common.query.sql.runner import NativeResult, SqlQuery, run_sql
from tests.unit.test_sql_druid_foo import SEGMENTS, FooCatalog

QUERIES = [
    "SELECT dim2, COUNT(*) AS c, SUM(m1) AS s1, SUM(m2) AS s2 FROM foo GROUP BY dim2",
    "SELECT dim1, MIN(m1) AS lo, MAX(m2) AS hi, AVG(m2) AS av FROM foo GROUP BY dim1 "
    "ORDER BY av DESC LIMIT 3",
    "SELECT FLOOR(__time TO DAY) AS d, COUNT(*) AS c FROM foo GROUP BY 1",
    "SELECT FLOOR(__time TO YEAR) AS y, dim2, SUM(cnt) AS c FROM foo GROUP BY 1, 2 "
    "HAVING SUM(cnt) > 0 ORDER BY y, dim2",
    "SELECT TIME_FLOOR(__time, 'P1M', NULL, 'America/Los_Angeles') AS m, COUNT(*) AS c "
    "FROM foo GROUP BY 1",
    "SELECT TIME_FLOOR(__time, 'P1M', NULL, 'America/Los_Angeles') AS m, dim2, COUNT(*) AS c "
    "FROM foo GROUP BY 1, 2",
    "SELECT dim3, COUNT(*) AS c FROM foo GROUP BY dim3",
    "SELECT cnt, m1, SUM(m2) AS s FROM foo GROUP BY cnt, m1",
    "SELECT dim2, MIN(__time) AS first_t, MAX(__time) AS last_t FROM foo GROUP BY dim2",
    "SELECT dim2, EARLIEST(dim1, 10) AS e, LATEST(dim1, 10) AS l FROM foo GROUP BY dim2",
    "SELECT dim2, COUNT(DISTINCT dim1) AS u FROM foo GROUP BY dim2",
    "SELECT dim2, APPROX_COUNT_DISTINCT_DS_HLL(dim1) AS u FROM foo GROUP BY dim2",
    "SELECT dim2, DS_HLL(dim1) AS sketch FROM foo GROUP BY dim2",
    "SELECT dim2, ARRAY_AGG(dim1, 1000) AS a FROM foo GROUP BY dim2",
    "SELECT UPPER(dim1) AS u, SUM(cnt) AS c, MAX(m1) > 2 AS big FROM foo GROUP BY 1",
    "SELECT dim2, SUM(cnt) AS c FROM foo WHERE dim1 = 'nothing' GROUP BY dim2",
    "SELECT COUNT(*) AS c FROM (SELECT dim2, SUM(m1) AS s FROM foo GROUP BY dim2) WHERE s > 1",
    "SELECT dim1, SUM(m1) FILTER (WHERE dim2 = 'a') AS fa, COUNT(*) AS c FROM foo "
    "GROUP BY dim1 ORDER BY dim1 LIMIT 4 OFFSET 1",
    # scans
    "SELECT * FROM foo",
    "SELECT dim1, m1, __time, cnt FROM foo LIMIT 3 OFFSET 1",
    "SELECT __time, dim1, dim2, cnt, m1, m2 FROM foo ORDER BY __time DESC LIMIT 4",
    "SELECT dim3, dim1 FROM foo",  # multi-value: through the JSON rows
    "SELECT dim1, m2 FROM foo WHERE dim1 = 'nothing'",
    "SELECT UPPER(dim1) AS u, m1 * 2 AS m FROM foo WHERE m1 > 2",
]


async def _json(query: dict[str, Any]) -> NativeResult:
    q = parse_query(query)
    return finalize(
        q, merge(q, [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS])
    )


async def _columns(query: dict[str, Any]) -> NativeResult:
    q = parse_query(query)
    merged = merge(q, [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS])
    table = finalized_table(q, merged)
    return finalize(q, merged) if table is None else NativeTable(table)


def _answer(text: str, native: Any) -> ResultSet:
    req = SqlQuery(
        query=text, context={"useApproximateCountDistinct": False} if "DISTINCT" in text else {}
    )
    return asyncio.run(run_sql(req, FooCatalog(), native, sql_query_id="q", now_ms=0)).result


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b) and type(a) is type(b)


@pytest.mark.parametrize("text", QUERIES)
def test_columns_answer_as_json_rows(text: str) -> None:
    want, got = _answer(text, _json), _answer(text, _columns)
    assert (got.names, got.native_types, got.sql_types) == (
        want.names,
        want.native_types,
        want.sql_types,
    )
    assert [c.type for c in got.columns] == [c.type for c in want.columns]
    assert got.num_rows == want.num_rows
    for g, w in zip(got.rows(), want.rows(), strict=True):
        assert all(_same(x, y) for x, y in zip(g, w, strict=True)), (g, w)


def test_finalized_table_is_finalize() -> None:
    """The JSON rows are the finalized table printed: same rows, same values."""
    q = parse_query(
        {
            "queryType": "groupBy",
            "dataSource": "foo",
            "intervals": ["2000/2002"],
            "granularity": "all",
            "dimensions": ["dim2"],
            "aggregations": [{"type": "count", "name": "c"}],
        }
    )
    assert isinstance(q, GroupByQuery)
    merged = merge(q, [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENTS])
    table = finalized_table(q, merged)
    assert table is not None
    rows = finalize(q, merged)
    assert [r["event"] for r in rows] == table.drop_columns(["__time"]).to_pylist()
    assert {r["timestamp"] for r in rows} == {"2000-01-01T00:00:00.000Z"}
    assert set(table.column("__time").to_pylist()) == {946684800000}
    empty = merge(q, [])
    assert finalized_table(q, empty) is None and finalize(q, empty) == []
    assert pa.types.is_integer(table.column("c").type)
