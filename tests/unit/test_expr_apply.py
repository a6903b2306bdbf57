"""Druid's apply functions and lambdas, and its implicit mapping of multi-value columns.

Answers are Druid's own: ``ApplyFunctionTest`` (map, cartesian_map, filter, fold,
cartesian_fold, any, all, scoping, argument-count errors) and ``ParserTest.testApplyUnapplied``
(the rewrites ``Parser.applyUnappliedBindings`` makes, compared in Druid's ``toString`` form).
Every value case is evaluated row by row AND vectorised over an Arrow table."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from common.expr import ExpressionError, parse_expression
from common.expr.mvmap import apply_unapplied
from common.expr.parse import Apply, ArrayLit, Binary, Call, Ident, Literal, Node, Unary

# ApplyFunctionTest's bindings
BINDINGS: dict[str, Any] = {
    "x": "foo",
    "y": 2,
    "z": 3.1,
    "a": ["foo", "bar", "baz", "foobar"],
    "b": [1, 2, 3, 4, 5],
    "c": [3.1, 4.2, 5.3],
    "d": [None],
    "e": [None, "foo", "bar"],
    "f": [],
}
# The same as one Arrow row (ARRAY columns are large_list: not implicitly mapped).
TABLE = pa.table(
    {
        "x": pa.array(["foo"]),
        "y": pa.array([2]),
        "z": pa.array([3.1]),
        "a": pa.array([BINDINGS["a"]], pa.large_list(pa.string())),
        "b": pa.array([BINDINGS["b"]], pa.large_list(pa.int64())),
        "c": pa.array([BINDINGS["c"]], pa.large_list(pa.float64())),
        "d": pa.array([[None]], pa.large_list(pa.string())),
        "e": pa.array([BINDINGS["e"]], pa.large_list(pa.string())),
        "f": pa.array([[]], pa.large_list(pa.string())),
    }
)

CASES: list[tuple[str, Any]] = [
    # testMap
    (
        "map((x) -> concat(x, 'foo'), ['foo', 'bar', 'baz', 'foobar'])",
        ["foofoo", "barfoo", "bazfoo", "foobarfoo"],
    ),
    ("map((x) -> concat(x, 'foo'), a)", ["foofoo", "barfoo", "bazfoo", "foobarfoo"]),
    ("map((x) -> x + 1, [1, 2, 3, 4, 5])", [2, 3, 4, 5, 6]),
    ("map((x) -> x + 1, b)", [2, 3, 4, 5, 6]),
    ("map((c) -> c + z, [3.1, 4.2, 5.3])", [6.2, 7.3, 8.4]),
    ("map((c) -> c + z, c)", [6.2, 7.3, 8.4]),
    ("map((x) -> x + 1, map((x) -> x + 1, [1, 2, 3, 4, 5]))", [3, 4, 5, 6, 7]),
    ("map((x) -> x + 1, map((x) -> x + 1, b))", [3, 4, 5, 6, 7]),
    ("map((x) -> 1, [1, 2, 3, 4, 5])", [1, 1, 1, 1, 1]),
    # testCartesianMap
    (
        "cartesian_map((x, y) -> concat(x, y), ['foo', 'bar', 'baz', 'foobar'], ['bar', 'baz'])",
        ["foobar", "foobaz", "barbar", "barbaz", "bazbar", "bazbaz", "foobarbar", "foobarbaz"],
    ),
    (
        "cartesian_map((x, y, z) -> concat(concat(x, y), z), "
        "['foo', 'bar', 'baz', 'foobar'], ['bar', 'baz'], ['omg'])",
        [
            "foobaromg",
            "foobazomg",
            "barbaromg",
            "barbazomg",
            "bazbaromg",
            "bazbazomg",
            "foobarbaromg",
            "foobarbazomg",
        ],
    ),
    ("cartesian_map((x, y) -> 1, [1, 2], [1, 2, 3])", [1, 1, 1, 1, 1, 1]),
    ("cartesian_map((x, y) -> concat(x, y), d, d)", [None]),
    ("cartesian_map((x, y) -> concat(x, y), d, f)", []),
    ("cartesian_map((x, y) -> concat(x, y), d, e)", [None, None, None]),
    (
        "cartesian_map((x, y) -> concat(x, y), e, e)",
        [None, None, None, None, "foofoo", "foobar", None, "barfoo", "barbar"],
    ),
    # testFilter
    ("filter((x) -> strlen(x) > 3, ['foo', 'bar', 'baz', 'foobar'])", ["foobar"]),
    ("filter((x) -> strlen(x) > 3, a)", ["foobar"]),
    ("filter((x) -> x > 2, [1, 2, 3, 4, 5])", [3, 4, 5]),
    ("filter((x) -> x > 2, b)", [3, 4, 5]),
    ("filter((x) -> array_contains([], x), ['a', 'b'])", None),
    ("filter((x) -> array_contains([], x), null)", None),
    # testFold
    ("fold((x, y) -> x + y, [1, 1, 1, 1, 1], 0)", 5),
    ("fold((b, acc) -> b * acc, map((b) -> b * 2, filter(b -> b > 3, b)), 1)", 80),
    ("fold((a, acc) -> concat(a, acc), a, '')", "foobarbazbarfoo"),
    ("fold((a, acc) -> array_append(acc, a), a, [])", ["foo", "bar", "baz", "foobar"]),
    ("fold((a, acc) -> array_append(acc, a), b, <LONG>[])", [1, 2, 3, 4, 5]),
    # testCartesianFold
    ("cartesian_fold((x, y, acc) -> x + y + acc, [1, 1, 1, 1, 1], [1, 1], 0)", 20),
    # testAnyMatch / testAllMatch
    ("any(x -> x > 3, [1, 2, 3, 4])", 1),
    ("any(x -> x > 3, [1, 2, 3])", 0),
    ("any(x -> x, map(x -> x > 3, [1, 2, 3, 4]))", 1),
    ("any(x -> x, map(x -> x > 3, [1, 2, 3]))", 0),
    ("all(x -> x > 0, [1, 2, 3, 4])", 1),
    ("all(x -> x > 1, [1, 2, 3, 4])", 0),
    ("all(x -> x, map(x -> x > 0, [1, 2, 3, 4]))", 1),
    ("all(x -> x, map(x -> x > 1, [1, 2, 3, 4]))", 0),
    # testScoping: a lambda argument shadows the column of the same name
    ("map(b -> b + 1, b)", [2, 3, 4, 5, 6]),
    ("fold((b, acc) -> acc + b, map(b -> b + 1, b), 0)", 20),
    (
        "fold((b, acc) -> acc + b, map(b -> b + 1, b), "
        "fold((b, acc) -> acc + b, map(b -> b + 1, b), 0))",
        40,
    ),
    (
        "fold((b, acc) -> acc + b, map(b -> b + 1, b), 0) + "
        "fold((b, acc) -> acc + b, map(b -> b + 1, b), 0)",
        40,
    ),
]


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(_same(g, w) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, float):
        return isinstance(got, float) and abs(got - want) < 1e-9
    return bool(got == want) and type(got) is type(want)


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_apply_functions_answer_as_druid(text: str, expected: Any) -> None:
    expr = parse_expression(text)
    row = expr.evaluate(BINDINGS)
    assert _same(row, expected), (row, expected)
    vector = expr.evaluate_table(TABLE).to_pylist()[0]
    assert _same(vector, expected), (vector, expected)


def test_vectorised_over_many_rows_with_nulls_and_empties() -> None:
    table = pa.table(
        {
            "arr": pa.array([[1, 2, 3], None, [], [5, None]], pa.large_list(pa.int64())),
            "k": pa.array([10, 20, 30, None]),
        }
    )
    cases = {
        "map((v) -> v * k, arr)": [[10, 20, 30], None, [], [None, None]],
        "filter((v) -> v > 1, arr)": [[2, 3], None, None, [5]],
        "any((v) -> v > 2, arr)": [1, 0, 0, 1],
        "all((v) -> v > 0, arr)": [1, 0, 1, 0],
        "fold((v, acc) -> acc + v, arr, k)": [16, None, 30, None],
        "cartesian_map((v, w) -> v * 10 + w, arr, [7, 8])": [
            [17, 18, 27, 28, 37, 38],
            None,
            [],
            [57, 58, None, None],
        ],
    }
    for text, want in cases.items():
        expr = parse_expression(text)
        assert expr.evaluate_table(table).to_pylist() == want, text
        rows = [expr.evaluate(r) for r in table.to_pylist()]
        assert rows == want, text
    # (an empty input makes cartesian_fold answer an empty array: left out of a LONG column)
    folded = parse_expression("cartesian_fold((v, w, acc) -> acc + v * w, arr, [1, 2], 0)")
    assert folded.evaluate_table(table.take([0, 1, 3])).to_pylist() == [18, None, None]
    assert folded.evaluate({"arr": []}) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fold((x, y) -> x + 1, [1, 1, 1, 1, 1])", r"Function\[fold\] requires 3 arguments"),
        (
            "fold(() -> 1, [1, 1, 1, 1, 1], 0)",
            r"Function\[fold\] lambda expression argument count of 0 does not match the 2 "
            "arguments passed to it",
        ),
        (
            "cartesian_fold(() -> 1, [1, 1, 1, 1, 1], [1, 1], 0)",
            r"Function\[cartesian_fold\] lambda expression argument count of 0 does not match "
            "the 3 arguments",
        ),
        ("any((x) -> 1, [1, 2, 3, 4], y)", r"Function\[any\] requires 2 arguments"),
        ("any(() -> 1, [1, 2, 3, 4])", r"Function\[any\] lambda expression argument count of 0"),
        ("all((x) -> 0, [1, 2, 3, 4], y)", r"Function\[all\] requires 2 arguments"),
        ("all(() -> 0, [1, 2, 3, 4])", r"Function\[all\] lambda expression argument count of 0"),
        ("map((x, y) -> x, [1])", r"Function\[map\] lambda expression argument count of 2"),
        ("concat((x) -> x, 'a')", r"\[concat\] is not an apply function"),
        ("x -> x", "lambda is only allowed as the first argument"),
    ],
)
def test_bad_apply_calls_are_400s(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        parse_expression(text)
    assert info.value.status_code == 400


def test_lambda_syntax_forms_and_free_variables() -> None:
    # Expr.g4: x -> e, () -> e, (x, y) -> e; quoted identifiers as parameters
    assert parse_expression("map(x -> x + 1, [1])").evaluate({}) == [2]
    assert parse_expression('map(("v") -> v * 2, [1])').evaluate({}) == [2]
    assert parse_expression("map((x) -> x + y, [1])").columns == {"y"}
    assert parse_expression("map((x) -> x + 1, x)").columns == {"x"}


# ------------------------------------------------------------------------------------------
# Parser.applyUnappliedBindings, as ParserTest prints the results


def _show(node: Node) -> str:
    """Druid's ``Expr.toString``."""
    if isinstance(node, Ident):
        return node.name
    if isinstance(node, Literal):
        return "null" if node.value is None else str(node.value)
    if isinstance(node, ArrayLit):
        return "[" + ", ".join(_show(i) for i in node.items) + "]"
    if isinstance(node, Unary):
        return f"{node.op}{_show(node.arg)}"
    if isinstance(node, Binary):
        return f"({node.op} {_show(node.left)} {_show(node.right)})"
    if isinstance(node, Call):
        return f"({node.name} [" + ", ".join(_show(a) for a in node.args) + "])"
    assert isinstance(node, Apply)
    params = ", ".join(node.params)
    args = ", ".join(_show(a) for a in node.args)
    return f"({node.name} ([{params}] -> {_show(node.body)}), [{args}])"


@pytest.mark.parametrize(
    ("text", "unapplied", "applied"),
    [
        ("x + 1", [], "(+ x 1)"),
        ("x + 1", ["z"], "(+ x 1)"),
        ("x + y", ["x"], "(map ([x] -> (+ x y)), [x])"),
        ("x + y", ["x", "y"], "(cartesian_map ([x, y] -> (+ x y)), [x, y])"),
        ("map(x -> x + y, x)", ["y"], "(cartesian_map ([x, y] -> (+ x y)), [x, y])"),
        ("map(x -> x + 1, x + 1)", ["x"], "(map ([x] -> (+ x 1)), [(map ([x] -> (+ x 1)), [x])])"),
        (
            "fold((x, acc) -> acc + x + y, x, 0)",
            ["y"],
            "(cartesian_fold ([x, y, acc] -> (+ (+ acc x) y)), [x, y, 0])",
        ),
        (
            "z + fold((x, acc) -> acc + x + y, x, 0)",
            ["y"],
            "(+ z (cartesian_fold ([x, y, acc] -> (+ (+ acc x) y)), [x, y, 0]))",
        ),
        (
            "z + fold((x, acc) -> acc + x + y, x, 0)",
            ["y", "z"],
            "(map ([z] -> (+ z (cartesian_fold ([x, y, acc] -> (+ (+ acc x) y)), [x, y, 0]))), "
            "[z])",
        ),
        (
            "array_to_string(concat(x, 'hello'), ',')",
            ["x", "y"],
            "(array_to_string [(map ([x] -> (concat [x, hello])), [x]), ,])",
        ),
        ("cast(x, 'LONG')", ["x"], "(map ([x] -> (cast [x, LONG])), [x])"),
        (
            "cartesian_map((x,y) -> x + y, x, y)",
            ["y"],
            "(cartesian_map ([x, y] -> (+ x y)), [x, y])",
        ),
        (
            "case_searched((x == 'b'),'b',(x == 'g'),'g','Other')",
            ["x"],
            "(map ([x] -> (case_searched [(== x b), b, (== x g), g, Other])), [x])",
        ),
        (
            "array_overlap(nvl(x, 'other'), ['a', 'b', 'other'])",
            ["x"],
            "(array_overlap [(map ([x] -> (nvl [x, other])), [x]), [a, b, other]])",
        ),
        ("x + x", ["x"], "(map ([x] -> (+ x x)), [x])"),
        (
            "x + x + x + y + y + y + y + z + z + z",
            ["x", "y", "z"],
            "(cartesian_map ([x, y, z] -> (+ (+ (+ (+ (+ (+ (+ (+ (+ x x) x) y) y) y) y) z) z) "
            "z)), [x, y, z])",
        ),
    ],
)
def test_implicit_mapping_rewrites_as_druid(text: str, unapplied: list[str], applied: str) -> None:
    node = parse_expression(text).node
    assert _show(apply_unapplied(node, tuple(unapplied))) == applied


def test_implicit_mapping_over_multi_value_columns_end_to_end() -> None:
    table = pa.table(
        {
            "x": pa.array([["a", "b"], ["c"], None, []], pa.list_(pa.string())),
            "y": pa.array([["1", "2"], ["3"], ["4"], ["5"]], pa.list_(pa.string())),
            "n": pa.array([1, 2, 3, 4]),
        }
    )
    # one column: map; a null row is mapped as [null]; an empty row (one-column expression)
    # gives no value, as Druid's deferred selector
    assert parse_expression("concat(x, '!')").evaluate_table(table).to_pylist() == [
        ["a!", "b!"],
        ["c!"],
        [None],
        None,
    ]
    # two columns: cartesian_map, every null or empty row homogenized to [null]
    assert parse_expression("concat(x, y)").evaluate_table(table).to_pylist() == [
        ["a1", "a2", "b1", "b2"],
        ["c3"],
        [None],
        [None],
    ]
    # a lambda reading a multi-value column as a scalar gets it lifted into a cartesian_map
    out = parse_expression("map((v) -> concat(v, x), ['p', 'q'])").evaluate_table(table)
    assert out.to_pylist()[:2] == [["pa", "pb", "qa", "qb"], ["pc", "qc"]]
    with pytest.raises(ExpressionError, match="filter"):
        parse_expression("filter((v) -> v == x, ['a'])").evaluate_table(table)
