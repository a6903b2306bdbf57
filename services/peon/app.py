"""The peon's FastAPI app: worker endpoints, task chat, realtime segments and queries."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.query.http import data_node_query_router
from common.server import create_node_app
from services.peon.batch_routes import batch_chat_router
from services.peon.routes import chat_router, worker_router
from services.peon.service import PeonService


def create_app(settings: Settings) -> FastAPI:
    service = PeonService(settings)
    host = settings.host_and_port
    routers = [
        worker_router(lambda: service.manager, service.validate_task, host),
        chat_router(service.get_runner, service.batch_report),
        batch_chat_router(service.get_batch_runner),
        service.announcer.router(host),
        data_node_query_router(service.segment_getter(), host),
    ]
    return create_node_app(service, routers)
