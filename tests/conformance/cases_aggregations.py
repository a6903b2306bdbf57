"""Aggregation functions: Druid's ``querying/sql-aggregations.md`` (with its sketch sections).

The page has no worked examples; the answers are Druid's own test answers over ``foo`` and
``numfoo`` (``CalciteQueryTest``, ``CalciteArraysQueryTest``, the DataSketches
``*SqlAggregatorTest``s, SQL-compatible null handling), or the page's documented initial values
("when no rows are selected ... ``COUNT`` returns 0", the others null), each checked against DuckDB
on the same rows where DuckDB has the function. The approximate counts are exact on six rows.
DataSketches' HLL and theta sketches do not hash ``''``, Druid's ``cardinality`` aggregator does.

Over the fixtures: ``foo``'s ``m1``/``m2`` are 1 to 6, ``dim1`` is ``'', '10.1', '2', '1',
'def', 'abc'``, ``dim2`` ``'a', null, '', 'a', 'abc', null``, ``dim3`` (multi-value)
``[a,b] [b,c] [d] [''] null null``; ``numfoo``'s ``l1`` is ``7, 325323, 0`` then nulls, ``d1``
``1.0, 1.7, 0.0`` then nulls, ``dim4`` ``a a a b b b``.

An aggregate used as a window function (``SUM(...) OVER (...)``, documented on the window
functions page) is a case here, under the aggregate's name. ARRAY results are asked with
``sqlStringifyArrays: false`` (a JSON array, comparable with DuckDB's lists) except where the
default JSON text is the point.
"""

from tests.conformance.framework import SAME, Case, NoNative, Page, refused

PAGE = Page("querying/sql-aggregations.md", "Aggregation functions")

ARRAYS = {"sqlStringifyArrays": False}
EXACT = {"useApproximateCountDistinct": False}
WINDOW = NoNative("window functions run at the broker over the native result (no EXPLAIN)")
NO_ROWS = "dim1 = 'nonexistent'"


def one(fn: str, sql: str, *values: object, **kw: object) -> Case:
    """An aggregate query answering one row."""
    return Case(fn, sql, [list(values)], **kw)  # type: ignore[arg-type]


CASES = [
    # ---- COUNT
    one("COUNT", "SELECT COUNT(*) FROM foo", 6, duckdb=SAME),
    one("COUNT", "SELECT COUNT(dim2), COUNT(d1) FROM numfoo", 4, 3, duckdb=SAME),
    one("COUNT", "SELECT COUNT(DISTINCT dim2) FROM foo", 3, duckdb=SAME),
    one(
        "COUNT",
        "SELECT COUNT(DISTINCT dim3) FROM foo",
        5,
        duckdb="SELECT COUNT(DISTINCT v) FROM (SELECT UNNEST(dim3) AS v FROM foo)",
        note="each value of a multi-value row counts separately",
    ),
    one(
        "COUNT",
        "SELECT COUNT(DISTINCT dim1) FROM foo",
        6,
        context=EXACT,
        native=NoNative("exact COUNT(DISTINCT): the groupBy's rows are counted at the broker"),
        duckdb=SAME,
    ),
    one("COUNT", f"SELECT COUNT(*) FILTER (WHERE {NO_ROWS}) FROM foo", 0, duckdb=SAME),
    Case(
        "COUNT",
        "SELECT dim4, COUNT(*), COUNT(l1) FROM numfoo GROUP BY dim4 ORDER BY dim4",
        [["a", 3, 3], ["b", 3, 0]],
        duckdb=SAME,
    ),
    # ---- SUM / MIN / MAX / AVG
    one("SUM", "SELECT SUM(cnt), SUM(m1), SUM(m2) FROM foo", 6, 21.0, 21.0, duckdb=SAME),
    one("SUM", "SELECT SUM(l1), SUM(d1) FROM numfoo", 325330, 2.7, duckdb=SAME),
    one("SUM", "SELECT SUM(m1 * 2) FROM foo", 42.0, duckdb=SAME),
    one(
        "SUM",
        f"SELECT SUM(l1) FILTER (WHERE {NO_ROWS}), SUM(d1) FILTER (WHERE {NO_ROWS}) FROM numfoo",
        None,
        None,
        duckdb=SAME,
    ),
    one(
        "SUM",
        "SELECT SUM(m1) FILTER (WHERE dim2 = 'a'), SUM(m1) FILTER (WHERE dim2 IS NULL) FROM foo",
        5.0,
        8.0,
        duckdb=SAME,
    ),
    one("MIN", "SELECT MIN(m1), MIN(l1), MIN(d2) FROM numfoo", 1.0, 0, 0.0, duckdb=SAME),
    one("MIN", "SELECT MIN(__time) FROM foo", "2000-01-01T00:00:00.000Z", duckdb=SAME),
    one("MIN", f"SELECT MIN(l1) FILTER (WHERE {NO_ROWS}) FROM numfoo", None, duckdb=SAME),
    one("MAX", "SELECT MAX(m2), MAX(l1), MAX(d1) FROM numfoo", 6.0, 325323, 1.7, duckdb=SAME),
    one("MAX", "SELECT MAX(__time) FROM foo", "2001-01-03T00:00:00.000Z", duckdb=SAME),
    one("MAX", f"SELECT MAX(d1) FILTER (WHERE {NO_ROWS}) FROM numfoo", None, duckdb=SAME),
    one("AVG", "SELECT AVG(m1), AVG(d1) FROM numfoo", 3.5, 0.9, duckdb=SAME),
    one(
        "AVG",
        "SELECT AVG(l1) FROM numfoo",
        108443,
        duckdb="SELECT SUM(l1) // COUNT(l1) FROM numfoo",
        note="AVG of a BIGINT is a BIGINT (Calcite's return type), truncated",
    ),
    one("AVG", f"SELECT AVG(d1) FILTER (WHERE {NO_ROWS}) FROM numfoo", None, duckdb=SAME),
    # ---- approximate counts (exact on these rows)
    one(
        "APPROX_COUNT_DISTINCT",
        "SELECT APPROX_COUNT_DISTINCT(dim2), APPROX_COUNT_DISTINCT(dim2) FILTER "
        "(WHERE dim2 <> '') FROM foo",
        3,
        2,
        duckdb="SELECT COUNT(DISTINCT dim2), COUNT(DISTINCT dim2) FILTER (WHERE dim2 <> '') "
        "FROM foo",
    ),
    one(
        "APPROX_COUNT_DISTINCT",
        f"SELECT APPROX_COUNT_DISTINCT(dim1) FILTER (WHERE {NO_ROWS}) FROM foo",
        0,
        note="the approximate count distinct functions start at 0",
    ),
    one(
        "APPROX_COUNT_DISTINCT_BUILTIN",
        "SELECT APPROX_COUNT_DISTINCT_BUILTIN(dim1), APPROX_COUNT_DISTINCT_BUILTIN(dim3) FROM foo",
        6,
        5,
        duckdb="SELECT COUNT(DISTINCT dim1), (SELECT COUNT(DISTINCT v) FROM "
        "(SELECT UNNEST(dim3) AS v FROM foo)) FROM foo",
    ),
    one(
        "APPROX_COUNT_DISTINCT_DS_HLL",
        "SELECT APPROX_COUNT_DISTINCT_DS_HLL(dim2), "
        "APPROX_COUNT_DISTINCT_DS_HLL(dim1, 21, 'HLL_8') FROM foo",
        2,
        5,
        duckdb="SELECT COUNT(DISTINCT NULLIF(dim2, '')), COUNT(DISTINCT NULLIF(dim1, '')) FROM foo",
    ),
    one(
        "APPROX_COUNT_DISTINCT_DS_THETA",
        "SELECT APPROX_COUNT_DISTINCT_DS_THETA(dim2), APPROX_COUNT_DISTINCT_DS_THETA(dim1, 32) "
        "FROM foo",
        2,
        5,
        duckdb="SELECT COUNT(DISTINCT NULLIF(dim2, '')), COUNT(DISTINCT NULLIF(dim1, '')) FROM foo",
    ),
    # ---- sketches (the sketch itself is binary: read back through its estimate)
    one(
        "DS_HLL",
        "SELECT HLL_SKETCH_ESTIMATE(DS_HLL(dim2)) FROM foo",
        2.000000004967054,
        note="HllSketchSqlAggregatorTest: the HLL estimator's value for two coupons",
    ),
    one(
        "DS_HLL",
        "SELECT HLL_SKETCH_ESTIMATE(DS_HLL(dim1, 12, 'HLL_6') FILTER (WHERE dim2 = 'a'), true) "
        "FROM foo",
        1.0,
        note="dim1 of the dim2 = 'a' rows is '' and '1': '' is not hashed",
    ),
    one("DS_THETA", "SELECT THETA_SKETCH_ESTIMATE(DS_THETA(dim2, 1024)) FROM foo", 2.0),
    one(
        "DS_QUANTILES_SKETCH",
        "SELECT DS_GET_QUANTILE(DS_QUANTILES_SKETCH(m1, 64), 0.5) FROM foo",
        3.0,
    ),
    one(
        "APPROX_QUANTILE_DS",
        "SELECT APPROX_QUANTILE_DS(m1, 0.01), APPROX_QUANTILE_DS(m1, 0.5, 64), "
        "APPROX_QUANTILE_DS(m1, 0.98, 256), APPROX_QUANTILE_DS(m1, 0.99), "
        "APPROX_QUANTILE_DS(m1, 0.99) FILTER(WHERE dim1 = 'abc'), "
        "APPROX_QUANTILE_DS(m1, 0.999) FILTER(WHERE dim1 <> 'abc'), "
        "APPROX_QUANTILE_DS(m1, 0.999) FILTER(WHERE dim1 = 'abc'), "
        "APPROX_QUANTILE_DS(cnt, 0.5) FROM foo",
        *(1.0, 3.0, 6.0, 6.0, 6.0, 5.0, 6.0, 1.0),
        note="DoublesSketchSqlAggregatorTest.testQuantileOnFloatAndLongs",
    ),
    refused("APPROX_QUANTILE", "SELECT APPROX_QUANTILE(m1, 0.5) FROM foo"),
    refused(
        "APPROX_QUANTILE_FIXED_BUCKETS",
        "SELECT APPROX_QUANTILE_FIXED_BUCKETS(m1, 0.5, 20, 0.0, 10.0) FROM foo",
    ),
    refused("BLOOM_FILTER", "SELECT BLOOM_FILTER(dim1, 1000) FROM foo"),
    refused("TDIGEST_QUANTILE", "SELECT TDIGEST_QUANTILE(m1, 0.5) FROM foo"),
    refused("TDIGEST_GENERATE_SKETCH", "SELECT TDIGEST_GENERATE_SKETCH(m1) FROM foo"),
    refused("DS_TUPLE_DOUBLES", "SELECT DS_TUPLE_DOUBLES(dim1, m1) FROM foo"),
    # ---- the variance family (druid-stats: VarianceSqlAggregatorTest's columns)
    one(
        "VAR_POP",
        "SELECT VAR_POP(m1), VAR_POP(d1), VAR_POP(l1) FROM numfoo",
        *(2.9166666666666665, 0.48666666666666664, 23518394914.88889),
        duckdb=SAME,
    ),
    one(
        "VAR_SAMP",
        "SELECT VAR_SAMP(m1), VAR_SAMP(f1), VAR_SAMP(l1 * 2) FROM numfoo",
        *(3.5, 0.30333333293596904, 141110369489.33334),
        duckdb=SAME,
        note="a FLOAT is read as a 32-bit float, as Druid's inputType float",
    ),
    one("VARIANCE", "SELECT VARIANCE(m2), VARIANCE(d1) FROM numfoo", 3.5, 0.73, duckdb=SAME),
    Case(
        "VARIANCE",
        "SELECT dim4, VARIANCE(l1), VARIANCE(m1) FILTER (WHERE m1 > 5) FROM numfoo "
        "GROUP BY dim4 ORDER BY dim4",
        [["a", 35277592372.333336, None], ["b", None, 0.0]],
        note="null over no values; 0 over one value (Druid's collector; DuckDB answers null)",
    ),
    one(
        "STDDEV_POP",
        "SELECT STDDEV_POP(m1), STDDEV_POP(d1) FROM numfoo",
        1.707825127659933,
        0.6976149845485451,
        duckdb=SAME,
    ),
    one(
        "STDDEV_SAMP",
        "SELECT STDDEV_SAMP(m1), STDDEV_SAMP(l1) FROM numfoo",
        1.8708286933869707,
        187823.3009302449,
        duckdb=SAME,
    ),
    one(
        "STDDEV",
        "SELECT STDDEV(m2), STDDEV(d1) FILTER (WHERE dim4 = 'b') FROM numfoo",
        1.8708286933869707,
        None,
        duckdb=SAME,
    ),
    # ---- EARLIEST / LATEST / ANY_VALUE (CalciteQueryTest.testEarliestAggregators & co.)
    one(
        "EARLIEST",
        "SELECT EARLIEST(cnt), EARLIEST(m1), EARLIEST(dim1, 10), EARLIEST(cnt + 1), "
        "EARLIEST(m1 + 1), EARLIEST(dim1 || CAST(cnt AS VARCHAR), 10) FROM foo",
        *(1, 1.0, "", 2, 2.0, "1"),
        duckdb="SELECT arg_min(cnt, __time), arg_min(m1, __time), arg_min(dim1, __time), "
        "arg_min(cnt + 1, __time), arg_min(m1 + 1, __time), "
        "arg_min(dim1 || CAST(cnt AS VARCHAR), __time) FROM foo",
    ),
    one(
        "LATEST",
        "SELECT LATEST(cnt), LATEST(m1), LATEST(dim1, 10), LATEST(cnt + 1), LATEST(m1 + 1), "
        "LATEST(dim1 || CAST(cnt AS VARCHAR), 10) FROM foo",
        *(1, 6.0, "abc", 2, 7.0, "abc1"),
        duckdb="SELECT arg_max(cnt, __time), arg_max(m1, __time), arg_max(dim1, __time), "
        "arg_max(cnt + 1, __time), arg_max(m1 + 1, __time), "
        "arg_max(dim1 || CAST(cnt AS VARCHAR), __time) FROM foo",
    ),
    one(
        "LATEST",
        "SELECT LATEST(dim1, 2) FROM foo",
        "ab",
        note="a string is cut to maxBytesPerString",
    ),
    Case(
        "EARLIEST",
        "SELECT dim4, EARLIEST(dim5, 10), LATEST(l1) FROM numfoo GROUP BY dim4 ORDER BY dim4",
        [["a", "aa", 0], ["b", "ad", None]],
        note="the latest row's value, even when null",
    ),
    one(
        "EARLIEST_BY",
        "SELECT EARLIEST_BY(dim1, MILLIS_TO_TIMESTAMP(l1)), EARLIEST_BY(m1, "
        "MILLIS_TO_TIMESTAMP(l1)) FROM numfoo",
        "2",
        3.0,
        duckdb="SELECT arg_min(dim1, l1), arg_min(m1, l1) FROM numfoo",
        note="rows with a null time are skipped",
    ),
    one(
        "LATEST_BY",
        "SELECT LATEST_BY(dim1, MILLIS_TO_TIMESTAMP(l1)), LATEST_BY(dim1, "
        "MILLIS_TO_TIMESTAMP(l1), 2), LATEST_BY(m1, MILLIS_TO_TIMESTAMP(l1)) FROM numfoo",
        *("10.1", "10", 2.0),
        duckdb="SELECT arg_max(dim1, l1), LEFT(arg_max(dim1, l1), 2), arg_max(m1, l1) FROM numfoo",
    ),
    one(
        "ANY_VALUE",
        "SELECT ANY_VALUE(cnt), ANY_VALUE(m1), ANY_VALUE(m2), ANY_VALUE(dim1, 10), "
        "ANY_VALUE(cnt + 1), ANY_VALUE(m1 + 1), ANY_VALUE(dim1 || CAST(cnt AS VARCHAR), 10) "
        "FROM foo",
        *(1, 1.0, 1.0, "", 2, 2.0, "1"),
        note="CalciteQueryTest.testAnyAggregator: the first row's values",
    ),
    # ---- GROUPING
    refused(
        "GROUPING",
        "SELECT dim2, GROUPING(dim2), COUNT(*) FROM foo GROUP BY GROUPING SETS ((dim2), ())",
    ),
    # ---- ARRAY_AGG / ARRAY_CONCAT_AGG / STRING_AGG / LISTAGG (CalciteArraysQueryTest)
    one(
        "ARRAY_AGG",
        "SELECT ARRAY_AGG(dim1), ARRAY_AGG(DISTINCT dim1), ARRAY_AGG(DISTINCT dim1) "
        "FILTER(WHERE dim1 = 'shazbot') FROM foo WHERE dim1 IS NOT NULL",
        '["","10.1","2","1","def","abc"]',
        '["","1","10.1","2","abc","def"]',
        None,
        native=NoNative("the JSON text is the SQL layer's (sqlStringifyArrays); next case"),
        note="the default result format: an ARRAY as JSON text",
    ),
    one(
        "ARRAY_AGG",
        "SELECT ARRAY_AGG(dim1), ARRAY_AGG(DISTINCT dim1), ARRAY_AGG(DISTINCT dim1) "
        "FILTER(WHERE dim1 = 'shazbot') FROM foo WHERE dim1 IS NOT NULL",
        ["", "10.1", "2", "1", "def", "abc"],
        ["", "1", "10.1", "2", "abc", "def"],
        None,
        context=ARRAYS,
        duckdb="SELECT list(dim1), list(DISTINCT dim1 ORDER BY dim1), list(DISTINCT dim1) "
        "FILTER(WHERE dim1 = 'shazbot') FROM foo WHERE dim1 IS NOT NULL",
    ),
    one(
        "ARRAY_AGG",
        "SELECT ARRAY_AGG(dim3), ARRAY_AGG(DISTINCT dim3) FROM foo",
        ["a", "b", "b", "c", "d", "", None, None],
        [None, "", "a", "b", "c", "d"],
        context=ARRAYS,
        note="each value of a multi-value row, a null row as null",
    ),
    one(
        "ARRAY_AGG",
        "SELECT ARRAY_AGG(l1), ARRAY_AGG(d1), ARRAY_AGG(DISTINCT l1) FROM numfoo",
        [7, 325323, 0, None, None, None],
        [1.0, 1.7, 0.0, None, None, None],
        [None, 0, 7, 325323],
        context=ARRAYS,
        duckdb="SELECT list(l1), list(d1), list(DISTINCT l1 ORDER BY l1 NULLS FIRST) FROM numfoo",
    ),
    Case(
        "ARRAY_AGG",
        "SELECT dim4, ARRAY_AGG(dim5) FROM numfoo GROUP BY dim4 ORDER BY dim4",
        [["a", ["aa", "ab", "ba"]], ["b", ["ad", "aa", "ab"]]],
        context=ARRAYS,
        duckdb="SELECT dim4, list(dim5 ORDER BY __time) FROM numfoo GROUP BY dim4 ORDER BY dim4",
    ),
    one(
        "ARRAY_CONCAT_AGG",
        "SELECT ARRAY_CONCAT_AGG(MV_TO_ARRAY(dim3)), ARRAY_CONCAT_AGG(DISTINCT MV_TO_ARRAY(dim3)) "
        "FROM foo",
        ["a", "b", "b", "c", "d", ""],
        ["", "a", "b", "c", "d"],
        context=ARRAYS,
        duckdb="SELECT flatten(list(dim3)), (SELECT list(DISTINCT v ORDER BY v) FROM "
        "(SELECT UNNEST(dim3) AS v FROM foo)) FROM foo",
        note="null arrays are skipped",
    ),
    one(
        "STRING_AGG",
        "SELECT STRING_AGG(dim1, ','), STRING_AGG(DISTINCT dim1, ','), STRING_AGG(DISTINCT dim1, "
        "',') FILTER(WHERE dim1 = 'shazbot') FROM foo WHERE dim1 IS NOT NULL",
        *(",10.1,2,1,def,abc", ",1,10.1,2,abc,def", None),
        duckdb="SELECT string_agg(dim1, ','), string_agg(DISTINCT dim1, ',' ORDER BY dim1), "
        "string_agg(DISTINCT dim1, ',') FILTER(WHERE dim1 = 'shazbot') FROM foo "
        "WHERE dim1 IS NOT NULL",
    ),
    one(
        "STRING_AGG",
        "SELECT STRING_AGG(dim3, ','), STRING_AGG(DISTINCT dim3, ',') FROM foo",
        "a,b,b,c,d,",
        ",a,b,c,d",
        duckdb="SELECT string_agg(v, ','), string_agg(DISTINCT v, ',' ORDER BY v) FROM "
        "(SELECT UNNEST(dim3) AS v FROM foo)",
        note="nulls are skipped, '' is a value",
    ),
    one(
        "STRING_AGG",
        "SELECT STRING_AGG(l1, ','), STRING_AGG(DISTINCT l1, ',') FROM numfoo",
        "7,325323,0",
        "0,325323,7",
        note="the DISTINCT values are strings, in string order",
    ),
    one(
        "LISTAGG",
        "SELECT LISTAGG(dim1, '|'), LISTAGG(DISTINCT dim2, '|') FROM foo",
        "|10.1|2|1|def|abc",
        "|a|abc",
        duckdb="SELECT string_agg(dim1, '|'), string_agg(DISTINCT dim2, '|' ORDER BY dim2) "
        "FROM foo",
    ),
    # ---- BIT_AND / BIT_OR / BIT_XOR
    one("BIT_AND", "SELECT BIT_AND(l1) FROM numfoo", 0, duckdb="SELECT BIT_AND(l1) FROM numfoo"),
    one("BIT_OR", "SELECT BIT_OR(l1) FROM numfoo", 325327, duckdb="SELECT BIT_OR(l1) FROM numfoo"),
    one(
        "BIT_XOR", "SELECT BIT_XOR(l1) FROM numfoo", 325324, duckdb="SELECT BIT_XOR(l1) FROM numfoo"
    ),
    one(
        "BIT_AND",
        "SELECT BIT_AND(l1) FILTER(WHERE l1 > 100), BIT_OR(l1) FILTER(WHERE dim1 = 'nonexistent') "
        "FROM numfoo",
        0,
        None,
        note="Druid folds from 0, so BIT_AND is 0 whenever a row is aggregated (325323 here)",
    ),
    # ---- aggregates as window functions (sql-window-functions.md)
    Case(
        "SUM",
        "SELECT dim4, m1, SUM(m1) OVER (PARTITION BY dim4 ORDER BY m1) FROM numfoo "
        "ORDER BY dim4, m1",
        [[d, float(m), s] for d, m, s in [("a", 1, 1.0), ("a", 2, 3.0), ("a", 3, 6.0)]]
        + [[d, float(m), s] for d, m, s in [("b", 4, 4.0), ("b", 5, 9.0), ("b", 6, 15.0)]],
        native=WINDOW,
        duckdb=SAME,
    ),
    Case(
        "SUM",
        "SELECT m1, m2, SUM(m1) OVER (PARTITION BY m2) AS sum1, SUM(m2) OVER () AS sum2 "
        "FROM numfoo GROUP BY m1, m2",
        [[float(m), float(m), float(m), 21.0] for m in range(1, 7)],
        native=WINDOW,
        duckdb="SELECT m1, m2, SUM(m1) OVER (PARTITION BY m2) AS sum1, SUM(m2) OVER () AS sum2 "
        "FROM numfoo GROUP BY m1, m2 ORDER BY m1",
        note="window/WindowOpReorder.sqlTest",
    ),
    Case(
        "COUNT",
        "SELECT dim1, COUNT(dim1) OVER () cc FROM foo WHERE dim1 > '0'",
        [["10.1", 5], ["2", 5], ["1", 5], ["def", 5], ["abc", 5]],
        native=WINDOW,
        duckdb=SAME,
        note="window/no_grouping.sqlTest",
    ),
    Case(
        "COUNT",
        "SELECT dim2, COUNT(*) OVER (PARTITION BY dim2 ORDER BY dim1 ROWS UNBOUNDED PRECEDING), "
        "COUNT(*) OVER (PARTITION BY dim2 ORDER BY dim1 ROWS 1 PRECEDING), "
        "COUNT(*) OVER (PARTITION BY dim2 ORDER BY dim1 ROWS CURRENT ROW), "
        "COUNT(*) OVER (PARTITION BY dim2 ORDER BY dim1 ROWS 1 FOLLOWING), COUNT(*) OVER w "
        "FROM numfoo WHERE dim2 IN ('a', 'abc') GROUP BY dim2, dim1 "
        "WINDOW w AS (PARTITION BY dim2 ORDER BY dim1 ROWS UNBOUNDED FOLLOWING)",
        [["a", 1, 1, 1, 2, 2], ["a", 2, 2, 1, 1, 1], ["abc", 1, 1, 1, 1, 1]],
        native=WINDOW,
        note="window/defaultBoundCurrentRow.sqlTest: ROWS x alone runs from x to the current row, "
        "or from the current row to x when x follows it (Calcite)",
    ),
    Case(
        "COUNT",
        "SELECT m1, COUNT(*) OVER (ORDER BY m1 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), "
        "COUNT(*) OVER (ORDER BY m1 ROWS BETWEEN 3 PRECEDING AND 1 PRECEDING), "
        "COUNT(*) OVER (ORDER BY m1 ROWS BETWEEN 1 FOLLOWING AND 3 FOLLOWING), "
        "SUM(m1) OVER (ORDER BY m1 ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM foo",
        [
            [1.0, 0, 0, 3, 3.0],
            [2.0, 1, 1, 3, 6.0],
            [3.0, 2, 2, 3, 9.0],
            [4.0, 3, 3, 2, 12.0],
            [5.0, 4, 3, 1, 15.0],
            [6.0, 5, 3, 0, 11.0],
        ],
        native=WINDOW,
        duckdb="SELECT m1, COUNT(*) OVER (ORDER BY m1 ROWS BETWEEN UNBOUNDED PRECEDING AND "
        "1 PRECEDING), COUNT(*) OVER (ORDER BY m1 ROWS BETWEEN 3 PRECEDING AND 1 PRECEDING), "
        "COUNT(*) OVER (ORDER BY m1 ROWS BETWEEN 1 FOLLOWING AND 3 FOLLOWING), "
        "SUM(m1) OVER (ORDER BY m1 ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM foo ORDER BY m1",
        note="window/allBoundsCombination.sqlTest's frames over foo: an empty frame counts 0",
    ),
    Case(
        "MIN",
        "SELECT l2, l1, MIN(l2) OVER (PARTITION BY l2), MIN(l2) OVER (PARTITION BY l2 ORDER BY l1) "
        "FROM numfoo WHERE (l2 IS NULL OR l2 = -1111 OR l2 = 0) AND (l1 IS NULL OR l1 <> 7) "
        "ORDER BY l2 NULLS FIRST, l1 NULLS FIRST",
        [[None, None, None, None]] * 3 + [[0, 0, 0, 0]],
        native=WINDOW,
        duckdb=SAME,
        note="window/windowed_long_null.sqlTest",
    ),
    Case(
        "AVG",
        "SELECT dim4, AVG(l1) OVER (PARTITION BY dim4), MAX(m1) OVER (PARTITION BY dim4) "
        "FROM numfoo ORDER BY dim4",
        [["a", 108443, 3.0]] * 3 + [["b", None, 6.0]] * 3,
        native=WINDOW,
        note="AVG of a BIGINT stays a (truncated) BIGINT",
    ),
]
