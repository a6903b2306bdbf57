"""Reduction functions: Druid's ``querying/sql-scalar.md#reduction-functions``. NULL arguments
are ignored; all-NULL is NULL; numbers and strings mixed compare as strings, integers as
longs, numbers with a double as doubles (the page's rules)."""

from tests.conformance.framework import SAME, Page, column, scalar

PAGE = Page("querying/sql-scalar.md#reduction-functions", "Scalar functions: reduction")

CASES = [
    # sql-functions.md: PI, 4 and -5.0 are read as DOUBLEs; the page prints 4.0 as 4.
    scalar(
        "GREATEST",
        "GREATEST(PI, 4, -5.0)",
        4.0,
        native="greatest(pi(), 4, -5.0)",
        duckdb="SELECT GREATEST(PI(), 4, -5.0)",
    ),
    scalar(
        "LEAST",
        "LEAST('apple', 'orange', 'pear')",
        "apple",
        native="least('apple', 'orange', 'pear')",
        duckdb=SAME,
    ),
    column("GREATEST", "GREATEST(l1, l2)", "numfoo", [7, 325323, 0, None, None, None], duckdb=SAME),
    column("GREATEST", "GREATEST(m2, d1)", "numfoo", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], duckdb=SAME),
    column("LEAST", "LEAST(dim1, dim2)", "foo", ["", "10.1", "", "1", "abc", "abc"], duckdb=SAME),
    column("LEAST", "LEAST(l1, l2)", "numfoo", [7, 325323, 0, None, None, None], duckdb=SAME),
]
