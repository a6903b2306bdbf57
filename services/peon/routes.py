"""The peon's HTTP endpoints: worker management (druid-internals 3.6) and task chat (4.1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.responses import Response

from common.auth.declare import INTERNAL, STATE
from common.errors import InvalidInput, NotFound
from common.ingest.sequences import checkpoints_view
from common.jsonresp import OrjsonResponse
from common.longpoll import add_longpoll_route
from services.peon.runner import KafkaIndexTaskRunner
from services.peon.worker import WorkerTaskManager

WORKER_PATH = "/druid-internal/v1/worker"
CHAT_PREFIX = "/druid/worker/v1/chat/{task_id}"


def worker_router(
    manager: Callable[[], WorkerTaskManager], validate: Callable[[dict[str, Any]], None], host: str
) -> APIRouter:
    router = APIRouter(tags=["worker"])
    m = manager

    add_longpoll_route(
        router,
        WORKER_PATH,
        m().history,
        lambda: m().snapshot(),
        host=host,
        name="worker_sync",
        dependencies=[INTERNAL],
    )

    @router.post(f"{WORKER_PATH}/assignTask", dependencies=[INTERNAL])
    async def assign_task(request: Request) -> Response:
        try:
            task = orjson.loads(await request.body())
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"task is not JSON: {e}") from None
        if not isinstance(task, dict) or not task.get("id"):
            raise InvalidInput("task must be a JSON object with an id")
        if str(task["id"]) not in m().task_ids():
            validate(task)
        m().assign(task)
        return Response(status_code=200)

    @router.post("/druid/worker/v1/disable", dependencies=[INTERNAL])
    async def disable() -> dict[str, str]:
        m().set_disabled(True)
        return {host: "disabled"}

    @router.post("/druid/worker/v1/enable", dependencies=[INTERNAL])
    async def enable() -> dict[str, str]:
        m().set_disabled(False)
        return {host: "enabled"}

    @router.get("/druid/worker/v1/enabled", dependencies=[STATE])
    async def enabled() -> dict[str, bool]:
        return {host: not m().disabled}

    @router.get("/druid/worker/v1/tasks", dependencies=[STATE])
    async def tasks() -> list[str]:
        return m().task_ids()

    @router.post("/druid/worker/v1/task/{task_id}/shutdown", dependencies=[INTERNAL])
    async def shutdown(task_id: str) -> dict[str, str]:
        if not m().shutdown(task_id) and task_id not in m().completed:
            raise NotFound(f"task [{task_id}] is not running here")
        return {"task": task_id}

    @router.get("/druid/worker/v1/task/{task_id}/log", dependencies=[STATE])
    async def task_log(task_id: str, offset: int = 0) -> Response:
        data = m().read_log(task_id, offset)
        if data is None:
            raise NotFound(
                f"No log was found for this task. The task may not exist, or it may "
                f"not have begun running yet. [{task_id}]"
            )
        return Response(data, media_type="text/plain")

    return router


def chat_router(
    get_task: Callable[[str], KafkaIndexTaskRunner | None],
    batch_report: Callable[[str], dict[str, Any] | None] = lambda _: None,
) -> APIRouter:
    """``/druid/worker/v1/chat/{taskId}/...`` answered by the task's ``TaskControl``; batch
    tasks answer ``liveReports`` only (``batch_report``)."""
    router = APIRouter(prefix=CHAT_PREFIX, tags=["chat"])

    def task(task_id: str, request: Request) -> KafkaIndexTaskRunner:
        header = request.headers.get("X-Druid-Task-Id")
        if header is not None:
            header = unquote(header)  # percent-encoded by the sender (headers are ASCII)
        if header is not None and header != task_id:
            raise InvalidInput(f"Requested taskId[{task_id}] doesn't match with taskId[{header}]")
        t = get_task(task_id)
        if t is None:
            raise NotFound(f"Can't find chatHandler for handler[{task_id}]")
        return t

    def text(code: int, body: str) -> Response:
        return PlainTextResponse(body, status_code=code)

    @router.get("/status", dependencies=[INTERNAL])
    async def status(task_id: str, request: Request) -> str:
        return str(task(task_id, request).status.value)

    @router.post("/pause", dependencies=[INTERNAL])
    async def pause(task_id: str, request: Request) -> Response:
        code, body = await task(task_id, request).pause()
        return OrjsonResponse(body, status_code=code) if code == 200 else text(code, body)

    @router.post("/resume", dependencies=[INTERNAL])
    async def resume(task_id: str, request: Request) -> Response:
        await task(task_id, request).resume()
        return Response(status_code=200)

    @router.get("/offsets/current", dependencies=[INTERNAL])
    async def current(task_id: str, request: Request) -> dict[str, int]:
        t = task(task_id, request)
        return dict(t.offsets_json(t.current_offsets))

    @router.get("/offsets/end", dependencies=[INTERNAL])
    async def end(task_id: str, request: Request) -> dict[str, int]:
        t = task(task_id, request)
        return dict(t.offsets_json(t.end_offsets()))

    @router.post("/offsets/end", dependencies=[INTERNAL])
    async def set_end(task_id: str, request: Request, finish: bool = True) -> Response:
        t = task(task_id, request)
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return text(400, "Request body must contain a map of { partition:endOffset }")
        code, result = await t.set_end_offsets(body, finish)
        return OrjsonResponse(result, status_code=code) if code == 200 else text(code, result)

    @router.get("/checkpoints", dependencies=[INTERNAL])
    async def checkpoints(task_id: str, request: Request) -> dict[str, Any]:
        return checkpoints_view(task(task_id, request).sequences)

    @router.get("/time/start", dependencies=[INTERNAL])
    async def start_time(task_id: str, request: Request) -> str:
        started = task(task_id, request).start_time
        return started.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    @router.get("/rowStats", dependencies=[INTERNAL])
    async def row_stats(task_id: str, request: Request) -> dict[str, Any]:
        t = task(task_id, request)
        return t.meters.row_stats(time.monotonic())

    @router.get("/unparseableEvents", dependencies=[INTERNAL])
    async def unparseable(task_id: str, request: Request) -> dict[str, Any]:
        return dict(task(task_id, request).handler.unparseable_events())

    @router.get("/liveReports", dependencies=[INTERNAL])
    async def live_reports(task_id: str, request: Request) -> dict[str, Any]:
        report = batch_report(task_id)
        if report is not None:
            return report
        t = task(task_id, request)
        return {
            "ingestionStatsAndErrors": {
                "taskId": task_id,
                "type": "ingestionStatsAndErrors",
                "payload": {
                    "ingestionState": t.ingestion_state,
                    "unparseableEvents": t.handler.unparseable_events(),
                    "rowStats": t.meters.row_stats(time.monotonic()),
                    "errorMsg": t.error,
                },
            }
        }

    @router.post("/stop", dependencies=[INTERNAL])
    async def stop(task_id: str, request: Request, publish: bool = False) -> Response:
        await task(task_id, request).stop(publish)
        return Response(status_code=200)

    return router
