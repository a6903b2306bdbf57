"""Other scalar functions: Druid's ``querying/sql-scalar.md#other-scalar-functions``, with the
examples of ``querying/sql-functions.md``. COALESCE answers the first non-null value: with
Druid's SQL-compatible nulls (the default) ``''`` is a value (the page's "nor empty string" is
the legacy mode)."""

from tests.conformance.framework import SAME, Page, column, refused, scalar

PAGE = Page("querying/sql-scalar.md#other-scalar-functions", "Scalar functions: other")

CASES = [
    # sql-functions.md: kttm's agent_category and flight-carriers' OriginStateName as literals
    scalar(
        "CASE",
        "CASE 'Smartphone' WHEN 'Personal computer' THEN 'Large UI' "
        "WHEN 'Smartphone' THEN 'Mobile UI' ELSE 'other' END",
        "Mobile UI",
        native="case_simple('Smartphone', 'Personal computer', 'Large UI', "
        "'Smartphone', 'Mobile UI', 'other')",
        duckdb=SAME,
    ),
    scalar(
        "CASE",
        "CASE WHEN 'Puerto Rico' = 'Puerto Rico' THEN 'U.S. Territory' "
        "WHEN 'Puerto Rico' = 'U.S. Virgin Islands' THEN 'U.S. Territory' "
        "ELSE 'U.S. State' END",
        "U.S. Territory",
        native="case_searched('Puerto Rico' == 'Puerto Rico', 'U.S. Territory', "
        "'Puerto Rico' == 'U.S. Virgin Islands', 'U.S. Territory', 'U.S. State')",
        duckdb=SAME,
    ),
    scalar("COALESCE", "COALESCE(NULL, NULL, 5)", 5, native="nvl(null, nvl(null, 5))", duckdb=SAME),
    scalar(
        "NULLIF",
        "NULLIF('PR', 'PR')",
        None,
        duckdb=SAME,
        native="case_searched(('PR' == 'PR'), null, 'PR')",
    ),
    scalar(
        "NULLIF",
        "NULLIF('MA', 'PR')",
        "MA",
        duckdb=SAME,
        native="case_searched(('MA' == 'PR'), null, 'MA')",
    ),
    scalar(
        "NVL",
        "NVL(NULL, 'No tail number')",
        "No tail number",
        native="nvl(null, 'No tail number')",
        duckdb="SELECT IFNULL(NULL, 'No tail number')",
    ),
    scalar(
        "NVL", "NVL('N951DL', 'No tail number')", "N951DL", native="nvl('N951DL', 'No tail number')"
    ),
    scalar(
        "CAST",
        "CAST('2000-01-02 03:04:05' AS TIMESTAMP)",
        "2000-01-02T03:04:05.000Z",
        native="timestamp_parse('2000-01-02 03:04:05', null, 'UTC')",
        duckdb=SAME,
    ),
    # ---- over the fixtures
    column(
        "CASE",
        "CASE dim1 WHEN 'abc' THEN 'x' WHEN 'def' THEN 'y' ELSE 'other' END",
        "foo",
        ["other", "other", "other", "other", "y", "x"],
        duckdb=SAME,
    ),
    column(
        "CASE",
        "CASE WHEN m1 > 4 THEN 'big' WHEN m1 > 2 THEN 'mid' ELSE 'small' END",
        "foo",
        ["small", "small", "mid", "mid", "big", "big"],
        duckdb=SAME,
    ),
    # sql-functions.md: a DOUBLE cast to VARCHAR reads 1571.0
    column("CAST", "CAST(m2 AS VARCHAR)", "foo", ["1.0", "2.0", "3.0", "4.0", "5.0", "6.0"]),
    column(
        "CAST",
        "CAST(dim1 AS DOUBLE)",
        "foo",
        [None, 10.1, 2.0, 1.0, None, None],
        duckdb="SELECT TRY_CAST(dim1 AS DOUBLE) FROM foo",
    ),
    column("CAST", "CAST(dim6 AS BIGINT)", "numfoo", [1, 2, 3, 4, 5, 6], duckdb=SAME),
    column(
        "CAST", "CAST(l1 AS DOUBLE)", "numfoo", [7.0, 325323.0, 0.0, None, None, None], duckdb=SAME
    ),
    column(
        "COALESCE", "COALESCE(dim2, dim1)", "foo", ["a", "10.1", "", "a", "abc", "abc"], duckdb=SAME
    ),
    column("COALESCE", "COALESCE(l2, l1, 0)", "numfoo", [7, 325323, 0, 0, 0, 0], duckdb=SAME),
    column("NULLIF", "NULLIF(dim2, 'a')", "foo", [None, None, "", None, "abc", None], duckdb=SAME),
    column(
        "NVL",
        "NVL(dim2, 'x')",
        "foo",
        ["a", "x", "", "a", "abc", "x"],
        duckdb="SELECT IFNULL(dim2, 'x') FROM foo",
    ),
    # Not built: Bloom filters (druid-bloom-filter) and complex values from base64.
    refused(
        "BLOOM_FILTER_TEST",
        "SELECT COUNT(*) FROM foo WHERE BLOOM_FILTER_TEST(dim1, 'AAAAAQAAAAEAAAAB')",
    ),
    refused(
        "DECODE_BASE64_COMPLEX", "SELECT DECODE_BASE64_COMPLEX('hyperUnique', 'AQAAAQAAAAHNBA==')"
    ),
]
