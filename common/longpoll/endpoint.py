"""The HTTP face of a ``ChangeHistory``: Druid's ``GET ...?counter=&hash=&timeout=`` endpoint.

``add_longpoll_route(app, "/druid-internal/v1/segments", history, current_items,
dependencies=[INTERNAL])`` is all a role writes. The handler follows ``SegmentListerResource``
(druid-internals 3.2): ``timeout`` (ms) must be positive, a negative counter gets the full snapshot
at once, an up-to-date counter parks until a change (200) or the timeout (204). Errors are Druid's
error JSON, whatever handlers the app has.

A node holds one parked request per watcher (every broker and coordinator, the overlord for a
peon), so what one parked request holds is what this module is built around. The route is a plain
ASGI endpoint declared through ``common.auth.declare.add_asgi_route`` and served ``direct``: the
security middleware authenticates and authorizes it, then calls it, with no FastAPI request,
dependency solving, exit stacks or inner middleware held while it waits. A parked request is one
future in the history (``ChangeHistory.park``) and a watch on its connection that runs the
server's ``receive()`` without a task of its own (``DisconnectWatch``): when the client goes
away the wait ends at once, so an abandoned request does not hold its waiter until the timeout.
The answer to a change is one shared body, written as is to every watcher, from the history's
wake-up pass itself (``AnswerDelivery``): the 1,000 responses of a change go out in one run of
writes, and the 1,000 requests wrap up (the ASGI app returning, uvicorn's keep-alive) after.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from common.auth.declare import add_asgi_route
from common.errors import InvalidInput, KdruidError, druid_error_response
from common.longpoll.history import ChangeHistory, ChangeRequestsSnapshot, Waiter

T = TypeVar("T")

log = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")


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

    ``dependencies`` carries the route's access declaration (``common.auth.declare.INTERNAL``);
    an app with security installed refuses to start without one.

    ``current_items`` builds the full state for ``counter=-1`` (synchronous, see
    ``ChangeHistory.snapshot``); ``host`` goes into error bodies (default: this host's name).
    """
    endpoint = LongPollEndpoint(history, current_items, host or socket.gethostname())
    add_asgi_route(
        router,
        path,
        endpoint,
        dependencies=dependencies,
        methods=["GET"],
        name=name or "longpoll",
        direct=True,
    )


class LongPollEndpoint(Generic[T]):
    """The long-poll endpoint as a plain ASGI app (an object, so Starlette does not wrap it)."""

    def __init__(
        self, history: ChangeHistory[T], current_items: Callable[[], Iterable[T]], host: str
    ) -> None:
        self.history = history
        self.current_items = current_items
        self.host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            counter, hash_, timeout_ms = parse_query(query_params(scope))
            if counter < 0:
                answer: ChangeRequestsSnapshot[T] | None = self.history.snapshot(self.current_items)
            else:
                delivery = AnswerDelivery(send)
                waiter = self.history.park(counter, hash_, timeout_ms / 1000, delivery.deliver)
                if not waiter.done():
                    watch = delivery.watch = DisconnectWatch(receive, waiter)
                    try:
                        await waiter
                    finally:
                        watch.close()
                        self.history.leave(waiter)
                    if delivery.started:
                        await delivery.wait()  # the response went out from the wake-up pass
                        return
                    if watch.gone:
                        return  # nobody to answer
                answer = waiter.result()
        except KdruidError as exc:
            await druid_error_response(exc, self.host)(scope, receive, send)
            return
        if answer is None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        # The body is rendered once per answer and shared by every request that gets it.
        await _send_ok(send, answer.encoded())


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
        waiter = history.park(counter, hash_, timeout_ms / 1000)
        if not waiter.done() and await _wait(history, waiter, request.receive):
            # Any response will do: the server drops it, the connection being closed.
            return Response(status_code=204)
        snapshot = waiter.result()
    except KdruidError as exc:
        return druid_error_response(exc, host)
    if snapshot is None:
        return Response(status_code=204)
    return _ok(snapshot)


def query_params(scope: Scope) -> dict[str, str]:
    """The query string as Starlette's ``QueryParams`` reads it (the last value of a name)."""
    return dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))


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


async def _wait(history: ChangeHistory[T], waiter: Waiter[T], receive: Receive) -> bool:
    """Wait for ``waiter`` (parked in ``history``) or the client's disconnect; ``True`` if the
    client went away first."""
    watch = DisconnectWatch(receive, waiter)
    try:
        await waiter
    finally:
        watch.close()
        history.leave(waiter)
    return watch.gone


class AnswerDelivery:
    """Sends a parked request's 200 answer from ``ChangeHistory``'s wake-up pass (its
    ``deliver``), not from the request's own task when it resumes.

    ``deliver`` closes the disconnect watch (as the task would before answering) and runs the
    two ``send`` calls at once, by hand, in a copy of the request's context: with uvicorn they
    complete without waiting. If ``send`` must wait (the transport's write buffer is full), the
    rest runs from the done-callbacks of what it waits on, as a task would. The request's task
    then only wraps up: ``wait()`` returns once the response is sent, or raises what ``send``
    raised, so the server sees the failure as its own.
    """

    __slots__ = ("_context", "_coro", "_done", "_error", "_send", "started", "watch")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._context = contextvars.copy_context()
        self._coro: Coroutine[Any, Any, None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        #: ``deliver`` ran: the response is sent, or being sent (``wait``).
        self.started = False
        self.watch: DisconnectWatch | None = None

    def deliver(self, answer: ChangeRequestsSnapshot[Any]) -> None:
        if self.watch is not None:
            if self.watch.gone:
                return  # the client went away: the task returns without answering
            self.watch.close()
        self.started = True
        self._coro = _send_ok(self._send, answer.encoded())
        self._step()

    def _step(self, _: object = None) -> None:
        coro = self._coro
        if coro is None:
            return
        try:
            yielded = self._context.run(coro.send, None)
        except StopIteration:
            self._finish(None)
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._finish(exc)
            return
        if yielded is None:  # a bare yield: step again next turn
            asyncio.get_running_loop().call_soon(self._step)
        elif getattr(yielded, "_asyncio_future_blocking", None):
            yielded._asyncio_future_blocking = False
            yielded.add_done_callback(self._step)
        else:
            coro.close()
            self._finish(RuntimeError(f"long-poll send() waits on {yielded!r}"))

    def _finish(self, error: BaseException | None) -> None:
        self._coro = None
        self._error = error
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def wait(self) -> None:
        """Until the response is sent; raises what ``send`` raised."""
        if self._coro is not None:
            self._done = asyncio.get_running_loop().create_future()
            try:
                await self._done
            except asyncio.CancelledError:
                coro, self._coro = self._coro, None
                if coro is not None:
                    coro.close()
                raise
        if self._error is not None:
            raise self._error


async def _send_ok(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [_JSON, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


class DisconnectWatch:
    """Learn that the client went away, without a task: runs the ASGI ``receive()`` coroutine
    by hand, stepping it from the done-callback of the future it waits on (what a task would do,
    minus the task, its own coroutine and its scheduling).

    After the request body the server's next message is ``http.disconnect``: ``gone`` is then
    set and ``wake`` (the future the request waits on) resolved with ``None`` unless done.
    Anything else means a middleware replays messages and a disconnect cannot be seen; the watch
    stops then rather than spin (the request waits out its timeout), as it does if ``receive()``
    waits on something that is not an asyncio future. ``close()`` stops it: the pending
    ``receive()`` is closed (its ``finally`` blocks run) before the response is sent, so no
    message is lost to it.
    """

    __slots__ = ("_body_done", "_coro", "_pending", "_receive", "_wake", "gone")

    def __init__(self, receive: Receive, wake: asyncio.Future[Any]) -> None:
        self._receive = receive
        self._wake = wake
        self._coro: Coroutine[Any, Any, Message] | None = None
        self._pending: asyncio.Future[Any] | asyncio.Handle | None = None
        self._body_done = False
        self.gone = False
        self._next()

    def _next(self) -> None:
        self._coro = self._receive()  # type: ignore[assignment]
        self._step()

    def _step(self, _: object = None) -> None:
        self._pending = None
        coro = self._coro
        if coro is None:
            return
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            self._coro = None
            self._received(stop.value)
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the watch ends; the request waits out its timeout
            self._coro = None
            log.debug("disconnect watch stopped: receive() raised %r", exc)
            return
        if yielded is None:  # a bare yield (``asyncio.sleep(0)``): step again next turn
            self._pending = asyncio.get_running_loop().call_soon(self._step)
        elif getattr(yielded, "_asyncio_future_blocking", None):
            yielded._asyncio_future_blocking = False
            yielded.add_done_callback(self._step)
            self._pending = yielded
        else:
            log.debug("disconnect watch stopped: receive() waits on %r", yielded)
            self.close()

    def _received(self, message: Message) -> None:
        if message["type"] == "http.disconnect":
            self.gone = True
            if not self._wake.done():
                self._wake.set_result(None)
            return
        if self._body_done:
            return
        self._body_done = not message.get("more_body", False)
        self._next()

    def close(self) -> None:
        pending, self._pending = self._pending, None
        if isinstance(pending, asyncio.Handle):
            pending.cancel()
        elif pending is not None:
            pending.remove_done_callback(self._step)
        coro, self._coro = self._coro, None
        if coro is not None:
            try:
                coro.close()
            except RuntimeError as exc:  # it ignored GeneratorExit: nothing more to do
                log.debug("disconnect watch: receive() did not close: %s", exc)
