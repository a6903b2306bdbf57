"""Chat endpoints of a parallel ``index_parallel`` supervisor task, called by its sub-tasks
(Druid's ``ParallelIndexSupervisorTask`` chat handler): ``POST segment/allocate`` hands out a
segment id, ``POST report`` takes a sub-task's pushed segments and row counters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from common.auth.declare import INTERNAL
from common.errors import InvalidInput, NotFound
from services.peon.batch_parallel import ParallelRun
from services.peon.batch_task import BatchIndexTask

CHAT_PREFIX = "/druid/worker/v1/chat/{task_id}"


def batch_chat_router(get_task: Callable[[str], BatchIndexTask | None]) -> APIRouter:
    router = APIRouter(prefix=CHAT_PREFIX, tags=["chat"])

    def parallel(task_id: str) -> ParallelRun:
        t = get_task(task_id)
        if t is None or t.parallel is None:
            raise NotFound(f"Can't find chatHandler for handler[{task_id}]")
        return t.parallel

    async def body(request: Request) -> Any:
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"body is not JSON: {e}") from None

    @router.post("/segment/allocate", dependencies=[INTERNAL])
    async def allocate(task_id: str, request: Request) -> dict[str, Any]:
        return await parallel(task_id).allocate(await body(request))

    @router.post("/report", dependencies=[INTERNAL])
    async def report(task_id: str, request: Request) -> Response:
        parallel(task_id).report(await body(request))
        return Response(status_code=200)

    return router
