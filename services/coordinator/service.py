"""The coordinator's process: leader election, and (issue by issue) its leader-only duties."""

from __future__ import annotations

from common.leadership import ElectedService


class CoordinatorService(ElectedService):
    leader_role = "coordinator"
    uses_metadata_store = True
