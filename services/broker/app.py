"""The broker's FastAPI app: status, native queries at ``/druid/v2``, SQL at ``/druid/v2/sql``,
SQL ingestion at ``/druid/v2/sql/task``, datasource information at ``/druid/v2/datasources``
and readiness probes."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.server import create_node_app
from services.broker.info_routes import info_router
from services.broker.routes import broker_probes_router, query_router
from services.broker.service import BrokerService
from services.broker.sql_routes import sql_router
from services.broker.sql_task_routes import sql_task_router


def create_app(settings: Settings) -> FastAPI:
    service = BrokerService(settings)
    routers = [
        sql_task_router(service),
        sql_router(service),
        query_router(service),
        info_router(service),
        broker_probes_router(service),
    ]
    return create_node_app(service, routers)
