"""Druid's ``equals`` filter (``EqualityFilter``): the match value is cast to each column's type
(``ExprEval.castForEqualityComparison``). A LONG column compares longs exactly, and only with a
value that is the same number as a long; a DOUBLE/FLOAT column compares in its type; a STRING
column compares the value's text (so SQL's ``dim1 = 10`` is Druid's ``selector(dim1, "10")``)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from common.query import finalize, merge, parse_query, run_segment
from common.segments.intervals import Interval

DAY = Interval.parse("2024-01-01/2024-01-02")
BIG = 2**53
TABLE = pa.table(
    {
        "__time": pa.array([DAY.start] * 6, pa.int64()),
        "x": pa.array([BIG, BIG + 1, 5, 1, 2**63 - 1, None], pa.int64()),
        "d": pa.array([1.5, 5.0, 0.1, None, 2.0**53, 1.0]),
        "f": pa.array([0.1, 1.5, None, 2, 3, 4], pa.float32()),
        "s": pa.array(["5", "05", "5.0", "1.5", None, "1.0E7"]).dictionary_encode(),
    }
)


def _count(column: str, match_type: str, value: Any) -> int:
    query = parse_query(
        {
            "queryType": "timeseries",
            "dataSource": "t",
            "intervals": [str(DAY)],
            "granularity": "all",
            "filter": {
                "type": "equals",
                "column": column,
                "matchValueType": match_type,
                "matchValue": value,
            },
            "aggregations": [{"type": "count", "name": "n"}],
        }
    )
    partial = run_segment(query, TABLE, interval=DAY, segment_id="s")
    return int(finalize(query, merge(query, [partial]))[0]["result"]["n"])


@pytest.mark.parametrize(
    ("column", "match_type", "value", "rows"),
    [
        # LONG column: longs compare exactly, beyond 2**53 too
        ("x", "LONG", BIG + 1, 1),
        ("x", "DOUBLE", float(BIG), 1),  # a whole double is that long, not every long near it
        ("x", "STRING", str(BIG + 1), 1),
        ("x", "STRING", "05", 1),  # computeNumber: 5
        ("x", "STRING", "5.0", 1),
        ("x", "STRING", "5.5", 0),  # 5.5 is not 5 once cast: no match
        ("x", "DOUBLE", 5.5, 0),
        ("x", "LONG", 5.7, 1),  # a LONG match value is 5.7's longValue(): 5
        ("x", "DOUBLE", 2.0**63, 1),  # saturates to Long.MAX_VALUE, which is 2**63 as a double
        ("x", "DOUBLE", 1e19, 0),
        ("x", "STRING", "abc", 0),
        # DOUBLE and FLOAT columns compare in their type
        ("d", "STRING", "1.50", 1),
        ("d", "LONG", 5, 1),
        ("d", "DOUBLE", 2.0**53, 1),
        ("f", "DOUBLE", 0.1, 1),  # (float) 0.1 == 0.1f
        ("f", "STRING", "1.5", 1),
        # STRING column: the value's text
        ("s", "STRING", "5", 1),
        ("s", "LONG", 5, 1),  # "5", not "05" nor "5.0"
        ("s", "DOUBLE", 5.0, 1),  # Double.toString: "5.0"
        ("s", "DOUBLE", 1e7, 1),  # "1.0E7"
        ("s", "LONG", 5.7, 1),
        ("s", "STRING", 5, 1),
    ],
)
def test_equals_casts_the_value_to_the_columns_type(
    column: str, match_type: str, value: Any, rows: int
) -> None:
    assert _count(column, match_type, value) == rows
