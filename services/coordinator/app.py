"""The coordinator's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.leadership import create_elected_app
from services.coordinator.routes.cluster import cluster_router
from services.coordinator.routes.compaction import compaction_router
from services.coordinator.routes.datasources import datasources_router
from services.coordinator.routes.intervals import cluster_intervals_router, intervals_router
from services.coordinator.routes.lookups import lookups_router
from services.coordinator.routes.marking import marking_router
from services.coordinator.routes.metadata import metadata_router
from services.coordinator.routes.rules import rules_router
from services.coordinator.routes.servers import servers_router
from services.coordinator.routes.status import status_router
from services.coordinator.service import CoordinatorService

PREFIX = "/druid/coordinator/v1"


def create_app(settings: Settings) -> FastAPI:
    service = CoordinatorService(settings)
    return create_elected_app(
        service,
        PREFIX,
        [
            rules_router(service),
            cluster_router(service),
            status_router(service),
            datasources_router(service),
            intervals_router(service),
            cluster_intervals_router(service),
            marking_router(service),
            servers_router(service),
            metadata_router(service),
            compaction_router(service),
            lookups_router(service),
        ],
    )
