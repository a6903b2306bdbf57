"""A batch task with a small ``maxRowsInMemory`` persists while it reads, reports the persists, and
publishes the very segments (ids, columns, rows) a task holding everything in memory does.
The task runs on its own (``tests.support.batch``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.config import load_settings
from common.segments.format import read_parquet
from services.peon.batch_task import BatchIndexTask
from services.peon.service import PeonService
from tests.support.batch import run_local

T0 = 1_704_067_200_000


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
    runner, published = run_local(task(data, tuning), tmp)
    segments = []
    for s in sorted(published, key=lambda s: (s.interval.start, s.partition_num)):
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

    # While a batch task runs, the peon's /metrics carry its row counters and persists
    settings = load_settings("peon", properties={"druid.indexer.task.baseTaskDir": str(tmp_path)})
    peon = PeonService(settings)
    peon.batch_runners[spilled.spec.id] = spilled
    text = peon.metrics.render().decode()
    labels = 'dataSource="wiki",'
    persists = [ln for ln in text.splitlines() if ln.startswith("druid_ingest_persists_count{")]
    assert len(persists) == 1 and labels in persists[0] and 'taskId="persisting"' in persists[0]
    assert float(persists[0].rsplit(" ", 1)[1]) == spilled.persists
    assert "druid_ingest_events_processed{" in text
    assert "druid_ingest_handoff_count{" not in text  # a batch task hands nothing off
