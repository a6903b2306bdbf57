"""Timestamps in SQL results and the time context keys, against the same rows in DuckDB:
MIN/MAX(__time) and time floors are TIMESTAMP (ISO text in every format, ``TIMESTAMP`` in the
headers), ``sqlCurrentTimestamp`` fixes CURRENT_TIMESTAMP, ``sqlTimeZone`` prints results and
buckets GROUP BY floors in the session zone (and refuses what would still be UTC), and INTERVAL
takes every unit, calendar ones too."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from common.errors import PlanValidationError
from common.query.sql.execute import native_base, post_process
from common.query.sql.parse import parse_sql
from common.query.sql.planner import plan_sql
from common.query.sql.results import write_result
from common.query.sql.runner import SqlQuery, run_sql
from tests.unit.test_query_support import duck, iso, ms, run_query
from tests.unit.test_sql_queries import NOW, SCHEMA


def result(text: str, context: dict[str, Any] | None = None) -> Any:
    plan = plan_sql(parse_sql(text), SCHEMA, now_ms=NOW, context=context)
    rs = post_process(plan, native_base(plan, run_query(plan.native)))
    rs.time_zone = plan.time_zone
    return plan, rs


def duck_one(text: str) -> tuple[Any, ...]:
    rows = duck().sql(text).fetchall()
    assert len(rows) == 1
    return tuple(rows[0])


MIN_MAX = "SELECT MIN(__time) AS lo, MAX(__time) AS hi, COUNT(*) AS n FROM ds"


def test_min_max_time_values() -> None:
    _, rs = result(MIN_MAX)
    lo, hi, n = duck_one("SELECT MIN(__time), MAX(__time), COUNT(*) FROM t")
    assert rs.rows() == [[iso(ms(lo)), iso(ms(hi)), n]]


def test_min_max_time_are_timestamps_in_every_format() -> None:
    plan, rs = result(MIN_MAX)
    assert rs.sql_types == ["TIMESTAMP", "TIMESTAMP", "BIGINT"]
    assert rs.native_types == ["LONG", "LONG", "LONG"]
    # The values come from the native engine (checked by test_min_max_time_values); every
    # format prints the instants it answers as ISO text.
    first = run_query(plan.native)[0]["result"]
    lo_ms, hi_ms, n = first["a0"], first["a1"], first["a2"]
    want = [iso(lo_ms), iso(hi_ms), n]
    assert rs.rows() == [want]
    got = orjson.loads(write_result(rs, "array"))
    assert got == [want]
    assert orjson.loads(write_result(rs, "object")) == [
        dict(zip(["lo", "hi", "n"], want, strict=True))
    ]
    lines = write_result(rs, "arrayLines", header=True, types_header=True, sql_types_header=True)
    assert lines.decode().splitlines()[:4] == [
        '["lo","hi","n"]',
        '["LONG","LONG","LONG"]',
        '["TIMESTAMP","TIMESTAMP","BIGINT"]',
        orjson.dumps(want).decode(),
    ]
    head = orjson.loads(write_result(rs, "object", header=True, sql_types_header=True))[0]
    assert head["lo"] == {"sqlType": "TIMESTAMP"} and head["n"] == {"sqlType": "BIGINT"}
    csv = write_result(rs, "csv", header=True, sql_types_header=True).decode().splitlines()
    assert csv[:3] == ["lo,hi,n", "TIMESTAMP,TIMESTAMP,BIGINT", f"{want[0]},{want[1]},{n}"]


def test_time_floors_and_timestamp_expressions_are_timestamps() -> None:
    _, rs = result(
        "SELECT TIME_FLOOR(__time, 'P1D') AS d, COUNT(*) AS c FROM ds "
        "WHERE __time < TIMESTAMP '2024-01-01' GROUP BY 1 ORDER BY 1 LIMIT 2"
    )
    assert rs.sql_types == ["TIMESTAMP", "BIGINT"]
    expected = duck().sql(
        "SELECT date_trunc('day', __time), COUNT(*) FROM t WHERE __time < TIMESTAMP "
        "'2024-01-01' GROUP BY 1 ORDER BY 1 LIMIT 2"
    )
    assert rs.rows() == [[iso(ms(d)), c] for d, c in expected.fetchall()]
    _, rs = result(
        "SELECT __time, __time + INTERVAL '1' MONTH AS m, MILLIS_TO_TIMESTAMP(0) AS z "
        "FROM ds ORDER BY __time LIMIT 1"
    )
    assert rs.sql_types == ["TIMESTAMP", "TIMESTAMP", "TIMESTAMP"]
    first = duck_one("SELECT MIN(__time), MIN(__time) + INTERVAL 1 MONTH FROM t")
    assert rs.rows() == [[iso(ms(first[0])), iso(ms(first[1])), "1970-01-01T00:00:00.000Z"]]


@pytest.mark.parametrize(
    ("unit", "duck_unit"),
    [
        ("SECOND", "SECOND"),
        ("MINUTE", "MINUTE"),
        ("HOUR", "HOUR"),
        ("DAY", "DAY"),
        ("WEEK", "WEEK"),
        ("MONTH", "MONTH"),
        ("QUARTER", "MONTH * 3"),
        ("YEAR", "YEAR"),
    ],
)
def test_interval_units_narrow_the_query(unit: str, duck_unit: str) -> None:
    amount = 1 if unit in ("QUARTER", "YEAR") else 40
    plan, rs = result(
        f"SELECT COUNT(*) FROM ds WHERE __time >= TIMESTAMP '2024-03-14 12:34:56' "
        f"- INTERVAL '{amount}' {unit}"
    )
    d = "INTERVAL 1 MONTH * 3" if unit == "QUARTER" else f"INTERVAL {amount} {duck_unit}"
    (n,) = duck_one(f"SELECT COUNT(*) FROM t WHERE __time >= TIMESTAMP '2024-03-14 12:34:56' - {d}")
    assert rs.rows() == [[n]]
    assert plan.native["intervals"]["intervals"][0] != "-146136543-09-08T08:23:32.096Z/"


def test_month_interval_clamps_to_the_end_of_month() -> None:
    _, rs = result(
        "SELECT TIMESTAMP '2024-01-31 10:00:00' + INTERVAL '1' MONTH AS a, "
        "TIMESTAMP '2024-02-29' + INTERVAL '1' YEAR AS b, "
        "TIMESTAMP '2024-05-31' - INTERVAL '1' QUARTER AS c FROM ds LIMIT 1"
    )
    assert rs.rows() == [
        ["2024-02-29T10:00:00.000Z", "2025-02-28T00:00:00.000Z", "2024-02-29T00:00:00.000Z"]
    ]


class Catalog:
    async def datasources(self) -> list[str]:
        return ["ds"]

    async def columns(self, datasource: str) -> dict[str, str] | None:
        return dict(SCHEMA["ds"]) if datasource == "ds" else None

    async def system_rows(self, table: str) -> list[dict[str, Any]]:
        return []


async def native(query: dict[str, Any]) -> list[dict[str, Any]]:
    return run_query(query)


def run(text: str, context: dict[str, Any]) -> Any:
    req = SqlQuery(query=text, context=context)
    return asyncio.run(run_sql(req, Catalog(), native, sql_query_id="q", now_ms=NOW)).result


def test_sql_current_timestamp_context() -> None:
    text = (
        "SELECT COUNT(*) FROM ds WHERE __time >= CURRENT_TIMESTAMP - INTERVAL '2' DAY "
        "AND __time < CURRENT_TIMESTAMP"
    )
    counts = []
    for at in ("2024-03-09T16:00:00.000Z", "2024-02-01T00:00:00.000Z"):
        (n,) = duck_one(
            f"SELECT COUNT(*) FROM t WHERE __time >= TIMESTAMP '{at[:-1]}' - INTERVAL 2 DAY "
            f"AND __time < TIMESTAMP '{at[:-1]}'"
        )
        counts.append(n)
        assert run(text, {"sqlCurrentTimestamp": at}).rows() == [[n]]
    assert counts[0] != counts[1]
    assert run(text, {}).rows() == [[counts[0]]]  # NOW is 2024-03-09T16:00Z
    at = "2024-03-01T00:00:00.000Z"
    rs = run("SELECT CURRENT_TIMESTAMP AS now FROM ds LIMIT 1", {"sqlCurrentTimestamp": at})
    assert rs.rows() == [[at]]
    with pytest.raises(PlanValidationError, match="sqlCurrentTimestamp"):
        run(text, {"sqlCurrentTimestamp": "yesterday"})


def test_sql_time_zone_prints_results_and_buckets_group_by_floors() -> None:
    ctx = {"sqlTimeZone": "America/Los_Angeles"}
    rs = run(
        "SELECT FLOOR(__time TO DAY) AS d, COUNT(*) AS c FROM ds GROUP BY 1 ORDER BY 1 LIMIT 3",
        ctx,
    )
    con = duck()
    con.sql("SET TimeZone = 'America/Los_Angeles'")
    expected = con.sql(
        "SELECT strftime(date_trunc('day', __time), '%Y-%m-%dT%H:%M:%S.000-08:00'), COUNT(*) "
        "FROM t GROUP BY date_trunc('day', __time) ORDER BY 1 LIMIT 3"
    ).fetchall()
    assert rs.rows() == [list(r) for r in expected]
    rs = run("SELECT __time FROM ds ORDER BY __time LIMIT 1", {"sqlTimeZone": "+05:30"})
    (first,) = duck_one("SELECT MIN(__time) FROM t")
    shifted = iso(ms(first) + 19_800_000)[:-1] + "+05:30"
    assert rs.rows() == [[shifted]]
    # Results in Europe/London in winter have offset zero: Joda prints Z.
    rs = run("SELECT __time FROM ds ORDER BY __time LIMIT 1", {"sqlTimeZone": "Europe/London"})
    assert rs.rows() == [[iso(ms(first))]]


@pytest.mark.parametrize(
    "text",
    [
        "SELECT COUNT(*) FROM ds WHERE __time >= TIMESTAMP '2024-01-01'",
        "SELECT COUNT(*) FROM ds WHERE __time >= '2024-01-01'",
        "SELECT TIME_FLOOR(__time, 'P1D') FROM ds LIMIT 1",
        "SELECT TIME_FORMAT(__time) FROM ds LIMIT 1",
        "SELECT COUNT(*) FROM ds WHERE __time >= CURRENT_TIMESTAMP - INTERVAL '1' MONTH",
    ],
)
def test_sql_time_zone_refuses_what_would_be_utc(text: str) -> None:
    with pytest.raises(PlanValidationError, match="sqlTimeZone"):
        run(text, {"sqlTimeZone": "America/Los_Angeles"})
    run(text, {"sqlTimeZone": "UTC"})


def test_bad_time_zone_is_a_400() -> None:
    with pytest.raises(PlanValidationError, match="sqlTimeZone"):
        run("SELECT COUNT(*) FROM ds", {"sqlTimeZone": "Mars/Olympus"})
