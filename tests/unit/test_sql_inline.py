"""SELECT without FROM and VALUES: constant rows evaluated at the broker, with Calcite's column
names (``EXPR$n``) and the same WHERE / GROUP BY / ORDER BY as any table."""

from __future__ import annotations

import pytest

from common.errors import PlanValidationError
from tests.unit.test_sql_time import run


@pytest.mark.parametrize(
    ("text", "names", "types", "rows"),
    [
        ("SELECT 1 + 1", ["EXPR$0"], ["BIGINT"], [[2]]),
        (
            "SELECT 'a' || 'b' AS s, 7 / 2, CAST('3' AS BIGINT), 1.5 * 2",
            ["s", "EXPR$1", "EXPR$2", "EXPR$3"],
            ["VARCHAR", "BIGINT", "BIGINT", "DOUBLE"],
            [["ab", 3, 3, 3.0]],
        ),
        ("SELECT CURRENT_TIMESTAMP", ["EXPR$0"], ["TIMESTAMP"], [["2024-03-09T16:00:00.000Z"]]),
        (
            "SELECT TIME_FLOOR(TIMESTAMP '2024-03-09 16:12:00', 'PT1H') AS h",
            ["h"],
            ["TIMESTAMP"],
            [["2024-03-09T16:00:00.000Z"]],
        ),
        ("SELECT COUNT(*) AS c", ["c"], ["BIGINT"], [[1]]),
        (
            "VALUES (1, 'x'), (2, NULL)",
            ["EXPR$0", "EXPR$1"],
            ["BIGINT", "VARCHAR"],
            [
                [1, "x"],
                [2, None],
            ],
        ),
        (
            "SELECT b, COUNT(*) AS c, SUM(a) AS s FROM (VALUES (1, 'x'), (2, 'y'), (3, 'x')) "
            "AS t(a, b) WHERE a > 1 OR b = 'x' GROUP BY b ORDER BY s DESC",
            ["b", "c", "s"],
            ["VARCHAR", "BIGINT", "BIGINT"],
            [["x", 2, 4], ["y", 1, 2]],
        ),
    ],
)
def test_constant_rows(text: str, names: list[str], types: list[str], rows: list[list]) -> None:
    rs = run(text, {})
    assert (rs.names, rs.sql_types, rs.rows()) == (names, types, rows)


def test_bad_values_and_columns_are_refused() -> None:
    with pytest.raises(PlanValidationError, match="same number of columns"):
        run("VALUES (1, 2), (3)", {})
    with pytest.raises(PlanValidationError, match="not found"):
        run("SELECT nope", {})
