"""Merging a single partial row skips Acero (``engine.base._merge_one_row``) and gives exactly
what Acero's regrouping gives: same columns, types and values, nulls included, for LONG and
DOUBLE aggregators, first/last, filtered aggregators, and after finalizing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from common.query.engine import base, finalize, merge, run_segment, timeseries
from common.query.models import parse_query
from common.segments.intervals import Interval

T0 = Interval.parse("2024-03-08/2024-03-09").start
SEGMENT = Interval(T0, T0 + 86_400_000)


def segment(n: int = 50) -> pa.Table:
    rng = np.random.default_rng(5)
    return pa.table(
        {
            "__time": pa.array(np.sort(rng.integers(T0, SEGMENT.end, n)), pa.timestamp("ms")),
            "country": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, dtype=np.int32)), pa.array(["US"])
            ),
            "added": pa.array(rng.integers(-100, 100, n), pa.int64()),
            "delta": pa.array(rng.normal(0, 10, n)),
            "holes": pa.nulls(n, pa.int64()),
            "nan": pa.array(np.full(n, np.nan)),
            "word": pa.array([f"w{i}" for i in range(n)]),
        }
    )


AGGS: list[dict[str, Any]] = [
    {"type": "count", "name": "n"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
    {"type": "floatSum", "name": "fdelta", "fieldName": "delta"},
    {"type": "longSum", "name": "holes", "fieldName": "holes"},
    {"type": "longMin", "name": "minHoles", "fieldName": "holes"},
    {"type": "doubleMax", "name": "nan", "fieldName": "nan"},
    {"type": "longMax", "name": "maxAdded", "fieldName": "added"},
    {"type": "doubleMin", "name": "minDelta", "fieldName": "delta"},
    {"type": "longFirst", "name": "first", "fieldName": "added"},
    {"type": "stringLast", "name": "last", "fieldName": "word"},
    {"type": "doubleSum", "name": "expr", "expression": "added * 2 + delta"},
    {
        "type": "filtered",
        "filter": {"type": "selector", "dimension": "country", "value": "FR"},
        "aggregator": {"type": "longSum", "name": "none", "fieldName": "added"},
    },
]

QUERIES: list[dict[str, Any]] = [
    {"queryType": "timeseries", "granularity": "all"},
    {
        "queryType": "timeseries",
        "granularity": "all",
        "filter": {"type": "selector", "dimension": "country", "value": "FR"},
    },
    {"queryType": "groupBy", "granularity": "all", "dimensions": ["country"]},
    {"queryType": "groupBy", "granularity": "day", "dimensions": []},
    {
        "queryType": "topN",
        "granularity": "all",
        "dimension": "country",
        "metric": "added",
        "threshold": 3,
    },
]


def _rows(result: Any) -> str:
    """Rows comparable with NaN in them (NaN != NaN)."""
    return repr(result.to_pylist() if isinstance(result, pa.Table) else result)


def _acero_merge(query: Any, partials: list[pa.Table], monkeypatch: Any) -> pa.Table:
    """The merge as it was before the one-row path: always through Acero, with timeseries
    collapsing and sorting its buckets."""
    with monkeypatch.context() as m:
        m.setattr(base, "_ONE_ROW_OPS", frozenset())
        if query.queryType != "timeseries":
            return merge(query, partials)
        table = base.concat(partials)
        assert table is not None
        table = base.collapse_all(table, query.granularity)
        return base.merge_aggregated(table, ["__time"], query.aggregations).sort_by("__time")


@pytest.mark.parametrize("spec", QUERIES, ids=lambda q: f"{q['queryType']}-{q['granularity']}")
def test_one_row_merge_equals_acero(spec: dict[str, Any], monkeypatch: Any) -> None:
    query = parse_query(
        {**spec, "dataSource": "t", "intervals": [str(SEGMENT)], "aggregations": AGGS}
    )
    partial = run_segment(query, segment(), interval=SEGMENT, segment_id="s")
    assert partial.num_rows == 1
    fast = merge(query, [partial])
    slow = _acero_merge(query, [partial], monkeypatch)
    assert fast.schema == slow.schema
    assert _rows(fast) == _rows(slow)
    assert _rows(finalize(query, fast)) == _rows(finalize(query, slow))
    # merging the merged row again (the broker over one node's answer) changes nothing
    assert _rows(merge(query, [fast])) == _rows(slow)


def test_one_row_merge_keeps_sketches_on_acero(monkeypatch: Any) -> None:
    """Aggregators that gather rows (sketches, variance) take the general path."""
    query = parse_query(
        {
            "queryType": "timeseries",
            "dataSource": "t",
            "granularity": "all",
            "intervals": [str(SEGMENT)],
            "aggregations": [
                {"type": "count", "name": "n"},
                {"type": "thetaSketch", "name": "u", "fieldName": "word"},
                {"type": "variance", "name": "v", "fieldName": "delta"},
            ],
        }
    )
    called: list[int] = []
    real = base._merge_one_row
    monkeypatch.setattr(base, "_merge_one_row", lambda *a: called.append(1) or real(*a))
    partial = run_segment(query, segment(), interval=SEGMENT, segment_id="s")
    rows = finalize(query, merge(query, [partial]))
    assert not called
    assert rows[0]["result"]["n"] == 50 and rows[0]["result"]["u"] == 50.0


def test_empty_and_two_row_merges_are_unchanged(monkeypatch: Any) -> None:
    query = parse_query(
        {
            "queryType": "timeseries",
            "dataSource": "t",
            "granularity": "all",
            "intervals": [str(SEGMENT)],
            "aggregations": AGGS,
        }
    )
    partial = run_segment(query, segment(), interval=SEGMENT, segment_id="s")
    empty = partial.slice(0, 0)
    assert merge(query, [empty]).num_rows == 0
    assert finalize(query, merge(query, [empty])) == finalize(
        query, _acero_merge(query, [empty], monkeypatch)
    )
    two = merge(query, [partial, partial])
    assert _rows(two) == _rows(_acero_merge(query, [partial, partial], monkeypatch))
    assert finalize(query, two)[0]["result"]["n"] == 100
    assert timeseries.merge(query, []).num_columns == 0


@pytest.mark.parametrize("granularity", ["hour", "fifteen_minute", "all", "day"])
@pytest.mark.parametrize("matched", [True, False], ids=["rows", "filtered-out"])
def test_small_zero_fill_equals_arrows(granularity: str, matched: bool, monkeypatch: Any) -> None:
    """A timeseries' empty buckets found with a Python set (few buckets) or Arrow's ``is_in``:
    the same partial, gaps filled with each aggregator's empty value, in time order."""
    table = segment(12)  # 12 rows over a day: most hours, and quarter hours, are empty
    flt = None if matched else {"type": "selector", "dimension": "country", "value": "FR"}
    query = parse_query(
        {
            "queryType": "timeseries",
            "dataSource": "t",
            "granularity": granularity,
            "intervals": [str(SEGMENT)],
            "aggregations": AGGS,
            "filter": flt,
        }
    )
    fast = run_segment(query, table, interval=SEGMENT, segment_id="s")
    monkeypatch.setattr(timeseries, "_SMALL_FILL", -1)
    slow = run_segment(query, table, interval=SEGMENT, segment_id="s")
    assert fast.schema == slow.schema
    assert _rows(fast) == _rows(slow)
    assert _rows(finalize(query, fast)) == _rows(finalize(query, slow))
