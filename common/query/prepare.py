"""What a segment's table becomes before a query's engine reads it: the join of its datasource
(join, unnest, filter: if any), then its virtual columns, and the rows' own time kept aside for
first/last aggregators. One call from ``engine.run_segment``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from common.query.datasource import FilterDataSource, JoinDataSource
from common.query.engine.sorted_time import known_sorted, remember_sorted, sorted_millis
from common.query.firstlast import ROW_TIME, uses_row_time
from common.query.join import apply_join
from common.query.models import GroupByQuery, TimeseriesQuery, TopNQuery
from common.query.unnest import apply_datasource
from common.query.virtual import apply_virtual_columns


def prepare_segment(query: Any, table: pa.Table) -> pa.Table:
    original = table
    spec = getattr(query, "dataSourceSpec", None)
    if isinstance(spec, JoinDataSource) and isinstance(query, AGGREGATING):
        table = apply_join(spec, table, _referenced(query))
    elif spec is not None:
        table = apply_datasource(spec, table)  # join, unnest, filter
    vcs = getattr(query, "virtualColumns", None)
    if vcs:
        table = apply_virtual_columns(table, vcs)
    aggs = getattr(query, "aggregations", None)
    if aggs and "__time" in table.column_names and uses_row_time(aggs):
        table = table.append_column(ROW_TIME, table.column("__time"))
    if table is not original and _keeps_time(spec):
        # Columns were added, and a join keeps the left rows in their order (repeated or
        # dropped): __time stays sorted. The segment's own table is checked once (and
        # remembered), the derived one inherits the answer.
        if known_sorted(original) or sorted_millis(original) is not None:
            remember_sorted(table)
    return table


AGGREGATING = (TimeseriesQuery, TopNQuery, GroupByQuery)


def _referenced(query: Any) -> Callable[[str], bool]:
    """Whether a column may be read by an aggregating query beyond its datasource: its name
    appears anywhere in the rest of the query (dimensions, filter, virtual columns,
    aggregators; a name inside another counts too, which only keeps more). A join's right-side
    column nothing reads is then not built for every row of the segment."""
    text = json.dumps(query.model_dump(mode="json", exclude={"dataSource", "dataSourceSpec"}))
    return lambda name: name in text


def _keeps_time(spec: Any) -> bool:
    """Whether the joined table's ``__time`` is the left table's (no right prefix shadows it)."""
    if isinstance(spec, FilterDataSource):
        return _keeps_time(spec.base)  # a filter keeps the rows it keeps in order
    if spec is not None and not isinstance(spec, JoinDataSource):
        return getattr(spec, "type", "table") == "table"  # unnest: not assumed
    if spec is None:
        return True
    return not "__time".startswith(spec.rightPrefix) and _keeps_time(spec.left)
