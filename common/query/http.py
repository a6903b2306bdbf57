"""The data node's ``/druid/v2``: the router a historical (and a peon) mounts to answer the broker.

``POST /druid/v2`` takes a native query whose ``intervals`` is a segments spec and answers with the
node's merged partial as an Arrow IPC stream (``application/vnd.apache.arrow.stream``); segments
the node does not serve are listed in the ``X-Druid-Response-Context`` header as
``{"missingSegments": [{"itvl","ver","part"}...]}``. ``DELETE /druid/v2/{queryId}`` cancels it
(the broker forwards its own cancels here). Errors are Druid's JSON, as everywhere.
"""

from __future__ import annotations

import asyncio
import os

import orjson
from fastapi import APIRouter, Request, Response

from common.auth.declare import INTERNAL, SELF, authorize_datasources
from common.ids import header_value
from common.jsonresp import dumps
from common.query.datanode import (
    INLINE_MERGE_ROWS,
    SegmentGetter,
    descriptor_json,
    run_on_node,
)
from common.query.ipc import to_ipc
from common.query.lifecycle import RunningQueries, query_timeout_s
from common.query.models import parse_query

ARROW_STREAM = "application/vnd.apache.arrow.stream"
QUERY_ID_HEADER = "X-Druid-Query-Id"
RESPONSE_CONTEXT_HEADER = "X-Druid-Response-Context"

_DEFAULT_TIMEOUT_S = 300.0
_NO_MAX_TIMEOUT_S = float(2**63 - 1) / 1000.0


def data_node_query_router(
    get_segment: SegmentGetter,
    host: str,
    *,
    processing_threads: int | None = None,
    default_timeout_s: float = _DEFAULT_TIMEOUT_S,
    max_timeout_s: float = _NO_MAX_TIMEOUT_S,
    inline_rows: int = 0,
) -> APIRouter:
    """Routes answering segment-spec queries from the segments ``get_segment`` finds.

    ``processing_threads`` bounds the segments computed at once (Druid's
    ``druid.processing.numThreads``; default: the CPU count). ``host`` is only informational.
    ``inline_rows``: queries over at most that many rows run on the event loop
    (``run_on_node``; only for a ``get_segment`` that merely looks up open tables).
    """
    router = APIRouter(tags=["query"])
    running = RunningQueries()
    limit = asyncio.Semaphore(processing_threads or os.cpu_count() or 2)

    async def post_query(request: Request) -> Response:
        query = parse_query(await request.body())
        authorize_datasources(request, [query.dataSource])
        timeout = query_timeout_s(query, default_timeout_s, max_timeout_s)
        result = await running.run(
            query.query_id, run_on_node(query, get_segment, limit, inline_rows=inline_rows), timeout
        )
        partial = result.partial
        small = partial.num_rows <= INLINE_MERGE_ROWS
        body = to_ipc(partial) if small else await asyncio.to_thread(to_ipc, partial)
        context = {"missingSegments": [descriptor_json(d) for d in result.missing]}
        return Response(
            body,
            media_type=ARROW_STREAM,
            headers={
                QUERY_ID_HEADER: header_value(query.query_id),
                RESPONSE_CONTEXT_HEADER: dumps(context).decode(),
                "X-Druid-Data-Node": host,
            },
        )

    async def cancel_query(query_id: str) -> Response:
        running.cancel(query_id)
        return Response(status_code=202)

    for path in ("/druid/v2", "/druid/v2/"):
        router.add_api_route(
            path, post_query, methods=["POST"], summary="Query segments here.", dependencies=[SELF]
        )
    router.add_api_route(
        "/druid/v2/{query_id}",
        cancel_query,
        methods=["DELETE"],
        summary="Cancel a query.",
        dependencies=[INTERNAL],
    )
    return router


def parse_response_context(raw: str | None) -> dict[str, object]:
    """The response context header as a dict ({} when absent or unreadable)."""
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
