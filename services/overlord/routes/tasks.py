"""The task API of the overlord leader (Druid's ``OverlordResource``, druid-internals 4.10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import APIRouter, Body, Query, Request
from starlette.responses import PlainTextResponse, Response

from common.auth.declare import (
    INTERNAL,
    SELF,
    STATE,
    STATE_READ,
    authorize_datasources,
    datasource_param,
    spec_datasources,
)
from common.auth.model import Action
from common.config import JAVA_INT_MAX
from common.errors import InvalidInput, NotFound
from common.ids import url_id
from common.jsonresp import OrjsonResponse
from common.metadata import iso_millis
from common.segments.errors import InvalidTime
from common.segments.intervals import Interval
from services.overlord.service import OverlordService
from services.overlord.tasks.model import Location, TaskInfo

PREFIX = "/druid/indexer/v1"
STATES = ("pending", "waiting", "running", "complete")
#: Druid's druid.indexer.storage.recentlyFinishedThreshold: completed tasks listed by default.
RECENTLY_FINISHED = timedelta(hours=24)


def _runner_bucket(info: TaskInfo) -> str:
    return {"PENDING": "pending", "WAITING": "waiting", "RUNNING": "running"}.get(
        info.runner_state, "pending"
    )


#: Druid's ``max``/``n`` are Java ints: larger values are refused, not passed to the database.


def tasks_router(service: OverlordService) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["tasks"])

    async def _body(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError as exc:
            raise InvalidInput(f"Request body is not valid JSON: {exc}") from None

    @router.post("/task", dependencies=[SELF])
    async def submit(request: Request) -> dict[str, str]:
        body = await _body(request)
        authorize_datasources(request, spec_datasources(body), Action.WRITE)
        task_id = await service.task_queue.submit(body)
        return {"task": task_id}

    @router.get("/task/{task_id}", dependencies=[STATE])
    async def get_task(task_id: str) -> dict[str, Any]:
        info = await service.task_queue.task_info(task_id)
        if info is None:
            raise NotFound(f"Cannot find any task with id: [{task_id}]")
        return {"task": task_id, "payload": info.payload}

    @router.get("/task/{task_id}/status", dependencies=[STATE])
    async def task_status(task_id: str) -> OrjsonResponse:
        info = await service.task_queue.task_info(task_id)
        if info is None:
            return OrjsonResponse({"task": task_id, "status": None}, status_code=404)
        return OrjsonResponse({"task": task_id, "status": info.status_plus()})

    @router.post("/task/{task_id}/shutdown", dependencies=[STATE])
    async def shutdown(task_id: str) -> dict[str, str]:
        queue = service.task_queue
        if not await queue.shutdown(task_id, "Shutdown request from user"):
            if await queue.task_info(task_id) is None:
                raise NotFound(f"Cannot find any task with id: [{task_id}]")
        return {"task": task_id}

    @router.post(
        "/datasources/{datasource}/shutdownAllTasks", dependencies=[datasource_param("datasource")]
    )
    async def shutdown_all(datasource: str) -> dict[str, str]:
        queue = service.task_queue
        for info in queue.active_tasks(datasource):
            await queue.shutdown(info.id, "Shutdown request from user")
        return {"dataSource": datasource}

    @router.post("/taskStatus", dependencies=[STATE_READ])
    async def task_statuses(ids: list[str] = Body(...)) -> dict[str, Any]:  # noqa: B008
        queue = service.task_queue
        result: dict[str, Any] = {}
        for task_id in ids:
            status = await queue.status(task_id)
            if status is not None:
                result[task_id] = status
        return result

    @router.get("/task/{task_id}/reports", dependencies=[STATE])
    async def reports(task_id: str) -> Any:
        report = await service.task_queue.reports(task_id)
        if report is None:
            raise NotFound(f"No task reports were found for this task: [{task_id}]")
        return report

    @router.get("/task/{task_id}/log", dependencies=[STATE])
    async def task_log(task_id: str, offset: int = 0) -> Response:
        # Completed tasks too: their peon keeps the log, and the stored status says where.
        info = await service.task_queue.task_info(task_id)
        location = None
        if info is not None:
            location = info.location if info.location.host else None
            location = location or Location.from_json(info.status.get("location"))
        if location is None or not location.host:
            raise NotFound(f"No log was found for this task: [{task_id}]")
        url = f"{location.base_url}/druid/worker/v1/task/{url_id(task_id)}/log"
        async with service.security.clients.new(timeout=30.0) as client:
            try:
                resp = await client.get(url, params={"offset": offset})
            except httpx.HTTPError as exc:
                raise NotFound(f"No log was found for this task: [{task_id}] ({exc})") from None
        if resp.status_code != 200:
            raise NotFound(f"No log was found for this task: [{task_id}]")
        return PlainTextResponse(resp.text)

    async def _list(
        state: str | None,
        datasource: str | None,
        task_type: str | None,
        max_n: int | None,
        created_interval: str | None,
    ) -> list[dict[str, Any]]:
        if state is not None and state.lower() not in STATES:
            raise InvalidInput(f"Invalid state : {state}, valid values are: {list(STATES)}")
        if max_n is not None and max_n < 0:
            raise InvalidInput("max must be >= 0")
        wanted = state.lower() if state else None
        queue = service.task_queue
        active = [
            t
            for t in queue.active_tasks(datasource)
            if task_type in (None, t.type) and wanted in (None, _runner_bucket(t))
        ]
        active.sort(key=lambda t: (t.created_time, t.id), reverse=True)
        result = [t.status_plus() for t in active]
        if wanted in (None, "complete"):
            after = iso_millis(datetime.now(UTC) - RECENTLY_FINISHED)
            if created_interval:
                try:
                    after = iso_millis(
                        # Druid's delimiter here is '_' ("2023-06-27_2023-06-28"); '/' works too.
                        datetime.fromtimestamp(
                            Interval.parse(created_interval.replace("_", "/")).start / 1000, UTC
                        )
                    )
                except (InvalidTime, ValueError, OverflowError) as exc:
                    raise InvalidInput(f"Invalid createdTimeInterval: {exc}") from None
            rows = await queue.store.list_tasks(
                active=False,
                datasource=datasource,
                task_type=task_type,
                created_after=after,
                limit=max_n,
            )
            for row in rows:
                info = TaskInfo.from_payload(row.payload, row.status, row.created_date)
                result.append(info.status_plus())
        return result[:max_n] if max_n is not None else result

    @router.get("/tasks", dependencies=[STATE])
    async def tasks(
        state: str | None = None,
        datasource: str | None = None,
        type: str | None = None,
        max: int | None = Query(default=None, ge=0, le=JAVA_INT_MAX),
        createdTimeInterval: str | None = None,
    ) -> list[dict[str, Any]]:
        return await _list(state, datasource, type, max, createdTimeInterval)

    @router.get("/runningTasks", dependencies=[STATE])
    async def running(type: str | None = None) -> list[dict[str, Any]]:
        return await _list("running", None, type, None, None)

    @router.get("/pendingTasks", dependencies=[STATE])
    async def pending(type: str | None = None) -> list[dict[str, Any]]:
        return await _list("pending", None, type, None, None)

    @router.get("/waitingTasks", dependencies=[STATE])
    async def waiting(type: str | None = None) -> list[dict[str, Any]]:
        return await _list("waiting", None, type, None, None)

    @router.get("/completeTasks", dependencies=[STATE])
    async def complete(
        n: int | None = Query(default=None, ge=0, le=JAVA_INT_MAX),
    ) -> list[dict[str, Any]]:
        return await _list("complete", None, None, n, None)

    @router.delete("/pendingSegments/{datasource}", dependencies=[datasource_param("datasource")])
    async def delete_pending(datasource: str, interval: str | None = None) -> dict[str, int]:
        parsed = None
        if interval is not None:
            try:
                parsed = Interval.parse(interval)
            except InvalidTime as exc:
                raise InvalidInput(str(exc)) from None
        _ = service.task_queue  # leader only: 503 elsewhere
        return {"numDeleted": await service.store.delete_pending_segments(datasource, parsed)}

    @router.post("/action", dependencies=[INTERNAL])
    async def action(request: Request) -> dict[str, Any]:
        return {"result": await service.actions.perform(await _body(request))}

    return router
