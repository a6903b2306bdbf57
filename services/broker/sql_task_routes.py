"""``POST /druid/v2/sql/task``: SQL ingestion (``INSERT`` / ``REPLACE``) on the broker.

The statement is planned onto an ``index_parallel`` task (``common.query.sql.ingest``) and
submitted to the overlord leader (WRITE on the target datasource is required; the broker's own
escalated client submits it); the answer is Druid's MSQ one, ``{"taskId", "state":
"RUNNING"}``, and the task is then followed at ``/druid/indexer/v1/task/{taskId}/status`` as
any other. What cannot be planned is a 400 in Druid's error shape before anything is submitted.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request

from common.auth.declare import SELF, authorize_datasources
from common.auth.model import Action
from common.errors import InvalidInput, QueryParseError, ServiceUnavailable
from common.jsonresp import OrjsonResponse
from common.query.sql.ingest import plan_ingest
from services.broker.service import BrokerService

TASK_PATH = "/druid/indexer/v1/task"
SUBMIT_TIMEOUT_S = 30.0


def sql_task_router(service: BrokerService) -> APIRouter:
    router = APIRouter(tags=["sql"])

    async def submit(task: dict[str, Any]) -> httpx.Response:
        errors: list[str] = []
        for node in service.provider.get_for_node_role("overlord").get_all_nodes():
            try:
                resp = await service.http.post(
                    node.url + TASK_PATH,
                    json=task,
                    timeout=SUBMIT_TIMEOUT_S,
                    follow_redirects=True,
                )
            except httpx.HTTPError as exc:
                errors.append(f"{node.url}: {exc!r}")
                continue
            if resp.status_code == 503:
                errors.append(f"{node.url}: HTTP 503")
                continue
            return resp
        raise ServiceUnavailable(
            "No overlord accepted the task" + (f" ({'; '.join(errors)})" if errors else "")
        )

    @router.post("/druid/v2/sql/task", dependencies=[SELF])
    async def sql_task(request: Request) -> OrjsonResponse:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise QueryParseError(f"Malformed JSON: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise QueryParseError("Request must be an object with a 'query' string")
        if body.get("parameters"):
            raise InvalidInput("Parameters are not supported by SQL ingestion here")
        context = body.get("context") or {}
        if not isinstance(context, dict):
            raise QueryParseError("'context' must be an object")
        task_id = f"query-{uuid.uuid4()}"
        task = plan_ingest(body["query"], task_id, context)
        # Druid's MSQ asks WRITE on the target datasource (the broker submits as itself).
        authorize_datasources(request, [task["spec"]["dataSchema"]["dataSource"]], Action.WRITE)
        resp = await submit(task)
        if resp.status_code != 200:
            # The overlord's own error JSON (a bad inputSource or inputFormat, say) goes back.
            return OrjsonResponse(resp.json(), status_code=resp.status_code)
        return OrjsonResponse({"taskId": task_id, "state": "RUNNING"})

    return router
