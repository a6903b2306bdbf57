"""Druid's ``search`` query: the values of the search dimensions the search spec accepts, each
with the number of rows holding it (a multi-value row counts once per value).

As Druid's ``SearchQueryRunner``, a segment answers ONE result, stamped with the start of its
interval (rows are not bucketed one by one), holding its first ``limit`` hits in sort order, even
when it has none. Merging puts each segment's result in the bucket of its stamp (``all``: the
earliest stamp) and sums the counts of equal (dimension, value) hits; with granularity ``all`` the
merged hits are cut to ``limit`` again (other granularities keep every segment's hits, as Druid's
``SearchBinaryFn``). Sorts: ``lexicographic`` (by value, then dimension), ``strlen`` (by length in
UTF-16 units, then value, then dimension). A partial is a table of (stamp, dimension, value,
count) rows, with a (stamp, null, null, 0) row marking a segment that answered.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import TIME_COLUMN, to_strings
from common.query.engine.base import (
    collapse_all,
    concat,
    data_intervals,
    effective_intervals,
    format_time,
    select_rows,
)
from common.query.engine.dims import keyed_table
from common.query.models import SearchQuery
from common.segments.granularity import AllGranularity
from common.segments.intervals import Interval

SCHEMA = pa.schema(
    [
        (TIME_COLUMN, pa.int64()),
        ("dimension", pa.string()),
        ("value", pa.string()),
        ("count", pa.int64()),
    ]
)


def run(query: SearchQuery, table: pa.Table, interval: Interval) -> pa.Table:
    gran = query.granularity
    wanted = effective_intervals(query.intervals.intervals, interval)
    if not wanted:
        return SCHEMA.empty_table()  # Druid does not ask a segment outside the intervals
    rows = select_rows(table, data_intervals(table, gran, wanted), query.filter)
    buckets = pa.array(np.zeros(rows.num_rows, dtype=np.int64))
    hits: list[dict[str, Any]] = []
    for dim in query.searchDimensions:
        keyed, keys = keyed_table(rows, buckets, [dim])
        values = to_strings(keyed.column(keys[1]).combine_chunks())
        if query.query is None:
            keep = pc.is_valid(values)
        else:
            keep = pc.fill_null(query.query.mask(values), False)
        counted = (
            pa.table({"value": values})
            .filter(keep)
            .group_by(["value"], use_threads=False)
            .aggregate([([], "count_all")])
        )
        for value, n in zip(
            counted.column("value").to_pylist(),
            counted.column("count_all").to_pylist(),
            strict=True,
        ):
            hits.append({"dimension": dim.output, "value": value, "count": n})
    hits = sorted(hits, key=_sort_key(query.sort))[: query.limit]
    marker = {"dimension": None, "value": None, "count": 0}
    return pa.Table.from_pylist(
        [{TIME_COLUMN: interval.start, **h} for h in [marker, *hits]], schema=SCHEMA
    )


def merge(query: SearchQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None or not table.num_rows:
        return SCHEMA.empty_table()
    table = table.select(SCHEMA.names).cast(SCHEMA)
    gran = query.granularity
    if isinstance(gran, AllGranularity):
        table = collapse_all(table, gran)
    else:
        table = table.set_column(0, TIME_COLUMN, gran.bucket_starts(table.column(TIME_COLUMN)))
    summed = table.group_by([TIME_COLUMN, "dimension", "value"], use_threads=False).aggregate(
        [("count", "sum")]
    )
    return pa.table(
        {
            TIME_COLUMN: summed.column(TIME_COLUMN).cast(pa.int64()),
            "dimension": summed.column("dimension"),
            "value": summed.column("value"),
            "count": summed.column("count_sum").cast(pa.int64()),
        }
    )


def _sort_key(sort: str) -> Any:
    if sort == "strlen":
        return lambda h: (len(h["value"].encode("utf-16-le")), h["value"], h["dimension"])
    return lambda h: (h["value"], h["dimension"])


def finalize(query: SearchQuery, partial: pa.Table) -> list[dict[str, Any]]:
    by_bucket: dict[int, list[dict[str, Any]]] = {}
    for row in partial.to_pylist():
        hits = by_bucket.setdefault(row[TIME_COLUMN], [])
        if row["dimension"] is not None:
            hits.append(
                {"dimension": row["dimension"], "value": row["value"], "count": row["count"]}
            )
    cut = query.limit if isinstance(query.granularity, AllGranularity) else None
    out = []
    for start in sorted(by_bucket):
        hits = sorted(by_bucket[start], key=_sort_key(query.sort))[:cut]
        out.append({"timestamp": format_time(start, query.granularity), "result": hits})
    return out
