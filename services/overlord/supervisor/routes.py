"""The Supervisor API at ``/druid/indexer/v1/supervisor`` (Druid's ``SupervisorResource``).

Unknown ids answer 404 ``{"error": "[id] does not exist"}`` and suspend/resume of a supervisor
already in that state 400 ``{"error": "[id] is already suspended|running"}``, Druid's bodies; a
bad spec is Druid's 400 error JSON naming the field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request

from common.auth.declare import SELF, STATE, authorize_datasources, spec_datasources
from common.auth.model import Action
from common.config import JAVA_INT_MAX
from common.errors import InvalidInput, NotFound
from common.jsonresp import OrjsonResponse
from services.overlord.supervisor.manager import AlreadyInState, SupervisorManager

PREFIX = "/druid/indexer/v1/supervisor"


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise InvalidInput("request body is empty; expected JSON")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"request body is not valid JSON: {e}") from None


def _flag(request: Request, name: str) -> bool:
    if name not in request.query_params:
        return False
    return request.query_params[name].lower() not in ("false", "0")


async def _guard(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Druid's plain ``{"error": ...}`` bodies for unknown ids and state conflicts."""
    try:
        return await fn()
    except NotFound as e:
        return OrjsonResponse({"error": e.message}, status_code=404)
    except AlreadyInState as e:
        return OrjsonResponse({"error": e.message}, status_code=400)


def supervisor_router(manager: SupervisorManager) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["supervisor"])

    def status_of(sid: str, full: bool) -> dict[str, Any]:
        sup = manager.get(sid)
        st = sup.state
        out: dict[str, Any] = {
            "id": sid,
            "state": st.state,
            "detailedState": st.detailed_state,
            "healthy": st.healthy,
            "suspended": sup.spec.suspended,
        }
        if full:
            out.update(type="kafka", source=sup.spec.io.stream, spec=sup.spec.to_json())
        return out

    @router.post("", dependencies=[SELF])
    @router.post("/", include_in_schema=False, dependencies=[SELF])
    async def create(request: Request) -> dict[str, str]:
        body = await _body(request)
        authorize_datasources(request, spec_datasources(body), Action.WRITE)
        sid = await manager.create_or_update(body, _flag(request, "skipRestartIfUnmodified"))
        return {"id": sid}

    @router.get("", dependencies=[STATE])
    @router.get("/", include_in_schema=False, dependencies=[STATE])
    async def list_supervisors(request: Request) -> Any:
        ids = manager.ids()
        if "full" in request.query_params:
            return [status_of(i, True) for i in ids]
        if _flag(request, "state"):
            return [status_of(i, False) for i in ids]
        return ids

    @router.get("/history", dependencies=[STATE])
    async def all_history() -> Any:
        return await manager.history()

    async def _all(action: str) -> dict[str, str]:
        await manager.for_all(action)
        return {"status": "success"}

    @router.post("/suspendAll", dependencies=[STATE])
    async def suspend_all() -> dict[str, str]:
        return await _all("suspend")

    @router.post("/resumeAll", dependencies=[STATE])
    async def resume_all() -> dict[str, str]:
        return await _all("resume")

    @router.post("/terminateAll", dependencies=[STATE])
    async def terminate_all() -> dict[str, str]:
        return await _all("terminate")

    @router.get("/{sid}", dependencies=[STATE])
    async def get_spec(sid: str) -> Any:
        async def go() -> Any:
            return manager.get(sid).spec.to_json()

        return await _guard(go)

    @router.get("/{sid}/status", dependencies=[STATE])
    async def get_status(sid: str) -> Any:
        async def go() -> Any:
            return manager.get(sid).report()

        return await _guard(go)

    @router.get("/{sid}/health", dependencies=[STATE])
    async def get_health(sid: str) -> Any:
        async def go() -> Any:
            healthy = manager.get(sid).state.healthy
            return OrjsonResponse({"healthy": healthy}, status_code=200 if healthy else 503)

        return await _guard(go)

    @router.get("/{sid}/history", dependencies=[STATE])
    async def get_history(
        sid: str, count: Annotated[int | None, Query(le=JAVA_INT_MAX)] = None
    ) -> Any:
        if count is not None and count <= 0:
            raise InvalidInput("count must be greater than zero")
        history = (await manager.history(sid, count)).get(sid)
        if not history:
            return OrjsonResponse({"error": f"No history for [{sid}]."}, status_code=404)
        return history

    @router.post("/{sid}/suspend", dependencies=[STATE])
    async def suspend(sid: str) -> Any:
        return await _guard(lambda: manager.set_suspended(sid, True))

    @router.post("/{sid}/resume", dependencies=[STATE])
    async def resume(sid: str) -> Any:
        return await _guard(lambda: manager.set_suspended(sid, False))

    @router.post("/{sid}/reset", dependencies=[STATE])
    async def reset(sid: str) -> Any:
        async def go() -> Any:
            await manager.reset(sid)
            return {"id": sid}

        return await _guard(go)

    @router.post("/{sid}/resetOffsets", dependencies=[STATE])
    async def reset_offsets(sid: str, request: Request) -> Any:
        body = await _body(request)

        async def go() -> Any:
            await manager.reset(sid, body)
            return {"id": sid}

        return await _guard(go)

    async def _terminate(sid: str) -> Any:
        async def go() -> Any:
            await manager.terminate(sid)
            return {"id": sid}

        return await _guard(go)

    @router.post("/{sid}/terminate", dependencies=[STATE])
    async def terminate(sid: str) -> Any:
        return await _terminate(sid)

    @router.post("/{sid}/shutdown", deprecated=True, dependencies=[STATE])
    async def shutdown(sid: str) -> Any:
        return await _terminate(sid)

    return router
