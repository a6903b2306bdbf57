"""The broker's FastAPI app: status, native queries at ``/druid/v2`` and readiness probes."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.server import create_node_app
from services.broker.routes import broker_probes_router, query_router
from services.broker.service import BrokerService


def create_app(settings: Settings) -> FastAPI:
    service = BrokerService(settings)
    return create_node_app(service, [query_router(service), broker_probes_router(service)])
