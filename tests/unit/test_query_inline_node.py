"""A historical runs a small query on its event loop (``run_on_node(inline_rows=...)``): the
answer is the worker-thread path's, missing segments and sub-interval descriptors included; a
query over more rows, or over a join datasource, still goes to worker threads."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pyarrow as pa
import pytest

from common.errors import NotFound
from common.query import datanode, finalize, parse_query
from common.query.datanode import INLINE_QUERY_ROWS, run_on_node, segment_lookup
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, SegmentId

DAY = 86_400_000
T0 = Interval.parse("2024-01-01/2024-01-02").start
VERSION = "2024-02-01T00:00:00.000Z"


def day(d: int) -> Interval:
    return Interval(T0 + d * DAY, T0 + (d + 1) * DAY)


def day_segment(d: int, rows: int = 48) -> tuple[DataSegment, pa.Table]:
    iv = day(d)
    step = DAY // rows
    table = pa.table(
        {
            "__time": pa.array([iv.start + i * step for i in range(rows)], pa.int64()),
            "page": [f"p{(i + d) % 5}" if i % 7 else None for i in range(rows)],
            "added": pa.array([i + 100 * d if i % 3 else None for i in range(rows)], pa.int64()),
            "delta": pa.array([float("nan") if i == 5 else i / 3 for i in range(rows)]),
        }
    )
    seg = DataSegment(dataSource="wiki", interval=iv, version=VERSION, dimensions=["page"])
    return seg, table


class Registry:
    def __init__(self) -> None:
        self.open = dict((s.id, (s, t)) for s, t in (day_segment(d) for d in range(3)))

    def get(self, sid: SegmentId) -> tuple[DataSegment, pa.Table]:
        if sid not in self.open:
            raise NotFound(str(sid))
        return self.open[sid]


def segments(*descs: tuple[Interval, int]) -> dict[str, Any]:
    return {
        "type": "segments",
        "segments": [{"itvl": str(iv), "ver": VERSION, "part": p} for iv, p in descs],
    }


AGGS = [
    {"type": "count", "name": "rows"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
    {"type": "longMax", "name": "maxAdded", "fieldName": "added"},
]
HALF_DAY_1 = Interval(day(1).start, day(1).start + DAY // 2)
MISSING = day(7)

QUERIES: list[dict[str, Any]] = [
    {"queryType": "timeseries", "granularity": "all", "aggregations": AGGS},
    {"queryType": "timeseries", "granularity": "hour", "aggregations": AGGS},
    {
        "queryType": "timeseries",
        "granularity": "all",
        "aggregations": AGGS,
        "filter": {"type": "selector", "dimension": "page", "value": "nope"},
    },
    {"queryType": "groupBy", "granularity": "all", "dimensions": ["page"], "aggregations": AGGS},
    {
        "queryType": "topN",
        "granularity": "all",
        "dimension": "page",
        "metric": "added",
        "threshold": 2,
        "aggregations": AGGS,
    },
    {"queryType": "scan", "columns": ["__time", "page", "added"], "limit": 30},
]


@pytest.fixture
def ran_on(monkeypatch: Any) -> set[str]:
    """The threads segments were run on."""
    threads: set[str] = set()
    real = datanode.run_segment

    def run_segment(*args: Any, **kwargs: Any) -> Any:
        threads.add(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(datanode, "run_segment", run_segment)
    return threads


MAIN = threading.main_thread().name


async def _run(body: dict[str, Any], reg: Registry, inline_rows: int) -> Any:
    query = parse_query(body)
    getter = segment_lookup(lambda: [s for s, _ in reg.open.values()], reg.get)
    return query, await run_on_node(query, getter, asyncio.Semaphore(2), inline_rows=inline_rows)


@pytest.mark.parametrize("spec", QUERIES, ids=lambda q: f"{q['queryType']}-{q.get('granularity')}")
async def test_inline_answers_as_the_threads_do(spec: dict[str, Any], ran_on: set[str]) -> None:
    body = {
        **spec,
        "dataSource": "wiki",
        "intervals": segments((day(0), 0), (HALF_DAY_1, 0), (MISSING, 0), (day(2), 0)),
    }
    reg = Registry()
    query, threaded = await _run(body, reg, 0)
    assert ran_on and MAIN not in ran_on
    ran_on.clear()
    _, inline = await _run(body, reg, INLINE_QUERY_ROWS)
    assert ran_on == {MAIN}  # run right here, on the event loop
    assert repr(finalize(query, inline.partial)) == repr(finalize(query, threaded.partial))
    assert inline.partial.schema == threaded.partial.schema
    assert [str(d.itvl) for d in inline.missing] == [str(MISSING)]
    assert inline.missing == threaded.missing


async def test_over_the_threshold_or_a_join_goes_to_threads(ran_on: set[str]) -> None:
    reg = Registry()
    body = {**QUERIES[0], "dataSource": "wiki", "intervals": segments((day(0), 0), (day(1), 0))}
    query, got = await _run(body, reg, 95)  # 96 rows in the two segments
    assert ran_on and MAIN not in ran_on
    assert finalize(query, got.partial)[0]["result"]["rows"] == 96
    join = {
        **body,
        "dataSource": {
            "type": "join",
            "left": "wiki",
            "right": {
                "type": "inline",
                "columnNames": ["k", "v"],
                "columnTypes": ["STRING", "STRING"],
                "rows": [["p1", "one"]],
            },
            "rightPrefix": "r.",
            "condition": 'page == "r.k"',
            "joinType": "INNER",
        },
    }
    ran_on.clear()
    query, got = await _run(join, reg, INLINE_QUERY_ROWS)
    assert ran_on and MAIN not in ran_on
    assert finalize(query, got.partial)[0]["result"]["rows"] > 0
