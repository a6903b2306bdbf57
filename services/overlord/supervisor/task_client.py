"""The supervisor's chat client to its tasks (Druid's ``SeekableStreamIndexTaskClientAsyncImpl``).

Tasks are addressed at ``http://<host>:<port>/druid/worker/v1/chat/<taskId>/...`` where host and
port come from the task's current location (asked anew before every attempt, since a task may
move). Failures to connect, timeouts and 5xx answers are retried up to ``chatRetries`` times,
waiting a random ``[chatRetryMinWait, chatRetryMaxWait]`` (Druid: 2-10 s) between attempts; a task
with no location is not available and is not retried; other 4xx answers are not retried either.
Each attempt is bounded by ``httpTimeout``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from common.errors import KdruidError
from common.ids import url_id
from common.ingest.partitions import PartitionId
from services.overlord.supervisor.decisions import offsets_from_json, offsets_to_json
from services.overlord.supervisor.spec import ChatSettings

log = logging.getLogger(__name__)

#: task id -> (host, port) of the process serving its chat endpoints, or None if unknown.
Locator = Callable[[str], str | None]  # task id -> base URL

PAUSED = "PAUSED"


class TaskChatError(KdruidError):
    """A chat request to a task failed for good (after retries, or with a non-retryable answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TaskNotAvailable(TaskChatError):
    """The task has no location yet (not running), so it cannot be asked anything."""


class TaskChatClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        locate: Locator,
        settings: ChatSettings,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self._locate = locate
        self._settings = settings
        self._rng = rng or random.Random()

    async def _request(
        self,
        task_id: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        retry: bool = True,
    ) -> httpx.Response:
        s = self._settings
        attempts = s.retries + 1 if retry else 1
        last: str = ""
        for attempt in range(1, attempts + 1):
            where = self._locate(task_id)
            if where is None:
                raise TaskNotAvailable(f"task [{task_id}] has no location; it is not running")
            url = f"{where}/druid/worker/v1/chat/{url_id(task_id)}/{path}"
            try:
                resp = await self._http.request(
                    method,
                    url,
                    params=params,
                    content=None if body is None else orjson.dumps(body),
                    # Headers are ASCII: the id travels percent-encoded, as Druid's
                    # StringUtils.urlEncode does; the peon decodes it.
                    headers={
                        "X-Druid-Task-Id": url_id(task_id),
                        "Content-Type": "application/json",
                    },
                    timeout=s.http_timeout,
                )
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code < 500:
                    if resp.status_code >= 400:
                        raise TaskChatError(
                            f"{method} {path} on task [{task_id}] answered "
                            f"{resp.status_code}: {resp.text[:300]}",
                            resp.status_code,
                        )
                    return resp
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
            if attempt < attempts:
                wait = self._rng.uniform(s.min_wait, s.max_wait)
                log.info(
                    "%s %s on task [%s] failed (%s); retry %d/%d in %.1fs",
                    method, path, task_id, last, attempt, attempts - 1, wait,
                )  # fmt: skip
                await asyncio.sleep(wait)
        raise TaskChatError(f"{method} {path} on task [{task_id}] failed: {last}")

    # ---- endpoints
    async def status(self, task_id: str, retry: bool = True) -> str:
        resp = await self._request(task_id, "GET", "status", retry=retry)
        value = resp.json()
        return str(value)

    async def start_time(self, task_id: str) -> str | None:
        resp = await self._request(task_id, "GET", "time/start", retry=False)
        value = resp.json()
        return value if isinstance(value, str) else None

    async def current_offsets(self, task_id: str, retry: bool = True) -> dict[PartitionId, int]:
        resp = await self._request(task_id, "GET", "offsets/current", retry=retry)
        return offsets_from_json(resp.json())

    async def end_offsets(self, task_id: str) -> dict[PartitionId, int]:
        resp = await self._request(task_id, "GET", "offsets/end")
        return offsets_from_json(resp.json())

    async def checkpoints(self, task_id: str) -> dict[int, dict[PartitionId, int]]:
        resp = await self._request(task_id, "GET", "checkpoints")
        raw = resp.json()
        if not isinstance(raw, Mapping):
            return {}
        return {int(seq): offsets_from_json(offs) for seq, offs in raw.items()}

    async def pause(self, task_id: str, poll_interval: float = 0.2) -> dict[PartitionId, int]:
        """Pause the task and return its current offsets. A 202 means "not paused yet": poll the
        status until ``PAUSED`` (bounded by the retry budget), then read ``offsets/current``."""
        resp = await self._request(task_id, "POST", "pause")
        if resp.status_code == 200:
            return offsets_from_json(resp.json())
        s = self._settings
        budget = s.http_timeout * (s.retries + 1)
        loop = asyncio.get_running_loop()
        until = loop.time() + budget
        while loop.time() < until:
            if await self.status(task_id) == PAUSED:
                return await self.current_offsets(task_id)
            await asyncio.sleep(poll_interval)
        raise TaskChatError(f"task [{task_id}] did not pause within {budget:.0f}s")

    async def resume(self, task_id: str) -> None:
        await self._request(task_id, "POST", "resume")

    async def set_end_offsets(
        self, task_id: str, offsets: Mapping[PartitionId, int], finish: bool
    ) -> None:
        await self._request(
            task_id,
            "POST",
            "offsets/end",
            params={"finish": "true" if finish else "false"},
            body=offsets_to_json(offsets),
        )

    async def stop(self, task_id: str, publish: bool) -> None:
        await self._request(
            task_id, "POST", "stop", params={"publish": "true" if publish else "false"}
        )
