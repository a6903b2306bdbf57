"""The overlord's process: leader election and, while leading, the task queue and its runner.

Leader-only state (the ``TaskQueue`` with its ``HttpRemoteTaskRunner``) is built in
``on_become_leader`` and torn down in ``on_stop_being_leader``; ``task_queue`` raises 503 on a
follower. The supervisor manager runs while leading too: it uses ``task_queue`` and answers the
``checkPointDataSourceMetadata`` actions.
"""

from __future__ import annotations

from common.aio import TaskGroup
from common.config import Settings
from common.discovery.base import NodeDiscovery
from common.discovery.node import WORKER_NODE_SERVICE
from common.errors import ServiceUnavailable
from common.leadership import ElectedService
from common.segments.deep_storage import DeepStorage
from services.overlord.supervisor.manager import SupervisorManager
from services.overlord.tasks.actions import CheckpointHandler, TaskActions
from services.overlord.tasks.model import TaskInfo
from services.overlord.tasks.queue import TaskQueue


class OverlordService(ElectedService):
    leader_role = "overlord"
    uses_metadata_store = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._queue: TaskQueue | None = None
        #: ``async (supervisor_id, task_group_id, metadata) -> bool``, set by the supervisor.
        self.checkpoint_handler: CheckpointHandler | None = None
        self.actions = TaskActions(lambda: self.store, self._active_task, self._handler)
        self.supervisors = SupervisorManager(self, clients=self.security.clients)

    @property
    def workers(self) -> NodeDiscovery:
        """Peons offering ``workerNodeService`` (Druid's HttpRemoteTaskRunner worker view)."""
        return self.provider.get_for_service(WORKER_NODE_SERVICE)

    @property
    def task_queue(self) -> TaskQueue:
        """The leader's task queue; 503 when this overlord does not lead (yet)."""
        if self._queue is None:
            raise ServiceUnavailable("the task queue runs on the overlord leader only")
        return self._queue

    @property
    def leading_queue(self) -> TaskQueue | None:
        return self._queue

    async def on_become_leader(self, term: int, work: TaskGroup) -> None:
        queue = TaskQueue(
            self.store,
            self.settings.indexer_runner,
            self.workers,
            lambda: self.check_term(term),
            clients=self.security.clients,
            deep_storage=DeepStorage.from_settings(self.settings),
        )
        try:
            await queue.start()
        except BaseException:
            await queue.stop()
            raise
        self._queue = queue
        self.checkpoint_handler = self.supervisors.checkpoint
        await self.supervisors.start(term)

    async def on_stop_being_leader(self) -> None:
        # Supervisors first: they use the queue until they stop.
        self.checkpoint_handler = None
        await self.supervisors.stop()
        queue, self._queue = self._queue, None
        if queue is not None:
            await queue.stop()

    # ---- for the task actions
    def _active_task(self, task_id: str) -> TaskInfo | None:
        return self.task_queue.get_active(task_id)

    def _handler(self) -> CheckpointHandler | None:
        return self.checkpoint_handler
