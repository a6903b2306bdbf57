"""Druid's expression language: each case evaluated row by row AND vectorised over an Arrow
table, both compared with the answer Druid documents (docs/querying/math-expr.md)."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from common.expr import ExpressionError, parse_expression

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z, a Tuesday

TABLE = pa.table(
    {
        "__time": pa.array([T0, T0 + 86_400_000, T0 - 3_600_000], pa.timestamp("ms", tz="UTC")),
        "page": pa.array(["Main_Page", "Talk", "Main_Page"]).dictionary_encode(),
        "added": pa.array([12, -3, 0], pa.int64()),
        "ratio": pa.array([0.5, None, -2.25], pa.float64()),
        "nothing": pa.nulls(3, pa.string()),
        "tags": pa.array([["a", "b"], ["c"], None], pa.list_(pa.string())),
        "num_str": pa.array(["7", "x", None]),
    }
)
ROWS: list[dict[str, Any]] = [
    {**r, "__time": int(r["__time"].timestamp() * 1000)} for r in TABLE.to_pylist()
]

CASES: list[tuple[str, Any]] = [
    # literals and operators with Druid's precedence and types
    ("1", 1),
    ("1.0", 1.0),
    ("'it\\'s'", "it's"),
    ("null", None),
    ("2 + 3 * 4", 14),
    ("(2 + 3) * 4", 20),
    ("7 / 2", 3),
    ("-7 / 2", -3),
    ("7.0 / 2", 3.5),
    ("7 % 3", 1),
    ("-7 % 3", -1),
    ("added / 0", None),
    ("ratio / 0", math.inf),
    ("2 ^ 3 ^ 2", 512),
    ("-2 ^ 2", 4),
    ("added * ratio", 6.0),
    ("page + '!'", "Main_Page!"),
    ("page + added", "Main_Page12"),
    ("ratio + 'x'", "0.5x"),
    ("nothing + 1", None),
    ("num_str * 2", 14.0),
    ("added > 10", 1),
    ("added >= 13", 0),
    ("page == 'Main_Page'", 1),
    ("page != 'Main_Page'", 0),
    ("'a' < 'b'", 1),
    ("2 > 1.5", 1),
    ("nothing == 'x'", None),
    # logical operators: Druid's documented examples and SQL three-valued logic
    ("100 && 11", 1),
    ("0.7 || 0.3", 1),
    ("100 && 0", 0),
    ("'troo' && 'true'", 0),
    ("'troo' || 'true'", 1),
    ("-1 || 0", 0),
    ("null || 1", 1),
    ("null || 0", None),
    ("null && 0", 0),
    ("null && 1", None),
    ("!added", 0),
    ("!0", 1),
    ("!nothing", None),
    ("1 || 0 && 0", 0),  # && and || share one level, left-associative
    # comparison results are LONG 1/0 wherever they go
    ("(added > 10) + 1", 2),
    ("(added > 10) * 1.5", 1.5),
    ("concat(added > 10, '!')", "1!"),
    ("cast(added > 10, 'STRING')", "1"),
    ("max(added > 10, 0)", 1),
    ("lpad(added > 10, 3, '0')", "001"),
    ("if(added > 10, added > 100, 5)", 0),
    # general / conditional
    ("if(added > 10, 'big', 'small')", "big"),
    ("if(nothing, 1, 2)", 2),
    ("if(added > 10, 1, 2.5)", 1),
    ("nvl(nothing, 'dflt')", "dflt"),
    ("nvl(page, 'dflt')", "Main_Page"),
    ("coalesce(nothing, null, added)", 12),
    ("case_searched(added > 100, 'huge', added > 10, 'big', 'small')", "big"),
    ("case_searched(added > 100, 'huge')", None),
    ("case_simple(page, 'Talk', 1, 'Main_Page', 2, 3)", 2),
    ("case_simple(added, 5, 'five', 'other')", "other"),
    ("isnull(nothing) + notnull(page)", 2),
    ("isnull(ratio)", 0),
    ("cast('42', 'LONG') + 1", 43),
    ("cast(1.9, 'LONG')", 1),
    # Java's (long) of a double: toward zero, saturating, NaN 0 (a long text too long for a
    # long is read as a double, as Druid's ExprEval.computeNumber does)
    ("cast(-2.7, 'LONG')", -2),
    ("cast(1e19, 'LONG')", 2**63 - 1),
    ("cast(-1e19, 'LONG')", -(2**63)),
    ("cast(1.0 / 0.0, 'LONG')", 2**63 - 1),
    ("cast(-1.0 / 0.0, 'LONG')", -(2**63)),
    ("cast(0.0 / 0.0, 'LONG')", 0),
    ("cast(added * 1e18, 'LONG')", 2**63 - 1),
    ("cast('99999999999999999999', 'LONG')", 2**63 - 1),
    ("cast('-99999999999999999999', 'LONG')", -(2**63)),
    ("cast(added, 'DOUBLE')", 12.0),
    ("cast(added, 'STRING')", "12"),
    ("cast(ratio, 'STRING')", "0.5"),
    ("cast(12.0, 'STRING')", "12.0"),
    ("cast(added, 'ARRAY<STRING>')", ["12"]),
    ("greatest(1, 2.5, null)", 2.5),
    ("least('b', 'a')", "a"),
    # strings
    ("concat(page, '-', added)", "Main_Page-12"),
    ("concat(page, nothing)", None),
    ("lower(page)", "main_page"),
    ("upper('abc')", "ABC"),
    ("reverse('abc')", "cba"),
    ("repeat('ab', 3)", "ababab"),
    ("strlen(page)", 9),
    ("strlen('h\u00e9llo')", 5),
    ("substring(page, 0, 4)", "Main"),
    ("substring('hello', 1, 3)", "ell"),
    ("substring('hello', 2, -1)", "llo"),
    ("substring('abc', 4, 5)", None),
    ("left('hello', 2)", "he"),
    ("right('hello', 2)", "lo"),
    ("strpos('hello', 'l')", 2),
    ("strpos('hello', 'l', 3)", 3),
    ("strpos('hello', 'z')", -1),
    ("trim('  a b  ')", "a b"),
    ("ltrim('xxaxx', 'x')", "axx"),
    ("rtrim('xxaxx', 'x')", "xxa"),
    ("lpad('abc', 5, 'xy')", "xyabc"),
    ("lpad('abc', 8, 'xy')", "xyxyxabc"),
    ("lpad('abc', 2, 'xy')", "ab"),
    ("rpad('abc', 6, 'xy')", "abcxyx"),
    ("lpad('abc', 5, nothing)", None),
    ("replace(page, '_', ' ')", "Main Page"),
    ("like(page, 'Main%')", 1),
    ("like(page, 'Main\\\\_Pag_', '\\\\')", 1),
    ("like(page, 'main%')", 0),
    ("like(nothing, '%')", 0),  # true nulls match nothing, as Druid's regexp_like/contains
    ("regexp_like(nothing, '.*')", 0),
    ("contains_string(nothing, '')", 0),
    ("regexp_extract('foo123bar', '[0-9]+')", "123"),
    ("regexp_extract('foo123bar', '([a-z]+)([0-9]+)', 2)", "123"),
    ("regexp_extract('foo', '[0-9]+')", None),
    ("regexp_like(page, '^Main')", 1),
    ("regexp_like(page, 'x$')", 0),
    ("regexp_replace('a1b22', '[0-9]+', '#')", "a#b#"),
    ("regexp_replace('ab', '(a)(b)', '$2$1')", "ba"),
    ("contains_string(page, 'Page')", 1),
    ("contains_string(page, 'page')", 0),
    ("icontains_string(page, 'PAGE')", 1),
    ("parse_long('ff', 16)", 255),
    ("parse_long('12')", 12),
    ("parse_long('x')", None),
    # math
    ("abs(-3)", 3),
    ("abs(ratio - 1)", 0.5),
    ("sqrt(16)", 4.0),
    ("pow(2, 10)", 1024.0),
    ("exp(0)", 1.0),
    ("log(1)", 0.0),
    ("floor(2.7)", 2.0),
    ("ceil(2.1)", 3.0),
    ("signum(-4)", -1.0),
    ("div(7, 2)", 3),
    ("div(-7, 2)", -3),
    ("max(1, 2)", 2),
    ("min(1.5, 2)", 1.5),
    ("round(3.14159, 2)", 3.14),
    ("round(2.5)", 3.0),
    ("round(1234, -2)", 1200),
    ("safe_divide(1, 0)", None),
    ("safe_divide(7.0, 2)", 3.5),
    ("bitwiseAnd(12, 10)", 8),
    ("bitwiseOr(12, 10)", 14),
    ("bitwiseXor(12, 10)", 6),
    ("bitwiseShiftLeft(1, 4)", 16),
    ("hypot(3, 4)", 5.0),
    ("getExponent(8.0)", 3),
    ("getExponent(0.75)", -1),
    ("getExponent(0)", -1023),
    ("bitwiseConvertDoubleToLongBits(1.0)", 4607182418800017408),
    ("bitwiseConvertLongBitsToDouble(4607182418800017408)", 1.0),
    ("sqrt(nothing)", None),
    # time
    ("__time", T0),
    ("timestamp_floor(__time, 'P1D')", 1_699_920_000_000),
    ("timestamp_floor(__time, 'PT1H')", 1_699_999_200_000),
    ("timestamp_floor(__time, 'P1M')", 1_698_796_800_000),
    ("timestamp_floor(__time, 'P1D', null, 'America/Los_Angeles')", 1_699_948_800_000),
    ("timestamp_ceil(__time, 'P1D')", 1_700_006_400_000),
    ("timestamp_shift(__time, 'P1D', 2)", T0 + 2 * 86_400_000),
    ("timestamp_shift(__time, 'P1M', 1)", 1_702_592_000_000),
    ("timestamp_extract(__time, 'YEAR')", 2023),
    ("timestamp_extract(__time, 'MONTH')", 11),
    ("timestamp_extract(__time, 'DAY')", 14),
    ("timestamp_extract(__time, 'HOUR')", 22),
    ("timestamp_extract(__time, 'DOW')", 2),
    ("timestamp_extract(__time, 'DOY')", 318),
    ("timestamp_extract(__time, 'WEEK')", 46),
    ("timestamp_extract(__time, 'QUARTER')", 4),
    ("timestamp_extract(__time, 'EPOCH')", 1_700_000_000),
    ("timestamp_extract(-1500, 'EPOCH')", -1),
    ("timestamp_extract(__time + 123, 'MILLISECOND')", 123),
    ("timestamp_extract(__time, 'MICROSECOND')", 1_700_000),
    ("timestamp_extract(__time, 'DECADE')", 202),
    ("timestamp_extract(__time, 'CENTURY')", 21.0),
    ("timestamp_extract(__time, 'MILLENNIUM')", 3.0),
    ("timestamp_extract(__time, 'HOUR', 'Asia/Kolkata')", 3),
    ("timestamp_format(__time)", "2023-11-14T22:13:20.000Z"),
    ("timestamp_format(__time, 'yyyy-MM-dd HH:mm')", "2023-11-14 22:13"),
    ("timestamp_format(__time, 'yyyy-MM-dd', 'Asia/Kolkata')", "2023-11-15"),
    ("timestamp_format(__time, null, '-08:00')", "2023-11-14T14:13:20.000-08:00"),
    ("timestamp_parse('2023-11-14T22:13:20Z')", T0),
    ("timestamp_parse('2023-11-14 22:13:20')", T0),
    ("timestamp_parse('2023-11-14T14:13:20', null, 'America/Los_Angeles')", T0),
    ("timestamp_parse('14/11/2023 22:13:20', 'dd/MM/yyyy HH:mm:ss')", T0),
    ("timestamp_parse('not a time')", None),
    ("timestamp('2023-11-14T22:13:20.000Z')", T0),
    ("unix_timestamp('2023-11-14T22:13:20Z')", 1_700_000_000),
    # arrays and multi-value columns
    ("[1, 2, 3]", [1, 2, 3]),
    ("<STRING>[]", []),
    ("array_length(tags)", 2),
    ("mv_length(tags)", 2),
    ("array_contains(tags, 'a')", 1),
    ("array_contains(tags, ['a', 'b'])", 1),
    ("mv_contains(tags, 'z')", 0),
    ("array_overlap(tags, ['b', 'z'])", 1),
    ("scalar_in_array('b', tags)", 1),
    ("array_offset(tags, 1)", "b"),
    ("array_ordinal(tags, 1)", "a"),
    ("array_offset_of(tags, 'b')", 1),
    ("array_ordinal_of(tags, 'z')", None),
    ("array_append(tags, 'z')", ["a", "b", "z"]),
    ("array_prepend('z', tags)", ["z", "a", "b"]),
    ("array_concat(tags, ['c'])", ["a", "b", "c"]),
    ("array_set_add(tags, 'a')", ["a", "b"]),
    ("array_slice([1, 2, 3, 4], 1, 3)", [2, 3]),
    ("mv_to_string(tags, ',')", "a,b"),
    ("array_to_string(tags, '|')", "a|b"),
    ("string_to_array('a,b,c', ',')", ["a", "b", "c"]),
    ("array(1, 2)", [1, 2]),
    ('"page"', "Main_Page"),
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9 * max(1, abs(b))
    return bool(a == b) and type(a) is type(b)


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_documented_answers_row_and_vector(text: str, expected: Any) -> None:
    expr = parse_expression(text)
    row_values = [expr.evaluate(r) for r in ROWS]
    vector_values = expr.evaluate_table(TABLE).to_pylist()
    assert _same(row_values[0], expected), (row_values[0], expected)
    for r, v in zip(row_values, vector_values, strict=True):
        assert (r is None and v is None) or _same(
            float(r) if isinstance(v, float) and isinstance(r, int) else r, v
        ), (text, row_values, vector_values)


def test_columns_read_are_reported() -> None:
    assert parse_expression('concat(page, "a column", lower(x))').columns == {
        "page",
        "a column",
        "x",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("foo(1)", r"Function \[foo\] is not supported"),
        ("lookup(page, page)", r"argument 2 of lookup\(\) must be a literal"),
        ("fold((x, y) -> x + 1, [1, 1])", r"Function\[fold\] requires 3 arguments"),
        (
            "any(() -> 1, [1, 2])",
            r"Function\[any\] lambda expression argument count of 0 does not match the 1",
        ),
        ("(x) -> x + 1", "lambda is only allowed as the first argument"),
        ("upper((x) -> x, 'a')", r"\[upper\] is not an apply function"),
        ("substring('a')", r"Function \[substring\] needs 3 arguments, got 1"),
        ("cast(a, 'DATE')", "cast"),
        ("timestamp_floor(__time, 'P0D')", "period"),
        ("timestamp_floor(__time, page)", "must be a literal"),
        ("timestamp_extract(__time, 'FORTNIGHT')", "unit"),
        ("timestamp_format(__time, 'yyyy', 'Mars/Olympus')", "time zone"),
        ("regexp_like(page, '(')", "invalid regular expression"),
        ("a ; b", "unexpected character ';'"),
    ],
)
def test_bad_expressions_are_400s_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        parse_expression(text)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("text", "vector", "rows"),
    [
        # Druid's implicit map over a multi-value column used as a scalar: map((tags) -> ...,
        # tags); a null row is mapped as [null] (Druid homogenizes it). Row by row (ingestion)
        # a null field is not known to be multi-value: the expression sees the null itself.
        ("upper(tags)", [["A", "B"], ["C"], [None]], [["A", "B"], ["C"], None]),
        (
            "concat(tags, '-', added)",
            [["a-12", "b-12"], ["c--3"], [None]],
            [["a-12", "b-12"], ["c--3"], None],
        ),
        ("tags == 'a'", [[1, 0], [0], [None]], [[1, 0], [0], None]),
        ("nvl(tags, 'x')", [["a", "b"], ["c"], ["x"]], [["a", "b"], ["c"], "x"]),
        # an array input that reads the column as a scalar is mapped, not the whole expression
        ("array_length(concat(tags, 'x'))", [2, 1, 1], [2, 1, None]),
        # Array functions take the whole value: no mapping.
        ("mv_contains(tags, 'c')", [0, 1, None], [0, 1, None]),
    ],
)
def test_multi_value_columns_as_scalars_map_over_their_values(
    text: str, vector: Any, rows: Any
) -> None:
    expr = parse_expression(text)
    assert expr.evaluate_table(TABLE).to_pylist() == vector
    assert [expr.evaluate(r) for r in ROWS] == rows


def test_a_column_used_as_scalar_and_as_array_is_invalid() -> None:
    # Parser.validateExpr: "used as both scalar and array variables"
    expr = parse_expression("array_length(tags) * 10 + strlen(tags)")
    with pytest.raises(ExpressionError, match=r"\['tags'\] used as both scalar and array"):
        expr.evaluate_table(TABLE)


def test_two_multi_value_columns_as_scalars_are_a_cartesian_map() -> None:
    # Parser.applyUnappliedBindings: x + y => cartesian_map((x, y) -> x + y, x, y)
    table = TABLE.append_column("tags2", pa.array([["x", "y"], None, ["z"]], pa.list_(pa.string())))
    expr = parse_expression("concat(tags, tags2)")
    assert expr.evaluate_table(table).to_pylist() == [
        ["ax", "ay", "bx", "by"],
        [None],  # concat('c', null) over the homogenized [null]
        [None],  # concat(null, 'z')
    ]
    assert expr.evaluate({**ROWS[0], "tags2": ["x", "y"]}) == ["ax", "ay", "bx", "by"]


def test_dictionary_column_is_evaluated_once_per_value() -> None:
    # Same answer whether the dictionary path or the plain path is taken.
    expr = parse_expression("concat(upper(page), '/', strlen(page))")
    plain = TABLE.set_column(1, "page", TABLE.column("page").cast(pa.string()))
    assert expr.evaluate_table(TABLE).to_pylist() == expr.evaluate_table(plain).to_pylist()
    assert expr.evaluate_table(TABLE).to_pylist() == ["MAIN_PAGE/9", "TALK/4", "MAIN_PAGE/9"]


def test_batch_by_batch_evaluation_gives_the_same_answers() -> None:
    # Memory-mapped segments come as many record batches; evaluating batch by batch (no column
    # copies) must answer exactly as evaluating the whole table.
    batched = pa.Table.from_batches(TABLE.to_batches(max_chunksize=1))
    assert batched.column("added").num_chunks == 3
    for text, _ in CASES:
        expr = parse_expression(text)
        whole = expr.evaluate_table(TABLE).to_pylist()
        assert expr.evaluate_table(batched, chunked=True).to_pylist() == whole, text
