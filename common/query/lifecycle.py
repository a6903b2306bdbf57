"""The life of a query being served: its timeout and its cancellation by id.

A broker and a data node both run each query's work as its own task under the query's id, so
``DELETE /druid/v2/{queryId}`` can cancel it from another request, and the query's context
``timeout`` bounds it. The request that runs the query gets Druid's errors: ``QueryTimeout``
(504) when the timeout passes, ``QueryCancelled`` (500) when the id was cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from common.errors import InvalidInput, QueryCancelled, QueryTimeout
from common.query.models import Query

T = TypeVar("T")


def query_timeout_s(query: Query, default_s: float, max_s: float) -> float | None:
    """The query's timeout in seconds (None: no timeout), as Druid's ``QueryContexts``.

    ``context.timeout`` in ms wins over ``default_s`` (``druid.server.http.defaultQueryTimeout``);
    0 means no timeout; a timeout above ``max_s`` (``maxQueryTimeout``) is a bad query.
    """
    if "timeout" in query.context.model_fields_set:
        ms = query.timeout_ms
        if ms == 0:
            return None
        seconds = ms / 1000.0
    else:
        seconds = default_s
    if seconds > max_s:
        raise InvalidInput(
            f"Configured timeout = {int(seconds * 1000)} is more than enforced limit of "
            f"maxQueryTimeout {int(max_s * 1000)}."
        )
    return seconds if seconds > 0 else None


class RunningQueries:
    """The queries this node is working on, by query id."""

    def __init__(self) -> None:
        self._tasks: dict[str, set[asyncio.Task[Any]]] = {}
        self._cancelled: set[asyncio.Task[Any]] = set()

    def __contains__(self, query_id: str) -> bool:
        return bool(self._tasks.get(query_id))

    def cancel(self, query_id: str) -> bool:
        """Cancel every running task of ``query_id``; False if none was running."""
        tasks = self._tasks.get(query_id) or set()
        for task in tasks:
            if not task.done():
                self._cancelled.add(task)
                task.cancel()
        return bool(tasks)

    async def run(self, query_id: str, work: Coroutine[Any, Any, T], timeout_s: float | None) -> T:
        """Run ``work`` as a task of ``query_id`` under ``timeout_s``."""
        task = asyncio.get_running_loop().create_task(work, name=f"query:{query_id}")
        self._tasks.setdefault(query_id, set()).add(task)
        try:
            async with asyncio.timeout(timeout_s) as scope:
                return await task
        except TimeoutError:
            if scope.expired():
                raise QueryTimeout(
                    f"Query [{query_id}] timed out after {int((timeout_s or 0) * 1000)} ms"
                ) from None
            raise
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task in self._cancelled and (current is None or not current.cancelling()):
                raise QueryCancelled(f"Query [{query_id}] cancelled") from None
            raise
        finally:
            if not task.done():
                task.cancel()
            self._cancelled.discard(task)
            tasks = self._tasks.get(query_id)
            if tasks is not None:
                tasks.discard(task)
                if not tasks:
                    del self._tasks[query_id]
