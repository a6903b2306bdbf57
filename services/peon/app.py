"""The peon's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.server import create_node_app
from services.peon.service import PeonService


def create_app(settings: Settings) -> FastAPI:
    return create_node_app(PeonService(settings))
