"""The peon's HTTP clients: task actions on the overlord leader, handoff on the coordinator.

The leader of a role is found through discovery (any announced node of the role answers
``GET <prefix>/leader`` with the leader's base URL, as Druid's ``DruidLeaderClient``); the URL is
cached until a request to it fails. Actions are Druid's ``RemoteTaskActionClient``:
``POST /druid/indexer/v1/action`` with ``{"task", "action"}`` -> ``{"result"}``.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from common.aio import Backoff, Deadline
from common.discovery.leader_client import LeaderClient
from common.errors import KdruidError, ServiceUnavailable
from common.ids import url_id

log = logging.getLogger(__name__)

OVERLORD_PREFIX = "/druid/indexer/v1"
COORDINATOR_PREFIX = "/druid/coordinator/v1"
#: How long a task keeps trying to reach the overlord for one action before it fails.
ACTION_RETRY_SECONDS = 120.0


class TaskActionError(KdruidError):
    """The overlord refused or failed a task action."""

    error_code = "Task action failed"


class TaskActionClient:
    """Submits task actions for one task, retrying while the overlord cannot be reached."""

    def __init__(self, overlord: LeaderClient, task: dict[str, Any]) -> None:
        self.overlord = overlord
        keys = ("id", "type", "groupId", "dataSource", "resource")
        self.task: dict[str, Any] = {k: task[k] for k in keys if k in task}

    async def submit(self, action: dict[str, Any]) -> Any:
        body = {"task": self.task, "action": action}
        deadline = Deadline(ACTION_RETRY_SECONDS)
        backoff = Backoff(base=0.2, cap=5.0)
        while True:
            try:
                r = await self.overlord.request("POST", f"{OVERLORD_PREFIX}/action", json=body)
            except (httpx.HTTPError, ServiceUnavailable) as e:
                err: str = str(e) or type(e).__name__
            else:
                if r.status_code == 200:
                    return r.json().get("result")
                if r.status_code < 500 and r.status_code != 429:
                    raise TaskActionError(
                        f"action [{action['type']}] refused ({r.status_code}): {r.text[:500]}"
                    )
                err = f"{r.status_code}: {r.text[:500]}"
            if deadline.expired:
                raise TaskActionError(f"action [{action['type']}] failed: {err}")
            log.info("action %s failed (%s); retrying", action["type"], err)
            await backoff.sleep()


class HandoffClient:
    """``GET /druid/coordinator/v1/datasources/{ds}/handoffComplete`` (druid-internals 4.6)."""

    def __init__(self, coordinator: LeaderClient) -> None:
        self.coordinator = coordinator

    async def is_handed_off(
        self, data_source: str, interval: str, partition_num: int, version: str
    ) -> bool | None:
        """True/False as the coordinator says; None when it could not be asked."""
        try:
            r = await self.coordinator.request(
                "GET",
                f"{COORDINATOR_PREFIX}/datasources/{url_id(data_source)}/handoffComplete",
                params={"interval": interval, "partitionNumber": partition_num, "version": version},
            )
        except (httpx.HTTPError, ServiceUnavailable) as e:
            log.info("handoff check failed: %s", e)
            return None
        if r.status_code != 200:
            log.info("handoff check answered %s: %s", r.status_code, r.text[:200])
            return None
        return bool(r.json())
