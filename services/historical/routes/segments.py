"""``POST /druid-internal/v1/segments/changeRequests`` and ``GET .../loadCapabilities``.

Druid's ``SegmentListerResource`` (druid-internals 3.2): the body is a JSON array of change
requests; an empty list, a missing or non-positive ``timeout`` (ms), a malformed request or an
unknown ``loadingMode`` is a 400 with Druid's error JSON. The answer is the batch's statuses
``[{"request", "status": {"state", "failureCause"}}]`` once one request is done, 204 when none
finished within the timeout.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from common.auth.declare import INTERNAL
from common.errors import InvalidInput
from common.jsonresp import OrjsonResponse
from common.serverview.announcer import SEGMENTS_PATH
from common.serverview.changes import SegmentChangeRequest
from services.historical.loader import SegmentLoadDropHandler
from services.historical.status import LoadingMode


def parse_change_requests(body: bytes) -> list[SegmentChangeRequest]:
    """The request body as change requests; ``InvalidInput`` (400) when it is not one."""
    try:
        raw = orjson.loads(body) if body else None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"change requests are not valid JSON: {exc}") from None
    if raw is None:
        raise InvalidInput("No change requests provided.")
    if not isinstance(raw, list):
        raise InvalidInput("change requests must be a JSON array")
    if not raw:
        raise InvalidInput("No change requests provided.")
    return [SegmentChangeRequest.from_json(item) for item in raw]


def parse_timeout_ms(raw: str | None) -> int:
    try:
        timeout = int(raw) if raw not in (None, "") else 0
    except ValueError:
        raise InvalidInput(f"timeout must be an integer, got [{raw}]") from None
    if timeout <= 0:
        raise InvalidInput("Timeout must be positive.")
    return timeout


def parse_loading_mode(raw: str | None) -> LoadingMode:
    if raw in (None, ""):
        return LoadingMode.NORMAL
    try:
        return LoadingMode(raw.upper())
    except ValueError:
        raise InvalidInput(f"loadingMode must be NORMAL or TURBO, got [{raw}]") from None


def load_queue_router(loader: Callable[[], SegmentLoadDropHandler]) -> APIRouter:
    router = APIRouter(prefix=SEGMENTS_PATH, tags=["segments"])

    @router.post(
        "/changeRequests",
        dependencies=[INTERNAL],
        summary="Load/drop a batch of segments; answers when one finishes (timeout in ms).",
    )
    async def change_requests(request: Request) -> Response:
        timeout_ms = parse_timeout_ms(request.query_params.get("timeout"))
        mode = parse_loading_mode(request.query_params.get("loadingMode"))
        requests = parse_change_requests(await request.body())
        result = await loader().process_batch(requests, timeout_ms / 1000, mode)
        if result is None:
            return Response(status_code=204)
        return OrjsonResponse(result)

    @router.get("/loadCapabilities", dependencies=[INTERNAL])
    async def load_capabilities() -> dict[str, int]:
        config = loader().config
        return {
            "numLoadingThreads": config.num_loading_threads,
            "numTurboLoadingThreads": config.num_turbo_loading_threads,
        }

    return router
