"""timeBoundary, dataSourceMetadata and segmentMetadata: small per-segment summaries.

timeBoundary and dataSourceMetadata partials are one-row tables of epoch millis merged with
min/max. A segmentMetadata partial has one row per segment holding its analysis as JSON (the
analysis is nested and per-column, not columnar data); finalize folds them when ``merge`` is set,
as Druid's ``SegmentAnalysis`` folding does.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import TIME_COLUMN, is_multi_value, plain
from common.query.engine.base import concat, effective_intervals, select_rows, time_millis
from common.query.models import DataSourceMetadataQuery, SegmentMetadataQuery, TimeBoundaryQuery
from common.segments.intervals import Interval, condense
from common.segments.isotime import format_iso

# -- timeBoundary ---------------------------------------------------------------------------


def run_time_boundary(query: TimeBoundaryQuery, table: pa.Table, interval: Interval) -> pa.Table:
    rows = select_rows(
        table, effective_intervals(query.intervals.intervals, interval), query.filter
    )
    if not rows.num_rows:
        return pa.table({"minTime": pa.array([], pa.int64()), "maxTime": pa.array([], pa.int64())})
    mm = pc.min_max(time_millis(rows))
    return pa.table({"minTime": [mm["min"].as_py()], "maxTime": [mm["max"].as_py()]})


def merge_time_boundary(query: TimeBoundaryQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None or not table.num_rows:
        return pa.table({"minTime": pa.array([], pa.int64()), "maxTime": pa.array([], pa.int64())})
    return pa.table(
        {
            "minTime": [pc.min(table["minTime"]).as_py()],
            "maxTime": [pc.max(table["maxTime"]).as_py()],
        }
    )


def finalize_time_boundary(query: TimeBoundaryQuery, partial: pa.Table) -> list[dict[str, Any]]:
    if not partial.num_columns or not partial.num_rows:
        return []
    lo, hi = partial["minTime"][0].as_py(), partial["maxTime"][0].as_py()
    if query.bound == "minTime":
        return [{"timestamp": format_iso(lo), "result": {"minTime": format_iso(lo)}}]
    if query.bound == "maxTime":
        return [{"timestamp": format_iso(hi), "result": {"maxTime": format_iso(hi)}}]
    return [
        {
            "timestamp": format_iso(lo),
            "result": {"minTime": format_iso(lo), "maxTime": format_iso(hi)},
        }
    ]


# -- dataSourceMetadata ---------------------------------------------------------------------


def run_ds_metadata(
    query: DataSourceMetadataQuery, table: pa.Table, interval: Interval
) -> pa.Table:
    if not table.num_rows:
        return pa.table({"maxIngestedEventTime": pa.array([], pa.int64())})
    return pa.table({"maxIngestedEventTime": [pc.max(time_millis(table)).as_py()]})


def merge_ds_metadata(query: DataSourceMetadataQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    if table is None or not table.num_rows:
        return pa.table({"maxIngestedEventTime": pa.array([], pa.int64())})
    return pa.table({"maxIngestedEventTime": [pc.max(table["maxIngestedEventTime"]).as_py()]})


def finalize_ds_metadata(query: DataSourceMetadataQuery, partial: pa.Table) -> list[dict[str, Any]]:
    if not partial.num_columns or not partial.num_rows:
        return []
    t = format_iso(partial["maxIngestedEventTime"][0].as_py())
    return [{"timestamp": t, "result": {"maxIngestedEventTime": t}}]


# -- segmentMetadata ------------------------------------------------------------------------


def _type_name(typ: Any, field: Any) -> str:
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if is_multi_value(typ) or pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "STRING"
    if pa.types.is_timestamp(typ) or pa.types.is_integer(typ):
        return "LONG"
    if pa.types.is_float32(typ):
        return "FLOAT"
    if pa.types.is_floating(typ):
        return "DOUBLE"
    meta = field.metadata or {}
    complex_name = meta.get(b"druid.complexType", b"").decode() or "binary"
    return f"COMPLEX<{complex_name}>"


def _analyze_column(table: pa.Table, name: str, analyses: list[str]) -> dict[str, Any]:
    field = table.schema.field(name)
    typ = _type_name(field.type, field)
    col = table.column(name)
    multi = is_multi_value(col.type)
    out: dict[str, Any] = {
        "typeSignature": typ,
        "type": typ,
        "hasMultipleValues": multi,
        "hasNulls": bool(col.null_count) if name != TIME_COLUMN else False,
        "size": 0,
        "cardinality": None,
        "minValue": None,
        "maxValue": None,
        "errorMessage": None,
    }
    if typ != "STRING":
        return out
    values = plain(pa.chunked_array([c.flatten() for c in col.chunks]) if multi else col)
    if multi and not out["hasNulls"]:
        lengths = pc.list_value_length(col)
        out["hasNulls"] = bool(pc.any(pc.equal(pc.fill_null(lengths, 0), 0)).as_py())
    if "cardinality" in analyses:
        out["cardinality"] = pc.count_distinct(values, mode="only_valid").as_py()
    if "minmax" in analyses and len(values) - values.null_count:
        mm = pc.min_max(values)
        out["minValue"], out["maxValue"] = mm["min"].as_py(), mm["max"].as_py()
    return out


def run_segment_metadata(
    query: SegmentMetadataQuery, table: pa.Table, interval: Interval, segment_id: str
) -> pa.Table:
    names = [TIME_COLUMN] if TIME_COLUMN in table.column_names else []
    names += sorted(c for c in table.column_names if c != TIME_COLUMN)
    analysis = {
        "id": segment_id,
        "intervals": [str(interval)] if "interval" in query.analysisTypes else None,
        "columns": {n: _analyze_column(table, n, query.analysisTypes) for n in names},
        "size": 0,
        "numRows": table.num_rows,
        "aggregators": None,
        "timestampSpec": None,
        "queryGranularity": None,
        "rollup": None,
    }
    return pa.table({"analysis": [orjson.dumps(analysis).decode()]})


def merge_segment_metadata(query: SegmentMetadataQuery, partials: list[pa.Table]) -> pa.Table:
    table = concat(partials)
    return table if table is not None else pa.table({"analysis": pa.array([], pa.string())})


def _error_column(reason: str) -> dict[str, Any]:
    """Druid's ``ColumnAnalysis.error``: a STRING analysis of size -1 carrying the reason."""
    return {
        "typeSignature": "STRING",
        "type": "STRING",
        "hasMultipleValues": False,
        "hasNulls": False,
        "size": -1,
        "cardinality": None,
        "minValue": None,
        "maxValue": None,
        "errorMessage": f"error:{reason}",
    }


def _fold_column(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Druid's ``ColumnAnalysis.fold``: errors win (two different ones become
    ``multiple_errors``); different types are an error; else the analyses combine."""
    if a["errorMessage"] and b["errorMessage"]:
        return a if a["errorMessage"] == b["errorMessage"] else _error_column("multiple_errors")
    if a["errorMessage"] or b["errorMessage"]:
        return a if a["errorMessage"] else b
    if a["type"] != b["type"] or a["typeSignature"] != b["typeSignature"]:
        return _error_column(f"cannot_merge_diff_types: [{a['type']}] and [{b['type']}]")
    out = dict(a)
    out["hasMultipleValues"] = a["hasMultipleValues"] or b["hasMultipleValues"]
    out["hasNulls"] = a["hasNulls"] or b["hasNulls"]
    out["size"] = a["size"] + b["size"]
    if a["cardinality"] is None or b["cardinality"] is None:
        out["cardinality"] = a["cardinality"] if b["cardinality"] is None else b["cardinality"]
    else:
        out["cardinality"] = max(a["cardinality"], b["cardinality"])
    lows = [v for v in (a["minValue"], b["minValue"]) if v is not None]
    highs = [v for v in (a["maxValue"], b["maxValue"]) if v is not None]
    out["minValue"] = min(lows) if lows else None
    out["maxValue"] = max(highs) if highs else None
    return out


def finalize_segment_metadata(
    query: SegmentMetadataQuery, partial: pa.Table
) -> list[dict[str, Any]]:
    if not partial.num_columns or not partial.num_rows:
        return []
    analyses = [orjson.loads(s) for s in partial["analysis"].to_pylist()]
    analyses.sort(key=lambda a: a["id"])
    if not query.merge or len(analyses) == 1:
        return analyses
    merged = dict(analyses[0])
    merged["id"] = "merged"
    for other in analyses[1:]:
        cols = dict(merged["columns"])
        for name, col in other["columns"].items():
            cols[name] = _fold_column(cols[name], col) if name in cols else col
        merged["columns"] = cols
        merged["numRows"] += other["numRows"]
        merged["size"] += other["size"]
        if merged["intervals"] is not None and other["intervals"] is not None:
            ivs = [Interval.parse(i) for i in merged["intervals"] + other["intervals"]]
            merged["intervals"] = [str(i) for i in condense(ivs)]
    return [merged]
