"""SQL planned onto native queries, run by the native engine over the generated segments, and
checked against DuckDB running the same SQL on the same rows."""

from __future__ import annotations

import math
from typing import Any

import pytest

from common.errors import PlanValidationError, SqlParseError
from common.query.sql.execute import native_base, post_process
from common.query.sql.parse import parse_sql
from common.query.sql.planner import plan_sql
from tests.unit.test_query_support import duck, run_query

SCHEMA = {
    "ds": {
        "__time": "LONG",
        "added": "LONG",
        "country": "STRING",
        "delta": "DOUBLE",
        "page": "STRING",
        "tags": "STRING",
        "user": "STRING",
        "user_hll": "COMPLEX<HLLSketch>",
        "user_theta": "COMPLEX<thetaSketch>",
    }
}
NOW = 1710000000000  # 2024-03-09T16:00:00Z


def sql(text: str, params: list[dict[str, Any]] | None = None) -> tuple[Any, list[list[Any]]]:
    plan = plan_sql(parse_sql(text, params), SCHEMA, now_ms=NOW)
    rs = post_process(plan, native_base(plan, run_query(plan.native)))
    return plan, rs.rows()


def oracle(text: str) -> list[list[Any]]:
    con = duck()
    table = con.sql(text.replace("FROM ds", "FROM t")).to_arrow_table()
    cols = [c.to_pylist() for c in table.columns]
    out = []
    for r in zip(*cols, strict=True):
        vals = []
        for v in r:
            if hasattr(v, "strftime"):
                v = v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
            vals.append(v)
        out.append(vals)
    return out


def same(a: list[list[Any]], b: list[list[Any]]) -> None:
    assert len(a) == len(b), (a[:5], b[:5])
    for ra, rb in zip(a, b, strict=True):
        for x, y in zip(ra, rb, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9), (
                    ra,
                    rb,
                )
            else:
                assert x == y, (ra, rb)


CASES = [
    # (druid sql, duckdb sql, expected query type)
    (
        "SELECT COUNT(*), SUM(added), MIN(delta), MAX(added), AVG(delta) FROM ds "
        "WHERE country = 'US'",
        "SELECT COUNT(*), SUM(added), MIN(delta), MAX(added), AVG(delta) FROM ds "
        "WHERE country = 'US'",
        "timeseries",
    ),
    (
        "SELECT FLOOR(__time TO DAY) AS d, COUNT(*) AS c FROM ds "
        "WHERE __time >= TIMESTAMP '2024-01-10' AND __time < TIMESTAMP '2024-02-01' GROUP BY 1",
        "SELECT date_trunc('day', __time) AS d, COUNT(*) AS c FROM ds "
        "WHERE __time >= TIMESTAMP '2024-01-10' AND __time < TIMESTAMP '2024-02-01' "
        "GROUP BY 1 ORDER BY 1",
        "timeseries",
    ),
    (
        "SELECT TIME_FLOOR(__time, 'PT6H') AS h, SUM(added) FROM ds "
        "WHERE __time >= CURRENT_TIMESTAMP - INTERVAL '2' DAY GROUP BY 1 ORDER BY 1 DESC LIMIT 4",
        "SELECT time_bucket(INTERVAL 6 HOUR, __time) AS h, SUM(added) FROM ds "
        "WHERE __time >= TIMESTAMP '2024-03-07 16:00:00' GROUP BY 1 ORDER BY 1 DESC LIMIT 4",
        "timeseries",
    ),
    (
        "SELECT DATE_TRUNC('month', __time), COUNT(*) FROM ds GROUP BY 1",
        "SELECT date_trunc('month', __time), COUNT(*) FROM ds GROUP BY 1 ORDER BY 1",
        "timeseries",
    ),
    (
        "SELECT page, COUNT(*) AS c FROM ds GROUP BY page ORDER BY c DESC LIMIT 5",
        "SELECT page, COUNT(*) AS c FROM ds GROUP BY page ORDER BY c DESC, page LIMIT 5",
        "topN",
    ),
    (
        # ORDER BY an output alias that is also a column name: the alias (the aggregate) wins.
        "SELECT page, SUM(added) AS added FROM ds GROUP BY page ORDER BY added DESC LIMIT 4",
        "SELECT page, SUM(added) AS added FROM ds GROUP BY page ORDER BY 2 DESC LIMIT 4",
        "topN",
    ),
    (
        "SELECT country, page, SUM(added) AS s FROM ds WHERE page IN ('p01', 'p02', 'p03') "
        "GROUP BY 1, 2 ORDER BY s DESC, country, page LIMIT 6 OFFSET 1",
        "SELECT country, page, SUM(added) AS s FROM ds WHERE page IN ('p01', 'p02', 'p03') "
        "GROUP BY 1, 2 ORDER BY s DESC NULLS LAST, country NULLS FIRST, page LIMIT 6 OFFSET 1",
        "groupBy",
    ),
    (
        "SELECT country, COUNT(*) AS c FROM ds GROUP BY country HAVING COUNT(*) > 400 "
        "ORDER BY country",
        "SELECT country, COUNT(*) AS c FROM ds GROUP BY country HAVING COUNT(*) > 400 "
        "ORDER BY country NULLS FIRST",
        "groupBy",
    ),
    (
        "SELECT country, FLOOR(__time TO MONTH) AS m, MAX(delta) FROM ds "
        "WHERE added BETWEEN 10 AND 500 AND NOT (page LIKE 'p1%') GROUP BY 1, 2 ORDER BY 2, 1",
        "SELECT country, date_trunc('month', __time) AS m, MAX(delta) FROM ds "
        "WHERE added BETWEEN 10 AND 500 AND NOT (page LIKE 'p1%') GROUP BY 1, 2 "
        "ORDER BY 2, 1 NULLS FIRST",
        "groupBy",
    ),
    (
        "SELECT __time, page, added FROM ds WHERE country IS NULL AND delta > 50 "
        "ORDER BY __time DESC LIMIT 7",
        "SELECT __time, page, added FROM ds WHERE country IS NULL AND delta > 50 "
        "ORDER BY __time DESC LIMIT 7",
        "scan",
    ),
    (
        "SELECT UPPER(page) AS up, LOWER(country), CONCAT(page, '/', country), "
        "SUBSTRING(page, 2, 1), "
        "CAST(added AS DOUBLE) * 2, CASE WHEN added > 500 THEN 'big' WHEN added > 0 THEN 'small' "
        "ELSE 'neg' END FROM ds WHERE country <> 'US' OR added IS NULL "
        "ORDER BY __time LIMIT 20 OFFSET 3",
        "SELECT UPPER(page) AS up, LOWER(country), CONCAT(page, '/', country), "
        "SUBSTRING(page, 2, 1), "
        "CAST(added AS DOUBLE) * 2, CASE WHEN added > 500 THEN 'big' WHEN added > 0 THEN 'small' "
        "ELSE 'neg' END FROM ds WHERE country <> 'US' OR added IS NULL "
        "ORDER BY __time LIMIT 20 OFFSET 3",
        "scan",
    ),
    (
        "SELECT country, SUM(added) / COUNT(*) AS r, COUNT(added), "
        "SUM(added) FILTER (WHERE page = 'p07') FROM ds GROUP BY country ORDER BY country",
        "SELECT country, SUM(added) // COUNT(*) AS r, COUNT(added), "
        "SUM(added) FILTER (WHERE page = 'p07') FROM ds GROUP BY country "
        "ORDER BY country NULLS FIRST",
        "groupBy",
    ),
]


@pytest.mark.parametrize(("druid", "ddb", "qtype"), CASES)
def test_against_duckdb(druid: str, ddb: str, qtype: str) -> None:
    plan, rows = sql(druid)
    assert plan.query_type == qtype
    same(rows, oracle(ddb))


def test_time_functions() -> None:
    _, rows = sql(
        "SELECT TIME_FORMAT(__time, 'yyyy-MM-dd HH:mm'), TIME_PARSE('2024-01-02T03:04:05Z'), "
        "MILLIS_TO_TIMESTAMP(86400000), TIMESTAMP_TO_MILLIS(__time) FROM ds ORDER BY __time LIMIT 3"
    )
    expected = oracle(
        "SELECT strftime(__time, '%Y-%m-%d %H:%M'), epoch_ms(__time) FROM ds "
        "ORDER BY __time LIMIT 3"
    )
    assert [[r[0], r[3]] for r in rows] == expected
    assert {r[1] for r in rows} == {"2024-01-02T03:04:05.000Z"}
    assert {r[2] for r in rows} == {"1970-01-02T00:00:00.000Z"}


def test_approximate_distinct_counts_are_close() -> None:
    _, rows = sql(
        'SELECT COUNT(DISTINCT "user"), APPROX_COUNT_DISTINCT("user"), '
        'APPROX_COUNT_DISTINCT_DS_THETA(user_theta), APPROX_COUNT_DISTINCT_DS_HLL("user") FROM ds'
    )
    exact = oracle('SELECT COUNT(DISTINCT "user") FROM ds')[0][0]
    assert all(isinstance(v, int) and abs(v - exact) <= 0.05 * exact for v in rows[0])


def test_parameters_bind_in_order() -> None:
    params = [{"type": "VARCHAR", "value": "FR"}, {"type": "BIGINT", "value": 100}]
    _, rows = sql("SELECT COUNT(*) FROM ds WHERE country = ? AND added > ?", params)
    assert rows == oracle("SELECT COUNT(*) FROM ds WHERE country = 'FR' AND added > 100")


def test_avg_of_long_truncates_as_druid() -> None:
    _, rows = sql("SELECT AVG(added) FROM ds")
    exact = oracle("SELECT SUM(added) / COUNT(added) FROM ds")[0][0]
    assert rows == [[int(exact)]]


def test_empty_aggregate_is_one_row() -> None:
    _, rows = sql("SELECT COUNT(*), SUM(added) FROM ds WHERE country = 'nowhere'")
    assert rows == [[0, None]]


@pytest.mark.parametrize(
    "bad", ["SELEC 1", "SELECT FROM WHERE", "SELECT * FROM ds WHERE (", "INSERT INTO ds VALUES (1)"]
)
def test_bad_sql_is_parse_failed(bad: str) -> None:
    with pytest.raises(SqlParseError):
        sql(bad)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("SELECT nope FROM ds", "nope"),
        ("SELECT * FROM missing", "missing"),
        ("SELECT page = 'x', COUNT(*) FROM ds GROUP BY 1", "GROUP BY a condition"),
        ("SELECT SUM(UPPER(page)) FROM ds", "STRING expression"),
        ("SELECT page FROM ds ORDER BY page", "non-time"),
        ("SELECT page, COUNT(*) FROM ds", "page"),
        ("SELECT COUNT(*) FROM ds WHERE SOUNDEX(page) = 'x'", "SOUNDEX"),
        ('SELECT HLL_SKETCH_ESTIMATE("user") FROM ds', "DS_HLL"),
    ],
)
def test_unplannable_is_plan_validation_failed(bad: str, words: str) -> None:
    with pytest.raises(PlanValidationError, match=words):
        sql(bad)
