"""Date and time functions: Druid's ``querying/sql-scalar.md#date-and-time-functions``, with the
examples and answers of ``querying/sql-functions.md``. The examples read ``taxi-trips``' first
``__time``, ``2013-08-01T08:14:37.000Z`` (``1375344877000``), written here as the literal
``TIMESTAMP '2013-08-01 08:14:37'``; its second row is ``2013-08-01T09:13:00.000Z``.

Over the fixtures, ``foo``'s ``__time`` is 2000-01-01, -02, -03 and 2001-01-01, -02, -03 (UTC
midnights). The native form of a TIMESTAMP is its millis."""

from tests.conformance.framework import SAME, Page, column, scalar

PAGE = Page("querying/sql-scalar.md#date-and-time-functions", "Scalar functions: date and time")

T1 = "TIMESTAMP '2013-08-01 08:14:37'"
T1_MS = 1375344877000
T2 = "TIMESTAMP '2013-08-01 09:13:00'"
T2_MS = 1375348380000
NOW = {"sqlCurrentTimestamp": "2024-08-14T21:30:13.793Z"}
_NULL3 = [None, None, None]


def _days(*days: str) -> list[str]:
    return [f"{d}T00:00:00.000Z" for d in days]


CASES = [
    # ---- documented examples (sql-functions.md)
    scalar(
        "CEIL",
        f"CEIL({T1} TO YEAR)",
        "2014-01-01T00:00:00.000Z",
        native=f"timestamp_ceil({T1_MS}, 'P1Y', null, 'UTC')",
    ),
    scalar(
        "CURRENT_DATE",
        "CURRENT_DATE",
        "2024-08-14T00:00:00.000Z",
        context=NOW,
        native="timestamp_floor(1723671013793, 'P1D', null, 'UTC')",
    ),
    scalar(
        "CURRENT_TIMESTAMP",
        "CURRENT_TIMESTAMP",
        "2024-08-14T21:30:13.793Z",
        context=NOW,
        native="1723671013793",
    ),
    scalar(
        "DATE_TRUNC",
        f"DATE_TRUNC('decade', {T1})",
        "2010-01-01T00:00:00.000Z",
        native=f"timestamp_floor({T1_MS}, 'P10Y', null, 'UTC')",
    ),
    scalar(
        "EXTRACT",
        f"EXTRACT(YEAR FROM {T1})",
        2013,
        native=f"timestamp_extract({T1_MS}, 'YEAR', 'UTC')",
        duckdb=SAME,
    ),
    scalar(
        "FLOOR",
        f"FLOOR({T1} TO YEAR)",
        "2013-01-01T00:00:00.000Z",
        native=f"timestamp_floor({T1_MS}, 'P1Y', null, 'UTC')",
    ),
    scalar(
        "MILLIS_TO_TIMESTAMP",
        "MILLIS_TO_TIMESTAMP(1375344877000)",
        "2013-08-01T08:14:37.000Z",
        native="1375344877000",
        duckdb="SELECT EPOCH_MS(1375344877000)",
    ),
    scalar(
        "TIME_CEIL",
        f"TIME_CEIL({T1}, 'PT45M', TIMESTAMP '2013-08-01 08:00:00')",
        "2013-08-01T08:45:00.000Z",
        native=f"timestamp_ceil({T1_MS}, 'PT45M', 1375344000000, 'UTC')",
    ),
    scalar(
        "TIME_CEIL",
        f"TIME_CEIL({T2}, 'PT45M', TIMESTAMP '2013-08-01 08:00:00')",
        "2013-08-01T09:30:00.000Z",
        native=f"timestamp_ceil({T2_MS}, 'PT45M', 1375344000000, 'UTC')",
    ),
    scalar(
        "TIME_EXTRACT",
        f"TIME_EXTRACT({T1}, 'hour', '-04:00')",
        4,
        native=f"timestamp_extract({T1_MS}, 'HOUR', '-04:00')",
    ),
    scalar(
        "TIME_EXTRACT",
        f"TIME_EXTRACT({T2}, 'hour', '-04:00')",
        5,
        native=f"timestamp_extract({T2_MS}, 'HOUR', '-04:00')",
    ),
    scalar(
        "TIME_FLOOR",
        f"TIME_FLOOR({T1}, 'PT45M', TIMESTAMP '2013-08-01 08:00:00')",
        "2013-08-01T08:00:00.000Z",
        native=f"timestamp_floor({T1_MS}, 'PT45M', 1375344000000, 'UTC')",
    ),
    scalar(
        "TIME_FLOOR",
        f"TIME_FLOOR({T2}, 'PT45M', TIMESTAMP '2013-08-01 08:00:00')",
        "2013-08-01T08:45:00.000Z",
        native=f"timestamp_floor({T2_MS}, 'PT45M', 1375344000000, 'UTC')",
    ),
    scalar(
        "TIME_FORMAT",
        f"TIME_FORMAT({T1}, 'dd-MM-YYYY hh:mm aa zzz', '-05:00')",
        "01-08-2013 03:14 AM -05:00",
        native=f"timestamp_format({T1_MS}, 'dd-MM-YYYY hh:mm aa zzz', '-05:00')",
    ),
    scalar(
        "TIME_IN_INTERVAL",
        f"TIME_IN_INTERVAL({T1}, '2013-08-01T08:00:00/PT1H')",
        True,
        native=f"(({T1_MS} >= 1375344000000) && ({T1_MS} < 1375347600000))",
    ),
    scalar(
        "TIME_IN_INTERVAL",
        f"TIME_IN_INTERVAL({T2}, '2013-08-01T08:00:00/PT1H')",
        False,
        native=f"(({T2_MS} >= 1375344000000) && ({T2_MS} < 1375347600000))",
    ),
    scalar(
        "TIME_PARSE",
        "TIME_PARSE('2005-11-01', 'YYYY-MM-dd', '-05:00')",
        "2005-11-01T05:00:00.000Z",
        native="timestamp_parse('2005-11-01', 'YYYY-MM-dd', '-05:00')",
    ),
    scalar(
        "TIME_SHIFT",
        f"TIME_SHIFT({T1}, 'PT1H', -24)",
        "2013-07-31T08:14:37.000Z",
        native=f"timestamp_shift({T1_MS}, 'PT1H', -24, 'UTC')",
    ),
    scalar(
        "TIMESTAMP_TO_MILLIS",
        f"TIMESTAMP_TO_MILLIS({T1})",
        T1_MS,
        native=str(T1_MS),
        duckdb=f"SELECT EPOCH_MS({T1})",
    ),
    scalar(
        "TIMESTAMPADD",
        "TIMESTAMPADD(MONTH, 5, TIMESTAMP '2000-01-01 00:00:00')",
        "2000-06-01T00:00:00.000Z",
        native="timestamp_shift(946684800000, 'P5M', 1, 'UTC')",
        duckdb="SELECT TIMESTAMP '2000-01-01 00:00:00' + INTERVAL 5 MONTH",
    ),
    scalar(
        "TIMESTAMPDIFF",
        f"TIMESTAMPDIFF(MINUTE, {T1}, TIME_PARSE('2013-08-01 09:09:06'))",
        54,
        native=f"div((timestamp_parse('2013-08-01 09:09:06') - {T1_MS}), 60000)",
        duckdb=f"SELECT (EPOCH_MS(TIMESTAMP '2013-08-01 09:09:06') - EPOCH_MS({T1})) // 60000",
    ),
    # ---- over the fixtures
    column(
        "CEIL",
        "CEIL(__time TO MONTH)",
        "foo",
        _days("2000-01-01", "2000-02-01", "2000-02-01", "2001-01-01", "2001-02-01", "2001-02-01"),
    ),
    column(
        "FLOOR",
        "FLOOR(__time TO MONTH)",
        "foo",
        _days(*["2000-01-01"] * 3, *["2001-01-01"] * 3),
        duckdb="SELECT DATE_TRUNC('month', __time) FROM foo",
    ),
    column(
        "DATE_TRUNC",
        "DATE_TRUNC('year', __time)",
        "foo",
        _days(*["2000-01-01"] * 3, *["2001-01-01"] * 3),
        duckdb=SAME,
    ),
    # Weeks start on Monday (ISO): 2000-01-01 is a Saturday.
    column(
        "TIME_FLOOR",
        "TIME_FLOOR(__time, 'P1W')",
        "foo",
        _days("1999-12-27", "1999-12-27", "2000-01-03", "2001-01-01", "2001-01-01", "2001-01-01"),
        duckdb="SELECT DATE_TRUNC('week', __time) FROM foo",
    ),
    column(
        "TIME_CEIL",
        "TIME_CEIL(__time, 'P1M')",
        "foo",
        _days("2000-01-01", "2000-02-01", "2000-02-01", "2001-01-01", "2001-02-01", "2001-02-01"),
    ),
    column(
        "TIME_SHIFT",
        "TIME_SHIFT(__time, 'P1M', 1)",
        "foo",
        _days("2000-02-01", "2000-02-02", "2000-02-03", "2001-02-01", "2001-02-02", "2001-02-03"),
        duckdb="SELECT __time + INTERVAL 1 MONTH FROM foo",
    ),
    column(
        "TIME_EXTRACT",
        "TIME_EXTRACT(__time, 'DOW')",
        "foo",
        [6, 7, 1, 1, 2, 3],
        duckdb="SELECT ISODOW(__time) FROM foo",
    ),
    column("EXTRACT", "EXTRACT(DOY FROM __time)", "foo", [1, 2, 3, 1, 2, 3], duckdb=SAME),
    column("EXTRACT", "EXTRACT(YEAR FROM __time)", "foo", [2000] * 3 + [2001] * 3, duckdb=SAME),
    column(
        "TIME_FORMAT",
        "TIME_FORMAT(__time, 'yyyy-MM-dd')",
        "foo",
        ["2000-01-01", "2000-01-02", "2000-01-03", "2001-01-01", "2001-01-02", "2001-01-03"],
        duckdb="SELECT STRFTIME(__time, '%Y-%m-%d') FROM foo",
    ),
    column(
        "TIME_FORMAT",
        "TIME_FORMAT(__time)",
        "foo",
        _days("2000-01-01", "2000-01-02", "2000-01-03", "2001-01-01", "2001-01-02", "2001-01-03"),
    ),
    column(
        "TIME_PARSE",
        "TIME_PARSE(CONCAT('2000-01-0', dim6), 'yyyy-MM-dd')",
        "numfoo",
        _days(*[f"2000-01-0{d}" for d in range(1, 7)]),
    ),
    column(
        "TIME_IN_INTERVAL",
        "TIME_IN_INTERVAL(__time, '2000-01-01/P2D')",
        "foo",
        [True, True, False, False, False, False],
    ),
    column(
        "MILLIS_TO_TIMESTAMP",
        "MILLIS_TO_TIMESTAMP(l1)",
        "numfoo",
        [
            "1970-01-01T00:00:00.007Z",
            "1970-01-01T00:05:25.323Z",
            "1970-01-01T00:00:00.000Z",
            *_NULL3,
        ],
        duckdb="SELECT EPOCH_MS(l1) FROM numfoo",
    ),
    column(
        "TIMESTAMP_TO_MILLIS",
        "TIMESTAMP_TO_MILLIS(__time)",
        "foo",
        [946684800000, 946771200000, 946857600000, 978307200000, 978393600000, 978480000000],
        duckdb="SELECT EPOCH_MS(__time::TIMESTAMP) FROM foo",
    ),
    column(
        "TIMESTAMPADD",
        "TIMESTAMPADD(DAY, 1, __time)",
        "foo",
        _days("2000-01-02", "2000-01-03", "2000-01-04", "2001-01-02", "2001-01-03", "2001-01-04"),
        duckdb="SELECT __time + INTERVAL 1 DAY FROM foo",
    ),
    column(
        "TIMESTAMPADD",
        "TIMESTAMPADD(YEAR, 1, __time)",
        "foo",
        _days("2001-01-01", "2001-01-02", "2001-01-03", "2002-01-01", "2002-01-02", "2002-01-03"),
        duckdb="SELECT __time + INTERVAL 1 YEAR FROM foo",
    ),
    column(
        "TIMESTAMPDIFF",
        "TIMESTAMPDIFF(DAY, __time, TIMESTAMP '2001-01-01 00:00:00')",
        "foo",
        [366, 365, 364, 0, -1, -2],
        duckdb="SELECT DATE_DIFF('day', __time, TIMESTAMP '2001-01-01') FROM foo",
    ),
    column(
        "TIMESTAMPDIFF",
        "TIMESTAMPDIFF(MONTH, TIMESTAMP '1999-11-15 00:00:00', __time)",
        "foo",
        [1, 1, 1, 13, 13, 13],
    ),
]
