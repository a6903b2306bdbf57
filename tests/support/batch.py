"""A batch task run on its own: task actions answered in-process, local deep storage, no
overlord or peon (for tests and ``bench/batch.py --in-process``)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from common.ingest.batch_input.spec import parse_batch_task
from common.segments.deep_storage import DeepStorage
from common.segments.segment import DataSegment
from services.peon.batch_task import BatchDeps, BatchIndexTask

VERSION = "2024-02-01T00:00:00.000Z"


class LocalActions:
    """The overlord's answers to the actions an overwriting batch task submits: every lock is
    granted (one version), the publish is recorded."""

    def __init__(self) -> None:
        self.published: list[DataSegment] = []

    async def submit(self, action: dict[str, Any]) -> Any:
        if action["type"] == "timeChunkLockTryAcquire":
            return {"version": VERSION}
        if action["type"] == "segmentTransactionalInsert":
            self.published = [DataSegment.from_json(s) for s in action["segments"]]
            return {"success": True}
        raise AssertionError(f"unexpected action {action}")


def local_task(task: dict[str, Any], tmp: Path) -> tuple[BatchIndexTask, LocalActions]:
    """A runner for ``task`` (an ``index_parallel`` / ``index`` JSON with an ``id``)."""
    actions = LocalActions()
    deps = BatchDeps(
        actions=actions,  # type: ignore[arg-type]
        handoff=None,  # type: ignore[arg-type]
        deep_storage=DeepStorage("local", storage_directory=str(tmp / "deep")),
        overlord=None,  # type: ignore[arg-type]
        http=None,  # type: ignore[arg-type]
        self_url="",
    )
    spec = parse_batch_task(task)
    return BatchIndexTask(spec, tmp / "task", deps, logging.getLogger("batch")), actions


def run_local(task: dict[str, Any], tmp: Path) -> tuple[BatchIndexTask, list[DataSegment]]:
    """Run ``task`` to the end (it must succeed); the runner and the published segments."""
    runner, actions = local_task(task, tmp)
    status = asyncio.run(runner.run())
    assert status["status"] == "SUCCESS", status
    return runner, actions.published
