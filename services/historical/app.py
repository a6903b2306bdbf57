"""The historical's FastAPI app: status, announcements, load queue, probes, segment queries."""

from __future__ import annotations

from fastapi import FastAPI

from common.config import Settings
from common.query.datanode import INLINE_QUERY_ROWS, segment_lookup
from common.query.http import data_node_query_router
from common.server import create_node_app
from services.historical.routes.probes import probes_router
from services.historical.routes.segments import load_queue_router
from services.historical.service import HistoricalService


def create_app(settings: Settings) -> FastAPI:
    service = HistoricalService(settings)
    routers = [
        # The load queue's routes first: the announcer's GET owns the bare segments path.
        load_queue_router(lambda: service.loader),
        service.announcer.router(settings.host_and_port),
        probes_router(service.cache_initialized),
        data_node_query_router(
            segment_lookup(lambda: service.registry.segments, service.registry.get_segment),
            settings.host_and_port,
            processing_threads=settings.processing.num_threads,
            default_timeout_s=settings.server_http.default_query_timeout,
            max_timeout_s=settings.server_http.max_query_timeout,
            inline_rows=INLINE_QUERY_ROWS,  # its tables are open: a lookup is a dict get
        ),
    ]
    return create_node_app(service, routers)
