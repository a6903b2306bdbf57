"""Queries the broker answers itself, without data nodes: a query over an ``inline`` datasource
runs the ordinary per-segment engine on the inline rows as one segment covering all time."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from common.query.datasource import InlineDataSource, UnionDataSource
from common.query.engine import run_segment
from common.segments.intervals import ETERNITY


def is_local(query: Any) -> bool:
    return isinstance(getattr(query, "dataSourceSpec", None), InlineDataSource)


def run_local(query: Any) -> pa.Table:
    """The partial of ``query`` over its inline rows."""
    spec = query.dataSourceSpec
    assert isinstance(spec, InlineDataSource)
    return run_segment(query, spec.table(), interval=ETERNITY, segment_id="inline")


def union_members(query: Any) -> list[Any] | None:
    """For a query over a ``union`` datasource, one query per member table; else None."""
    spec = getattr(query, "dataSourceSpec", None)
    if not isinstance(spec, UnionDataSource):
        return None
    return [
        query.model_copy(update={"dataSource": name, "dataSourceSpec": None})
        for name in dict.fromkeys(spec.dataSources)
    ]
