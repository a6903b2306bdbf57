"""Array functions: Druid's ``querying/sql-array-functions.md``.

The page has no worked examples; the answers are Druid's own test answers
(``CalciteArraysQueryTest``, whose array-function tests the multi-value page's tests copy) over
``numfoo``'s multi-value ``dim3`` (``[a,b] [b,c] [d] [''] null null``), and the functions' code
(``Function.java``) where the page is silent: a null array gives null (``ARRAY_APPEND(null,
'x')`` is null), ``ARRAY_SLICE`` is Java's ``Arrays.copyOfRange`` (padded with nulls past the
end), ``STRING_TO_ARRAY`` is Java's ``String.split`` (trailing empty strings dropped),
``ARRAY_TO_STRING`` writes a null element as ``null``. DuckDB checks each answer its list
functions can give (``CASE`` keeps a null array null, as Druid).

ARRAY results are asked with ``sqlStringifyArrays: false`` (a JSON array) except where the
default JSON text is the point. GROUP BY an ARRAY (Druid groups whole arrays) is not built: the
grouped tests of Druid's suite are asked here of the functions that give scalars.
"""

from tests.conformance.framework import ETERNITY, Case, NoNative, Page, column, scalar

PAGE = Page("querying/sql-array-functions.md", "Array functions")

ARRAYS = {"sqlStringifyArrays": False}
_N2 = [None, None]


def per_row(
    fn: str, expr: str, values: list[object], duckdb: str | None = None, note: str = ""
) -> Case:
    """``SELECT expr FROM numfoo``: one value per row, ARRAYs as JSON arrays."""
    return column(
        fn,
        expr,
        "numfoo",
        values,
        context=ARRAYS,
        duckdb=None if duckdb is None else f"SELECT {duckdb} FROM numfoo",
        note=note,
    )


def array_scan(expr: str, out: str) -> dict[str, object]:
    """The native form of a constant ARRAY: a one-row scan of an ``out``-typed virtual column."""
    vc = {"type": "expression", "name": "v0", "expression": expr, "outputType": out}
    return {
        "queryType": "scan",
        "dataSource": "foo",
        "intervals": [ETERNITY],
        "virtualColumns": [vc],
        "columns": ["v0"],
        "resultFormat": "compactedList",
        "limit": 1,
    }


def _null_safe(expr: str) -> str:
    return f"CASE WHEN dim3 IS NULL THEN NULL ELSE {expr} END"


CASES = [
    # ---- ARRAY[...]
    scalar(
        "ARRAY",
        "ARRAY[1, 2, 3]",
        "[1,2,3]",
        native=NoNative("the JSON text is the SQL layer's (sqlStringifyArrays)"),
        note="the default result: JSON text",
    ),
    scalar(
        "ARRAY",
        "ARRAY['a', 'b']",
        ["a", "b"],
        context=ARRAYS,
        native=array_scan("array('a','b')", "ARRAY<STRING>"),
        duckdb="SELECT ['a', 'b']",
    ),
    Case(
        "ARRAY",
        "SELECT ARRAY[dim1, dim2] FROM foo",
        [
            [["", "a"]],
            [["10.1", None]],
            [["2", ""]],
            [["1", "a"]],
            [["def", "abc"]],
            [["abc", None]],
        ],
        context=ARRAYS,
        duckdb="SELECT [dim1, dim2] FROM foo",
    ),
    # ---- length, offset, ordinal
    per_row("ARRAY_LENGTH", "ARRAY_LENGTH(dim3)", [2, 2, 1, 1, *_N2], duckdb="len(dim3)"),
    Case(
        "ARRAY_LENGTH",
        "SELECT dim1, ARRAY_LENGTH(dim3), SUM(cnt) FROM numfoo GROUP BY 1, 2 ORDER BY 2 DESC",
        [["", 2, 1], ["10.1", 2, 1], ["1", 1, 1], ["2", 1, 1], ["abc", None, 1], ["def", None, 1]],
        note="CalciteArraysQueryTest.testArrayLength (as testMultiValueStringLength)",
    ),
    per_row("ARRAY_OFFSET", "ARRAY_OFFSET(dim3, 1)", ["b", "c", None, None, *_N2], "dim3[2]"),
    Case(
        "ARRAY_OFFSET",
        "SELECT ARRAY_OFFSET(dim3, 1), SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC",
        [[None, 4], ["b", 1], ["c", 1]],
        note="testArrayOffset",
    ),
    per_row("ARRAY_ORDINAL", "ARRAY_ORDINAL(dim3, 2)", ["b", "c", None, None, *_N2], "dim3[2]"),
    Case(
        "ARRAY_ORDINAL",
        "SELECT ARRAY_ORDINAL(dim3, 2), SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC",
        [[None, 4], ["b", 1], ["c", 1]],
        note="testArrayOrdinal",
    ),
    scalar(
        "ARRAY_OFFSET",
        "ARRAY_OFFSET(ARRAY[1, 2, 3], 5)",
        None,
        native=array_scan("array_offset(array(1,2,3),5)", "LONG"),
        note="out of range: null",
    ),
    # ---- contains, overlap, scalar_in_array
    per_row(
        "ARRAY_CONTAINS",
        "ARRAY_CONTAINS(dim3, 'b')",
        [True, True, False, False, *_N2],
        duckdb="list_contains(dim3, 'b')",
    ),
    Case(
        "ARRAY_CONTAINS",
        "SELECT dim3 FROM numfoo WHERE ARRAY_CONTAINS(dim3, ARRAY['a', 'b']) LIMIT 5",
        [['["a","b"]']],
        duckdb="SELECT '[\"a\",\"b\"]' FROM numfoo WHERE list_has_all(dim3, ['a', 'b'])",
        note="testArrayContainsFilter: every element of the second array",
    ),
    scalar(
        "ARRAY_CONTAINS",
        "ARRAY_CONTAINS(ARRAY[1, 2, 3], ARRAY[2, 3])",
        True,
        native="array_contains(array(1,2,3),array(2,3))",
        duckdb="SELECT list_has_all([1, 2, 3], [2, 3])",
    ),
    per_row(
        "ARRAY_OVERLAP",
        "ARRAY_OVERLAP(dim3, ARRAY['a', 'd'])",
        [True, False, True, False, *_N2],
        duckdb="list_has_any(dim3, ['a', 'd'])",
    ),
    Case(
        "ARRAY_OVERLAP",
        "SELECT dim3 FROM numfoo WHERE ARRAY_OVERLAP(dim3, ARRAY['a', 'b']) LIMIT 5",
        [['["a","b"]'], ['["b","c"]']],
        note="testArrayOverlapFilter",
    ),
    per_row(
        "SCALAR_IN_ARRAY",
        "SCALAR_IN_ARRAY(dim2, ARRAY['a', 'abc'])",
        [True, None, False, True, True, None],
        duckdb="list_contains(['a', 'abc'], dim2)",
    ),
    Case(
        "SCALAR_IN_ARRAY",
        "SELECT dim1 FROM foo WHERE SCALAR_IN_ARRAY(dim1, ARRAY['abc', 'def', 'xyz'])",
        [["def"], ["abc"]],
        duckdb="SELECT dim1 FROM foo WHERE list_contains(['abc', 'def', 'xyz'], dim1)",
    ),
    # ---- offset_of, ordinal_of
    per_row(
        "ARRAY_OFFSET_OF",
        "ARRAY_OFFSET_OF(dim3, 'b')",
        [1, 0, None, None, *_N2],
        duckdb="list_position(dim3, 'b') - 1",
    ),
    Case(
        "ARRAY_OFFSET_OF",
        "SELECT ARRAY_OFFSET_OF(dim3, 'b'), SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC",
        [[None, 4], [0, 1], [1, 1]],
        note="testArrayOffsetOf: no match is null (SQL-compatible mode)",
    ),
    per_row(
        "ARRAY_ORDINAL_OF",
        "ARRAY_ORDINAL_OF(dim3, 'b')",
        [2, 1, None, None, *_N2],
        duckdb="list_position(dim3, 'b')",
    ),
    Case(
        "ARRAY_ORDINAL_OF",
        "SELECT ARRAY_ORDINAL_OF(dim3, 'b'), SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC",
        [[None, 4], [1, 1], [2, 1]],
        note="testArrayOrdinalOf",
    ),
    # ---- prepend, append, concat, slice
    per_row(
        "ARRAY_PREPEND",
        "ARRAY_PREPEND('foo', dim3)",
        [["foo", "a", "b"], ["foo", "b", "c"], ["foo", "d"], ["foo", ""], *_N2],
        duckdb=_null_safe("list_prepend('foo', dim3)"),
    ),
    per_row(
        "ARRAY_APPEND",
        "ARRAY_APPEND(dim3, 'foo')",
        [["a", "b", "foo"], ["b", "c", "foo"], ["d", "foo"], ["", "foo"], *_N2],
        duckdb=_null_safe("list_append(dim3, 'foo')"),
    ),
    scalar(
        "ARRAY_APPEND",
        "ARRAY_APPEND(ARRAY[1, 2], 3)",
        [1, 2, 3],
        context=ARRAYS,
        native=array_scan("array_append(array(1,2),3)", "ARRAY<LONG>"),
        duckdb="SELECT list_append([1, 2], 3)",
    ),
    per_row(
        "ARRAY_CONCAT",
        "ARRAY_CONCAT(dim3, ARRAY['z'])",
        [["a", "b", "z"], ["b", "c", "z"], ["d", "z"], ["", "z"], *_N2],
        duckdb=_null_safe("list_concat(dim3, ['z'])"),
    ),
    scalar(
        "ARRAY_CONCAT",
        "ARRAY_CONCAT(ARRAY[1.5, 2.5], ARRAY[3.5])",
        [1.5, 2.5, 3.5],
        context=ARRAYS,
        native=array_scan("array_concat(array(1.5,2.5),array(3.5))", "ARRAY<DOUBLE>"),
        duckdb="SELECT list_concat([1.5, 2.5], [3.5])::DOUBLE[]",
    ),
    per_row(
        "ARRAY_SLICE",
        "ARRAY_SLICE(dim3, 1, 2)",
        [["b"], ["c"], [None], [None], *_N2],
        note="past the end, Java's copyOfRange pads with nulls",
    ),
    scalar(
        "ARRAY_SLICE",
        "ARRAY_SLICE(ARRAY[1, 2, 3, 4], 1, 3)",
        [2, 3],
        context=ARRAYS,
        native=array_scan("array_slice(array(1,2,3,4),1,3)", "ARRAY<LONG>"),
        duckdb="SELECT [1, 2, 3, 4][2:3]",
    ),
    scalar(
        "ARRAY_SLICE",
        "ARRAY_SLICE(ARRAY[1, 2, 3], 4, 5)",
        None,
        context=ARRAYS,
        native=array_scan("array_slice(array(1,2,3),4,5)", "ARRAY<LONG>"),
        note="start past the length: null",
    ),
    scalar(
        "ARRAY_SLICE",
        "ARRAY_SLICE(ARRAY[1, 2, 3], 1, 5)",
        [2, 3, None, None],
        context=ARRAYS,
        native=array_scan("array_slice(array(1,2,3),1,5)", "ARRAY<LONG>"),
        note="an end past the length pads with nulls",
    ),
    scalar(
        "ARRAY_SLICE",
        "ARRAY_SLICE(ARRAY[1, 2, 3], 2, 1)",
        None,
        context=ARRAYS,
        native=array_scan("array_slice(array(1,2,3),2,1)", "ARRAY<LONG>"),
    ),
    # ---- to string and back
    per_row(
        "ARRAY_TO_STRING",
        "ARRAY_TO_STRING(dim3, ',')",
        ["a,b", "b,c", "d", "", *_N2],
        duckdb="array_to_string(dim3, ',')",
    ),
    Case(
        "ARRAY_TO_STRING",
        "SELECT ARRAY_TO_STRING(dim3, ','), SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC",
        [[None, 2], ["", 1], ["a,b", 1], ["b,c", 1], ["d", 1]],
        note="testArrayToString",
    ),
    scalar(
        "ARRAY_TO_STRING",
        "ARRAY_TO_STRING(ARRAY['a', NULL, 'b'], '|')",
        "a|null|b",
        native="array_to_string(array('a',null,'b'),'|')",
        note="a null element is written 'null' (String.valueOf)",
    ),
    scalar(
        "STRING_TO_ARRAY",
        "STRING_TO_ARRAY('a,b,c', ',')",
        ["a", "b", "c"],
        context=ARRAYS,
        native=array_scan("string_to_array('a,b,c',',')", "ARRAY<STRING>"),
        duckdb="SELECT string_split_regex('a,b,c', ',')",
    ),
    scalar(
        "STRING_TO_ARRAY",
        "STRING_TO_ARRAY('a,b,,', ',')",
        ["a", "b"],
        context=ARRAYS,
        native=array_scan("string_to_array('a,b,,',',')", "ARRAY<STRING>"),
        note="Java's String.split drops trailing empty strings",
    ),
    per_row(
        "STRING_TO_ARRAY",
        "STRING_TO_ARRAY(dim1, '\\.')",
        [[""], ["10", "1"], ["2"], ["1"], ["def"], ["abc"]],
        duckdb="string_split_regex(dim1, '\\.')",
        note="the delimiter is a regular expression",
    ),
    Case(
        "STRING_TO_ARRAY",
        "SELECT ARRAY_LENGTH(STRING_TO_ARRAY(CONCAT(ARRAY_TO_STRING(dim3, ','), ',d'), ',')), "
        "SUM(cnt) FROM numfoo WHERE ARRAY_LENGTH(dim3) > 0 GROUP BY 1 ORDER BY 1",
        [[2, 2], [3, 2]],
        duckdb="SELECT len(string_split_regex(CONCAT(array_to_string(dim3, ','), ',d'), ',')), "
        "SUM(cnt) FROM numfoo WHERE len(dim3) > 0 GROUP BY 1 ORDER BY 1",
        note="testArrayToStringToMultiValueString's arrays, counted by length",
    ),
    # ---- to multi-value strings
    scalar(
        "ARRAY_TO_MV",
        "ARRAY_TO_MV(ARRAY['a', 'b'])",
        '["a","b"]',
        native="array_to_mv(array('a','b'))",
        note="a multi-value VARCHAR",
    ),
    per_row(
        "ARRAY_TO_MV",
        "ARRAY_TO_MV(ARRAY_APPEND(dim3, 'z'))",
        ['["a","b","z"]', '["b","c","z"]', '["d","z"]', '["","z"]', *_N2],
    ),
    Case(
        "ARRAY_TO_MV",
        "SELECT ARRAY_TO_MV(ARRAY[dim4, dim5]), SUM(cnt) FROM numfoo GROUP BY 1 ORDER BY 2 DESC, 1",
        [["a", 3], ["b", 3], ["aa", 2], ["ab", 2], ["ad", 1], ["ba", 1]],
        duckdb="SELECT v, SUM(cnt) FROM (SELECT UNNEST([dim4, dim5]) AS v, cnt FROM numfoo) "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
        note="grouping a multi-value string groups its values (Druid's multi-value unnesting)",
    ),
]
