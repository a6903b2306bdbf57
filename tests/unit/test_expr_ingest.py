"""The transform expression subset and the ingest-time Druid filter."""

from __future__ import annotations

from typing import Any

import pytest

from common.expr import ExpressionError, compile_expression
from common.ingest.rowfilter import FilterError, compile_filter

ROW: dict[str, Any] = {
    "page": "Main_Page",
    "added": 12,
    "deleted": 3,
    "ratio": 0.5,
    "flag": "true",
    "nothing": None,
    "tags": ["a", "b"],
    "a column": "spaced",
    "__time": 1_700_000_000_000,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("added + deleted", 15),
        ("added - deleted * 2", 6),
        ("(added - deleted) * 2", 18),
        ("added / 5", 2),
        ("-7 / 2", -3),
        ("added / 0", None),
        ("added / 8.0", 1.5),
        ("added % 5", 2),
        ("2 ^ 3 ^ 2", 512),
        ("ratio * 4", 2.0),
        ("-added", -12),
        ("page + '_x'", "Main_Page_x"),
        ("concat(page, '-', added)", "Main_Page-12"),
        ("concat(page, nothing)", None),
        ("lower(page)", "main_page"),
        ("upper('abc')", "ABC"),
        ("added > 10", 1),
        ("added >= 13", 0),
        ("page == 'Main_Page'", 1),
        ("page != 'Main_Page'", 0),
        ("nothing == 1", None),
        ("added > 10 && deleted > 5", 0),
        ("added > 10 || deleted > 5", 1),
        ("!(added > 10)", 0),
        ("!flag", 0),
        ("if(added > 10, 'big', 'small')", "big"),
        ("if(nothing, 1, 2)", 2),
        ("nvl(nothing, 'dflt')", "dflt"),
        ("nvl(page, 'dflt')", "Main_Page"),
        ("isnull(nothing) + notnull(page)", 2),
        ("strlen(page)", 9),
        ("substring(page, 0, 4)", "Main"),
        ("replace(page, '_', ' ')", "Main Page"),
        ("abs(deleted - added)", 9),
        ("cast('42', 'LONG') + 1", 43),
        ("cast(added, 'DOUBLE')", 12.0),
        ("\"a column\" + '!'", "spaced!"),
        ("'it\\'s'", "it's"),
        ("__time / 1000", 1_700_000_000),
        ("missing_column + 1", None),
        ("1e3 + 0.5", 1000.5),
        ("null", None),
    ],
)
def test_expression_values(text: str, expected: Any) -> None:
    assert compile_expression(text).evaluate(ROW) == expected


def test_columns_read_are_reported() -> None:
    assert compile_expression('concat(page, "a column", lower(x))').columns == {
        "page",
        "a column",
        "x",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("added +", "unexpected 'end of expression'"),
        ("(added", r"expected '\)'"),
        ("added )", r"unexpected '\)' at position 6"),
        ("__import__('os')", r"Function \[__import__\] is not supported"),
        ("lower(a, b)", r"Function \[lower\] needs 1 arguments, got 2"),
        ("cast(a, 'DATE')", "cast"),
        ("a ; b", "unexpected character ';'"),
        ("'unterminated", "unexpected character"),
    ],
)
def test_bad_expressions_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(text)


def _match(spec: dict[str, Any], row: dict[str, Any] = ROW) -> bool:
    pred = compile_filter(spec)
    assert pred is not None
    return pred(row)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "selector", "dimension": "page", "value": "Main_Page"}, True),
        ({"type": "selector", "dimension": "page", "value": "Other"}, False),
        ({"type": "selector", "dimension": "added", "value": "12"}, True),
        ({"type": "selector", "dimension": "nothing", "value": None}, True),
        ({"type": "selector", "dimension": "absent", "value": ""}, True),
        ({"type": "selector", "dimension": "tags", "value": "b"}, True),
        ({"type": "equals", "column": "added", "matchValueType": "LONG", "matchValue": 12}, True),
        (
            {"type": "equals", "column": "page", "matchValueType": "STRING", "matchValue": "x"},
            False,
        ),
        ({"type": "in", "dimension": "page", "values": ["x", "Main_Page"]}, True),
        ({"type": "in", "dimension": "nothing", "values": ["x", None]}, True),
        ({"type": "in", "dimension": "page", "values": ["x"]}, False),
        ({"type": "bound", "dimension": "added", "lower": "10", "ordering": "numeric"}, True),
        (
            {
                "type": "bound",
                "dimension": "added",
                "upper": "12",
                "upperStrict": True,
                "ordering": "numeric",
            },
            False,
        ),
        # Lexicographic: "12" < "9".
        ({"type": "bound", "dimension": "added", "lower": "9"}, False),
        ({"type": "bound", "dimension": "nothing", "lower": "0", "ordering": "numeric"}, False),
        ({"type": "range", "column": "ratio", "matchValueType": "DOUBLE", "lower": 0.5}, True),
        (
            {
                "type": "range",
                "column": "ratio",
                "matchValueType": "DOUBLE",
                "lower": 0.5,
                "lowerOpen": True,
            },
            False,
        ),
        ({"type": "like", "dimension": "page", "pattern": "Main%"}, True),
        ({"type": "like", "dimension": "page", "pattern": "Main\\_Pag_", "escape": "\\"}, True),
        ({"type": "like", "dimension": "page", "pattern": "main%"}, False),
        ({"type": "regex", "dimension": "page", "pattern": "n_P"}, True),
        ({"type": "null", "column": "nothing"}, True),
        ({"type": "null", "column": "page"}, False),
        (
            {
                "type": "and",
                "fields": [
                    {"type": "selector", "dimension": "page", "value": "Main_Page"},
                    {"type": "not", "field": {"type": "null", "column": "added"}},
                ],
            },
            True,
        ),
        (
            {
                "type": "or",
                "fields": [
                    {"type": "false"},
                    {"type": "selector", "dimension": "page", "value": "nope"},
                ],
            },
            False,
        ),
        ({"type": "expression", "expression": "added > deleted * 3"}, True),
        ({"type": "true"}, True),
    ],
)
def test_filters(spec: dict[str, Any], expected: bool) -> None:
    assert _match(spec) is expected


def test_no_filter_is_none() -> None:
    assert compile_filter(None) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "spatial", "dimension": "x"}, "unsupported filter type 'spatial'"),
        ({"type": "selector", "value": "x"}, "needs 'dimension'"),
        ({"type": "and", "fields": []}, "non-empty"),
        ({"type": "regex", "dimension": "x", "pattern": "("}, "pattern is invalid"),
        ({"type": "bound", "dimension": "x", "lower": "a", "ordering": "numeric"}, "numbers"),
        (
            {"type": "selector", "dimension": "x", "value": "a", "extractionFn": {"type": "lower"}},
            "extractionFn",
        ),
        ({"type": "expression", "expression": "foo("}, "expression filter"),
    ],
)
def test_bad_filters(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        compile_filter(spec)
