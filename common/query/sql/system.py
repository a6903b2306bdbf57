"""Rows of Druid's ``sys`` tables from what the cluster reports (pure).

The broker gathers the inputs (the coordinator's used segments, its own view of who serves what,
discovery, the overlord's task and supervisor lists) and these functions turn them into rows keyed
by Druid's column names (``catalog.SYSTEM_TABLES``), with Druid's conventions: booleans as 0/1,
JSON columns as JSON text, -1 for an unknown replication factor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from common.segments.isotime import format_iso
from common.segments.segment import DataSegment
from common.segments.timeline import SegmentTimeline

#: Druid's ``NodeRole`` JSON names, as sys.servers prints them.
SERVER_TYPES = {"middleManager": "middle_manager"}
REALTIME_TYPES = ("indexer-executor", "realtime")


@dataclass(frozen=True)
class Served:
    """A segment the broker sees, and the (server, server type) pairs serving it."""

    segment: DataSegment
    servers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ServerInfo:
    """One discovered node; the data-node fields are None for other roles."""

    host: str
    plaintext_port: int
    tls_port: int
    role: str
    start_time: str | None
    tier: str | None = None
    curr_size: int | None = None
    max_size: int | None = None
    is_leader: bool | None = None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def segment_rows(
    published: Iterable[DataSegment], served: Iterable[Served]
) -> list[dict[str, Any]]:
    """``sys.segments``: every used segment, then served segments not (yet) published."""
    pub = {s.identifier: s for s in published}
    by_id = {s.segment.identifier: s for s in served}
    timelines: dict[str, SegmentTimeline] = {}
    for s in pub.values():
        timelines.setdefault(s.data_source, SegmentTimeline()).add_segment(s)
    rows: list[dict[str, Any]] = []
    for sid in sorted(pub.keys() | by_id.keys()):
        seg = pub[sid] if sid in pub else by_id[sid].segment
        servers = by_id[sid].servers if sid in by_id else ()
        is_published = sid in pub
        overshadowed = is_published and timelines[seg.data_source].is_segment_overshadowed(seg)
        realtime = bool(servers) and all(t in REALTIME_TYPES for _, t in servers)
        rows.append(
            {
                "segment_id": sid,
                "datasource": seg.data_source,
                "start": format_iso(seg.interval.start),
                "end": format_iso(seg.interval.end),
                "size": seg.size,
                "version": seg.version,
                "partition_num": seg.partition_num,
                "num_replicas": len(servers),
                "num_rows": None,
                "is_active": int((is_published and not overshadowed) or realtime),
                "is_published": int(is_published),
                "is_available": int(bool(servers)),
                "is_realtime": int(realtime),
                "is_overshadowed": int(overshadowed),
                "shard_spec": _json(seg.to_json().get("shardSpec")),
                "dimensions": _json(list(seg.dimensions)),
                "metrics": _json(list(seg.metrics)),
                "last_compaction_state": None,
                "replication_factor": -1,
            }
        )
    return rows


def server_segment_rows(servers: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """``sys.server_segments``: one row per (server, segment id) pair."""
    return [
        {"server": server, "segment_id": sid}
        for server in sorted(servers)
        for sid in sorted(servers[server])
    ]


def server_rows(servers: Iterable[ServerInfo]) -> list[dict[str, Any]]:
    """``sys.servers``: every discovered node."""
    rows = []
    for s in sorted(servers, key=lambda s: (s.role, s.host, s.plaintext_port)):
        rows.append(
            {
                "server": f"{s.host}:{s.plaintext_port}",
                "host": s.host,
                "plaintext_port": s.plaintext_port,
                "tls_port": s.tls_port,
                "server_type": SERVER_TYPES.get(s.role, s.role),
                "tier": s.tier,
                "curr_size": s.curr_size,
                "max_size": s.max_size,
                "is_leader": None if s.is_leader is None else int(s.is_leader),
                "start_time": s.start_time,
            }
        )
    return rows


def task_rows(tasks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``sys.tasks`` from the overlord's ``TaskStatusPlus`` list."""
    rows = []
    for t in tasks:
        loc = t.get("location") or {}
        rows.append(
            {
                "task_id": t.get("id"),
                "group_id": t.get("groupId"),
                "type": t.get("type"),
                "datasource": t.get("dataSource"),
                "created_time": t.get("createdTime"),
                "queue_insertion_time": t.get("queueInsertionTime"),
                "status": t.get("statusCode") or t.get("status"),
                "runner_status": t.get("runnerStatusCode"),
                "duration": t.get("duration"),
                "location": f"{loc['host']}:{loc.get('port', -1)}" if loc.get("host") else None,
                "host": loc.get("host"),
                "plaintext_port": loc.get("port", -1) if loc.get("host") else -1,
                "tls_port": loc.get("tlsPort", -1) if loc.get("host") else -1,
                "error_msg": t.get("errorMsg"),
            }
        )
    return rows


def supervisor_rows(supervisors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``sys.supervisors`` from the overlord's ``GET /druid/indexer/v1/supervisor?full``."""
    rows = []
    for s in supervisors:
        spec = s.get("spec")
        rows.append(
            {
                "supervisor_id": s.get("id"),
                "state": s.get("state"),
                "detailed_state": s.get("detailedState"),
                "healthy": int(bool(s.get("healthy"))),
                "type": s.get("type"),
                "source": s.get("source"),
                "suspended": int(bool(s.get("suspended"))),
                "spec": _json(spec) if spec is not None else None,
            }
        )
    return rows
