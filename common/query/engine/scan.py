"""Scan: raw rows, optionally time-ordered, with ``offset``/``limit``.

A segment's partial is its matching rows (only the requested columns, dictionary values decoded,
``__time`` as epoch millis) plus the segment id, already cut to ``offset + limit`` rows (after
sorting by ``__time`` when ordered), so partials stay small; merging concatenates (re-sorting when
ordered) and cuts again; finalize applies the offset and groups rows by segment into Druid's
``{"segmentId", "columns", "events"}`` batches.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from common.query.columns import TIME_COLUMN, get_column, plain
from common.query.engine.base import concat, effective_intervals, json_value, select_rows
from common.query.models import ScanQuery
from common.segments.intervals import Interval

SEGMENT_COLUMN = "__segmentId"


def columns_of(query: ScanQuery, table: pa.Table) -> list[str]:
    if query.columns:
        return list(query.columns)
    rest = [c for c in table.column_names if c != TIME_COLUMN]
    return [TIME_COLUMN, *rest] if TIME_COLUMN in table.column_names else rest


def _cut(query: ScanQuery, table: pa.Table) -> pa.Table:
    if query.order != "none":
        table = table.sort_by([(TIME_COLUMN, query.order)])
    if query.limit is not None:
        table = table.slice(0, query.offset + query.limit)
    return table


def run(query: ScanQuery, table: pa.Table, interval: Interval, segment_id: str) -> pa.Table:
    intervals = effective_intervals(query.intervals.intervals, interval)
    rows = select_rows(table, intervals, query.filter)
    names = columns_of(query, rows)
    if query.order != "none" and TIME_COLUMN not in names:
        names_with_time = [*names, TIME_COLUMN]
    else:
        names_with_time = names
    if query.order == "none" and query.limit is not None:
        # Only the first offset+limit rows can ever be returned; skip decoding the rest.
        rows = rows.slice(0, query.offset + query.limit)
    cols: dict[str, Any] = {}
    for name in names_with_time:
        cols[name] = plain(get_column(rows, name))
    cols[SEGMENT_COLUMN] = pa.repeat(pa.scalar(segment_id, pa.string()), rows.num_rows)
    out = _cut(query, pa.table(cols))
    meta = {b"columns": "\x1f".join(names).encode()}
    return out.replace_schema_metadata(meta)


def merge(query: ScanQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None:
        return pa.table({})
    meta = next((p.schema.metadata for p in partials if p.schema.metadata), None)
    return _cut(query, table).replace_schema_metadata(meta)


def finalize(query: ScanQuery, partial: pa.Table) -> list[dict[str, Any]]:
    if not partial.num_columns or not partial.num_rows:
        return []
    meta = partial.schema.metadata or {}
    names = [n for n in meta.get(b"columns", b"").decode().split("\x1f") if n]
    rows = partial.slice(query.offset, query.limit)
    if not rows.num_rows:
        return []
    segments = rows[SEGMENT_COLUMN].to_pylist()
    data = rows.select(names)
    events: list[Any] = (
        [list(r.values()) for r in data.to_pylist()]
        if query.resultFormat == "compactedList"
        else data.to_pylist()
    )
    out: list[dict[str, Any]] = []
    for seg, ev in zip(segments, events, strict=True):
        if not out or out[-1]["segmentId"] != seg or len(out[-1]["events"]) >= query.batchSize:
            out.append({"segmentId": seg, "columns": names, "events": []})
        if isinstance(ev, dict):
            ev = {k: json_value(v) for k, v in ev.items()}
        else:
            ev = [json_value(v) for v in ev]
        out[-1]["events"].append(ev)
    return out
