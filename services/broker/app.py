"""The broker's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.server import create_node_app
from services.broker.service import BrokerService


def create_app(settings: Settings) -> FastAPI:
    return create_node_app(BrokerService(settings))
