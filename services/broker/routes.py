"""The broker's HTTP API: ``/druid/v2`` native queries, their cancellation, and readiness.

``POST /druid/v2`` parses the query, waits for capacity (429 beyond the queue), then runs
scatter-gather, merge and finalize under the query's timeout (504) as a cancellable task (500
``Query cancelled``), and answers Druid's result JSON with ``X-Druid-Query-Id`` and
``X-Druid-Response-Context`` (``missingSegments`` when some segments could not be read).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request, Response

from common.auth.declare import SELF, STATE, authorize_datasources
from common.errors import QueryCancelled, QueryTimeout
from common.ids import header_value, url_id
from common.jsonresp import dumps
from common.lookups.datasource import inline_lookups
from common.query import finalize, finalize_json, parse_query
from common.query.datanode import INLINE_MERGE_ROWS, descriptor_json
from common.query.http import QUERY_ID_HEADER, RESPONSE_CONTEXT_HEADER
from common.query.javatext import druid_json
from common.query.lifecycle import query_timeout_s
from common.query.local import subquery_of, window_result
from common.query.models import Query, WindowOperatorQuery
from services.broker.plan import scatter_gather_limit
from services.broker.service import BrokerService

log = logging.getLogger(__name__)


async def execute(service: BrokerService, query: Query, timeout_s: float | None) -> Response:
    """Scatter-gather, merge and finalize ``query``; the JSON response."""
    if isinstance(query, WindowOperatorQuery):
        return await execute_window(service, query, timeout_s)
    limit = scatter_gather_limit(
        service.max_scatter_gather_bytes,
        (query.context.model_extra or {}).get("maxScatterGatherBytes"),
    )
    gathered = await service.scatter.gather(query, max_bytes=limit, timeout_s=timeout_s)

    def render() -> bytes:
        return finalize_json(query, gathered.merged(query))

    # Merge, finalize and encode in one step: inline when small (a thread hop costs more than
    # the work), else in one worker thread so the event loop stays free.
    body = render() if gathered.rows <= INLINE_MERGE_ROWS else await asyncio.to_thread(render)
    context: dict[str, Any] = {}
    if gathered.missing:
        context["missingSegments"] = [descriptor_json(d) for d in gathered.missing]
    return Response(
        body,
        media_type="application/json",
        headers={
            QUERY_ID_HEADER: header_value(query.query_id),
            RESPONSE_CONTEXT_HEADER: dumps(context).decode(),
        },
    )


async def execute_window(
    service: BrokerService, query: WindowOperatorQuery, timeout_s: float | None
) -> Response:
    """A ``windowOperator`` query: the inner query (or inline rows) runs as usual, the window
    operators run here on its rows (``common.query.operators``)."""
    inner = subquery_of(query)
    missing: list[Any] = []
    rows: list[dict[str, Any]] | None = None
    if inner is not None:
        limit = scatter_gather_limit(
            service.max_scatter_gather_bytes,
            (query.context.model_extra or {}).get("maxScatterGatherBytes"),
        )
        got = await service.scatter.gather(inner, max_bytes=limit, timeout_s=timeout_s)
        missing = got.missing
        rows = finalize(inner, got.merged(inner))

    def render() -> bytes:
        return druid_json(window_result(query, rows))

    body = await asyncio.to_thread(render)
    context: dict[str, Any] = {}
    if missing:
        context["missingSegments"] = [descriptor_json(d) for d in missing]
    return Response(
        body,
        media_type="application/json",
        headers={
            QUERY_ID_HEADER: header_value(query.query_id),
            RESPONSE_CONTEXT_HEADER: dumps(context).decode(),
        },
    )


def _decoded(body: bytes) -> Any:
    """The JSON body decoded, or as is when malformed (``parse_query`` reports that)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body


def query_router(service: BrokerService) -> APIRouter:
    router = APIRouter(tags=["query"])
    http = service.settings.server_http

    async def post_query(request: Request) -> Response:
        started = time.perf_counter()
        data_source, query_type, outcome = "", "", "failed"
        try:
            async with service.limiter:
                raw = _decoded(await request.body())
                query = parse_query(inline_lookups(raw, service.lookups.get))
                authorize_datasources(request, [query.dataSource])
                data_source, query_type = query.dataSource, query.queryType
                timeout = query_timeout_s(query, http.default_query_timeout, http.max_query_timeout)
                response = await service.running.run(
                    query.query_id, execute(service, query, timeout), timeout
                )
            outcome = "success"
            return response
        except QueryTimeout:
            outcome = "timeout"
            raise
        except QueryCancelled:
            outcome = "interrupted"
            raise
        finally:
            service.record_query(data_source, query_type, time.perf_counter() - started, outcome)

    async def cancel_query(query_id: str) -> Response:
        urls = sorted(service.scatter.contacted.get(query_id, ()))
        service.running.cancel(query_id)
        for url in urls:
            service.tasks.start(_forward_cancel(service.http, url, query_id), f"cancel:{query_id}")
        return Response(status_code=202)

    for path in ("/druid/v2", "/druid/v2/"):
        router.add_api_route(
            path, post_query, methods=["POST"], summary="Run a native query.", dependencies=[SELF]
        )
    router.add_api_route(
        "/druid/v2/{query_id}",
        cancel_query,
        methods=["DELETE"],
        summary="Cancel a query.",
        dependencies=[STATE],
    )
    return router


async def _forward_cancel(client: httpx.AsyncClient, url: str, query_id: str) -> None:
    try:
        await client.delete(f"{url}/druid/v2/{url_id(query_id)}", timeout=5.0)
    except httpx.HTTPError as exc:
        log.info("could not forward the cancel of %s to %s: %s", query_id, url, exc)


def broker_probes_router(service: BrokerService) -> APIRouter:
    """Druid's ``BrokerResource``: ready once the inventory view is initialized."""
    router = APIRouter(prefix="/druid/broker/v1", tags=["broker"])

    @router.get("/loadstatus", dependencies=[STATE])
    async def load_status() -> dict[str, bool]:
        return {"inventoryInitialized": service.inventory_initialized()}

    @router.get("/readiness", dependencies=[STATE])
    async def readiness() -> Response:
        return Response(status_code=200 if service.inventory_initialized() else 503)

    return router
