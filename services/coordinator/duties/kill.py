"""Druid's ``KillUnusedSegments`` duty as pure decisions (the loop is ``kill_loop.py``).

Per datasource, the interval to kill is the umbrella of the intervals of at most ``maxSegments``
unused segments that end no later than ``now - durationToRetain`` (no bound with
``ignoreDurationToRetain``), start no earlier than the end of the last interval killed for that
datasource, and were marked unused at least ``bufferPeriod`` ago. The kill task gets
``maxUsedStatusLastUpdatedTime = now - bufferPeriod`` and ``limit = maxSegments`` so that it does
not kill, inside that umbrella, a segment marked unused more recently.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from common.metadata.segments import SegmentRow
from common.metadata.unused import umbrella, unused_intervals_for_kill
from common.segments.intervals import Interval
from common.segments.isotime import format_iso

#: Druid's ``KillUnusedSegments.TASK_ID_PREFIX``; the REST API's kill uses ``api-issued``.
COORDINATOR_ISSUED = "coordinator-issued"
API_ISSUED = "api-issued"
#: Druid's ``DateTimes.COMPARE_DATE_AS_STRING_MAX``: no upper bound.
NO_END = 253402300799999  # 9999-12-31T23:59:59.999Z


@dataclass(frozen=True)
class KillConfig:
    """``druid.coordinator.kill.*`` with durations in milliseconds."""

    period: int
    duration_to_retain: int
    ignore_duration_to_retain: bool
    buffer_period: int
    max_segments: int


def interval_to_kill(
    rows: Iterable[SegmentRow], cfg: KillConfig, now: int, last_end: int | None
) -> Interval | None:
    """The umbrella interval of a datasource's killable unused segments, or None."""
    max_end = NO_END if cfg.ignore_duration_to_retain else now - cfg.duration_to_retain
    intervals = unused_intervals_for_kill(
        rows,
        min_start=last_end,
        max_end=max_end,
        limit=cfg.max_segments,
        max_used_status_last_updated=now - cfg.buffer_period,
    )
    return umbrella(intervals) if intervals else None


def new_task_id(prefix: str, data_source: str, interval: Interval) -> str:
    """Druid's ``IdUtils.newTaskId(prefix, "kill", dataSource, interval)``."""
    suffix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))
    return "_".join(
        (prefix, "kill", data_source, format_iso(interval.start), format_iso(interval.end), suffix)
    )


def kill_task(
    prefix: str,
    data_source: str,
    interval: Interval,
    *,
    limit: int | None = None,
    max_used_status_last_updated: int | None = None,
    versions: list[str] | None = None,
) -> dict[str, Any]:
    """The kill task the coordinator submits (Druid's ``OverlordClient.runKillTask``)."""
    task: dict[str, Any] = {
        "type": "kill",
        "id": new_task_id(prefix, data_source, interval),
        "dataSource": data_source,
        "interval": f"{format_iso(interval.start)}/{format_iso(interval.end)}",
    }
    if versions is not None:
        task["versions"] = versions
    if limit is not None:
        task["limit"] = limit
    if max_used_status_last_updated is not None:
        task["maxUsedStatusLastUpdatedTime"] = format_iso(max_used_status_last_updated)
    return task


def due(last_run: int | None, now: int, period: int) -> bool:
    """Druid's ``canDutyRun``: first time, or ``period`` after the last run."""
    return last_run is None or now >= last_run + period
