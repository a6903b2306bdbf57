"""The druid-stats ``variance`` aggregator and ``stddev`` post-aggregator: per-segment partials
(Druid's 24-byte collector) merged across segments give numpy's variance, with Druid's edge
cases (null over no values, 0 over one value, a FLOAT read as a 32-bit float)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pydantic import TypeAdapter

from common.query.aggregators import Aggregator
from common.query.postaggs import Env, PostAggregator
from common.query.variance import unpack

AGG = TypeAdapter(Aggregator)


def _partial(agg: object, table: pa.Table) -> pa.Array:
    """One segment's partials, grouped by ``g`` (sorted keys)."""
    ((rows, _, _),) = agg.inputs(table)  # type: ignore[attr-defined]
    grouped = pa.table({"g": table["g"], "r": rows}).group_by(["g"]).aggregate([("r", "list")])
    order = np.argsort(grouped["g"].to_numpy(zero_copy_only=False))
    lists = grouped["r_list"].combine_chunks().take(pa.array(order))
    return agg.segment_finish_rows([lists], table)  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("estimator", [None, "population"])
def test_partials_of_three_segments_merge_to_numpy_variance(estimator: str | None) -> None:
    rng = np.random.default_rng(7)
    agg = AGG.validate_python(
        {"type": "variance", "name": "v", "fieldName": "x", "inputType": "double"}
        | ({"estimator": estimator} if estimator else {})
    )
    segments, values = [], {0: [], 1: []}
    for _ in range(3):
        x = rng.normal(1e6, 3.0, 50)
        g = rng.integers(0, 2, 50)
        segments.append(_partial(agg, pa.table({"x": x, "g": g})))
        for k in (0, 1):
            values[k] += list(x[g == k])
    partials = pa.concat_arrays(segments)  # rows: seg0 g0, seg0 g1, seg1 g0, ...
    merged = agg.merge_finish_rows(pa.array([[0, 2, 4], [1, 3, 5]]), partials)
    got = agg.finalize(merged).to_pylist()
    ddof = 0 if estimator else 1
    for k in (0, 1):
        assert got[k] == pytest.approx(np.var(values[k], ddof=ddof), rel=1e-9)
    _, count, _, _ = unpack(merged)
    assert list(count) == [len(values[0]), len(values[1])]


def test_no_values_is_null_one_value_is_zero_and_floats_are_32_bit() -> None:
    agg = AGG.validate_python({"type": "variance", "name": "v", "fieldName": "x"})
    table = pa.table({"x": pa.array([None, 0.1, None, 0.1, 0.3]), "g": [0, 1, 2, 2, 2]})
    partial = _partial(agg, table)
    got = agg.finalize(partial).to_pylist()
    assert got[:2] == [None, 0.0]
    f = np.array([0.1, 0.3], dtype=np.float32).astype(np.float64)  # inputType float (default)
    assert got[2] == pytest.approx(np.var(f, ddof=1), rel=1e-12)
    stddev = TypeAdapter(PostAggregator).validate_python(
        {"type": "stddev", "name": "s", "fieldName": "v", "estimator": "population"}
    )
    env = Env(raw={"v": (partial, None)}, final={})
    out = stddev.evaluate(env, 3).to_pylist()
    assert out[:2] == [None, 0.0]
    assert out[2] == pytest.approx(np.std(f), rel=1e-12)
