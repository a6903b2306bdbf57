"""Scan: raw rows, optionally time-ordered, with ``offset``/``limit``.

A segment's partial is its matching rows (only the requested columns, dictionary values decoded,
``__time`` as epoch millis, a column the segment lacks all-null) plus the segment id, already cut
to ``offset + limit`` rows (after sorting by ``__time`` when ordered), so partials stay small;
merging concatenates (columns of different types across segments unified, see
``engine.unify``; re-sorting when ordered) and cuts again; finalize applies the offset and
groups rows by segment into Druid's
``{"segmentId", "columns", "events"}`` batches. Without ``columns`` in the query each segment
answers its own columns, as in Druid (kept per segment in the partial's schema metadata). A
multi-value row prints as Druid prints it: null when empty (an expression's empty array:
``[]``), the plain value when it has one, else the list; so a column that is a plain string
in one segment and multi-value in another reads the same from both.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from common.jsonrows import (
    ARROW_ROWS,
    arrays_json,
    arrays_json_arrays,
    objects_json,
    objects_json_arrays,
)
from common.query.columns import TIME_COLUMN, plain
from common.query.engine.base import concat, effective_intervals, json_value, select_rows
from common.query.javatext import druid_json, result_text_array, result_texts
from common.query.models import ScanQuery
from common.segments.intervals import Interval

SEGMENT_COLUMN = "__segmentId"
COLUMNS_KEY = b"columns"  # schema metadata: JSON {segment id: its result columns}


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
        # A column this segment lacks is all-null of no type: merging takes the others' type.
        cols[name] = (
            plain(rows.column(name)) if name in rows.column_names else pa.nulls(rows.num_rows)
        )
    cols[SEGMENT_COLUMN] = pa.repeat(pa.scalar(segment_id, pa.string()), rows.num_rows)
    out = _cut(query, pa.table(cols))
    return out.replace_schema_metadata(_columns_meta({segment_id: names}))


def _columns_meta(by_segment: dict[str, list[str]]) -> dict[bytes, bytes]:
    return {COLUMNS_KEY: orjson.dumps(by_segment)}


def _columns_of_partial(table: pa.Table) -> dict[str, list[str]]:
    """Each segment's result columns (segments differ when the query names no columns)."""
    raw = (table.schema.metadata or {}).get(COLUMNS_KEY)
    return dict(orjson.loads(raw)) if raw else {}


def merge(query: ScanQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None:
        return pa.table({})
    by_segment: dict[str, list[str]] = {}
    for p in partials:
        by_segment.update(_columns_of_partial(p))
    return _cut(query, table).replace_schema_metadata(_columns_meta(by_segment))


def druid_multi_value(values: list[Any] | None, computed: bool = False) -> Any:
    """A multi-value row as Druid's selectors give it: null when empty, the value itself when
    there is one, the list otherwise. An expression's empty array (``computed``, a virtual
    column) stays ``[]``, as Druid's expression selector gives it."""
    if values is None or (not values and not computed):
        return None
    return values[0] if len(values) == 1 else values


def _answered(
    query: ScanQuery, partial: pa.Table
) -> tuple[dict[str, list[str]], pa.Table, list[str]] | None:
    """What a scan answers: each segment's columns, the rows (offset and limit applied) and
    every answering column's name; None when no row is answered."""
    if not partial.num_columns or not partial.num_rows:
        return None
    rows = partial.slice(query.offset, query.limit)
    if not rows.num_rows:
        return None
    by_segment = _columns_of_partial(partial)
    names = list(dict.fromkeys(n for cols in by_segment.values() for n in cols))
    return by_segment, rows, names


def finalize(query: ScanQuery, partial: pa.Table) -> list[dict[str, Any]]:
    answered = _answered(query, partial)
    if answered is None:
        return []
    by_segment, rows, names = answered
    segments = rows[SEGMENT_COLUMN].to_pylist()
    data = rows.select(names)
    dicts = data.to_pylist()
    # multi-value strings (list); an ARRAY (large_list) prints whole, [] included
    multi = [f.name for f in data.schema if pa.types.is_list(f.type)]
    # an expression's empty array stays [] (the mv-filtered columns are dimension selectors: null)
    virtual = {vc.name for vc in query.virtualColumns if vc.type == "expression"}
    for row in dicts if multi else ():
        for name in multi:
            row[name] = druid_multi_value(row[name], name in virtual)
    if any(cols != names for cols in by_segment.values()):
        # Without query columns each segment answers its own: keep only those in its events.
        dicts = [
            {n: row[n] for n in by_segment.get(seg, names)}
            for seg, row in zip(segments, dicts, strict=True)
        ]
    events: list[Any] = (
        [list(r.values()) for r in dicts] if query.resultFormat == "compactedList" else dicts
    )
    out: list[dict[str, Any]] = []
    for seg, ev in zip(segments, events, strict=True):
        if not out or out[-1]["segmentId"] != seg or len(out[-1]["events"]) >= query.batchSize:
            cols = by_segment.get(seg, names)
            out.append({"segmentId": seg, "columns": cols, "events": []})
        if isinstance(ev, dict):
            ev = {k: json_value(v) for k, v in ev.items()}
        else:
            ev = [json_value(v) for v in ev]
        out[-1]["events"].append(ev)
    return out


def finalized_table(query: ScanQuery, partial: pa.Table) -> pa.Table | None:
    """The rows ``finalize`` answers as plain columns (offset and limit applied, the answering
    columns, then ``__segmentId``), or None when there is no row or they are not plain:
    multi-value columns (``finalize`` prints their rows Druid's way) and segments answering
    different columns (a query naming no columns)."""
    answered = _answered(query, partial)
    if answered is None:
        return None
    by_segment, rows, names = answered
    if any(cols != names for cols in by_segment.values()):
        return None
    data = rows.select([*names, SEGMENT_COLUMN])
    if any(pa.types.is_list(f.type) for f in data.schema):
        return None
    return data


def finalize_json(query: ScanQuery, partial: pa.Table) -> bytes:
    """``finalize``'s batches as JSON, each batch's events written from the columns
    (``common.jsonrows``) without a dict or list per row: the same bytes as
    ``druid_json(finalize(...))``. Rows that are not plain columns
    (``finalized_table``) go through ``finalize``."""
    data = finalized_table(query, partial)
    if data is None:
        return druid_json(finalize(query, partial))
    names = data.column_names[:-1]
    compacted = query.resultFormat == "compactedList"
    arrow = data.num_rows >= ARROW_ROWS
    texts: list[Any] = [
        result_text_array(data.column(n)) if arrow else result_texts(data.column(n)) for n in names
    ]
    head = b',"columns":' + orjson.dumps(names) + b',"events":'
    batches: list[bytes] = []
    start = 0
    runs = pc.run_end_encode(data.column(SEGMENT_COLUMN).combine_chunks())
    for segment, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        for a in range(start, end, query.batchSize):
            b = min(a + query.batchSize, end)
            if arrow:
                cut = [t.slice(a, b - a) for t in texts]
                events = arrays_json_arrays(cut) if compacted else objects_json_arrays(names, cut)
            else:
                cut = [t[a:b] for t in texts]
                events = arrays_json(cut, b - a) if compacted else objects_json(names, cut, b - a)
            batches.append(b'{"segmentId":' + orjson.dumps(segment) + head + events + b"}")
        start = end
    return b"[" + b",".join(batches) + b"]"
