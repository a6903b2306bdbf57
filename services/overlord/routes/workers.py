"""``GET /druid/indexer/v1/workers``: the peons this overlord can assign tasks to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from common.discovery.node import WorkerNodeService
from services.overlord.service import OverlordService


def workers_router(service: OverlordService) -> APIRouter:
    router = APIRouter(prefix="/druid/indexer/v1", tags=["workers"])

    @router.get("/workers")
    async def workers() -> list[dict[str, Any]]:
        result = []
        for node in service.workers.get_all_nodes():
            svc = node.service(WorkerNodeService.KEY)
            if not isinstance(svc, WorkerNodeService):
                continue
            result.append(
                {
                    "worker": {
                        "scheme": node.druid_node.scheme,
                        "host": node.host_and_port,
                        "ip": svc.ip,
                        "capacity": svc.capacity,
                        "version": svc.version,
                        "category": svc.category,
                    }
                }
            )
        return sorted(result, key=lambda w: str(w["worker"]["host"]))

    return router
