"""Which intervals to compact, newest first: Druid's ``NewestSegmentFirstPolicy`` and
``CompactionStatus`` as pure functions (the loop is ``compact_loop.py``).

* Only used, non-overshadowed segments count. Time chunks are the segments' intervals, or the
  buckets of ``granularitySpec.segmentGranularity`` when the config sets one (a segment spanning
  several buckets goes to the bucket of its start).
* The newest ``skipOffsetFromLatest`` is skipped: a chunk ending after
  ``latest segment end - skipOffsetFromLatest`` is not compacted (it may still be written to).
* A chunk whose segments add up to more than ``inputSegmentSizeBytes`` is skipped.
* A chunk is already compacted when every segment carries the same ``lastCompactionState`` and
  that state matches what the config asks for (partitionsSpec, segment and query granularity,
  rollup, dimensions, metrics, transform). Otherwise the reason is returned.
* ``AutoCompactionSnapshot`` figures (bytes, segments, intervals: awaiting, compacted, skipped).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.segments.intervals import Interval
from common.segments.isotime import format_iso
from common.segments.period import UTC_ZONE, Period, add_period
from common.segments.segment import DataSegment
from common.segments.timeline import SegmentTimeline
from services.coordinator.compaction_config import DataSourceCompactionConfig

#: Druid's ``DynamicPartitionsSpec`` defaults when a compaction config names none.
DEFAULT_MAX_ROWS_PER_SEGMENT = 5_000_000
DEFAULT_MAX_TOTAL_ROWS = 20_000_000
COMPACT_TASK_PREFIX = "coordinator-issued"


@dataclass
class Candidate:
    interval: Interval
    segments: list[DataSegment]
    reason: str | None = None

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)


@dataclass
class Search:
    """Chunks to compact (newest first), already compacted, and skipped."""

    to_compact: list[Candidate] = field(default_factory=list)
    compacted: list[Candidate] = field(default_factory=list)
    skipped: list[Candidate] = field(default_factory=list)


def expected_partitions_spec(config: DataSourceCompactionConfig) -> dict[str, Any]:
    """Druid's ``findPartitionsSpecFromConfig``: the tuningConfig's, else dynamic defaults."""
    tuning = config.tuning_config or {}
    spec = tuning.get("partitionsSpec")
    if isinstance(spec, dict):
        return dict(spec)
    max_rows = config.max_rows_per_segment or tuning.get("maxRowsPerSegment")
    return {
        "type": "dynamic",
        "maxRowsPerSegment": max_rows or DEFAULT_MAX_ROWS_PER_SEGMENT,
        "maxTotalRows": tuning.get("maxTotalRows") or DEFAULT_MAX_TOTAL_ROWS,
    }


def _differs(expected: Any, actual: Any, what: str) -> str | None:
    if expected is not None and expected != actual:
        return f"{what} mismatch: required[{expected}], current[{actual}]"
    return None


def compaction_reason(
    segments: Sequence[DataSegment], config: DataSourceCompactionConfig
) -> str | None:
    """Why these segments need compaction, or None when they are compacted as configured."""
    states = [s.last_compaction_state for s in segments]
    if any(st is None for st in states):
        return "not compacted yet"
    first = states[0]
    assert first is not None
    if any(st != first for st in states[1:]):
        return "segments have different last compaction states"
    gran = first.get("granularitySpec") or {}
    want = config.granularity_spec
    checks = [
        _differs(expected_partitions_spec(config), first.get("partitionsSpec"), "partitionsSpec"),
        _differs(
            want.segment_granularity.to_json() if want and want.segment_granularity else None,
            gran.get("segmentGranularity"),
            "segmentGranularity",
        ),
        _differs(
            want.query_granularity.to_json() if want and want.query_granularity else None,
            gran.get("queryGranularity"),
            "queryGranularity",
        ),
        _differs(want.rollup if want else None, gran.get("rollup"), "rollup"),
        _differs(
            (config.dimensions_spec or {}).get("dimensions"),
            (first.get("dimensionsSpec") or {}).get("dimensions"),
            "dimensions",
        ),
        _differs(config.metrics_spec, first.get("metricsSpec"), "metricsSpec"),
        _differs(
            (config.transform_spec or {}).get("filter"),
            (first.get("transformSpec") or {}).get("filter"),
            "transformSpec filter",
        ),
    ]
    return next((c for c in checks if c is not None), None)


def time_chunks(
    segments: Iterable[DataSegment], config: DataSourceCompactionConfig
) -> dict[Interval, list[DataSegment]]:
    gran = config.granularity_spec.segment_granularity if config.granularity_spec else None
    chunks: dict[Interval, list[DataSegment]] = defaultdict(list)
    for s in segments:
        key = gran.bucket(s.interval.start) if gran is not None else s.interval
        chunks[key].append(s)
    return chunks


def search(used: Sequence[DataSegment], config: DataSourceCompactionConfig) -> Search:
    """Classify the datasource's time chunks (``used`` = its used segments)."""
    result = Search()
    timeline = SegmentTimeline.of(list(used))
    visible = [s for s in used if not timeline.is_segment_overshadowed(s) and not s.is_tombstone]
    if not visible:
        return result
    latest = max(s.interval.end for s in visible)
    skip_from = add_period(UTC_ZONE, latest, Period.parse(config.skip_offset_from_latest), -1)
    chunks = time_chunks(visible, config)
    for interval in sorted(chunks, key=lambda i: (i.end, i.start), reverse=True):
        segs = sorted(chunks[interval], key=lambda s: str(s.id))
        umbrella = Interval(
            min(interval.start, *(s.interval.start for s in segs)),
            max(interval.end, *(s.interval.end for s in segs)),
        )
        cand = Candidate(umbrella, segs)
        if umbrella.end > skip_from:
            cand.reason = (
                f"interval ends after skipOffsetFromLatest[{config.skip_offset_from_latest}]"
            )
            result.skipped.append(cand)
        elif cand.size > config.input_segment_size_bytes:
            cand.reason = (
                f"total segment size[{cand.size}] is larger than allowed "
                f"inputSegmentSizeBytes[{config.input_segment_size_bytes}]"
            )
            result.skipped.append(cand)
        else:
            cand.reason = compaction_reason(segs, config)
            (result.to_compact if cand.reason else result.compacted).append(cand)
    return result


def snapshot(data_source: str, found: Search, *, enabled: bool = True) -> dict[str, Any]:
    """Druid's ``AutoCompactionSnapshot`` JSON."""

    def figures(cands: list[Candidate], name: str) -> dict[str, int]:
        return {
            f"bytes{name}": sum(c.size for c in cands),
            f"segmentCount{name}": sum(len(c.segments) for c in cands),
            f"intervalCount{name}": len(cands),
        }

    return {
        "dataSource": data_source,
        "scheduleStatus": "RUNNING" if enabled else "NOT_ENABLED",
        "message": None,
        **figures(found.to_compact, "AwaitingCompaction"),
        **figures(found.compacted, "Compacted"),
        **figures(found.skipped, "Skipped"),
    }


def slots_per_task(config: DataSourceCompactionConfig) -> int:
    """Task slots one compact task takes: 1, plus its sub-tasks when it runs in parallel."""
    tuning = config.tuning_config or {}
    sub = tuning.get("maxNumConcurrentSubTasks")
    return 1 + int(sub) if isinstance(sub, int) and sub > 1 else 1


def compaction_slots(total_worker_capacity: int, ratio: float, max_slots: int) -> int:
    """Druid's ``getCompactionTaskCapacity``: at least one slot when there are workers."""
    by_ratio = max(1, int(total_worker_capacity * ratio)) if total_worker_capacity > 0 else 0
    return min(by_ratio, max_slots)


def compact_task(config: DataSourceCompactionConfig, cand: Candidate) -> dict[str, Any]:
    """The ``compact`` task the duty submits (Druid's ``ClientCompactionTaskQuery``)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    task_id = "_".join(
        (COMPACT_TASK_PREFIX, "compact", config.data_source, now, secrets.token_hex(4))
    )
    interval = f"{format_iso(cand.interval.start)}/{format_iso(cand.interval.end)}"
    tuning = dict(config.tuning_config or {})
    tuning["type"] = "index_parallel"
    tuning["partitionsSpec"] = expected_partitions_spec(config)
    task: dict[str, Any] = {
        "type": "compact",
        "id": task_id,
        "dataSource": config.data_source,
        "ioConfig": {
            "type": "compact",
            "inputSpec": {"type": "interval", "interval": interval},
            "dropExisting": bool(config.io_config and config.io_config.drop_existing),
        },
        "tuningConfig": tuning,
        "context": {**(config.task_context or {}), "priority": config.task_priority},
    }
    if config.granularity_spec is not None:
        task["granularitySpec"] = config.granularity_spec.model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
    for key, value in (
        ("dimensionsSpec", config.dimensions_spec),
        ("metricsSpec", config.metrics_spec),
        ("transformSpec", config.transform_spec),
        ("projections", config.projections),
    ):
        if value is not None:
            task[key] = value
    return task
