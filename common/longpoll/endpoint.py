"""The HTTP face of a ``ChangeHistory``: Druid's ``GET ...?counter=&hash=&timeout=`` endpoint.

``add_longpoll_route(app, "/druid-internal/v1/segments", history, current_items)`` is all a role
writes. The handler follows ``SegmentListerResource`` (druid-internals 3.2): ``timeout`` (ms) must
be positive, a negative counter gets the full snapshot at once, an up-to-date counter parks until a
change (200) or the timeout (204). Errors are Druid's error JSON, whatever handlers the app has.

The route is a plain ASGI endpoint (no FastAPI dependency solving or exit stack held while a
request is parked), so it is not listed in the app's OpenAPI document. A parked request watches
its connection: when the client goes away the wait is cancelled at once, so an abandoned request
does not hold its waiter (and memory) until the timeout.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.types import Receive

from common.errors import InvalidInput, KdruidError, druid_error_response
from common.longpoll.history import ChangeHistory, ChangeRequestsSnapshot

T = TypeVar("T")


def add_longpoll_route(
    router: FastAPI | APIRouter,
    path: str,
    history: ChangeHistory[T],
    current_items: Callable[[], Iterable[T]],
    *,
    host: str | None = None,
    name: str | None = None,
    dependencies: Sequence[Any] = (),
) -> None:
    """Serve ``history`` as a Druid long-poll endpoint at ``GET path``.

    ``dependencies`` carries the route's access declaration (``common.auth.declare.INTERNAL``).

    ``current_items`` builds the full state for ``counter=-1`` (synchronous, see
    ``ChangeHistory.snapshot``); ``host`` goes into error bodies (default: this host's name).
    """
    error_host = host or socket.gethostname()

    async def longpoll(request: Request) -> Response:
        return await longpoll_response(request, history, current_items, host=error_host)

    router.add_api_route(
        path,
        longpoll,
        methods=["GET"],
        name=name,
        dependencies=list(dependencies),
        summary="Long-poll changes since ?counter=&hash= (timeout in ms); 204 when none came.",
    )


async def longpoll_response(
    request: Request,
    history: ChangeHistory[T],
    current_items: Callable[[], Iterable[T]],
    *,
    host: str | None = None,
) -> Response:
    """Answer one long-poll request; for roles that need their own route around it."""
    try:
        counter, hash_, timeout_ms = parse_query(request.query_params)
        if counter < 0:
            return _ok(history.snapshot(current_items))
        snapshot = history.poll(counter, hash_)
        if snapshot is None:
            snapshot = await _park(request.receive, history, counter, hash_, timeout_ms / 1000)
        if snapshot is None:
            return Response(status_code=204)
        return _ok(snapshot)
    except KdruidError as exc:
        return druid_error_response(exc, host)


def parse_query(params: Mapping[str, str]) -> tuple[int, int, int]:
    """``(counter, hash, timeout_ms)`` from the query string, with Druid's defaults and 400s.

    As in Druid's JAX-RS resource a missing ``counter`` or ``hash`` is 0, and a missing timeout
    counts as 0, which is rejected.
    """
    counter = _int_param(params.get("counter"), "counter")
    hash_ = _int_param(params.get("hash"), "hash")
    timeout_ms = _int_param(params.get("timeout"), "timeout")
    if timeout_ms <= 0:
        raise InvalidInput("timeout must be positive.")
    return counter, hash_, timeout_ms


def _int_param(raw: str | None, name: str) -> int:
    if raw is None or raw == "":
        return 0
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got [{raw}]") from None


def _ok(snapshot: ChangeRequestsSnapshot[T]) -> Response:
    # The body is rendered once per snapshot and shared by every request that gets it.
    return Response(snapshot.encoded(), media_type="application/json")


async def _park(
    receive: Receive,
    history: ChangeHistory[T],
    counter: int,
    hash_: int,
    timeout_s: float,
) -> ChangeRequestsSnapshot[T] | None:
    """``history.get_since`` that is cancelled the moment the client disconnects."""
    me = asyncio.current_task()
    assert me is not None
    gone = False

    def on_disconnect() -> None:
        nonlocal gone
        gone = True
        me.cancel()

    watcher = asyncio.create_task(_watch_disconnect(receive, on_disconnect), name="longpoll-watch")
    try:
        return await history.get_since(counter, hash_, timeout_s)
    except asyncio.CancelledError:
        if not gone:
            raise
        me.uncancel()
        # Any response will do: the server drops it, the connection being closed.
        return None
    finally:
        # Not awaited on purpose: an await here would open a window for the watcher's cancel to
        # land outside the handler above. A cancelled watcher ends at its next loop turn.
        watcher.cancel()


async def _watch_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> None:
    """Call ``on_disconnect`` when the ASGI server reports the client gone.

    After the (empty) request body the server's next message is ``http.disconnect``. Anything
    else means a middleware replays messages and disconnects cannot be seen; stop watching then
    rather than spin (the request just waits out its timeout).
    """
    body_done = False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            on_disconnect()
            return
        if body_done:
            return
        body_done = not message.get("more_body", False)
