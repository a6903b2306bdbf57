"""Numeric functions: Druid's ``querying/sql-scalar.md#numeric-functions`` (and the
examples of ``querying/sql-functions.md``)."""

from tests.conformance.framework import SAME, Page, column, scalar

PAGE = Page("querying/sql-scalar.md#numeric-functions", "Scalar functions: numeric")

CASES = [
    # sql-functions.md: ABS(-27) is 27 (its ArrDelay example)
    scalar("ABS", "ABS(-27)", 27, native="abs(-27)", duckdb=SAME),
    column("ABS", "ABS(l1)", "numfoo", [7, 325323, 0, None, None, None], duckdb=SAME),
]
