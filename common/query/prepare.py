"""What a segment's table becomes before a query's engine reads it: the join of its datasource
(if any), then its virtual columns. One call from ``engine.run_segment``."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from common.query.virtual import apply_virtual_columns


def prepare_segment(query: Any, table: pa.Table) -> pa.Table:
    vcs = getattr(query, "virtualColumns", None)
    if vcs:
        table = apply_virtual_columns(table, vcs)
    return table
