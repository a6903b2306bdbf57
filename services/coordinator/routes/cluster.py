"""``GET /druid/coordinator/v1/cluster``: every role's nodes, as Druid's ``ClusterResource``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter

from common.auth.declare import STATE
from common.config import ROLES
from services.coordinator.service import CoordinatorService


def cluster_router(service: CoordinatorService) -> APIRouter:
    router = APIRouter(prefix="/druid/coordinator/v1", tags=["cluster"])

    @router.get("/cluster", dependencies=[STATE])
    async def cluster(full: str | None = None) -> dict[str, Any]:
        view: dict[str, Any] = {}
        for role in ROLES:
            nodes = service.provider.get_for_node_role(role).get_all_nodes()
            if full is not None:
                view[role.upper()] = [orjson.loads(n.to_json()) for n in nodes]
            else:
                view[role.upper()] = [
                    {
                        "host": n.druid_node.host,
                        "service": n.druid_node.service,
                        "plaintextPort": n.druid_node.plaintext_port,
                        "tlsPort": n.druid_node.tls_port,
                    }
                    for n in nodes
                ]
        return view

    return router
