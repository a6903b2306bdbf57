"""The historical's process: announces itself as a data node (segments arrive with issue 4)."""

from __future__ import annotations

from common.discovery.node import DataNodeService, DruidService
from common.server import NodeService


class HistoricalService(NodeService):
    def max_size(self) -> int:
        """``druid.server.maxSize``, or the sum of the segment cache locations' sizes."""
        configured = self.settings.server.max_size
        if configured > 0:
            return configured
        return sum(loc.max_size for loc in self.settings.segment_cache.locations)

    def node_services(self) -> dict[str, DruidService]:
        s = self.settings.server
        return {
            DataNodeService.KEY: DataNodeService(
                tier=s.tier, max_size=self.max_size(), server_type="historical", priority=s.priority
            )
        }
