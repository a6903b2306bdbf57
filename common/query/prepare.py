"""What a segment's table becomes before a query's engine reads it: the join of its datasource
(join, unnest, filter: if any), then its virtual columns, and the rows' own time kept aside for
first/last aggregators. One call from ``engine.run_segment``."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from common.query.firstlast import ROW_TIME, uses_row_time
from common.query.unnest import apply_datasource
from common.query.virtual import apply_virtual_columns


def prepare_segment(query: Any, table: pa.Table) -> pa.Table:
    spec = getattr(query, "dataSourceSpec", None)
    if spec is not None:
        table = apply_datasource(spec, table)  # join, unnest, filter
    vcs = getattr(query, "virtualColumns", None)
    if vcs:
        table = apply_virtual_columns(table, vcs)
    aggs = getattr(query, "aggregations", None)
    if aggs and "__time" in table.column_names and uses_row_time(aggs):
        table = table.append_column(ROW_TIME, table.column("__time"))
    return table
