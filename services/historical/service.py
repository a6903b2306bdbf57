"""The historical's process: segment cache, load queue and segment announcements.

Start order: open the cache and announce what it already holds (no download), then (in
``NodeService``) announce the node with its ``dataNodeService``, so a broker or coordinator that
discovers this node finds its segments at once. Shutdown releases parked long-polls and waiting
load batches first, then runs pending drops and closes every mapped segment.
"""

from __future__ import annotations

from collections.abc import Callable

from common.config import Settings
from common.discovery.node import DataNodeService, DruidService
from common.errors import ServiceUnavailable
from common.metrics import Sample
from common.procinfo import query_allocators
from common.segments.deep_storage import DeepStorage
from common.segments.segment import DataSegment
from common.server import NodeService
from common.serverview.announcer import SegmentAnnouncer
from services.historical.cache import SegmentCache
from services.historical.loader import LoaderConfig, SegmentLoadDropHandler
from services.historical.registry import SegmentRegistry


class HistoricalService(NodeService):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.announcer = SegmentAnnouncer()
        self.registry = SegmentRegistry()
        self.metrics.gauge_callback(
            "segment/count",
            "Segments this historical serves, per datasource.",
            lambda: self._per_datasource(lambda _: 1),
            ["dataSource", "tier"],
        )
        self.metrics.gauge_callback(
            "segment/used",
            "Bytes of segments this historical serves, per datasource.",
            lambda: self._per_datasource(lambda s: s.size),
            ["dataSource", "tier"],
        )
        self._loader: SegmentLoadDropHandler | None = None
        self.shutdown_hooks.append(self.announcer.close)
        self.shutdown_hooks.append(self._release_load_waiters)

    def _per_datasource(self, value: Callable[[DataSegment], int]) -> list[Sample]:
        totals: dict[str, int] = {}
        for segment in self.registry.segments:
            totals[segment.data_source] = totals.get(segment.data_source, 0) + value(segment)
        tier = self.settings.server.tier
        return [({"dataSource": ds, "tier": tier}, float(n)) for ds, n in sorted(totals.items())]

    def max_size(self) -> int:
        """``druid.server.maxSize``, or the sum of the segment cache locations' sizes."""
        configured = self.settings.server.max_size
        if configured > 0:
            return configured
        if self._loader is not None:
            return self._loader.cache.max_size
        return sum(loc.max_size for loc in self.settings.segment_cache.locations)

    def node_services(self) -> dict[str, DruidService]:
        s = self.settings.server
        return {
            DataNodeService.KEY: DataNodeService(
                tier=s.tier, max_size=self.max_size(), server_type="historical", priority=s.priority
            )
        }

    @property
    def loader(self) -> SegmentLoadDropHandler:
        if self._loader is None:
            raise ServiceUnavailable("the historical's segment cache is not open yet")
        return self._loader

    def cache_initialized(self) -> bool:
        return self._loader is not None and self._loader.cache_initialized

    def loader_config(self) -> LoaderConfig:
        sc = self.settings.segment_cache
        return LoaderConfig(
            num_loading_threads=sc.num_loading_threads,
            # Druid's turbo pool is sized by numBootstrapThreads, which defaults to this.
            num_turbo_loading_threads=sc.num_bootstrap_threads or sc.num_loading_threads,
            drop_segment_delay_s=sc.drop_segment_delay_millis / 1000,
            status_queue_max_size=sc.status_queue_max_size,
        )

    async def on_start(self) -> None:
        # A query's big temporaries stay in the heap between queries (KDRUID_MALLOC_TUNING=0: off)
        query_allocators()
        cache = SegmentCache(
            self.settings.segment_cache.locations, DeepStorage.from_settings(self.settings)
        )
        self._loader = SegmentLoadDropHandler(
            cache, self.announcer, self.registry, self.tasks, self.loader_config()
        )
        await self._loader.bootstrap()

    async def on_close(self) -> None:
        if self._loader is not None:
            await self._loader.close()
        self.registry.close()

    def _release_load_waiters(self) -> None:
        if self._loader is not None:
            self._loader.release_waiters()
