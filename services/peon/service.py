"""The peon's process: a worker that announces its task capacity (tasks arrive with issue 6)."""

from __future__ import annotations

from common.discovery.node import DruidService, WorkerNodeService
from common.server import NodeService


class PeonService(NodeService):
    def node_services(self) -> dict[str, DruidService]:
        w = self.settings.worker
        return {
            WorkerNodeService.KEY: WorkerNodeService(
                ip=self.settings.node.host,
                capacity=w.capacity,
                version=w.version,
                category=w.category,
            )
        }
