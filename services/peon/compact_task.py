"""Resolve a ``compact`` task into the ``index_parallel`` task that runs it (the I/O half of
``common.ingest.batch_input.compact``): the used segments of the interval from the overlord, the
visible ones by the timeline, and the metric column types from one segment file per metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common.ingest.batch_input.compact import CompactSpec, Plan, plan
from common.segments.deep_storage import DeepStorage
from common.segments.format import COMPLEX_TYPE_KEY
from common.segments.segment import DataSegment
from common.segments.timeline import SegmentTimeline
from services.peon.clients import TaskActionClient


def _kind(field: pa.Field) -> str:
    if pa.types.is_integer(field.type):
        return "long"
    if pa.types.is_floating(field.type):
        return "double"
    meta = field.metadata or {}
    return meta.get(COMPLEX_TYPE_KEY, b"").decode() or str(field.type)


async def visible_segments(actions: TaskActionClient, spec: CompactSpec) -> list[DataSegment]:
    used = await actions.submit(
        {
            "type": "segmentListUsed",
            "dataSource": spec.data_source,
            "intervals": [str(spec.interval)],
        }
    )
    timeline = SegmentTimeline.of(DataSegment.from_json(s) for s in used or [])
    out: list[DataSegment] = []
    for holder in timeline.lookup(spec.interval, skip_objects_with_no_data=True):
        out.extend(s for s in holder.objects if not s.is_tombstone)
    return out


def metric_types(
    segments: list[DataSegment], storage: DeepStorage, work_dir: Path
) -> dict[str, str]:
    """Metric name -> ``long`` / ``double`` / complex type, newest segment first."""
    out: dict[str, str] = {}
    work_dir.mkdir(parents=True, exist_ok=True)
    for seg in sorted(segments, key=lambda s: (s.interval.end, s.version), reverse=True):
        missing = [m for m in seg.metrics if m not in out]
        if not missing:
            continue
        path = work_dir / f"{seg.id}.parquet"
        storage.pull(seg.load_spec or {}, path)
        try:
            schema = pq.read_schema(path)
        finally:
            path.unlink(missing_ok=True)
        for m in missing:
            if m in schema.names:
                out[m] = _kind(schema.field(m))
    return out


async def resolve(
    spec: CompactSpec, actions: TaskActionClient, storage: DeepStorage, task_dir: Path
) -> Plan:
    visible = await visible_segments(actions, spec)
    types: dict[str, Any] = {}
    if spec.metrics_spec is None and visible:
        types = metric_types(visible, storage, task_dir / "compact-schema")
    return plan(spec, visible, types)
