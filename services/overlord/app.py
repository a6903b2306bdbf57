"""The overlord's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.leadership import create_elected_app
from services.overlord.routes.datasources import datasources_router
from services.overlord.routes.tasks import tasks_router
from services.overlord.routes.workers import workers_router
from services.overlord.service import OverlordService

PREFIX = "/druid/indexer/v1"


def create_app(settings: Settings) -> FastAPI:
    service = OverlordService(settings)
    return create_elected_app(
        service,
        PREFIX,
        [
            workers_router(service),
            tasks_router(service),
            datasources_router(service),
            service.supervisors.router(),
        ],
    )
