"""The sorted-time timeseries path gives, bit for bit, the partial of the general (Acero) path,
and declines (None) whenever it cannot be sure to."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from common.query.engine import batches, timeseries
from common.query.engine.base import data_intervals, effective_intervals
from common.query.engine.sorted_time import FEW_GROUPS, VECTOR_SIZE, bucket_bounds, run_sorted
from common.query.models import TimeseriesQuery, parse_query
from common.segments.granularity import parse_granularity
from common.segments.intervals import Interval

DAY = 86_400_000
T0 = Interval.parse("2024-03-08/2024-03-09").start  # US DST starts 2024-03-10
SEGMENT = Interval(T0, T0 + 4 * DAY)

AGGS: list[dict[str, Any]] = [
    {"type": "count", "name": "n"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
    {"type": "longMin", "name": "minAdded", "fieldName": "added"},
    {"type": "longMax", "name": "maxAdded", "fieldName": "added"},
    {"type": "doubleMin", "name": "minDelta", "fieldName": "delta"},
    {"type": "doubleMax", "name": "maxDelta", "fieldName": "delta"},
    {
        "type": "filtered",
        "filter": {"type": "selector", "dimension": "country", "value": "FR"},
        "aggregator": {"type": "doubleSum", "name": "frDelta", "fieldName": "delta"},
    },
    {"type": "count", "name": "missing", "fieldName": "nope"},
    {"type": "longSum", "name": "nothing", "fieldName": "nope"},
]
DOUBLE_SUMS = {"delta", "frDelta", "dd", "la"}  # double sums of these tests and lazy inputs


def make_segment(n: int = 5000, seed: int = 1, sort: bool = True) -> pa.Table:
    rng = np.random.default_rng(seed)
    # Sparse over the first day (empty hours), dense afterwards.
    t = np.concatenate(
        [
            rng.integers(T0, T0 + DAY, n // 50) // (5 * 3_600_000) * (5 * 3_600_000),
            rng.integers(T0 + DAY, SEGMENT.end, n - n // 50),
        ]
    )
    if sort:
        t.sort()
    countries = np.array(["US", "FR", "DE"], dtype=object)
    return pa.table(
        {
            "__time": pa.array(t, pa.timestamp("ms", tz="UTC")),
            "country": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, 3, n).astype(np.int32)), pa.array(list(countries))
            ),
            "added": pa.array(rng.integers(-1000, 1000, n), pa.int64(), mask=rng.random(n) < 0.2),
            "delta": pa.array(rng.normal(0, 1e6, n), pa.float64(), mask=rng.random(n) < 0.1),
        }
    )


def query(granularity: Any = "hour", **extra: Any) -> TimeseriesQuery:
    body = {
        "queryType": "timeseries",
        "dataSource": "ds",
        "granularity": granularity,
        "intervals": [str(SEGMENT)],
        "aggregations": AGGS,
        **extra,
    }
    q = parse_query(orjson.dumps(body))
    assert isinstance(q, TimeseriesQuery)
    return q


def both(q: TimeseriesQuery, table: pa.Table) -> tuple[pa.Table | None, pa.Table]:
    intervals = data_intervals(
        table, q.granularity, effective_intervals(q.intervals.intervals, SEGMENT)
    )
    fast = run_sorted(table, q.granularity, intervals, q.filter, q.aggregations)
    general = timeseries._run_general(q, table, intervals)
    return fast, general


def assert_same(fast: pa.Table | None, general: pa.Table) -> None:
    """Bit for bit, NaN and null included (raw values and validity), but for the double sums of
    buckets of more than ``VECTOR_SIZE`` rows: added pairwise, they agree within rounding."""
    assert fast is not None
    general = general.sort_by("__time")
    assert fast.schema == general.schema
    assert fast.to_pydict().keys() == general.to_pydict().keys()
    rows = general["n"].to_numpy() if "n" in general.column_names else None
    for name in general.column_names:
        a, b = fast[name].combine_chunks(), general[name].combine_chunks()
        assert a.is_valid().equals(b.is_valid()), name
        x, y = a.fill_null(0).to_numpy(), b.fill_null(0).to_numpy()
        if name in DOUBLE_SUMS and rows is not None:
            big = rows > VECTOR_SIZE
            assert np.array_equal(x[~big], y[~big], equal_nan=True), name
            assert np.allclose(x[big], y[big], rtol=1e-9, atol=1e-6, equal_nan=True), name
            continue
        assert np.array_equal(x, y, equal_nan=True), name


@pytest.mark.parametrize(
    "granularity",
    [
        "hour",
        "fifteen_minute",
        "day",
        "all",
        {"type": "duration", "duration": 7_200_000, "origin": "2024-03-08T00:30:00Z"},
        {"type": "period", "period": "PT1H", "timeZone": "America/Los_Angeles"},
        {"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"},
        {"type": "period", "period": "PT1H", "timeZone": "Asia/Kolkata"},
    ],
)
@pytest.mark.parametrize("batch_rows", [None, 100], ids=["one-chunk", "batches"])
def test_matches_general_path(granularity: Any, batch_rows: int | None, monkeypatch: Any) -> None:
    table = make_segment()
    if batch_rows is not None:
        # record batches and smaller read batches: buckets span batches (sums carried over)
        table = pa.Table.from_batches(table.to_batches(max_chunksize=333))
        monkeypatch.setattr(batches, "BATCH_ROWS", batch_rows)
    fast, general = both(query(granularity), table)
    assert_same(fast, general)


def test_filter_and_several_intervals_with_gaps() -> None:
    q = query(
        "hour",
        intervals=[
            "2024-03-08T03:00:00Z/2024-03-09T07:30:00Z",
            "2024-03-10T00:00:00Z/2024-03-10T01:00:00Z",
            "2024-03-11T12:00:00Z/2024-03-13T00:00:00Z",
        ],
        filter={"type": "in", "dimension": "country", "values": ["FR", "DE"]},
    )
    fast, general = both(q, make_segment())
    assert_same(fast, general)


def test_expression_filter_and_expression_aggregators_match_general_path() -> None:
    # The kept rows are gathered by position for the times and for each (expression) input.
    q = query(
        "hour",
        filter={"type": "expression", "expression": "added > 100 && delta < 5.0"},
        aggregations=[
            *AGGS,
            {"type": "longSum", "name": "a2", "expression": "added * 2"},
            {"type": "doubleSum", "name": "dd", "expression": "delta * delta"},
        ],
    )
    fast, general = both(q, make_segment())
    assert_same(fast, general)


def test_filter_keeping_nothing_declines() -> None:
    q = query(filter={"type": "selector", "dimension": "country", "value": "XX"})
    fast, general = both(q, make_segment())
    assert fast is None
    assert general.num_rows == 0


def test_unsorted_time_declines_and_timeseries_is_still_right() -> None:
    q = query("hour")
    unsorted = make_segment(sort=False)
    assert run_sorted(unsorted, q.granularity, [SEGMENT], None, q.aggregations) is None
    got = timeseries.run(q, unsorted, SEGMENT)
    want = timeseries.run(q, unsorted.sort_by("__time"), SEGMENT)
    # Rows summed in another order round differently: doubles agree closely, the rest exactly.
    got_d, want_d = got.sort_by("__time").to_pydict(), want.sort_by("__time").to_pydict()
    assert got_d.keys() == want_d.keys()
    for name, values in want_d.items():
        assert got_d[name] == [v if v is None else pytest.approx(v) for v in values], name


def test_negative_zero_in_min_max_declines() -> None:
    table = make_segment()
    delta = table["delta"].to_numpy(zero_copy_only=False).copy()
    delta[10] = -0.0
    table = table.set_column(3, "delta", pa.array(delta))
    q = query("hour")
    assert run_sorted(table, q.granularity, [SEGMENT], None, q.aggregations) is None


def test_nan_values_match() -> None:
    table = make_segment()
    delta = table["delta"].to_numpy(zero_copy_only=False).copy()
    delta[: len(delta) // 3 : 7] = np.nan
    table = table.set_column(3, "delta", pa.array(delta))
    assert_same(*both(query("hour"), table))


def test_aggregators_read_the_rows_time_on_both_paths() -> None:
    aggs = [
        {"type": "longMin", "name": "first", "fieldName": "__time"},
        {"type": "longMax", "name": "last", "fieldName": "__time"},
        {"type": "doubleMax", "name": "lastD", "fieldName": "__time"},
    ]
    table = make_segment()
    fast, general = both(query(aggregations=aggs), table)
    assert_same(fast, general)
    assert fast is not None
    millis = np.asarray(table["__time"].cast(pa.int64()).to_numpy())
    hours = millis // 3_600_000 * 3_600_000
    starts = np.unique(hours)
    assert fast["__time"].to_pylist() == starts.tolist()
    assert fast["first"].to_pylist() == [int(millis[hours == h].min()) for h in starts]
    assert fast["last"].to_pylist() == [int(millis[hours == h].max()) for h in starts]
    assert fast["first"].to_pylist() != fast["__time"].to_pylist()


def test_sketch_aggregator_declines() -> None:
    q = query(aggregations=[{"type": "HLLSketchBuild", "name": "u", "fieldName": "country"}])
    assert run_sorted(make_segment(), q.granularity, [SEGMENT], None, q.aggregations) is None


def test_none_granularity_declines() -> None:
    q = query("none")
    assert run_sorted(make_segment(), q.granularity, [SEGMENT], None, q.aggregations) is None


def test_bucket_bounds_tile_or_decline() -> None:
    hour = parse_granularity("hour")
    starts = bucket_bounds(hour, T0 + 5, T0 + 3 * 3_600_000)
    assert starts is not None
    assert starts.tolist() == [T0 + i * 3_600_000 for i in range(4)]
    # Too many buckets over the span.
    assert bucket_bounds(parse_granularity("second"), T0, T0 + 365 * DAY) is None


def test_nan_min_max_and_sum_match_general_path() -> None:
    # Buckets of only NaN and null values: min/max NaN (Acero skips NaN unless there is nothing
    # else), null when every value is null; NaN beside numbers: those numbers.
    table = make_segment(n=3000, seed=4)
    n = table.num_rows
    rng = np.random.default_rng(4)
    delta = table.column("delta").to_numpy(zero_copy_only=False).copy()
    hours = (table.column("__time").cast(pa.int64()).to_numpy() - T0) // 3_600_000
    delta[hours % 3 == 0] = np.nan  # every third hour: only NaN (and nulls)
    delta[rng.random(n) < 0.05] = np.nan
    mask = (rng.random(n) < 0.3) | (hours % 5 == 1)
    table = table.set_column(
        table.column_names.index("delta"), "delta", pa.array(delta, pa.float64(), mask=mask)
    )
    for gran in ("hour", "day"):  # many buckets (np.add.at) and few (a running sum each)
        fast, general = both(query(gran), table)
        assert_same(fast, general)
        chunked = pa.Table.from_batches(table.to_batches(max_chunksize=97))
        fast, general = both(query(gran), chunked)
        assert_same(fast, general)


def _sum_table(sizes: list[int], seed: int = 9) -> tuple[pa.Table, list[Any]]:
    """One bucket (an hour) per size, the values of each, summing differently by order."""
    rng = np.random.default_rng(seed)
    times, parts = [], []
    for h, size in enumerate(sizes):
        times.append(np.full(size, T0 + h * 3_600_000))
        part = rng.integers(1, 4, size).astype(np.float64)
        part[0], part[-1] = 1e16, -1e16  # a running sum loses much of what the middle adds
        parts.append(part)
    table = pa.table(
        {
            "__time": pa.array(np.concatenate(times), pa.timestamp("ms", tz="UTC")),
            "delta": pa.array(np.concatenate(parts)),
        }
    )
    return table, parts


def _running(values: Any, carry: float = 0.0) -> float:
    for v in values.tolist():
        carry += v
    return carry


@pytest.mark.parametrize("gathered", [False, True], ids=["whole-column", "filtered"])
@pytest.mark.parametrize("buckets", [3, FEW_GROUPS + 3], ids=["few", "many"])
def test_double_sums_row_order_up_to_a_vector_pairwise_beyond(gathered: bool, buckets: int) -> None:
    # Buckets of at most 512 rows add in row order (Druid's one vector, Acero's grouped sum);
    # longer ones pairwise (numpy's reduction), which these values tell apart from a running sum.
    sizes = [VECTOR_SIZE, VECTOR_SIZE + 1, 3000] + [5 + i % 3 for i in range(buckets - 3)]
    table, parts = _sum_table(sizes)
    flt = {"type": "expression", "expression": "delta == delta || delta != delta"}
    q = query("hour", aggregations=[{"type": "doubleSum", "name": "s", "fieldName": "delta"}])
    if gathered:  # a filter keeping every row: the inputs are gathered, not read batch by batch
        q = query(
            "hour",
            aggregations=[{"type": "doubleSum", "name": "s", "fieldName": "delta"}],
            filter=flt,
        )
    fast = run_sorted(table, q.granularity, [SEGMENT], q.filter, q.aggregations)
    assert fast is not None
    got = fast["s"].to_pylist()
    assert got[0] == _running(parts[0])
    for i in (1, 2):
        assert got[i] == float(np.add.reduce(parts[i])) != _running(parts[i])
    assert got[3:] == [_running(p) for p in parts[3:]]


@pytest.mark.parametrize("buckets", [2, FEW_GROUPS + 2], ids=["few", "many"])
def test_double_sums_over_batches_carry_on_in_order(buckets: int, monkeypatch: Any) -> None:
    # A bucket spanning read batches: a small one keeps its running sum across them, a long one
    # adds each batch's part, summed pairwise, in order.
    monkeypatch.setattr(batches, "BATCH_ROWS", 400)
    sizes = [300, 2000] + [7] * (buckets - 2)
    table, parts = _sum_table(sizes, seed=3)
    table = pa.Table.from_batches(table.to_batches(max_chunksize=400))
    q = query("hour", aggregations=[{"type": "doubleSum", "name": "s", "fieldName": "delta"}])
    fast = run_sorted(table, q.granularity, [SEGMENT], q.filter, q.aggregations)
    assert fast is not None
    got = fast["s"].to_pylist()
    assert got[0] == _running(parts[0])
    # the long bucket's rows 300..2300 of the table: its parts are cut at multiples of 400
    cuts = [0, 100, 500, 900, 1300, 1700, 2000]
    want = 0.0
    for a, b in itertools.pairwise(cuts):
        want += float(np.add.reduce(parts[1][a:b]))
    assert got[1] == want
    assert got[2:] == [_running(p) for p in parts[2:]]
