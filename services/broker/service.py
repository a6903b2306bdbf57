"""The broker's process (queries arrive with the query issue)."""

from __future__ import annotations

from common.server import NodeService


class BrokerService(NodeService):
    pass
