"""SQL JOIN of a datasource with a subquery or VALUES, planned as Druid plans it: the right side
is materialised at the broker and travels as an ``inline`` datasource with ``rightPrefix``
``j0.`` in a native ``join`` datasource. Answers over Druid's ``foo`` rows are checked against
DuckDB running the same SQL on the same rows."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import PlanValidationError
from tests.unit.test_sql_druid_foo import sql
from tests.unit.test_sql_expressions import _duck

SUB = "(SELECT dim2 AS k, COUNT(*) AS c FROM foo GROUP BY 1)"
CASES = [
    "SELECT f.dim1, t.y FROM foo f JOIN (VALUES ('a', 1), ('abc', 2), ('zz', 3)) AS t(x, y) "
    "ON f.dim2 = t.x",
    f"SELECT dim1, t.c FROM foo LEFT JOIN {SUB} t ON foo.dim1 = t.k",
    f"SELECT t.k, COUNT(*) AS n, SUM(m1) AS s FROM foo INNER JOIN {SUB} t "
    "ON LOWER(foo.dim2) = t.k GROUP BY 1 ORDER BY 1",
    f"SELECT t.c, COUNT(*) AS n FROM foo LEFT JOIN {SUB} t ON foo.dim1 = t.k "
    "WHERE m1 > 1 GROUP BY 1 ORDER BY 1 NULLS FIRST",
    "SELECT foo.dim1, v.n FROM foo JOIN (VALUES (1.0, 'one'), (6.0, 'six')) AS v(m, n) "
    "ON foo.m1 = v.m",
    "SELECT COUNT(*) AS n FROM foo JOIN (SELECT m1 + 1 AS x, dim1 AS d FROM foo) AS t "
    "ON foo.m1 = t.x AND foo.dim1 = t.d",
]


def _rows(rows: list[Any]) -> list[list[Any]]:
    """Rows in a canonical order (a scan without ORDER BY keeps no order in SQL)."""
    return sorted((list(r) for r in rows), key=lambda r: [(v is not None, v) for v in r])


@pytest.mark.parametrize("text", CASES)
def test_joins_match_duckdb(text: str) -> None:
    theirs = _rows(_duck().sql(text).fetchall())
    assert _rows(sql(text).result.rows()) == theirs


def test_join_datasource_shape() -> None:
    native = sql(
        f"SELECT t.k, COUNT(*) FROM foo JOIN {SUB} t ON UPPER(foo.dim2) = t.k GROUP BY 1"
    ).plan.native
    ds = native["dataSource"]
    assert ds["type"] == "join" and ds["left"] == "foo"
    assert ds["rightPrefix"] == "j0." and ds["joinType"] == "INNER"
    assert ds["condition"] == '(upper("dim2") == "j0.k")'
    assert ds["right"]["type"] == "inline"
    assert ds["right"]["columnNames"] == ["k", "c"]
    assert ds["right"]["columnTypes"] == ["string", "long"]
    assert native["dimensions"][0]["dimension"] == "j0.k"


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (f"SELECT dim1 FROM foo RIGHT JOIN {SUB} t ON foo.dim1 = t.k", "RIGHT"),
        (f"SELECT dim1 FROM foo FULL JOIN {SUB} t ON foo.dim1 = t.k", "FULL"),
        (f"SELECT dim1 FROM foo JOIN {SUB} t ON foo.dim1 > t.k", "equality"),
        (f"SELECT dim1 FROM foo JOIN {SUB} t ON foo.cnt = t.k", "CAST"),
        (f"SELECT * FROM foo JOIN {SUB} t ON foo.dim1 = t.k", "SELECT \\*"),
        ("SELECT foo.dim1 FROM foo JOIN foo AS g ON foo.dim1 = g.dim1", "subquery or VALUES"),
        (f"SELECT dim1 FROM foo CROSS JOIN {SUB} t", "CROSS"),
        (f"SELECT dim1 FROM foo JOIN {SUB} t ON foo.dim1 = t.k JOIN {SUB} u ON 1 = 1", "one JOIN"),
        (f"SELECT x.dim1 FROM foo JOIN {SUB} t ON foo.dim1 = t.k", "'x'"),
    ],
)
def test_other_joins_are_refused(bad: str, words: str) -> None:
    with pytest.raises(PlanValidationError, match=words):
        sql(bad)
