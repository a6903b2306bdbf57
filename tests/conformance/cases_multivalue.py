"""Multi-value string functions: Druid's ``querying/sql-multivalue-string-functions.md``.

The page has no worked examples; the answers are Druid's ``CalciteMultiValueStringQueryTest``
over ``numfoo``'s multi-value ``dim3`` (``[a,b] [b,c] [d] [''] null null``), SQL-compatible
mode. Grouping by a multi-value string groups each of its values (Druid's multi-value
unnesting), so the grouped tests count values; a null array (a row of ``dim3`` with no value)
stays null through ``MV_APPEND``/``MV_PREPEND``/``MV_CONCAT`` and groups as null. A multi-value
row prints as its one value, or the JSON text of its values (``"[]"`` for an expression's empty
array). ``MV_FILTER_ONLY``/``MV_FILTER_NONE`` plan onto Druid's list-filtered virtual column.
"""

from tests.conformance.framework import Case, NoNative, Page, column

PAGE = Page("querying/sql-multivalue-string-functions.md", "Multi-value string functions")

_N2 = [None, None]
BROKER = NoNative("over aggregated rows the select list is computed at the broker")


def grouped(fn: str, expr: str, rows: list[list[object]], test: str) -> Case:
    """``SELECT expr, SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC``, as Druid's test."""
    sql = f"SELECT {expr}, SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC"
    return Case(fn, sql, rows, note=f"CalciteMultiValueStringQueryTest.{test}")


CASES = [
    # ---- filters (Druid plans them as native filters: a null literal matches null rows)
    Case(
        "MV_OVERLAP",
        "SELECT dim3 FROM numfoo WHERE MV_OVERLAP(dim3, ARRAY['a', 'b']) LIMIT 5",
        [['["a","b"]'], ['["b","c"]']],
        note="testMultiValueStringOverlapFilter: an in filter",
    ),
    Case(
        "MV_OVERLAP",
        "SELECT dim3 FROM numfoo WHERE MV_OVERLAP(dim3, ARRAY[NULL]) LIMIT 5",
        [[None], [None]],
        note="testMultiValueStringOverlapFilterNull: a null filter",
    ),
    Case(
        "MV_OVERLAP",
        "SELECT dim3 FROM numfoo WHERE MV_OVERLAP(dim3, ARRAY[dim2]) LIMIT 5",
        [['["a","b"]']],
        note="testMultiValueStringOverlapFilterNonLiteral",
    ),
    Case(
        "MV_CONTAINS",
        "SELECT dim3 FROM numfoo WHERE MV_CONTAINS(dim3, ARRAY['a', 'b']) LIMIT 5",
        [['["a","b"]']],
        note="testMultiValueStringContainsFilter: an AND of equality filters",
    ),
    Case(
        "MV_CONTAINS",
        "SELECT dim3 FROM numfoo WHERE MV_CONTAINS(dim3, ARRAY[NULL]) LIMIT 5",
        [[None], [None]],
        note="testMultiValueStringContainsFilterNull",
    ),
    Case(
        "MV_CONTAINS",
        "SELECT dim3 FROM numfoo WHERE MV_CONTAINS(dim3, ARRAY[dim2]) LIMIT 5",
        [['["a","b"]']],
        note="testMultiValueStringContainsArrayOfNonLiteral",
    ),
    column(
        "MV_CONTAINS",
        "MV_CONTAINS(dim3, 'b')",
        "numfoo",
        [True, True, False, False, *_N2],
        duckdb="SELECT list_contains(dim3, 'b') FROM numfoo",
    ),
    # ---- per row
    column(
        "MV_SLICE",
        "MV_SLICE(dim3, 1)",
        "numfoo",
        ["b", "c", "[]", "[]", *_N2],
        note="testMultiValueStringSlice: an empty array prints as []",
    ),
    column("MV_SLICE", "MV_SLICE(dim3, 0, 1)", "numfoo", ["a", "b", "d", "", *_N2]),
    column(
        "MV_LENGTH",
        "MV_LENGTH(dim3)",
        "numfoo",
        [2, 2, 1, 1, *_N2],
        duckdb="SELECT len(dim3) FROM numfoo",
    ),
    Case(
        "MV_LENGTH",
        "SELECT dim1, MV_LENGTH(dim3), SUM(cnt) FROM numfoo GROUP BY 1, 2 ORDER BY 2 DESC",
        [["", 2, 1], ["10.1", 2, 1], ["1", 1, 1], ["2", 1, 1], ["abc", None, 1], ["def", None, 1]],
        note="CalciteMultiValueStringQueryTest.testMultiValueStringLength",
    ),
    # ---- grouped, as Druid's tests
    grouped(
        "MV_APPEND",
        "MV_APPEND(dim3, 'foo')",
        [["foo", 4], [None, 2], ["b", 2], ["", 1], ["a", 1], ["c", 1], ["d", 1]],
        "testMultiValueStringAppend",
    ),
    grouped(
        "MV_PREPEND",
        "MV_PREPEND('foo', dim3)",
        [["foo", 4], [None, 2], ["b", 2], ["", 1], ["a", 1], ["c", 1], ["d", 1]],
        "testMultiValueStringPrepend",
    ),
    Case(
        "MV_TO_STRING",
        "SELECT MV_TO_STRING(MV_PREPEND('foo', dim3), ','), MV_TO_STRING(MV_APPEND(dim3, 'foo'), "
        "','), SUM(cnt) FROM numfoo GROUP BY 1, 2 ORDER BY 3 DESC",
        [
            [None, None, 2],
            ["foo,", ",foo", 1],
            ["foo,a,b", "a,b,foo", 1],
            ["foo,b,c", "b,c,foo", 1],
            ["foo,d", "d,foo", 1],
        ],
        note="testMultiValueStringPrependAppend",
    ),
    grouped(
        "MV_CONCAT",
        "MV_CONCAT(dim3, dim3)",
        [["b", 4], [None, 2], ["", 2], ["a", 2], ["c", 2], ["d", 2]],
        "testMultiValueStringConcat",
    ),
    grouped(
        "MV_OFFSET",
        "MV_OFFSET(dim3, 1)",
        [[None, 4], ["b", 1], ["c", 1]],
        "testMultiValueStringOffset",
    ),
    grouped(
        "MV_ORDINAL",
        "MV_ORDINAL(dim3, 2)",
        [[None, 4], ["b", 1], ["c", 1]],
        "testMultiValueStringOrdinal",
    ),
    grouped(
        "MV_OFFSET_OF",
        "MV_OFFSET_OF(dim3, 'b')",
        [[None, 4], [0, 1], [1, 1]],
        "testMultiValueStringOffsetOf",
    ),
    grouped(
        "MV_ORDINAL_OF",
        "MV_ORDINAL_OF(dim3, 'b')",
        [[None, 4], [1, 1], [2, 1]],
        "testMultiValueStringOrdinalOf",
    ),
    grouped(
        "MV_TO_STRING",
        "MV_TO_STRING(dim3, ',')",
        [[None, 2], ["", 1], ["a,b", 1], ["b,c", 1], ["d", 1]],
        "testMultiValueStringToString",
    ),
    Case(
        "STRING_TO_MV",
        "SELECT STRING_TO_MV(CONCAT(MV_TO_STRING(dim3, ','), ',d'), ','), SUM(cnt) FROM numfoo "
        "WHERE MV_LENGTH(dim3) > 0 GROUP BY 1 ORDER BY 2 DESC, 1",
        [["d", 5], ["b", 2], ["", 1], ["a", 1], ["c", 1]],
        note="testMultiValueStringToStringToMultiValueString",
    ),
    Case(
        "STRING_TO_MV",
        "SELECT STRING_TO_MV(CONCAT(MV_TO_STRING(dim3, ','), ',d'), ',') FROM numfoo "
        "WHERE MV_CONTAINS(STRING_TO_MV(CONCAT(MV_TO_STRING(dim3, ','), ',d'), ','), 'd')",
        [['["a","b","d"]'], ['["b","c","d"]'], ['["d","d"]'], ['["","d"]']],
        note="testSelectAndFilterByStringToMV",
    ),
    Case(
        "STRING_TO_MV",
        "SELECT m1, STRING_TO_MV('a,b', ',') AS mv FROM numfoo GROUP BY 1",
        [[float(m), '["a","b"]'] for m in range(1, 7)],
        native=BROKER,
        note="testStringToMVOfConstant (Druid: an expression post-aggregator)",
    ),
    Case(
        "STRING_TO_MV",
        "SELECT STRING_TO_MV(STRING_AGG(dim1, ','), ',') AS mv, COUNT(*) cnt FROM numfoo",
        [['["","10.1","2","1","def","abc"]', 6]],
        native=BROKER,
        note="testStringToMVOfStringAgg (Druid: an expression post-aggregator)",
    ),
    # ---- to ARRAY
    column(
        "MV_TO_ARRAY",
        "MV_TO_ARRAY(dim3)",
        "numfoo",
        [["a", "b"], ["b", "c"], ["d"], [""], *_N2],
        context={"sqlStringifyArrays": False},
        duckdb="SELECT dim3 FROM numfoo",
    ),
    column(
        "MV_TO_ARRAY",
        "MV_TO_ARRAY(dim1)",
        "numfoo",
        [[""], ["10.1"], ["2"], ["1"], ["def"], ["abc"]],
        context={"sqlStringifyArrays": False},
        duckdb="SELECT [dim1] FROM numfoo",
        note="a single-valued string is a one-element array",
    ),
    # ---- filtered (Druid's ListFilteredVirtualColumn)
    Case(
        "MV_FILTER_ONLY",
        "SELECT MV_FILTER_ONLY(dim3, ARRAY['b']), SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC",
        [[None, 4], ["b", 2]],
        note="testMultiValueListFilter",
    ),
    Case(
        "MV_FILTER_NONE",
        "SELECT MV_FILTER_NONE(dim3, ARRAY['b']), SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC",
        [[None, 2], ["", 1], ["a", 1], ["c", 1], ["d", 1]],
        note="testMultiValueListFilterDeny (SQL-compatible nulls)",
    ),
]
