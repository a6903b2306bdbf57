"""LONG values beyond 2**53 stay exact through grouping: keys, aggregators over the grouped
column, LONG outputs; a DOUBLE grouped as LONG truncates as Java's ``(long)`` cast does."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from common.query.engine import finalize, merge, run_segment
from common.query.models import parse_query
from common.segments.intervals import Interval

B = 1 << 53
DAY = Interval.parse("2024-01-01/2024-01-02")
VALUES = [B, B + 1, B + 1, (1 << 63) - 1, -(1 << 63), B + 3, None]


def table() -> pa.Table:
    n = len(VALUES)
    return pa.table(
        {
            "__time": pa.array([DAY.start] * n, pa.timestamp("ms", tz="UTC")),
            "n": pa.array(VALUES, pa.int64()),
            "x": pa.array([1.9, -1.9, 1e300, -1e300, float("nan"), 2.0**62, None]),
            "d": pa.array(list("abababa")).dictionary_encode(),
        }
    )


def run(body: dict[str, Any]) -> Any:
    q = parse_query({"dataSource": "t", "intervals": [str(DAY)], "granularity": "all", **body})
    t = table()
    parts = [run_segment(q, t, interval=DAY, segment_id=s) for s in ("s1", "s2")]
    return finalize(q, merge(q, parts))


def counts_by_n(flt: dict[str, Any]) -> dict[int, int]:
    """Rows per LONG value of ``n`` that the filter keeps."""
    rows = run(
        {
            "queryType": "groupBy",
            "dimensions": [{"type": "default", "dimension": "n", "outputType": "LONG"}],
            "aggregations": [{"type": "count", "name": "c"}],
            "filter": flt,
        }
    )
    return {r["event"]["n"]: r["event"]["c"] for r in rows}


AGGS = [
    {"type": "count", "name": "c"},
    {"type": "longSum", "name": "s", "fieldName": "n"},
    {"type": "longMax", "name": "mx", "fieldName": "n"},
]


@pytest.mark.parametrize("output", ["STRING", "LONG"])
@pytest.mark.parametrize("extra", [[], ["d"]], ids=["n", "n+d"])
def test_groupby_on_a_long_column_that_aggregators_also_read(output: str, extra: list[str]) -> None:
    # The key column does not hide the stored column from the aggregators (Druid's aggregators
    # read the column, not the dimension's output): sums and maxima of B + 1 are exact.
    dims = [{"type": "default", "dimension": "n", "outputType": output}, *extra]
    rows = [
        r["event"] for r in run({"queryType": "groupBy", "dimensions": dims, "aggregations": AGGS})
    ]
    by_key: dict[Any, dict[str, Any]] = {}
    for r in rows:
        key = r["n"] if r["n"] is None else int(r["n"])
        got = by_key.setdefault(key, {"c": 0, "s": 0, "mx": None})
        got["c"] += r["c"]
        got["s"] += r["s"] or 0
        got["mx"] = r["mx"] if got["mx"] is None else max(got["mx"], r["mx"])
        assert output == "STRING" or r["n"] is None or isinstance(r["n"], int)
    assert by_key[B + 1] == {"c": 4, "s": 4 * (B + 1), "mx": B + 1}
    assert by_key[B + 3] == {"c": 2, "s": 2 * (B + 3), "mx": B + 3}
    assert by_key[(1 << 63) - 1]["mx"] == (1 << 63) - 1
    assert set(by_key) == {None, B, B + 1, B + 3, (1 << 63) - 1, -(1 << 63)}


def test_topn_on_a_long_column_keeps_each_long() -> None:
    body = {
        "queryType": "topN",
        "dimension": {"type": "default", "dimension": "n", "outputType": "LONG"},
        "metric": "mx",
        "threshold": 3,
        "aggregations": AGGS,
    }
    result = run(body)[0]["result"]
    assert [(r["n"], r["c"], r["mx"]) for r in result] == [
        ((1 << 63) - 1, 2, (1 << 63) - 1),
        (B + 3, 2, B + 3),
        (B + 1, 4, B + 1),
    ]


def test_a_double_grouped_as_long_truncates_and_saturates_as_java() -> None:
    dims = [{"type": "default", "dimension": "x", "outputType": "LONG"}]
    body = {"queryType": "groupBy", "dimensions": dims, "aggregations": AGGS[:1]}
    got = {r["event"]["x"]: r["event"]["c"] for r in run(body)}
    # (long) 1.9 == 1, (long) -1.9 == -1, beyond the longs: the nearest long, NaN: 0
    assert got == {1: 2, -1: 2, (1 << 63) - 1: 2, -(1 << 63): 2, 0: 2, 1 << 62: 2, None: 2}


@pytest.mark.parametrize(
    ("values", "want"),
    [
        # Druid's InDimFilter long predicate keeps DimensionHandlerUtils.convertObjectToLong of
        # each value (getExactLongFromDecimalString): an integral decimal is its exact long...
        (["9007199254740993.0"], {B + 1: 4}),
        (["9007199254740992", "9.007199254740995E15"], {B: 2, B + 3: 2}),
        # ...a value beyond the longs or not integral is no long at all: it matches nothing,
        # not Long.MAX_VALUE through their shared double
        (["9223372036854775808", "9007199254740992.5"], {}),
    ],
)
def test_in_filter_on_a_long_column_matches_exact_longs_only(
    values: list[str], want: dict[int, int]
) -> None:
    assert counts_by_n({"type": "in", "dimension": "n", "values": values}) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        # Druid's SelectorPredicateFactory long predicate: convertObjectToLong of the value
        ("9007199254740993.0", {B + 1: 4}),
        ("9007199254740992", {B: 2}),
        ("9223372036854775808", {}),  # beyond the longs: ALWAYS_FALSE, not Long.MAX_VALUE
        ("9007199254740992.5", {}),  # not integral: ALWAYS_FALSE
    ],
)
def test_selector_filter_on_a_long_column_matches_the_exact_long(
    value: str, want: dict[int, int]
) -> None:
    assert counts_by_n({"type": "selector", "dimension": "n", "value": value}) == want
