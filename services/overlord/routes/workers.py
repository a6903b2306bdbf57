"""``GET /druid/indexer/v1/workers`` and ``/totalWorkerCapacity``: the peons tasks run on."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from common.auth.declare import STATE
from common.discovery.node import WorkerNodeService
from services.overlord.service import OverlordService


def workers_router(service: OverlordService) -> APIRouter:
    router = APIRouter(prefix="/druid/indexer/v1", tags=["workers"])

    @router.get("/workers", dependencies=[STATE])
    async def workers() -> list[dict[str, Any]]:
        queue = service.leading_queue
        if queue is not None:
            return queue.runner.worker_infos()
        # Not leading (yet): what discovery sees, with nothing assigned.
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
                    },
                    "currCapacityUsed": 0,
                    "currParallelIndexCapacityUsed": 0,
                    "availabilityGroups": [],
                    "runningTasks": [],
                    "lastCompletedTaskTime": None,
                    "blacklistedUntil": None,
                }
            )
        return sorted(result, key=lambda w: str(w["worker"]["host"]))

    @router.get("/totalWorkerCapacity", dependencies=[STATE])
    async def total_capacity() -> dict[str, int]:
        total, used = service.task_queue.runner.total_capacity()
        return {
            "currentClusterCapacity": total,
            "maximumCapacityWithAutoScale": total,
            "usedClusterCapacity": used,
        }

    return router
