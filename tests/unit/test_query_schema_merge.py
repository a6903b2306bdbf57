"""Segments whose column types differ merge as Druid's do, for every query type: a dimension that
is a plain string in one segment and multi-value in another, a number that is long in one and
double in another, and a column some segments lack."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from common.errors import InvalidInput
from common.query import finalize, from_ipc, merge, parse_query, run_segment, to_ipc
from common.query.engine.unify import unify_tables
from common.query.sql.execute import native_base, post_process
from common.query.sql.parse import parse_sql
from common.query.sql.planner import plan_sql
from common.segments.intervals import Interval

DAY1 = Interval.parse("2024-01-01/2024-01-02")
DAY2 = Interval.parse("2024-01-02/2024-01-03")
TS = pa.timestamp("ms", tz="UTC")

# Segment A: dim3 a plain (dictionary) string, n a long, only_a present.
A = pa.table(
    {
        "__time": pa.array([DAY1.start, DAY1.start + 1000], pa.int64()).cast(TS),
        "dim3": pa.array(["a", "b"]).dictionary_encode(),
        "n": pa.array([1, 2], pa.int64()),
        "only_a": pa.array([5, None], pa.int64()),
    }
)
# Segment B: dim3 multi-value, n a double, no only_a; an all-null string column "only_a" would
# not change that (see test_unify_rules).
B = pa.table(
    {
        "__time": pa.array([DAY2.start, DAY2.start + 1000, DAY2.start + 2000], pa.int64()).cast(TS),
        "dim3": pa.array([["a", "c"], ["d"], []], pa.list_(pa.string())),
        "n": pa.array([1.5, 2.5, None], pa.float64()),
    }
)
SEGMENTS = [(A, DAY1, "A"), (B, DAY2, "B")]


def run(body: dict[str, Any], order: list[int] | None = None) -> list[dict[str, Any]]:
    """Each segment on its own data node (a peon or a historical), merged at the broker."""
    q = parse_query({"dataSource": "ds", "intervals": ["2024-01-01/2024-01-03"], **body})
    segs = [SEGMENTS[i] for i in (order or [0, 1])]
    nodes = [to_ipc(merge(q, [run_segment(q, t, interval=i, segment_id=s)])) for t, i, s in segs]
    one_node = merge(q, [run_segment(q, t, interval=i, segment_id=s) for t, i, s in segs])
    out = finalize(q, merge(q, [from_ipc(n) for n in nodes]))
    assert finalize(q, one_node) == out  # both segments on one node: the same answer
    return out


def test_scan_reads_both_segments_as_druid_prints_them() -> None:
    result = run({"queryType": "scan", "columns": ["dim3", "n", "only_a"]})
    events = [e for batch in result for e in batch["events"]]
    assert events == [
        {"dim3": "a", "n": 1.0, "only_a": 5},
        {"dim3": "b", "n": 2.0, "only_a": None},
        {"dim3": ["a", "c"], "n": 1.5, "only_a": None},
        {"dim3": "d", "n": 2.5, "only_a": None},
        {"dim3": None, "n": None, "only_a": None},
    ]
    assert [b["segmentId"] for b in result] == ["A", "B"]
    # Without columns each segment answers its own, as Druid's scan does.
    every = run({"queryType": "scan", "resultFormat": "compactedList"}, order=[1, 0])
    assert {b["segmentId"]: b["columns"] for b in every} == {
        "A": ["__time", "dim3", "n", "only_a"],
        "B": ["__time", "dim3", "n"],
    }
    assert all(len(e) == len(b["columns"]) for b in every for e in b["events"])


def test_groupby_topn_and_timeseries_over_both() -> None:
    aggs = [
        {"type": "count", "name": "rows"},
        {"type": "doubleSum", "name": "n", "fieldName": "n"},
        {"type": "longSum", "name": "a", "fieldName": "only_a"},
    ]
    gb = run(
        {"queryType": "groupBy", "granularity": "all", "dimensions": ["dim3"], "aggregations": aggs}
    )
    assert [(r["event"]["dim3"], r["event"]["rows"]) for r in gb] == [
        (None, 1),
        ("a", 2),
        ("b", 1),
        ("c", 1),
        ("d", 1),
    ]
    [top] = run(
        {
            "queryType": "topN",
            "granularity": "all",
            "dimension": "dim3",
            "metric": "rows",
            "threshold": 2,
            "aggregations": aggs,
        }
    )
    assert [(r["dim3"], r["rows"], r["n"]) for r in top["result"]] == [
        ("a", 2, 2.5),
        (None, 1, None),
    ]
    [ts] = run({"queryType": "timeseries", "granularity": "all", "aggregations": aggs})
    assert ts["result"] == {"rows": 5, "n": 7.0, "a": 5}


def test_segment_metadata_folds_as_druid() -> None:
    [merged] = run({"queryType": "segmentMetadata", "merge": True})
    cols = merged["columns"]
    assert cols["dim3"]["type"] == "STRING" and cols["dim3"]["hasMultipleValues"] is True
    assert cols["dim3"]["errorMessage"] is None
    # Druid's ColumnAnalysis.fold: a LONG and a DOUBLE analysis do not merge.
    assert cols["n"] == {
        "typeSignature": "STRING",
        "type": "STRING",
        "hasMultipleValues": False,
        "hasNulls": False,
        "size": -1,
        "cardinality": None,
        "minValue": None,
        "maxValue": None,
        "errorMessage": "error:cannot_merge_diff_types: [LONG] and [DOUBLE]",
    }
    assert cols["only_a"]["type"] == "LONG"  # in one segment only: kept as it is there
    assert merged["numRows"] == 5


def test_unify_rules() -> None:
    def one(*cols: Any) -> pa.DataType:
        tables = unify_tables([pa.table({"x": c}) for c in cols])
        types = {t.schema.field("x").type for t in tables}
        assert len(types) == 1
        return types.pop()

    assert one(pa.array(["a"]), pa.array(["a"]).dictionary_encode()) == pa.string()
    assert one(pa.array([1]), pa.array([1.5])) == pa.float64()
    assert one(pa.array([1]), pa.array(["x"])) == pa.string()
    assert one(pa.array([1]), pa.array([["x"]])) == pa.list_(pa.string())
    # An all-null column (a segment without the column reads as one) does not vote.
    assert one(pa.nulls(2, pa.string()), pa.array([1])) == pa.int64()
    assert one(pa.nulls(2), pa.array([["x"]])) == pa.list_(pa.string())
    with pytest.raises(InvalidInput, match=r"Column \[x\] has types that cannot be merged"):
        one(pa.array([b"sketch"]), pa.array([1]))


def test_sql_select_of_the_mixed_column() -> None:
    # SQL keeps a multi-value column a list column although scan prints one-value rows as the
    # value (a mix of strings and lists the SQL layer must still type); the result prints it as
    # Druid's SqlResults.coerce does: one value as itself, several as the list's JSON text.
    schema = {"ds": {"__time": "LONG", "dim3": "STRING", "n": "DOUBLE", "only_a": "LONG"}}
    plan = plan_sql(parse_sql("SELECT dim3, n, only_a FROM ds", None), schema, now_ms=0)
    assert plan.native is not None
    rows = post_process(plan, native_base(plan, run(plan.native))).rows()
    assert rows == [
        ["a", 1.0, 5],
        ["b", 2.0, None],
        ['["a","c"]', 1.5, None],
        ["d", 2.5, None],
        [None, None, None],
    ]
