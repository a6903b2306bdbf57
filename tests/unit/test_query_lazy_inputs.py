"""Expression aggregators computed at the selected rows only (``engine.lazy``) give the partial
the general path gives, bit for bit, and decline what they cannot compute the same way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from common.expr import fastnum, parse_expression
from common.expr.fastnum import numbers
from common.expr.vector import _evaluate
from common.query import engine
from common.query.engine import lazy, run_segment, sorted_time, timeseries
from common.query.engine.base import data_intervals, effective_intervals
from common.query.engine.sorted_time import run_sorted
from common.query.engine.timeindex import TimeIndex
from common.query.models import TimeseriesQuery, parse_query
from common.segments.intervals import Interval
from tests.unit.test_query_fast_paths import NUMERIC
from tests.unit.test_query_sorted_time import assert_same

DAY = 86_400_000
T0 = Interval.parse("2024-03-08/2024-03-09").start
SEGMENT = Interval(T0, T0 + 2 * DAY)


def segment(n: int = 6000, seed: int = 5) -> pa.Table:
    rng = np.random.default_rng(seed)
    delta = rng.normal(0, 1e6, n) * rng.choice([1.0, 1e-9, 1e9], n)
    delta[::97] = np.nan
    table = pa.table(
        {
            "__time": pa.array(
                np.sort(rng.integers(T0, SEGMENT.end, n)), pa.timestamp("ms", tz="UTC")
            ),
            "added": pa.array(rng.integers(-1000, 1000, n), pa.int64()),
            "big": pa.array(rng.integers(-(1 << 62), 1 << 62, n), pa.int64()),
            "small": pa.array(rng.integers(-100, 100, n).astype(np.int32)),
            "delta": pa.array(delta),
            "holes": pa.array(rng.integers(-5, 5, n), pa.int64(), mask=rng.random(n) < 0.3),
        }
    )
    return pa.Table.from_batches(table.to_batches(max_chunksize=1000))


EXPRESSION_AGGS: list[dict[str, Any]] = [
    {"type": "longSum", "name": "a2", "expression": "added * 2"},
    {"type": "longSum", "name": "wrap", "expression": "big * 3 + added"},  # wraps as Arrow's
    {"type": "doubleSum", "name": "dd", "expression": "delta * delta"},
    {"type": "doubleSum", "name": "la", "expression": "big + 1"},  # LONG summed as DOUBLE
    {"type": "longSum", "name": "pos", "expression": "delta > 0"},  # 1/0
    {"type": "longMin", "name": "q", "expression": "added / 7"},
    {"type": "longMax", "name": "s", "expression": "small % 3 + __time"},
    {"type": "doubleMin", "name": "dmin", "expression": "delta / 3"},
    {"type": "doubleMax", "name": "dmax", "expression": "if(added > 0, delta, added)"},
    {"type": "longSum", "name": "trunc", "expression": "delta * 2"},  # cast: general path
    {"type": "longSum", "name": "nullable", "expression": "holes * 2"},  # nulls: general path
    {"type": "count", "name": "n"},
]


def run_both(
    granularity: str, flt: dict[str, Any] | None, intervals: list[str] | None = None
) -> tuple[Any, Any]:
    """The sorted-time path's partial and the general path's, of a timeseries over segment()."""
    body: dict[str, Any] = {
        "queryType": "timeseries",
        "dataSource": "t",
        "granularity": granularity,
        "intervals": intervals or [str(SEGMENT)],
        "aggregations": EXPRESSION_AGGS,
    }
    if flt is not None:
        body["filter"] = flt
    q = parse_query(body)
    assert isinstance(q, TimeseriesQuery)
    table = segment()
    intervals = data_intervals(
        table, q.granularity, effective_intervals(q.intervals.intervals, SEGMENT)
    )
    fast = run_sorted(table, q.granularity, intervals, q.filter, q.aggregations)
    return fast, timeseries._run_general(q, table, intervals)


@pytest.mark.parametrize("granularity", ["hour", "day", "all"])
@pytest.mark.parametrize(
    "flt",
    [
        None,
        {"type": "expression", "expression": "added > 100 && delta < 5.0"},
        {"type": "bound", "dimension": "small", "upper": "0", "ordering": "numeric"},
    ],
)
def test_lazy_inputs_equal_the_general_path(granularity: str, flt: Any) -> None:
    fast, general = run_both(granularity, flt)
    assert_same(fast, general)


def test_lazy_inputs_are_taken_and_declined_as_documented() -> None:
    q = parse_query(
        {
            "queryType": "timeseries",
            "dataSource": "t",
            "granularity": "all",
            "intervals": [str(SEGMENT)],
            "aggregations": EXPRESSION_AGGS,
        }
    )
    table = segment()
    keep = np.flatnonzero(np.arange(table.num_rows) % 3 == 0)
    by_name = {a.name: lazy.selected_inputs(a, table, keep) for a in q.aggregations}
    for name in ("a2", "wrap", "dd", "la", "pos", "q", "s", "dmin", "dmax"):
        assert by_name[name] is not None, name
        (values, valid, _op, _opts) = by_name[name][0]
        assert len(values) == len(keep) and valid is None
    for name in ("trunc", "nullable", "n"):
        assert by_name[name] is None, name
    a2 = by_name["a2"][0][0]
    assert a2.dtype == np.int64
    assert np.array_equal(a2, table.column("added").to_numpy()[keep] * 2)


def test_negative_zero_min_declines() -> None:
    table = pa.table({"__time": pa.array([T0, T0 + 1], pa.int64()), "x": [-0.0, 1.0]})
    q = parse_query(
        {
            "queryType": "timeseries",
            "dataSource": "t",
            "granularity": "all",
            "intervals": [str(SEGMENT)],
            "aggregations": [{"type": "doubleMin", "name": "m", "expression": "x * 1.0"}],
        }
    )
    assert lazy.selected_inputs(q.aggregations[0], table, None) is None


@pytest.mark.parametrize("n", [0, 1, 5, 65_536, 65_537, 200_003])
def test_sequential_sum_adds_in_row_order_as_bincount(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(0, 1, n) * rng.choice([1.0, 1e-12, 1e12], n)
    want = np.bincount(np.zeros(n, dtype=np.intp), weights=values, minlength=1)[0]
    got = sorted_time.sequential_sum(values)
    assert got == want or (np.isnan(got) and np.isnan(want))
    assert np.signbit(got) == np.signbit(want)


def test_sequential_sum_special_values() -> None:
    for values in ([-0.0], [-0.0, -0.0], [np.nan, 1.0], [np.inf, -np.inf], [np.inf, 1.0]):
        arr = np.array(values)
        want = np.bincount(np.zeros(len(arr), dtype=np.intp), weights=arr, minlength=1)[0]
        got = sorted_time.sequential_sum(arr)
        assert (got == want or (np.isnan(got) and np.isnan(want))) and np.signbit(
            got
        ) == np.signbit(want), values


@pytest.mark.parametrize("chunk", [1, 7, 333, 5000])
@pytest.mark.parametrize("typ", [pa.int64(), pa.float64(), pa.int32(), pa.timestamp("ms")])
def test_numbers_gathers_chunk_by_chunk(chunk: int, typ: Any) -> None:
    rng = np.random.default_rng(chunk)
    base = rng.integers(-9, 9, 2000)
    arr = pa.array(base).cast(typ)
    pieces = [arr[:0], *(arr[i : i + chunk] for i in range(0, len(arr), chunk)), arr[:0]]
    col = pa.chunked_array(pieces, typ).slice(3)
    want = base[3:]
    assert np.array_equal(numbers(col), want)
    for rows in (np.arange(0), np.flatnonzero(rng.random(len(want)) < 0.3), np.arange(len(want))):
        got = numbers(col, rows)
        assert got.dtype == (np.float64 if typ == pa.float64() else np.int64)
        assert np.array_equal(got, want[rows])
    assert len(numbers(pa.chunked_array([], typ), np.arange(0))) == 0


def test_time_index_searches_as_numpy_over_the_whole_column() -> None:
    rng = np.random.default_rng(11)
    times = np.sort(rng.integers(0, 500, 3000))  # many equal times, across chunk edges
    arr = pa.array(times, pa.timestamp("ms"))
    pieces = [arr[:0], *(arr[i : i + 97] for i in range(0, len(arr), 97)), arr[:0]]
    col = pa.chunked_array(pieces).slice(5)
    index = TimeIndex(col)
    want = times[5:]
    probes = np.array([[-1, 0], [times[5], times[100]], [250, 251], [499, 500], [10_000, 7]])
    assert np.array_equal(index.search(probes), np.searchsorted(want, probes))
    assert all(index.at(i) == want[i] for i in (0, 1, 96, 97, 500, len(want) - 1))


def test_several_intervals_and_a_filter_over_many_chunks() -> None:
    intervals = [
        "2024-03-08T03:00:00Z/2024-03-08T07:30:00Z",
        "2024-03-08T09:00:00.001Z/2024-03-08T09:00:00.002Z",
        "2024-03-09T12:00:00Z/2024-03-10T00:00:00Z",
    ]
    flt = {"type": "expression", "expression": "added > -200"}
    fast, general = run_both("hour", flt, intervals)
    assert_same(fast, general)


@pytest.mark.parametrize(
    "text",
    [
        "a + b * 3 - s",
        "a * a",
        "a * 2",
        "x * x",
        "a - x",
        "a / 3",
        "a % -4",
        "a / 2.0 + x",
        "x / 0.0",
        "x % 2",
        "a > b && x < 1.5",
        "!(a >= 0) || x == 0",
        "-a + -x",
        "if(a > 0, b, s * 2)",
        "if(x > 0, a, 1.5)",
        "(a / 100) * 100 + if(x > 0, 1, 0)",
        "if(x > 0, 1, 0)",
        "if(a > 0, 0, 1)",
        "if(a > 0, 5, -3)",
        "if(x > 0, b, 0)",
        "if(x > 0, 1, b)",
        "if(a, 9223372036854775807, -9223372036854775807 - 1)",  # wraps, as on the general path
        "t / 1000 - 1",
        "x != x",
    ],
)
def test_evaluation_in_steps_writes_each_step_in_place(text: str, monkeypatch: Any) -> None:
    # Every step after the first writes its last operation into the output (ufunc out=).
    table = pa.concat_tables([NUMERIC] * 7)
    node = parse_expression(text).node
    slow = _evaluate(node, table, False)
    monkeypatch.setattr(fastnum, "STEP", 4)
    names = fastnum.numeric_columns(node, table)
    assert names is not None
    cols = {name: fastnum.numbers(table.column(name)) for name in names}
    got = fastnum.evaluate_arrays(node, cols, table.num_rows)
    assert got is not None, text
    values, kind = got
    want = slow.to_numpy(zero_copy_only=False)
    assert kind in ("LONG", "DOUBLE", "BOOL")
    assert np.array_equal(np.asarray(values, dtype=want.dtype), want, equal_nan=True), text
    fast = fastnum.evaluate(node, pa.Table.from_batches(table.to_batches(max_chunksize=4)))
    assert fast is not None and fast.type == slow.type
    assert np.array_equal(fast.to_numpy(), want, equal_nan=True), text


def _sql_shaped(vcs: list[dict[str, Any]], aggs: list[dict[str, Any]], **extra: Any) -> Any:
    return parse_query(
        {
            "queryType": "timeseries",
            "dataSource": "t",
            "granularity": "day",
            "intervals": [str(SEGMENT)],
            "virtualColumns": vcs,
            "aggregations": aggs,
            "filter": {
                "type": "range",
                "column": "added",
                "matchValueType": "LONG",
                "lower": 500,
                "lowerOpen": True,
            },
            **extra,
        }
    )


def _vc(name: str, expression: str, typ: str) -> dict[str, Any]:
    return {"type": "expression", "name": name, "expression": expression, "outputType": typ}


DEFERRABLE = [
    _vc("v0", '("added" * 2)', "LONG"),
    _vc("v1", '("delta" * "delta")', "DOUBLE"),
    _vc("v2", "added > 0", "LONG"),
    _vc("v3", "added + 1", "DOUBLE"),
]
DEFERRABLE_AGGS = [
    {"type": "count", "name": "a0"},
    {"type": "longSum", "name": "a1", "fieldName": "v0"},
    {"type": "doubleSum", "name": "a2", "fieldName": "v1"},
    {"type": "longMax", "name": "a3", "fieldName": "v2"},
    {"type": "doubleMin", "name": "a4", "fieldName": "v3"},
]


def _both_ways(q: Any, monkeypatch: Any) -> None:
    table = segment()
    fast = run_segment(q, table, interval=SEGMENT, segment_id="s")
    monkeypatch.setattr(engine, "defer_virtual_inputs", lambda query, _table: query)
    slow = run_segment(q, table, interval=SEGMENT, segment_id="s")
    assert_same(fast, slow)


def test_virtual_columns_only_aggregated_are_computed_at_the_selected_rows(
    monkeypatch: Any,
) -> None:
    q = _sql_shaped(DEFERRABLE, DEFERRABLE_AGGS)
    deferred = lazy.defer_virtual_inputs(q, segment())
    assert deferred.virtualColumns == []
    assert [a.expression for a in deferred.aggregations[1:]] == [
        vc["expression"] for vc in DEFERRABLE
    ]
    assert all(a.fieldName is None for a in deferred.aggregations[1:])
    _both_ways(q, monkeypatch)


@pytest.mark.parametrize(
    ("vcs", "aggs", "extra"),
    [
        # read by the filter
        (
            [_vc("v0", "added * 2", "LONG")],
            [{"type": "longSum", "name": "a", "fieldName": "v0"}],
            {"filter": {"type": "expression", "expression": "v0 > 10"}},
        ),
        # read by another virtual column
        (
            [_vc("v0", "added * 2", "LONG"), _vc("v1", "v0 + 1", "LONG")],
            [
                {"type": "longSum", "name": "a", "fieldName": "v0"},
                {"type": "longSum", "name": "b", "fieldName": "v1"},
            ],
            {},
        ),
        # read by a filtered aggregator
        (
            [_vc("v0", "added * 2", "LONG")],
            [
                {"type": "longSum", "name": "a", "fieldName": "v0"},
                {
                    "type": "filtered",
                    "filter": {
                        "type": "range",
                        "column": "v0",
                        "matchValueType": "LONG",
                        "lower": 0,
                    },
                    "aggregator": {"type": "count", "name": "c"},
                },
            ],
            {},
        ),
        # nullable input, DOUBLE value cast to LONG, DOUBLE read as LONG, a shadowed column
        (
            [
                _vc("v0", "holes * 2", "LONG"),
                _vc("v1", "delta * 2", "LONG"),
                _vc("v2", "delta + 1", "DOUBLE"),
                _vc("added", "small + 1", "LONG"),
            ],
            [
                {"type": "longSum", "name": "a", "fieldName": "v0"},
                {"type": "longSum", "name": "b", "fieldName": "v1"},
                {"type": "longSum", "name": "c", "fieldName": "v2"},
                {"type": "longSum", "name": "d", "fieldName": "added"},
            ],
            {},
        ),
    ],
)
def test_virtual_columns_read_elsewhere_or_changed_by_their_type_stay(
    vcs: Any, aggs: Any, extra: Any, monkeypatch: Any
) -> None:
    q = _sql_shaped(vcs, aggs, **extra)
    deferred = lazy.defer_virtual_inputs(q, segment())
    assert [vc.name for vc in deferred.virtualColumns] == [vc["name"] for vc in vcs]
    assert deferred.aggregations == q.aggregations
    _both_ways(q, monkeypatch)


@pytest.mark.parametrize("text", ["a * 2 + x", "if(x > 0, a, s)", "t / 1000 - b", "a > b"])
def test_evaluate_at_gathers_batch_by_batch(text: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(fastnum, "STEP", 8)
    table = pa.Table.from_batches(pa.concat_tables([NUMERIC] * 9).to_batches(max_chunksize=13))
    node = parse_expression(text).node
    names = fastnum.numeric_columns(node, table)
    assert names is not None
    whole = {name: fastnum.numbers(table.column(name)) for name in names}
    rng = np.random.default_rng(3)
    for rows in (None, np.flatnonzero(rng.random(table.num_rows) < 0.4), np.array([0, 89])):
        got = fastnum.evaluate_at(node, table, names, rows)
        want = fastnum.evaluate_arrays(
            node,
            {k: v if rows is None else v[rows] for k, v in whole.items()},
            table.num_rows if rows is None else len(rows),
        )
        assert got is not None and want is not None
        assert got[1] == want[1]
        assert np.array_equal(got[0], want[0], equal_nan=True)
    assert fastnum.evaluate_at(node, table, names, np.arange(0)) is None
