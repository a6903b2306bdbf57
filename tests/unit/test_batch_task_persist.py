"""A batch task with a small ``maxRowsInMemory`` persists while it reads, reports the persists, and
publishes the very segments (ids, columns, rows) a task holding everything in memory does.
The task runs on its own: task actions answered in-process, local deep storage."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from common.ingest.batch_input.spec import parse_batch_task
from common.segments.deep_storage import DeepStorage
from common.segments.format import read_parquet
from common.segments.segment import DataSegment
from services.peon.batch_task import BatchDeps, BatchIndexTask

T0 = 1_704_067_200_000
VERSION = "2024-02-01T00:00:00.000Z"


class Actions:
    """The overlord's answers to the actions an overwriting batch task submits."""

    def __init__(self) -> None:
        self.published: list[DataSegment] = []

    async def submit(self, action: dict[str, Any]) -> Any:
        if action["type"] == "timeChunkLockTryAcquire":
            return {"version": VERSION}
        if action["type"] == "segmentTransactionalInsert":
            self.published = [DataSegment.from_json(s) for s in action["segments"]]
            return {"success": True}
        raise AssertionError(f"unexpected action {action}")


def task(path: Path, tuning: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "index_parallel",
        "id": "persisting",
        "spec": {
            "dataSchema": {
                "dataSource": "wiki",
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["page"]},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "DAY",
                    "queryGranularity": "HOUR",
                    "rollup": True,
                },
            },
            "ioConfig": {
                "inputSource": {"type": "local", "files": [str(path)]},
                "inputFormat": {"type": "json"},
            },
            "tuningConfig": {
                "partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 4},
                **tuning,
            },
        },
    }


def run(tmp: Path, data: Path, tuning: dict[str, Any]) -> tuple[BatchIndexTask, list[Any]]:
    actions = Actions()
    deps = BatchDeps(
        actions=actions,  # type: ignore[arg-type]
        handoff=None,  # type: ignore[arg-type]
        deep_storage=DeepStorage("local", storage_directory=str(tmp / "deep")),
        overlord=None,  # type: ignore[arg-type]
        http=None,  # type: ignore[arg-type]
        self_url="",
    )
    spec = parse_batch_task(task(data, tuning))
    runner = BatchIndexTask(spec, tmp / "task", deps, logging.getLogger("test"))
    status = asyncio.run(runner.run())
    assert status["status"] == "SUCCESS", status
    segments = []
    for s in sorted(actions.published, key=lambda s: (s.interval.start, s.partition_num)):
        table, _ = read_parquet((s.load_spec or {})["path"])
        segments.append((str(s.id), s.dimensions, s.metrics, table.to_pylist()))
    return runner, segments


def test_small_max_rows_in_memory_persists_and_publishes_the_same_segments(
    tmp_path: Path,
) -> None:
    data = tmp_path / "rows.json"
    # 3 days, 5 pages: every key comes back every 15 rows, so rollup spans several persists
    lines = [
        json.dumps({"ts": T0 + (i % 3) * 86_400_000 + i * 1000, "page": f"p{i % 5}", "added": i})
        for i in range(90)
    ]
    data.write_text("\n".join(lines) + "\nnot json\n")

    spilled, segments = run(tmp_path / "a", data, {"maxRowsInMemory": 5})
    whole, expected = run(tmp_path / "b", data, {})

    assert whole.persists == 0
    assert spilled.persists >= 5
    payload = spilled.report()["ingestionStatsAndErrors"]["payload"]
    assert payload["persists"] == spilled.persists
    assert payload["rowStats"]["buildSegments"]["processed"] == 90
    assert payload["rowStats"]["buildSegments"]["unparseable"] == 1
    assert segments == expected
    rows = [r for _, _, _, table in segments for r in table]
    assert len(rows) == 15  # 3 days x 5 pages, one hour each
    assert sum(r["count"] for r in rows) == 90
    assert sum(r["added"] for r in rows) == sum(range(90))
    assert not (tmp_path / "a" / "task" / "persist").exists()  # spill files removed
