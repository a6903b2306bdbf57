"""The long-poll route as a plain ASGI endpoint: its declaration, its security, the disconnect
watch that runs ``receive()`` without a task, and the history's futures (no sockets, no sleeps)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from common.aio import wait_until
from common.auth import db
from common.auth.config import parse_security
from common.auth.declare import (
    INTERNAL,
    STATE,
    STATE_READ,
    DeclaredApp,
    add_asgi_route,
    check_routes,
    install_allow_all,
    install_security,
)
from common.auth.engine import SecurityEngine
from common.auth.model import Action, Resource, ResourceAction, UserAndRoleMap
from common.auth.passwords import make_credentials
from common.errors import ServiceUnavailable, install_error_handlers
from common.longpoll import ChangeHistory, add_longpoll_route
from common.longpoll.endpoint import DisconnectWatch, LongPollEndpoint

PATH = "/druid-internal/v1/segments"
BASIC = {
    "druid.auth.authenticatorChain": '["b"]',
    "druid.auth.authenticator.b.type": "basic",
    "druid.auth.authenticator.b.authorizerName": "z",
    "druid.auth.authorizers": '["z"]',
    "druid.auth.authorizer.z.type": "basic",
}


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


# ---- the declaration


async def test_a_plain_asgi_route_declares_through_add_asgi_route() -> None:
    app = FastAPI()
    router = APIRouter(prefix="/druid-internal/v1")
    add_asgi_route(router, "/hot", hello, dependencies=[INTERNAL], direct=True)
    app.include_router(router, prefix="/x")  # FastAPI copies a plain route; the endpoint stays
    (route,) = check_routes(app)
    assert route.path == "/x/druid-internal/v1/hot" and route.methods == {"GET", "HEAD"}
    assert route.need.describe() == "STATE:STATE:WRITE"
    assert isinstance(route.asgi, DeclaredApp) and route.asgi.direct
    install_allow_all(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get("/x/druid-internal/v1/hot")).text == "hi"


def test_plain_routes_that_cannot_declare_are_refused() -> None:
    bare = FastAPI()
    bare.router.routes.append(Route("/raw", hello))
    with pytest.raises(TypeError, match="'/raw' is not an API route and cannot declare"):
        check_routes(bare)
    undeclared = FastAPI()
    add_asgi_route(undeclared, "/raw", hello, dependencies=[])
    with pytest.raises(TypeError, match="GET/HEAD /raw declares no access"):
        check_routes(undeclared)
    twice = FastAPI()
    add_asgi_route(twice, "/raw", hello, dependencies=[STATE, INTERNAL])
    with pytest.raises(TypeError, match="declares access twice"):
        check_routes(twice)
    with pytest.raises(TypeError, match="runs no FastAPI dependency"):
        add_asgi_route(FastAPI(), "/raw", hello, dependencies=[INTERNAL, "x"])


def test_only_a_parameterless_resource_route_can_be_direct() -> None:
    app = FastAPI()
    add_asgi_route(app, "/raw/{x}", hello, dependencies=[INTERNAL], direct=True)
    with pytest.raises(TypeError, match=r"route /raw/\{x\} cannot be direct"):
        install_security(app, _Holder(engine({}, UserAndRoleMap())), "h1")


# ---- security on the long-poll route


class _Holder:
    def __init__(self, e: SecurityEngine) -> None:
        self.engine = e


def engine(users: dict[str, str], maps: UserAndRoleMap) -> SecurityEngine:
    settings = parse_security(BASIC)
    authn = {
        n: db.AuthenticatorUser(name=n, credentials=make_credentials(p, 1000))
        for n, p in users.items()
    }
    snap = db.SecuritySnapshot(authn={"b": authn}, authz={"z": maps}, loaded=True)
    return SecurityEngine(settings, lambda: snap)


def user_with(maps: UserAndRoleMap, user: str, action: Action) -> UserAndRoleMap:
    maps = db.assign_role(db.create_authz_user(db.create_role(maps, user), user), user, user)
    state = ResourceAction(resource=Resource(name="STATE", type="STATE"), action=action)
    return db.set_permissions(maps, user, [state])


def basic(user: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:pw-{user}".encode()).decode()}


class Seen:
    """A middleware inside security: which paths went through the app's inner stack."""

    def __init__(self, app: Any, paths: list[str]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
def history() -> ChangeHistory[dict[str, str]]:
    return ChangeHistory()


@pytest.fixture
async def secured(
    history: ChangeHistory[dict[str, str]],
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    maps = user_with(user_with(UserAndRoleMap(), "reader", Action.READ), "writer", Action.WRITE)
    app = FastAPI()
    install_error_handlers(app, "h1")
    add_longpoll_route(
        app, PATH, history, lambda: [{"id": "a"}], host="h1", dependencies=[INTERNAL]
    )
    add_asgi_route(app, "/druid-internal/v1/inner", hello, dependencies=[STATE_READ])
    seen: list[str] = []
    app.add_middleware(Seen, paths=seen)
    install_security(
        app, _Holder(engine({"reader": "pw-reader", "writer": "pw-writer"}, maps)), "h1"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c, seen


async def test_the_long_poll_route_needs_state_write(
    secured: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, seen = secured
    params = {"counter": -1, "timeout": 1000}
    anonymous = await client.get(PATH, params=params)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Basic"
    reader = await client.get(PATH, params=params, headers=basic("reader"))
    assert reader.status_code == 403
    assert reader.json() == {"Access-Check-Result": "Unauthorized"}
    # A bad parameter is only looked at once the user may ask at all.
    assert (await client.get(PATH, headers=basic("reader"))).status_code == 403
    bad = await client.get(PATH, headers=basic("writer"))
    assert bad.status_code == 400 and bad.json()["errorMessage"] == "timeout must be positive."
    writer = await client.get(PATH, params=params, headers=basic("writer"))
    assert writer.status_code == 200 and writer.json()["requests"] == [{"id": "a"}]
    # Served by the security middleware itself: the inner middleware never saw the long poll,
    # while a plain route that is not direct goes through it (and is authorized there too).
    assert seen == []
    inner = await client.get("/druid-internal/v1/inner", headers=basic("reader"))
    assert inner.status_code == 200 and inner.text == "hi"
    assert (await client.get("/druid-internal/v1/inner")).status_code == 401
    assert seen == ["/druid-internal/v1/inner"]
    # Other methods are not the long poll: routing answers them (Druid's 405 JSON).
    post = await client.post(PATH, headers=basic("writer"))
    assert post.status_code == 405 and post.json()["error"] == "Method not allowed"


async def test_a_forbidden_plain_route_off_the_direct_lane_is_403() -> None:
    app = FastAPI()
    add_asgi_route(app, "/w", hello, dependencies=[INTERNAL])
    install_security(
        app, _Holder(engine({"u": "pw-u"}, user_with(UserAndRoleMap(), "u", Action.READ))), "h"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/w", headers=basic("u"))
    assert r.status_code == 403 and r.json() == {"Access-Check-Result": "Unauthorized"}


async def test_parked_requests_all_get_the_change_and_leave_nothing_behind(
    secured: tuple[httpx.AsyncClient, list[str]], history: ChangeHistory[dict[str, str]]
) -> None:
    client, _ = secured
    at = history.last_counter
    params = {"counter": at.counter, "hash": at.hash, "timeout": 60000}
    polls = [
        asyncio.create_task(client.get(PATH, params=params, headers=basic("writer")))
        for _ in range(20)
    ]
    await wait_until(lambda: history.parked == 20, within=5, what="20 parked polls")
    timers = [entry[2] for entry in history._waiters.values()]
    history.add([{"id": "b"}])
    answers = await asyncio.gather(*polls)
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json()["requests"] == [{"id": "b"}]
    assert answers[0].headers["content-type"] == "application/json"
    assert history.parked == 0 and all(t.cancelled() for t in timers)


async def test_timeout_is_204_and_shutdown_503_on_the_direct_lane(
    secured: tuple[httpx.AsyncClient, list[str]], history: ChangeHistory[dict[str, str]]
) -> None:
    client, _ = secured
    at = history.last_counter
    params = {"counter": at.counter, "hash": at.hash, "timeout": 5}
    idle = await client.get(PATH, params=params, headers=basic("writer"))
    assert idle.status_code == 204 and idle.content == b""
    parked = asyncio.create_task(
        client.get(PATH, params={**params, "timeout": 60000}, headers=basic("writer"))
    )
    await wait_until(lambda: history.parked == 1, within=5, what="a parked poll")
    history.close()
    stopped = await parked
    assert stopped.status_code == 503
    assert stopped.json()["errorMessage"] == "Server is shutting down."
    assert stopped.json()["host"] == "h1"


# ---- the disconnect watch


class FakeConnection:
    """An ASGI ``receive``: the (empty) body, then a disconnect once ``hang_up`` is called."""

    def __init__(self, *, yields_first: bool = False) -> None:
        self.closed = asyncio.Event()
        self.yields_first = yields_first
        self.calls = 0
        self.finished = 0

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        try:
            if self.yields_first:
                await asyncio.sleep(0)  # a bare yield, not a future
            await self.closed.wait()
            return {"type": "http.disconnect"}
        finally:
            self.finished += 1

    def hang_up(self) -> None:
        self.closed.set()


@pytest.mark.parametrize("yields_first", [False, True])
async def test_watch_resolves_the_wait_when_the_client_hangs_up(yields_first: bool) -> None:
    conn = FakeConnection(yields_first=yields_first)
    wake: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    watch = DisconnectWatch(conn.receive, wake)
    await asyncio.sleep(0)
    assert conn.calls == 2 and not wake.done() and not watch.gone
    conn.hang_up()
    assert await asyncio.wait_for(wake, 5) is None
    assert watch.gone and conn.finished == 1
    watch.close()


async def test_closing_the_watch_ends_its_receive_and_leaves_no_callback() -> None:
    conn = FakeConnection()
    wake: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    watch = DisconnectWatch(conn.receive, wake)
    waiters = conn.closed._waiters
    assert waiters is not None and len(waiters) == 1
    watch.close()
    assert conn.finished == 1 and not waiters  # the receive's finally ran, its future is gone
    conn.hang_up()
    await asyncio.sleep(0)
    assert not wake.done() and not watch.gone


async def test_watch_stops_when_receive_replays_or_fails() -> None:
    calls = 0

    async def replaying() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"type": "http.request", "body": b"", "more_body": False}

    wake: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    DisconnectWatch(replaying, wake)
    assert calls == 2 and not wake.done()  # no spinning on a replayed body

    async def failing() -> dict[str, Any]:
        raise RuntimeError("boom")

    watch = DisconnectWatch(failing, wake)
    assert not wake.done() and not watch.gone
    watch.close()


async def test_watch_reads_a_body_in_chunks_before_watching() -> None:
    chunks = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.request", "body": b"b", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    wake: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    watch = DisconnectWatch(receive, wake)
    assert watch.gone and wake.done() and not chunks


# ---- the history's futures


async def test_park_is_done_at_once_when_there_is_an_answer() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    h.add(["a"])
    now = h.park(0, h._origin.hash, 60)
    assert now.done() and h.parked == 0
    snap = now.result()
    assert snap is not None and snap.requests == ["a"]


async def test_a_parked_future_times_out_with_none_and_leaves() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    at = h.last_counter
    waiter = h.park(at.counter, at.hash, 0.01)
    assert h.parked == 1
    assert await waiter is None
    assert h.parked == 0
    h.leave(waiter)  # harmless once gone


async def test_leave_forgets_the_waiter_and_its_timer() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    at = h.last_counter
    waiter = h.park(at.counter, at.hash, 60)
    timer = h._waiters[waiter][2]
    waiter.set_result(None)  # the caller stopped waiting (its client went away)
    h.leave(waiter)
    assert h.parked == 0 and timer.cancelled()
    h.add(["x"])  # nothing left to wake


async def test_close_fails_each_parked_future_with_its_own_error() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    at = h.last_counter
    waiters = [h.park(at.counter, at.hash, 60) for _ in range(2)]
    h.close()
    errors = [w.exception() for w in waiters]
    assert all(isinstance(e, ServiceUnavailable) for e in errors)
    assert errors[0] is not errors[1]
    assert h.parked == 0


async def test_deliver_runs_in_the_wake_pass_only_for_answers() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    at = h.last_counter
    got: list[tuple[list[str] | None, bool]] = []
    waiters: list[asyncio.Future[Any]] = []

    def deliver(answer: Any) -> None:
        got.append((answer.requests, all(w.done() for w in waiters)))

    def failing(answer: Any) -> None:
        raise RuntimeError("one watcher's failure")

    waiters += [h.park(at.counter, at.hash, 60, failing), h.park(at.counter, at.hash, 60, deliver)]
    h.add(["x"])
    # Called within add, before the futures resolve; a failing deliver holds no one back.
    assert got == [(["x"], False)]
    assert all(w.done() and w.result().requests == ["x"] for w in waiters)
    # Not for an answer ready at once, a timeout or a shutdown.
    assert h.park(at.counter, at.hash, 60, deliver).done()
    at = h.last_counter
    assert await h.park(at.counter, at.hash, 0.01, deliver) is None
    parked = h.park(at.counter, at.hash, 60, deliver)
    h.close()
    assert isinstance(parked.exception(), ServiceUnavailable)
    assert len(got) == 1


def _get(counter: int, hash_: int) -> Scope:
    query = f"counter={counter}&hash={hash_}&timeout=60000".encode()
    return {"type": "http", "method": "GET", "path": PATH, "query_string": query, "headers": []}


async def test_the_endpoint_answers_from_the_change_itself() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    endpoint = LongPollEndpoint(h, list, "host")
    at = h.last_counter
    conns = [FakeConnection() for _ in range(2)]
    sent: list[list[dict[str, Any]]] = [[], []]

    def sender(i: int) -> Send:
        async def send(message: Any) -> None:
            sent[i].append(message)

        return send

    tasks = [
        asyncio.create_task(endpoint(_get(at.counter, at.hash), conn.receive, sender(i)))
        for i, conn in enumerate(conns)
    ]
    await wait_until(lambda: h.parked == 2, within=5, what="both to park")
    h.add(["x"])
    # Both responses are out when add returns, before either request's task has run again.
    for messages, conn in zip(sent, conns, strict=True):
        assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
        assert messages[0]["status"] == 200
        assert b'"requests":["x"]' in messages[1]["body"]
        assert conn.finished == 1  # the watch's receive() was ended before the answer
    assert not any(t.done() for t in tasks)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert all(len(m) == 2 for m in sent) and h.parked == 0


async def test_a_send_that_waits_or_fails_from_the_change_ends_in_the_request() -> None:
    h: ChangeHistory[str] = ChangeHistory()
    endpoint = LongPollEndpoint(h, list, "host")
    at = h.last_counter
    drained = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def slow_send(message: Any) -> None:  # a full write buffer: send waits to drain
        await drained.wait()
        sent.append(message)

    async def failing_send(message: Any) -> None:
        raise RuntimeError("Unexpected ASGI message")

    slow = asyncio.create_task(
        endpoint(_get(at.counter, at.hash), FakeConnection().receive, slow_send)
    )
    failing = asyncio.create_task(
        endpoint(_get(at.counter, at.hash), FakeConnection().receive, failing_send)
    )
    await wait_until(lambda: h.parked == 2, within=5, what="both to park")
    h.add(["x"])
    with pytest.raises(RuntimeError, match="Unexpected ASGI message"):
        await asyncio.wait_for(failing, 5)
    await asyncio.sleep(0.01)
    assert not slow.done() and not sent
    drained.set()
    await asyncio.wait_for(slow, 5)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
