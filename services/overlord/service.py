"""The overlord's process: leader election, and (issue by issue) its task queue and supervisors."""

from __future__ import annotations

from common.discovery.base import NodeDiscovery
from common.discovery.node import WORKER_NODE_SERVICE
from common.leadership import ElectedService


class OverlordService(ElectedService):
    leader_role = "overlord"
    uses_metadata_store = True

    @property
    def workers(self) -> NodeDiscovery:
        """Peons offering ``workerNodeService`` (Druid's HttpRemoteTaskRunner worker view)."""
        return self.provider.get_for_service(WORKER_NODE_SERVICE)
