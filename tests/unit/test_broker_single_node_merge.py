"""The broker does not merge again the answer of the only data node that answered
(``Partials.merged``): a node's answer is its own ``merge`` over its segments, and merging it
again gives the same result for every query type (checked here), so skipping it changes nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from common.query import finalize, merge, parse_query, run_segment
from common.query.ipc import from_ipc, to_ipc
from common.segments.intervals import Interval
from services.broker.scatter import Partials

DAY = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start


def segment(d: int, n: int = 200) -> tuple[Interval, pa.Table]:
    rng = np.random.default_rng(d)
    iv = Interval(T0 + d * DAY, T0 + (d + 1) * DAY)
    table = pa.table(
        {
            "__time": pa.array(np.sort(rng.integers(iv.start, iv.end, n)), pa.int64()),
            "page": pa.array([f"p{i % 7}" if i % 11 else None for i in range(n)]),
            "added": pa.array(rng.integers(-50, 50, n), pa.int64(), mask=rng.random(n) < 0.1),
            "delta": pa.array(rng.normal(0, 5, n)),
            "user": pa.array([f"u{i % 37}" for i in range(n)]),
        }
    )
    return iv, table


AGGS: list[dict[str, Any]] = [
    {"type": "count", "name": "rows"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
    {"type": "doubleMin", "name": "minDelta", "fieldName": "delta"},
    {"type": "longLast", "name": "last", "fieldName": "added"},
    {"type": "thetaSketch", "name": "users", "fieldName": "user"},
    {"type": "HLLSketchBuild", "name": "hll", "fieldName": "user"},
    {"type": "variance", "name": "var", "fieldName": "delta"},
]

QUERIES: list[dict[str, Any]] = [
    {"queryType": "timeseries", "granularity": "all", "aggregations": AGGS},
    {"queryType": "timeseries", "granularity": "hour", "aggregations": AGGS},
    {"queryType": "groupBy", "granularity": "all", "dimensions": ["page"], "aggregations": AGGS},
    {
        "queryType": "topN",
        "granularity": "day",
        "dimension": "page",
        "metric": "added",
        "threshold": 3,
        "aggregations": AGGS,
    },
    {"queryType": "scan", "columns": ["__time", "page", "added"], "limit": 50, "offset": 3},
    {"queryType": "scan", "columns": ["page", "delta"], "order": "descending", "limit": 20},
    {
        "queryType": "search",
        "granularity": "all",
        "searchDimensions": ["page"],
        "query": {"type": "contains", "value": "p"},
    },
    {"queryType": "timeBoundary"},
    {"queryType": "segmentMetadata"},
]


@pytest.mark.parametrize("spec", QUERIES, ids=lambda q: f"{q['queryType']}-{q.get('granularity')}")
def test_a_node_answer_merged_again_is_unchanged(spec: dict[str, Any]) -> None:
    query = parse_query({**spec, "dataSource": "wiki", "intervals": ["2024-01-01/2024-01-04"]})
    parts = [
        run_segment(query, t, interval=iv, segment_id=f"s{d}")
        for d, (iv, t) in enumerate(segment(d) for d in range(3))
    ]
    node = from_ipc(to_ipc(merge(query, parts)))  # the node's answer, as the broker reads it
    once = Partials([node], [], from_nodes=True).merged(query)
    assert once is node
    twice = merge(query, [node])
    assert repr(finalize(query, once)) == repr(finalize(query, twice))
    assert finalize(query, once)  # not an empty answer


def test_several_partials_or_not_from_nodes_are_merged() -> None:
    query = parse_query(
        {**QUERIES[0], "dataSource": "wiki", "intervals": ["2024-01-01/2024-01-04"]}
    )
    iv, t = segment(0)
    part = run_segment(query, t, interval=iv, segment_id="s0")
    two = Partials([part, part], [], from_nodes=True).merged(query)
    assert finalize(query, two)[0]["result"]["rows"] == 400
    local = Partials([part], [])  # e.g. an inline datasource's rows: merged as before
    assert local.merged(query) is not part
    assert repr(finalize(query, local.merged(query))) == repr(finalize(query, merge(query, [part])))
    empty = Partials([], [], from_nodes=True).merged(query)
    assert finalize(query, empty) == finalize(query, merge(query, []))
