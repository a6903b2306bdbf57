"""Per-segment execution, merging and finalizing of native queries, dispatched on query type.

The contract every query type follows:

- ``run_segment(query, table, interval=..., segment_id=...)`` runs the query over ONE segment's
  Arrow table (segment format) restricted to ``interval`` (the segment's interval, or the part of
  it a segments spec asks for) and returns a PARTIAL result table;
- ``merge(query, partials)`` merges partials into one partial of the same shape; it is associative,
  so a data node merges its segments and the broker merges the nodes' results with it;
- ``finalize(query, partial)`` turns the last partial into Druid's result JSON (a list).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from common.errors import InvalidInput
from common.query.engine import groupby, metadata, scan, search, timeseries, topn
from common.query.engine.lazy import defer_virtual_inputs
from common.query.javatext import druid_json
from common.query.models import (
    DataSourceMetadataQuery,
    GroupByQuery,
    Query,
    ScanQuery,
    SearchQuery,
    SegmentMetadataQuery,
    TimeBoundaryQuery,
    TimeseriesQuery,
    TopNQuery,
    WindowOperatorQuery,
)
from common.query.prepare import prepare_segment
from common.segments.intervals import Interval


def run_segment(query: Query, table: pa.Table, *, interval: Interval, segment_id: str) -> pa.Table:
    """The partial result of ``query`` over one segment."""
    if isinstance(query, TimeseriesQuery):
        query = defer_virtual_inputs(query, table)  # computed at the selected rows only
    table = prepare_segment(query, table)  # join and virtual columns
    if isinstance(query, TimeseriesQuery):
        return timeseries.run(query, table, interval)
    if isinstance(query, TopNQuery):
        return topn.run(query, table, interval)
    if isinstance(query, GroupByQuery):
        return groupby.run(query, table, interval)
    if isinstance(query, ScanQuery):
        return scan.run(query, table, interval, segment_id)
    if isinstance(query, SearchQuery):
        return search.run(query, table, interval)
    if isinstance(query, TimeBoundaryQuery):
        return metadata.run_time_boundary(query, table, interval)
    if isinstance(query, SegmentMetadataQuery):
        return metadata.run_segment_metadata(query, table, interval, segment_id)
    if isinstance(query, WindowOperatorQuery):
        raise InvalidInput("A windowOperator query runs at the broker only")
    return metadata.run_ds_metadata(query, table, interval)


def merge(query: Query, partials: Sequence[pa.Table]) -> pa.Table:
    """One partial from many (per data node, then at the broker); an empty list gives an empty
    table that ``finalize`` turns into ``[]``."""
    parts = list(partials)
    if isinstance(query, TimeseriesQuery):
        return timeseries.merge(query, parts)
    if isinstance(query, TopNQuery):
        return topn.merge(query, parts)
    if isinstance(query, GroupByQuery):
        return groupby.merge(query, parts)
    if isinstance(query, ScanQuery):
        return scan.merge(query, parts)
    if isinstance(query, SearchQuery):
        return search.merge(query, parts)
    if isinstance(query, TimeBoundaryQuery):
        return metadata.merge_time_boundary(query, parts)
    if isinstance(query, SegmentMetadataQuery):
        return metadata.merge_segment_metadata(query, parts)
    if isinstance(query, WindowOperatorQuery):
        raise InvalidInput("A windowOperator query runs at the broker only")
    return metadata.merge_ds_metadata(query, parts)


def finalize_json(query: Query, partial: pa.Table) -> bytes:
    """``finalize``'s result as Druid writes it: doubles as Java's text, NaN and the infinities
    as strings (``common.query.javatext``). A groupBy's rows and a scan's events are written
    from the columns, without a dict per row."""
    if isinstance(query, GroupByQuery):
        return groupby.finalize_json(query, partial)
    if isinstance(query, ScanQuery):
        return scan.finalize_json(query, partial)
    return druid_json(finalize(query, partial))


def finalized_table(query: Query, partial: pa.Table) -> pa.Table | None:
    """A groupBy's or scan's finalized rows as columns (``groupby.finalized_table``,
    ``scan.finalized_table``); None for the other query types, and where those give none."""
    if isinstance(query, GroupByQuery):
        return groupby.finalized_table(query, partial)
    if isinstance(query, ScanQuery):
        return scan.finalized_table(query, partial)
    return None


def finalize(query: Query, partial: pa.Table) -> list[dict[str, Any]]:
    """Druid's result JSON for the fully merged partial."""
    if isinstance(query, TimeseriesQuery):
        return timeseries.finalize(query, partial)
    if isinstance(query, TopNQuery):
        return topn.finalize(query, partial)
    if isinstance(query, GroupByQuery):
        return groupby.finalize(query, partial)
    if isinstance(query, ScanQuery):
        return scan.finalize(query, partial)
    if isinstance(query, SearchQuery):
        return search.finalize(query, partial)
    if isinstance(query, TimeBoundaryQuery):
        return metadata.finalize_time_boundary(query, partial)
    if isinstance(query, SegmentMetadataQuery):
        return metadata.finalize_segment_metadata(query, partial)
    if isinstance(query, DataSourceMetadataQuery):
        return metadata.finalize_ds_metadata(query, partial)
    raise TypeError(f"unknown query {type(query).__name__}")
