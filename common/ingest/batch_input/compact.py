"""The ``compact`` task (Druid's ``CompactionTask``) planned onto a native batch task.

Submitted shape::

    {"type": "compact", "id"?, "dataSource",
     "ioConfig": {"type": "compact", "inputSpec": {"type": "interval", "interval"} |
                  {"type": "segments", "segments": [ids]}, "dropExisting"?},
     "granularitySpec"? {segmentGranularity, queryGranularity, rollup}, "dimensionsSpec"?,
     "metricsSpec"?, "transformSpec"?, "tuningConfig"? {partitionsSpec...}, "context"?}

The runner reads the used, visible segments of the interval (the ``druid`` input source) and
re-indexes them into new segments of a new version that overshadow them. What is not given is
kept from the segments: dimensions (newest segment first, as Druid), metrics (``longSum`` over a
long column, ``doubleSum`` over a double; sketch columns need an explicit ``metricsSpec``) and the
segment granularity (the one all segments share). Rollup is off unless asked for, because the
aggregator a numeric column was built with (sum, min, max...) is not stored in the segment.
Every new segment carries ``lastCompactionState`` in Druid's shape.
Pure: no I/O; bad input is ``InvalidInput`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import InvalidInput
from common.segments.granularity import Granularity, parse_granularity
from common.segments.intervals import Interval
from common.segments.isotime import format_iso
from common.segments.segment import DataSegment, SegmentId

COMPACT_TYPE = "compact"
#: Druid's default ``IndexSpec`` as it appears in ``lastCompactionState``.
DEFAULT_INDEX_SPEC: dict[str, Any] = {
    "bitmap": {"type": "roaring"},
    "dimensionCompression": "lz4",
    "stringDictionaryEncoding": {"type": "utf8"},
    "metricCompression": "lz4",
    "longEncoding": "longs",
}
_GRANULARITIES = ("MINUTE", "FIVE_MINUTE", "FIFTEEN_MINUTE", "HOUR", "DAY", "MONTH", "YEAR")


@dataclass(frozen=True)
class CompactSpec:
    id: str
    data_source: str
    interval: Interval
    #: The segment ids of a ``segments`` inputSpec (they must be exactly the visible ones).
    segment_ids: tuple[str, ...] | None
    drop_existing: bool
    granularity_spec: dict[str, Any]
    dimensions_spec: dict[str, Any] | None
    metrics_spec: list[dict[str, Any]] | None
    transform_spec: dict[str, Any] | None
    tuning: dict[str, Any]
    context: dict[str, Any]


def _obj(task: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = task.get(key)
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"Invalid compact task: '{key}' must be an object")
    return value


def _input_interval(data_source: str, spec: Any) -> tuple[Interval, tuple[str, ...] | None]:
    if not isinstance(spec, dict):
        raise InvalidInput("Invalid compact task: 'ioConfig.inputSpec' is required")
    kind = spec.get("type")
    if kind == "interval":
        try:
            return Interval.parse(str(spec.get("interval"))), None
        except (InvalidInput, ValueError):
            raise InvalidInput(
                f"Invalid compact task: bad ioConfig.inputSpec.interval [{spec.get('interval')}]"
            ) from None
    if kind == "segments":
        raw = spec.get("segments")
        if not isinstance(raw, list) or not raw:
            raise InvalidInput("Invalid compact task: inputSpec.segments must be a non-empty list")
        ids = []
        for item in raw:
            text = item if isinstance(item, str) else (item or {}).get("id")
            parsed = SegmentId.try_parse(data_source, str(text))
            if parsed is None:
                raise InvalidInput(
                    f"Invalid compact task: [{text}] is not a segment id of [{data_source}]"
                )
            ids.append(parsed)
        umbrella = Interval(min(i.interval.start for i in ids), max(i.interval.end for i in ids))
        return umbrella, tuple(str(i) for i in ids)
    raise InvalidInput(
        f"Invalid compact task: inputSpec.type must be 'interval' or 'segments', got [{kind}]"
    )


def parse_compact_task(task: Any) -> CompactSpec:
    if not isinstance(task, dict) or task.get("type") != COMPACT_TYPE:
        raise InvalidInput("not a compact task")
    ds = task.get("dataSource")
    if not isinstance(ds, str) or not ds:
        raise InvalidInput("Invalid compact task: 'dataSource' is required")
    io = _obj(task, "ioConfig")
    if io is None and "interval" in task:  # Druid's deprecated top-level interval
        io = {"inputSpec": {"type": "interval", "interval": task["interval"]}}
    if io is None:
        raise InvalidInput("Invalid compact task: 'ioConfig' is required")
    interval, ids = _input_interval(ds, io.get("inputSpec"))
    gran = dict(_obj(task, "granularitySpec") or {})
    if task.get("segmentGranularity") is not None:
        gran.setdefault("segmentGranularity", task["segmentGranularity"])
    for key in ("segmentGranularity", "queryGranularity"):
        if gran.get(key) is not None:
            parse_granularity(gran[key])  # InvalidInput names a bad one
    if "rollup" in gran and not isinstance(gran["rollup"], bool):
        raise InvalidInput("Invalid compact task: granularitySpec.rollup must be a boolean")
    metrics = task.get("metricsSpec")
    if metrics is not None and not isinstance(metrics, list):
        raise InvalidInput("Invalid compact task: 'metricsSpec' must be a list")
    tuning = dict(_obj(task, "tuningConfig") or {})
    tuning["type"] = "index_parallel"
    parts = tuning.get("partitionsSpec")
    if isinstance(parts, dict) and parts.get("type") == "hashed":
        tuning.setdefault("forceGuaranteedRollup", True)  # Druid sets it for hashed compaction
    context = _obj(task, "context") or {}
    task_id = task.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidInput("task id is required")
    return CompactSpec(
        id=task_id,
        data_source=ds,
        interval=interval,
        segment_ids=ids,
        drop_existing=bool(io.get("dropExisting", False)),
        granularity_spec=gran,
        dimensions_spec=_obj(task, "dimensionsSpec"),
        metrics_spec=metrics,
        transform_spec=_obj(task, "transformSpec"),
        tuning=tuning,
        context=context,
    )


def check_segments(spec: CompactSpec, visible: list[DataSegment]) -> None:
    """A ``segments`` inputSpec must name exactly the visible segments of its interval."""
    if not visible:
        raise InvalidInput(f"No used segments of [{spec.data_source}] in [{spec.interval}]")
    if spec.segment_ids is not None:
        have = {s.identifier for s in visible}
        if have != set(spec.segment_ids):
            raise InvalidInput(
                "Invalid compact task: inputSpec.segments must be all the visible segments of "
                f"interval [{spec.interval}]; visible are {sorted(have)}"
            )


def shared_granularity(segments: list[DataSegment]) -> Granularity:
    """The standard granularity every segment's interval is one bucket of."""
    for name in _GRANULARITIES:
        gran = parse_granularity(name)
        if all(gran.bucket(s.interval.start) == s.interval for s in segments):
            return gran
    raise InvalidInput(
        "Invalid compact task: the segments do not share a segment granularity; "
        "give granularitySpec.segmentGranularity"
    )


def inferred_dimensions(segments: list[DataSegment]) -> list[str]:
    """Druid's order: dimensions of the newest segments first, then older ones."""
    out: list[str] = []
    for s in sorted(segments, key=lambda s: (s.interval.end, s.version), reverse=True):
        out.extend(d for d in s.dimensions if d not in out)
    return out


def inferred_metrics(column_types: dict[str, str]) -> list[dict[str, Any]]:
    """``column_types``: metric name -> ``long``, ``double`` or a complex type name."""
    out: list[dict[str, Any]] = []
    for name, kind in column_types.items():
        if kind == "long":
            out.append({"type": "longSum", "name": name, "fieldName": name})
        elif kind == "double":
            out.append({"type": "doubleSum", "name": name, "fieldName": name})
        else:
            raise InvalidInput(
                f"Invalid compact task: metric [{name}] is a [{kind}] column; give a metricsSpec "
                "that merges it (its aggregator is not stored in the segment)"
            )
    return out


@dataclass(frozen=True)
class Plan:
    task: dict[str, Any]
    compaction_state: dict[str, Any]


def partitions_spec(tuning: dict[str, Any]) -> dict[str, Any]:
    """What ``lastCompactionState.partitionsSpec`` records (the duty's expectation)."""
    spec = tuning.get("partitionsSpec")
    if isinstance(spec, dict):
        return dict(spec)
    return {
        "type": "dynamic",
        "maxRowsPerSegment": tuning.get("maxRowsPerSegment") or 5_000_000,
        "maxTotalRows": tuning.get("maxTotalRows") or 20_000_000,
    }


def plan(spec: CompactSpec, visible: list[DataSegment], metric_types: dict[str, str]) -> Plan:
    """The ``index_parallel`` task re-indexing ``visible`` and the state its segments record."""
    check_segments(spec, visible)
    gran_in = spec.granularity_spec
    seg_gran = (
        parse_granularity(gran_in["segmentGranularity"])
        if gran_in.get("segmentGranularity") is not None
        else shared_granularity(visible)
    )
    query_gran = parse_granularity(gran_in.get("queryGranularity") or "NONE")
    rollup = bool(gran_in.get("rollup", False))
    # The input interval grown to whole buckets, so the new segments overshadow the old ones.
    first = seg_gran.bucket(min(spec.interval.start, *(s.interval.start for s in visible)))
    last_end = max(spec.interval.end, *(s.interval.end for s in visible))
    last = seg_gran.bucket(last_end - 1)
    lock_interval = Interval(first.start, last.end)
    dims_spec = spec.dimensions_spec or {"dimensions": inferred_dimensions(visible)}
    metrics = spec.metrics_spec if spec.metrics_spec is not None else inferred_metrics(metric_types)
    transform = spec.transform_spec or {}
    lock_text = f"{format_iso(lock_interval.start)}/{format_iso(lock_interval.end)}"
    gran_out: dict[str, Any] = {
        "type": "uniform",
        "segmentGranularity": seg_gran.to_json(),
        "queryGranularity": query_gran.to_json(),
        "rollup": rollup,
        "intervals": [lock_text],
    }
    task = {
        "type": "index_parallel",
        "id": spec.id,
        "groupId": spec.id,
        "dataSource": spec.data_source,
        "spec": {
            "dataSchema": {
                "dataSource": spec.data_source,
                "timestampSpec": {"column": "__time", "format": "millis"},
                "dimensionsSpec": dims_spec,
                "metricsSpec": metrics,
                "granularitySpec": gran_out,
                "transformSpec": transform,
            },
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": {
                    "type": "druid",
                    "dataSource": spec.data_source,
                    "interval": lock_text,
                },
                "appendToExisting": False,
                "dropExisting": spec.drop_existing,
            },
            "tuningConfig": spec.tuning,
        },
        "context": spec.context,
    }
    state = {
        "partitionsSpec": partitions_spec(spec.tuning),
        "dimensionsSpec": dims_spec,
        "metricsSpec": metrics,
        "transformSpec": {"filter": transform.get("filter"), **transform},
        "indexSpec": spec.tuning.get("indexSpec") or DEFAULT_INDEX_SPEC,
        "granularitySpec": gran_out,
    }
    return Plan(task, state)
