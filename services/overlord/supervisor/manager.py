"""``SupervisorManager``: the overlord leader's supervisors (Druid's ``SupervisorManager``).

On ``start(term)`` (the overlord became leader) it restores every supervisor whose latest row in
``druid_supervisors`` is not a tombstone and starts its run loop; ``stop()`` (leadership lost or
shutdown) stops them without touching their tasks, which the next leader adopts. API operations
append a row to the history first (after checking the term), then replace the running supervisor:
an update or a terminate stops the old one gracefully (its reading tasks finish and publish),
suspend and resume hand over to a new supervisor that adopts the tasks. The overlord forwards the
``checkPointDataSourceMetadata`` task action to ``checkpoint``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import APIRouter

from common.aio import TaskGroup
from common.auth.clients import PLAIN_CLIENTS, InternalClients
from common.errors import InvalidInput, KdruidError, NotFound, ServiceUnavailable
from common.ingest.metadata import DataSourceMetadata
from services.overlord.supervisor.kafka_supervisor import KafkaSupervisor
from services.overlord.supervisor.spec import (
    KafkaSupervisorSpec,
    check_spec_update,
    is_tombstone,
    noop_spec,
    parse_supervisor_spec,
)

log = logging.getLogger(__name__)


class AlreadyInState(InvalidInput):
    """Suspend of a suspended supervisor, or resume of a running one (Druid: 400)."""


class SupervisorManager:
    def __init__(
        self,
        service: Any,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        clients: InternalClients = PLAIN_CLIENTS,
    ) -> None:
        self._service = service
        self._clients = clients
        self._clock = clock
        self._rng = rng
        self._supervisors: dict[str, KafkaSupervisor] = {}
        self._tasks: TaskGroup | None = None
        self._http: httpx.AsyncClient | None = None
        self._term: int | None = None
        self._lock = asyncio.Lock()

    # ---- lifecycle
    async def start(self, term: int) -> None:
        async with self._lock:
            self._term = term
            self._tasks = TaskGroup("supervisors")
            self._http = self._clients.new()
            for sid, payload in sorted((await self._store.latest_supervisor_specs()).items()):
                if is_tombstone(payload):
                    continue
                try:
                    spec = parse_supervisor_spec(payload)
                except InvalidInput as e:
                    log.error("supervisor [%s]: stored spec is not valid, not started: %s", sid, e)
                    continue
                self._launch(spec)
            log.info("supervisors started: %s", sorted(self._supervisors) or "none")

    async def stop(self) -> None:
        async with self._lock:
            sups, self._supervisors = list(self._supervisors.values()), {}
            await asyncio.gather(*(s.stop(graceful=False) for s in sups))
            if self._tasks is not None:
                await self._tasks.close()
            if self._http is not None:
                await self._http.aclose()
            self._tasks = self._http = None
            self._term = None

    @property
    def _store(self) -> Any:
        return self._service.store

    def _supervisor(self, spec: KafkaSupervisorSpec) -> KafkaSupervisor:
        assert self._tasks is not None and self._http is not None
        return KafkaSupervisor(
            spec, self._service.task_queue, self._store, self._http, self._clock, self._rng
        )

    def _launch(
        self, spec: KafkaSupervisorSpec, sup: KafkaSupervisor | None = None
    ) -> KafkaSupervisor:
        assert self._tasks is not None
        sup = sup or self._supervisor(spec)
        sup.start(self._tasks.start)
        self._supervisors[spec.id] = sup
        return sup

    def _check_leading(self) -> None:
        if self._tasks is None:
            raise ServiceUnavailable("this overlord is not the leader; supervisors are not running")
        check = getattr(self._service, "check_term", None)
        if check is not None and self._term is not None:
            check(self._term)

    async def _record(self, spec_id: str, payload: dict[str, Any]) -> None:
        self._check_leading()
        await self._store.insert_supervisor_spec(spec_id, payload)

    def router(self) -> APIRouter:
        """The Supervisor API routes served by this manager."""
        from services.overlord.supervisor.routes import supervisor_router  # routes imports us

        return supervisor_router(self)

    # ---- the task action
    async def checkpoint(self, supervisor_id: str, task_group_id: int, metadata: Any) -> bool:
        """Queue a checkpoint of the task group; False if there is no such supervisor."""
        sup = self._supervisors.get(supervisor_id)
        if sup is None:
            log.warning("checkpoint for unknown supervisor [%s]", supervisor_id)
            return False
        md = metadata if isinstance(metadata, DataSourceMetadata) else None
        if md is None:
            md = DataSourceMetadata.from_json(metadata)
        await sup.submit("checkpoint", task_group_id, md)
        return True

    # ---- queries
    def get(self, supervisor_id: str) -> KafkaSupervisor:
        self._check_leading()
        sup = self._supervisors.get(supervisor_id)
        if sup is None:
            raise NotFound(f"[{supervisor_id}] does not exist")
        return sup

    def ids(self) -> list[str]:
        self._check_leading()
        return sorted(self._supervisors)

    async def history(
        self, supervisor_id: str | None = None, count: int | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        self._check_leading()
        return await self._store.supervisor_history(supervisor_id, count)  # type: ignore[no-any-return]

    # ---- changes
    async def create_or_update(self, body: Any, skip_restart_if_unmodified: bool = False) -> str:
        spec = parse_supervisor_spec(body)
        async with self._lock:
            self._check_leading()
            old = self._supervisors.get(spec.id)
            if old is not None and skip_restart_if_unmodified:
                if old.spec.to_json() == spec.to_json():
                    return spec.id
            if old is not None and old.spec.to_json() != spec.to_json():
                check_spec_update(old.spec, spec)
            self._check_leading()
            # The new supervisor connects to the stream while its spec is stored.
            sup = self._supervisor(spec)
            sup.connect()
            try:
                await self._record(spec.id, spec.to_json())
                if old is not None:
                    await old.stop(graceful=True)
            except BaseException:
                await sup.stop(graceful=False)
                raise
            self._launch(spec, sup)
        return spec.id

    async def set_suspended(self, supervisor_id: str, suspended: bool) -> dict[str, Any]:
        async with self._lock:
            old = self.get(supervisor_id)
            if old.spec.suspended == suspended:
                word = "suspended" if suspended else "running"
                raise AlreadyInState(f"[{supervisor_id}] is already {word}")
            spec = old.spec.with_suspended(suspended)
            await self._record(spec.id, spec.to_json())
            await old.stop(graceful=False)
            self._launch(spec)
            return spec.to_json()

    async def terminate(self, supervisor_id: str) -> None:
        async with self._lock:
            sup = self.get(supervisor_id)
            await self._record(supervisor_id, noop_spec(supervisor_id, [sup.spec.data_source]))
            del self._supervisors[supervisor_id]
            await sup.stop(graceful=True)

    async def reset(self, supervisor_id: str, metadata: Any = None) -> None:
        sup = self.get(supervisor_id)
        md: DataSourceMetadata | None = None
        if metadata is not None:
            md = DataSourceMetadata.from_json(metadata)
            if md.stream != sup.spec.io.stream:
                raise InvalidInput(
                    f"reset metadata stream [{md.stream}] does not match the supervisor's topic "
                    f"[{sup.spec.io.stream}]"
                )
        self._check_leading()
        try:
            await sup.submit("reset", md, wait=sup.spec.chat.http_timeout)
        except TimeoutError:
            log.info("supervisor [%s]: reset queued; the run loop is busy", supervisor_id)

    async def for_all(self, action: str) -> None:
        """``suspendAll`` / ``resumeAll`` / ``terminateAll``."""
        for sid in self.ids():
            try:
                if action == "terminate":
                    await self.terminate(sid)
                else:
                    await self.set_suspended(sid, action == "suspend")
            except AlreadyInState:
                continue
            except KdruidError as e:
                if isinstance(e, NotFound):
                    continue
                raise
