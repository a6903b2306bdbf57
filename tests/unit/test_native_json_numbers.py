"""Native results print doubles as Druid's Jackson does: Java's ``Double.toString`` (Druid's own
expected results read ``"added": 9.11526338E8``), NaN and the infinities as strings; longs as
they are. Through every query type's JSON (``finalize_json``), columnar or not."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from common.query import finalize_json, merge, parse_query, run_segment
from common.segments.intervals import Interval

DAY = Interval.parse("2013-01-01/2013-01-02")
TABLE = pa.table(
    {
        "__time": pa.array([DAY.start, DAY.start + 1, DAY.start + 2], pa.int64()),
        "page": pa.array(["a", "b", "b"]),
        "added": pa.array([911_526_000.0, 338.0, 0.0]),
        "n": pa.array([3, 4, 5], pa.int64()),
    }
)
AGGS = [
    {"type": "doubleSum", "name": "added", "fieldName": "added"},
    {"type": "longSum", "name": "n", "fieldName": "n"},
    {"type": "doubleMin", "name": "least", "fieldName": "added"},
]


def _quotient(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    """Druid's ``quotient`` post-aggregator: an IEEE division (0/0 is NaN, x/0 infinite)."""
    return {"type": "arithmetic", "name": name, "fn": "quotient", "fields": list(fields)}


LEAST = {"type": "fieldAccess", "fieldName": "least"}
POST = [_quotient("q", LEAST, LEAST)]


def _json(spec: dict[str, Any]) -> str:
    query = parse_query({"dataSource": "t", "intervals": [str(DAY)], **spec})
    partial = merge(query, [run_segment(query, TABLE, interval=DAY, segment_id="s")])
    return finalize_json(query, partial).decode()


@pytest.mark.parametrize(
    "spec",
    [
        {"queryType": "timeseries", "granularity": "all"},
        {"queryType": "groupBy", "granularity": "all", "dimensions": []},
        {
            "queryType": "topN",
            "granularity": "all",
            "dimension": "page",
            "metric": "n",
            "threshold": 5,
        },
    ],
)
def test_aggregates_print_as_druid(spec: dict[str, Any]) -> None:
    text = _json({**spec, "aggregations": AGGS, "postAggregations": POST})
    if spec["queryType"] == "topN":  # per page: a's sum, then b's
        assert '"added":9.11526E8' in text and '"added":338.0' in text
        assert '"q":"NaN"' in text  # b's least is 0.0: 0.0 / 0.0
    else:
        assert '"added":9.11526338E8' in text and '"n":12' in text and '"least":0.0' in text
        assert '"q":"NaN"' in text


def test_scan_values_print_as_druid() -> None:
    text = _json({"queryType": "scan", "columns": ["added", "n"], "resultFormat": "compactedList"})
    assert '"events":[[9.11526E8,3],[338.0,4],[0.0,5]]' in text
    lists = _json({"queryType": "scan", "columns": ["added"]})
    assert '{"added":9.11526E8}' in lists


def test_infinities_print_as_strings() -> None:
    post = [
        _quotient(
            "inf", {"type": "fieldAccess", "fieldName": "added"}, {"type": "constant", "value": 0}
        )
    ]
    spec = {"granularity": "all", "aggregations": AGGS[:1], "postAggregations": post}
    assert '"inf":"Infinity"' in _json({"queryType": "timeseries", **spec})
    assert '"inf":"Infinity"' in _json({"queryType": "groupBy", "dimensions": [], **spec})
