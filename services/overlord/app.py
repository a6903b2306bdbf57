"""The overlord's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.leadership import LeaderRedirectMiddleware, leader_router
from common.server import create_node_app
from services.overlord.routes.tasks import tasks_router
from services.overlord.routes.workers import workers_router
from services.overlord.service import OverlordService

PREFIX = "/druid/indexer/v1"


def create_app(settings: Settings) -> FastAPI:
    service = OverlordService(settings)
    app = create_node_app(
        service,
        [
            leader_router(PREFIX, service.get_selector),
            workers_router(service),
            tasks_router(service),
            service.supervisors.router(),
        ],
    )
    app.add_middleware(
        LeaderRedirectMiddleware,
        get_selector=service.get_selector,
        prefixes=[PREFIX],
        local_paths=[f"{PREFIX}/leader", f"{PREFIX}/isLeader"],
        host=settings.host_and_port,
    )
    return app
