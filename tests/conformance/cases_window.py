"""Window functions: Druid's ``querying/sql-window-functions.md``.

The page's example runs every window function over the ``#kk.wikipedia`` and ``#lt.wikipedia``
edits of one day of Druid's ``wikipedia`` example data; its ``channel`` and ``ABS(delta)`` rows
are written here as a ``VALUES`` table (``DOC_TABLE``) with the page's answers (``DOC``). Two
columns of that example differ from Druid's current code and are taken from its tests instead:

- ``LEAD``/``LAG`` with a default: the example passes ``0`` and shows null past the edge, as
  Druid's window operator ignores the default (apache/druid#15270). kdruid refuses a default
  (400) rather than answer either way; the cases without a default follow the example.
- ``LAST_VALUE`` shows the partition's last value on every row, but with ORDER BY the default
  frame ends at the current row, and Druid's ``first_last_rewrite.sqlTest`` answers the current
  row's value there. The example's column is asked with an explicit whole-partition frame.

The other cases are Druid's window tests over ``foo``/``numfoo``
(``sql/src/test/resources/calcite/tests/window/*.sqlTest``), named in each case's note. Without
an ORDER BY, rows come out in the order of the last window's sort, as from Druid's operators.
Window functions run at the broker over the native query's rows, on the operators of the native
``windowOperator`` query (``tests/unit/test_window_operator_query.py`` runs that native form
and the EXPLAIN that shows it); these cases have no native check here; DuckDB checks each answer
(with ``NULLS FIRST`` where kdruid and Druid sort nulls first, and an ORDER BY for its row order).
Aggregates used as window functions (``SUM(...) OVER``) are cases of the aggregations page.
"""

from tests.conformance.framework import Case, NoNative, Page, refused

PAGE = Page("querying/sql-window-functions.md", "Window functions")

WINDOW = NoNative("window functions run at the broker (Druid's windowOperator query)")

# channel, change, then the example's columns: row_no, rank_no, dense_rank_no, pct_rank,
# cumulative_dist, ntile_val, lag_val, lead_val, first_val, last_val
DOC = [
    ("#kk.wikipedia", 1, 1, 1, 1, 0.0, 0.125, 1, None, 7, 1, 6900),
    ("#kk.wikipedia", 7, 2, 2, 2, 0.14285714285714285, 0.25, 1, 1, 56, 1, 6900),
    ("#kk.wikipedia", 56, 3, 3, 3, 0.2857142857142857, 0.375, 2, 7, 63, 1, 6900),
    ("#kk.wikipedia", 63, 4, 4, 4, 0.42857142857142855, 0.5, 2, 56, 91, 1, 6900),
    ("#kk.wikipedia", 91, 5, 5, 5, 0.5714285714285714, 0.625, 3, 63, 2440, 1, 6900),
    ("#kk.wikipedia", 2440, 6, 6, 6, 0.7142857142857143, 0.75, 3, 91, 2703, 1, 6900),
    ("#kk.wikipedia", 2703, 7, 7, 7, 0.8571428571428571, 0.875, 4, 2440, 6900, 1, 6900),
    ("#kk.wikipedia", 6900, 8, 8, 8, 1.0, 1.0, 4, 2703, None, 1, 6900),
    ("#lt.wikipedia", 1, 1, 1, 1, 0.0, 0.1, 1, None, 2, 1, 4358),
    ("#lt.wikipedia", 2, 2, 2, 2, 0.1111111111111111, 0.2, 1, 1, 13, 1, 4358),
    ("#lt.wikipedia", 13, 3, 3, 3, 0.2222222222222222, 0.3, 1, 2, 28, 1, 4358),
    ("#lt.wikipedia", 28, 4, 4, 4, 0.3333333333333333, 0.4, 2, 13, 53, 1, 4358),
    ("#lt.wikipedia", 53, 5, 5, 5, 0.4444444444444444, 0.5, 2, 28, 56, 1, 4358),
    ("#lt.wikipedia", 56, 6, 6, 6, 0.5555555555555556, 0.6, 2, 53, 59, 1, 4358),
    ("#lt.wikipedia", 59, 7, 7, 7, 0.6666666666666666, 0.7, 3, 56, 391, 1, 4358),
    ("#lt.wikipedia", 391, 8, 8, 8, 0.7777777777777778, 0.8, 3, 59, 894, 1, 4358),
    ("#lt.wikipedia", 894, 9, 9, 9, 0.8888888888888888, 0.9, 4, 391, 4358, 1, 4358),
    ("#lt.wikipedia", 4358, 10, 10, 10, 1.0, 1.0, 4, 894, None, 1, 4358),
]
_COLUMN = {
    "ROW_NUMBER": 2,
    "RANK": 3,
    "DENSE_RANK": 4,
    "PERCENT_RANK": 5,
    "CUME_DIST": 6,
    "NTILE": 7,
    "LAG": 8,
    "LEAD": 9,
    "FIRST_VALUE": 10,
    "LAST_VALUE": 11,
}
# the VALUES rows in an order of their own, so that the window's sort shows
DOC_TABLE = (
    "(VALUES "
    + ", ".join(f"('{c}', {v})" for c, v, *_ in sorted(DOC, key=lambda r: (-r[1], r[0])))
    + ") AS t(channel, change)"
)
W = "WINDOW w AS (PARTITION BY channel ORDER BY change)"


def doc(fn: str, call: str, over: str = "w") -> Case:
    """The page's example column of ``fn``: ``call OVER w`` per (channel, change) row."""
    sql = f"SELECT channel, change, {call} OVER {over} FROM {DOC_TABLE} {W}"
    return Case(
        fn,
        sql,
        [[r[0], r[1], r[_COLUMN[fn]]] for r in DOC],
        native=WINDOW,
        duckdb=f"{sql} ORDER BY channel, change",
        note="sql-window-functions.md's example",
    )


def _day(d: str) -> str:
    return f"{d}T00:00:00.000Z"


CASES = [
    # ---- the page's example
    doc("ROW_NUMBER", "ROW_NUMBER()"),
    doc("RANK", "RANK()"),
    doc("DENSE_RANK", "DENSE_RANK()"),
    doc("PERCENT_RANK", "PERCENT_RANK()"),
    doc("CUME_DIST", "CUME_DIST()"),
    doc("NTILE", "NTILE(4)"),
    doc("LAG", "LAG(change, 1)"),
    doc("LEAD", "LEAD(change, 1)"),
    doc("FIRST_VALUE", "FIRST_VALUE(change)"),
    doc(
        "LAST_VALUE",
        "LAST_VALUE(change)",
        over="(PARTITION BY channel ORDER BY change ROWS BETWEEN UNBOUNDED PRECEDING AND "
        "UNBOUNDED FOLLOWING)",
    ),
    refused("LAG", "SELECT m1, LAG(m1, 1, 0) OVER (ORDER BY m1) FROM foo"),
    refused("LEAD", "SELECT m1, LEAD(m1, 1, 0) OVER (ORDER BY m1) FROM foo"),
    # ---- Druid's window tests over foo / numfoo
    Case(
        "RANK",
        "SELECT __time, dim1, m1, SUM(m2) AS summ2, RANK() OVER (PARTITION BY __time ORDER BY "
        "SUM(m2) DESC) AS rank1 FROM foo WHERE m1 IN (5, 6) GROUP BY __time, dim1, m1",
        [[_day("2001-01-02"), "def", 5.0, 5.0, 1], [_day("2001-01-03"), "abc", 6.0, 6.0, 1]],
        native=WINDOW,
        duckdb="SELECT __time, dim1, m1, SUM(m2) AS summ2, RANK() OVER (PARTITION BY __time "
        "ORDER BY SUM(m2) DESC) AS rank1 FROM foo WHERE m1 IN (5, 6) GROUP BY __time, dim1, m1 "
        "ORDER BY __time",
        note="window/rank_handling.sqlTest",
    ),
    Case(
        "LAG",
        "SELECT dim2, LAG(dim2, 1) OVER () FROM foo WHERE dim2 IS NULL OR LENGTH(dim2) > 0 "
        "GROUP BY dim2",
        [[None, None], ["a", None], ["abc", "a"]],
        native=WINDOW,
        note="window/lead_lag.sqlTest: OVER () keeps the grouped rows' order (nulls first)",
    ),
    Case(
        "DENSE_RANK",
        "SELECT FLOOR(m1 / 3), DENSE_RANK() OVER (ORDER BY FLOOR(m1 / 3)), 'prefix', "
        "COUNT(1) OVER (ORDER BY FLOOR(m1 / 3) ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), "
        "COUNT(1) OVER (ORDER BY FLOOR(m1 / 3) RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), "
        "'postfix', COUNT(1) OVER (ORDER BY FLOOR(m1 / 3) ROWS BETWEEN CURRENT ROW AND UNBOUNDED "
        "FOLLOWING), COUNT(1) OVER (ORDER BY FLOOR(m1 / 3) RANGE BETWEEN CURRENT ROW AND "
        "UNBOUNDED FOLLOWING) FROM foo",
        [
            [0.0, 1, "prefix", 1, 2, "postfix", 6, 6],
            [0.0, 1, "prefix", 2, 2, "postfix", 5, 6],
            [1.0, 2, "prefix", 3, 5, "postfix", 4, 4],
            [1.0, 2, "prefix", 4, 5, "postfix", 3, 4],
            [1.0, 2, "prefix", 5, 5, "postfix", 2, 4],
            [2.0, 3, "prefix", 6, 6, "postfix", 1, 1],
        ],
        native=WINDOW,
        note="window/range_handling.sqlTest",
    ),
    Case(
        "LAST_VALUE",
        "SELECT LAST_VALUE(dim1) OVER () = 'abc', FIRST_VALUE(dim1) OVER () = '', "
        "LAST_VALUE(dim1) OVER (ORDER BY m1 ASC) = dim1, "
        "LAST_VALUE(dim1) OVER (ORDER BY m1 DESC) = dim1, m1, dim1 FROM foo ORDER BY m1",
        [
            [True, True, True, True, float(m), d]
            for m, d in enumerate(["", "10.1", "2", "1", "def", "abc"], start=1)
        ],
        native=WINDOW,
        duckdb="SELECT LAST_VALUE(dim1) OVER (ORDER BY __time ROWS BETWEEN UNBOUNDED PRECEDING "
        "AND UNBOUNDED FOLLOWING) = 'abc', FIRST_VALUE(dim1) OVER (ORDER BY __time) = '', "
        "LAST_VALUE(dim1) OVER (ORDER BY m1 ASC) = dim1, "
        "LAST_VALUE(dim1) OVER (ORDER BY m1 DESC) = dim1, m1, dim1 FROM foo ORDER BY m1",
        note="window/first_last_rewrite.sqlTest (IS NOT DISTINCT FROM written as =: dim1 has "
        "no nulls); the default frame ends at the current row's last peer",
    ),
    Case(
        "FIRST_VALUE",
        "SELECT m1, FIRST_VALUE(dim2) OVER (ORDER BY m1 ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING), "
        "FIRST_VALUE(dim1) OVER (ORDER BY m1 ROWS 1 PRECEDING) FROM foo",
        [
            [1.0, None, ""],
            [2.0, "", ""],
            [3.0, "a", "10.1"],
            [4.0, "abc", "2"],
            [5.0, None, "1"],
            [6.0, None, "def"],
        ],
        native=WINDOW,
        duckdb="SELECT m1, FIRST_VALUE(dim2) OVER (ORDER BY m1 ROWS BETWEEN 1 FOLLOWING AND "
        "2 FOLLOWING), FIRST_VALUE(dim1) OVER (ORDER BY m1 ROWS 1 PRECEDING) FROM foo ORDER BY m1",
        note="the value of the frame's first row, null when the frame is empty or the value null",
    ),
    Case(
        "ROW_NUMBER",
        "SELECT dim2, __time, ROW_NUMBER() OVER (ORDER BY dim2 DESC NULLS LAST, __time), "
        "ROW_NUMBER() OVER (ORDER BY dim2 NULLS FIRST, __time) FROM foo",
        [
            [None, _day("2000-01-02"), 5, 1],
            [None, _day("2001-01-03"), 6, 2],
            ["", _day("2000-01-03"), 4, 3],
            ["a", _day("2000-01-01"), 2, 4],
            ["a", _day("2001-01-01"), 3, 5],
            ["abc", _day("2001-01-02"), 1, 6],
        ],
        native=WINDOW,
        duckdb="SELECT dim2, __time, ROW_NUMBER() OVER (ORDER BY dim2 DESC NULLS LAST, __time), "
        "ROW_NUMBER() OVER (ORDER BY dim2 NULLS FIRST, __time) AS r FROM foo ORDER BY r",
        note="window/orderByDescNulls.sqlTest's query over foo",
    ),
    Case(
        "NTILE",
        "SELECT dim4, m1, NTILE(2) OVER (PARTITION BY dim4 ORDER BY m1), NTILE(4) OVER "
        "(ORDER BY m1 DESC) FROM numfoo ORDER BY m1",
        [
            ["a", 1.0, 1, 4],
            ["a", 2.0, 1, 3],
            ["a", 3.0, 2, 2],
            ["b", 4.0, 1, 2],
            ["b", 5.0, 1, 1],
            ["b", 6.0, 2, 1],
        ],
        native=WINDOW,
        duckdb="SELECT dim4, m1, NTILE(2) OVER (PARTITION BY dim4 ORDER BY m1), NTILE(4) OVER "
        "(ORDER BY m1 DESC) FROM numfoo ORDER BY m1",
        note="the first (rows % tiles) tiles hold one row more",
    ),
    Case(
        "PERCENT_RANK",
        "SELECT dim4, PERCENT_RANK() OVER (ORDER BY dim4), CUME_DIST() OVER (ORDER BY dim4) "
        "FROM numfoo",
        [["a", 0.0, 0.5]] * 3 + [["b", 0.6, 1.0]] * 3,
        native=WINDOW,
        duckdb="SELECT dim4, PERCENT_RANK() OVER (ORDER BY dim4), CUME_DIST() OVER (ORDER BY "
        "dim4) FROM numfoo ORDER BY dim4",
        note="peers share a rank",
    ),
    Case(
        "CUME_DIST",
        "SELECT dim2, CUME_DIST() OVER (ORDER BY dim2) FROM foo",
        [[None, 2 / 6], [None, 2 / 6], ["", 0.5], ["a", 5 / 6], ["a", 5 / 6], ["abc", 1.0]],
        native=WINDOW,
        duckdb="SELECT dim2, CUME_DIST() OVER (ORDER BY dim2 NULLS FIRST) FROM foo "
        "ORDER BY dim2 NULLS FIRST",
        note="nulls sort first, as Druid",
    ),
    Case(
        "LEAD",
        "SELECT __time, LEAD(dim1, 2) OVER (ORDER BY __time) FROM foo",
        [
            [_day("2000-01-01"), "2"],
            [_day("2000-01-02"), "1"],
            [_day("2000-01-03"), "def"],
            [_day("2001-01-01"), "abc"],
            [_day("2001-01-02"), None],
            [_day("2001-01-03"), None],
        ],
        native=WINDOW,
        duckdb="SELECT __time, LEAD(dim1, 2) OVER (ORDER BY __time) FROM foo ORDER BY __time",
    ),
]
