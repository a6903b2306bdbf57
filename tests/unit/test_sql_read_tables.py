"""The datasource a SQL query's native query reads, checked for READ before it runs
(``services.broker.sql_auth.read_tables``)."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import KdruidError
from services.broker.sql_auth import read_tables

BASE: dict[str, Any] = {
    "queryType": "timeseries",
    "intervals": ["2024-01-01/2024-01-02"],
    "granularity": "all",
    "aggregations": [{"type": "count", "name": "n"}],
}


@pytest.mark.parametrize(
    ("ds", "want"),
    [
        ("wikipedia", ["wikipedia"]),
        ({"type": "table", "name": "wiki pedia"}, ["wiki pedia"]),
        ({"type": "lookup", "lookup": "countries"}, []),
        (
            {
                "type": "join",
                "left": "wikipedia",
                "right": {"type": "lookup", "lookup": "countries"},
                "rightPrefix": "j.",
                "condition": 'country == "j.k"',
                "joinType": "LEFT",
            },
            ["wikipedia"],
        ),
    ],
)
def test_the_table_a_query_reads(ds: Any, want: list[str]) -> None:
    assert read_tables({**BASE, "dataSource": ds}) == want


def test_a_datasource_that_is_not_one_is_refused() -> None:
    with pytest.raises(KdruidError):
        read_tables({**BASE, "dataSource": {"type": "table"}})
