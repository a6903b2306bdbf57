"""What every route needs, declared in one line, checked when the app is built.

A route says what it needs with one dependency from this module::

    @router.get("/rules", dependencies=[STATE])                       # STATE, READ for GET
    @router.post("/rules/{dataSourceName}", dependencies=[datasource_param("dataSourceName")])
    @router.post("/druid/v2", dependencies=[SELF])    # handler calls authorize_datasources()
    @router.get("/status/health", dependencies=[OPEN])  # Druid's unsecured paths only

The action follows Druid's resource filters: GET reads, other methods write (``action=`` pins
it). ``check_routes`` refuses to build an app with a route that declares nothing (or two
things), so a new route cannot be left open. A hot path that cannot afford FastAPI's per-request
machinery (long polling: thousands of parked requests) is a plain ASGI endpoint added with
``add_asgi_route(router, path, app, dependencies=[INTERNAL])``: it declares the same way, is
checked the same way, and authorizes before ``app`` runs; with ``direct=True`` the security
middleware serves it itself once authorized, without the app's inner middleware. Any other
plain route (a bare Starlette ``Route`` or ``Mount``) cannot declare and is refused. At request
time ``SecurityMiddleware`` authenticates everything but the open paths (401 with
``WWW-Authenticate``), the dependency authorizes (403), and a success (2xx) from a route that
never ran an authorization check is turned into a 403, as Druid's
``PreResponseAuthorizationCheckFilter`` does (errors and the leader redirects carry no data and
pass).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.params import Depends as DependsParam
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.auth.engine import SecurityEngine, Unauthenticated
from common.auth.model import Action, AuthenticationResult, ResourceType, action_for_method
from common.jsonresp import dumps

log = logging.getLogger(__name__)

AUTH_KEY = "kdruid.auth"
CHECKED_KEY = "kdruid.authorization_checked"


class HasEngine(Protocol):
    @property
    def engine(self) -> SecurityEngine: ...


@dataclass(frozen=True)
class Need:
    """The dependency behind each declaration (``kind``: open, self or resource)."""

    kind: str
    resource_type: str = ""
    name: str | None = None
    param: str | None = None
    action: Action | None = None

    async def __call__(self, request: Request) -> None:
        self.check(request.scope)

    def check(self, scope: Scope) -> None:
        """Authorize the request of ``scope`` as declared, or raise ``Forbidden``."""
        if self.kind == "open":
            scope[CHECKED_KEY] = True
            return
        if self.kind == "self":
            return  # the handler authorizes (authorize_datasources / require)
        name = self.name
        if name is None:
            name = scope.get("path_params", {}).get(self.param or "")
        if not name:
            raise RuntimeError(f"route {scope['path']} declares path parameter {self.param}")
        _require(
            scope, self.resource_type, str(name), self.action or action_for_method(scope["method"])
        )

    def describe(self) -> str:
        if self.kind != "resource":
            return self.kind
        what = self.name if self.name is not None else "{" + (self.param or "") + "}"
        return f"{self.resource_type}:{what}:{self.action or 'by method'}"


def _need(kind: str, **kw: Any) -> Any:
    return Depends(Need(kind, **kw))


#: Druid's unsecured paths (``/status/health``, ``.../isLeader``): no authentication at all.
OPEN = _need("open")
#: The handler authorizes what it touches itself (queries: every datasource they read).
SELF = _need("self")
STATE = _need("resource", resource_type=ResourceType.STATE, name="STATE")
STATE_READ = _need("resource", resource_type=ResourceType.STATE, name="STATE", action=Action.READ)
CONFIG = _need("resource", resource_type=ResourceType.CONFIG, name="CONFIG")
#: Druid's basic-security endpoints: CONFIG ``security``.
SECURITY = _need("resource", resource_type=ResourceType.CONFIG, name="security")
#: Internal traffic (load queue, long polling, task chat and actions): STATE WRITE, which only
#: the internal client's and the admin's roles hold by default. Druid uses StateResourceFilter
#: (GET reads) here; kdruid asks WRITE for every method so a read-only dashboard user cannot
#: watch or drive the cluster's internal protocols.
INTERNAL = _need("resource", resource_type=ResourceType.STATE, name="STATE", action=Action.WRITE)


def datasource_param(param: str = "dataSourceName", action: Action | None = None) -> Any:
    """DATASOURCE named by the path parameter ``param``; action by method unless pinned."""
    return _need("resource", resource_type=ResourceType.DATASOURCE, param=param, action=action)


# ---- request-time helpers


class Forbidden(Exception):
    """A known user without the permission (403)."""


def authentication_of(request: Request) -> AuthenticationResult:
    return _authentication(request.scope)


def _authentication(scope: Scope) -> AuthenticationResult:
    result = scope.get(AUTH_KEY)
    if not isinstance(result, AuthenticationResult):
        raise RuntimeError("request was not authenticated (is SecurityMiddleware installed?)")
    return result


def _engine(request: Request) -> SecurityEngine:
    return _scope_engine(request.scope)


def _scope_engine(scope: Scope) -> SecurityEngine:
    holder: HasEngine = scope["app"].state.security
    return holder.engine


def require(request: Request, resource_type: str, name: str, action: Action) -> None:
    """Authorize one resource action for the request's user or raise ``Forbidden``."""
    _require(request.scope, resource_type, name, action)


def _require(scope: Scope, resource_type: str, name: str, action: Action) -> None:
    who = _authentication(scope)
    if not _scope_engine(scope).authorize(who, resource_type, name, action):
        raise Forbidden(f"{who.identity} lacks {action} on {resource_type} {name}")
    scope[CHECKED_KEY] = True


def authorize_datasources(
    request: Request, names: Iterable[str], action: Action = Action.READ
) -> None:
    """Every datasource a query touches must be allowed (an empty set still counts as checked)."""
    for name in sorted(set(names)):
        require(request, ResourceType.DATASOURCE, name, action)
    request.scope[CHECKED_KEY] = True


def allowed(request: Request, resource_type: str, name: str, action: Action = Action.READ) -> bool:
    """Filtering (SQL's INFORMATION_SCHEMA and sys): may the user see this resource?

    Call ``filtered(request)`` once the listing is cut to what ``allowed`` said."""
    return _engine(request).authorize(authentication_of(request), resource_type, name, action)


def filtered(request: Request) -> None:
    """The answer was filtered to what the user may see: that is its authorization check."""
    authentication_of(request)
    request.scope[CHECKED_KEY] = True


# ---- plain ASGI routes that declare


def _needs(dependencies: Sequence[Any]) -> list[Need]:
    return [
        d.dependency
        for d in dependencies
        if isinstance(d, DependsParam) and isinstance(d.dependency, Need)
    ]


class DeclaredApp:
    """A plain ASGI endpoint and its access declaration (``add_asgi_route``).

    It authorizes the request as declared (``Forbidden``, so 403) before ``app`` runs, wherever
    the route is mounted: FastAPI copies a plain route when its router is included, but keeps
    the endpoint, and this is the endpoint.
    """

    def __init__(self, app: ASGIApp, dependencies: Sequence[Any], *, direct: bool) -> None:
        needs = _needs(dependencies)
        if len(needs) != len(dependencies):
            raise TypeError(
                "a plain ASGI route runs no FastAPI dependency: it takes only one of "
                "common.auth.declare's declarations"
            )
        self.app = app
        self.dependencies = list(dependencies)
        self.needs = needs
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for need in self.needs:
            need.check(scope)
        await self.app(scope, receive, send)


def add_asgi_route(
    router: FastAPI | APIRouter,
    path: str,
    app: ASGIApp,
    *,
    dependencies: Sequence[Any],
    methods: Collection[str] = ("GET",),
    name: str | None = None,
    direct: bool = False,
) -> None:
    """Serve ``app`` (plain ASGI: no dependency solving, request object or exit stacks per
    request) at ``path``, declared like an API route: ``dependencies=[INTERNAL]``.

    ``direct=True`` (a path without parameters, a ``resource`` declaration): once the request is
    authenticated and authorized, ``SecurityMiddleware`` calls ``app`` itself. Nothing inside
    the security middleware runs for it then (the lookup scope, the leader redirect, the
    exception handlers; an unexpected exception still becomes Druid's 500 JSON), so ``app``
    must answer its own errors. The route is not in the OpenAPI document.
    """
    endpoint = DeclaredApp(app, dependencies, direct=direct)
    if isinstance(router, APIRouter):  # as ``add_api_route``; Starlette's ``add_route`` does not
        path = router.prefix + path
    # Starlette treats a non-function endpoint as an ASGI app; the annotation says otherwise.
    router.add_route(
        path, cast(Any, endpoint), methods=list(methods), name=name, include_in_schema=False
    )


# ---- app-creation check


@dataclass(frozen=True)
class DeclaredRoute:
    path: str
    methods: frozenset[str]
    need: Need
    #: The endpoint of a plain ASGI route (``add_asgi_route``); ``None`` for an API route.
    asgi: DeclaredApp | None = None


def _route_contexts(app: FastAPI) -> Iterator[Any]:
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.160: lazy included routers
    except ImportError:  # pragma: no cover - older FastAPI keeps flat route lists
        yield from app.routes
        return
    yield from iter_route_contexts(app.routes)


#: FastAPI's own pages (the OpenAPI schema and its viewers): STATE READ, checked by the middleware.
DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def check_routes(app: FastAPI) -> list[DeclaredRoute]:
    """Every route of ``app`` with its one declaration; ``TypeError`` naming any route without."""
    out: list[DeclaredRoute] = []
    for ctx in _route_contexts(app):
        path = str(getattr(ctx, "path", "") or "")
        if path in DOCS_PATHS:
            continue
        methods = frozenset(getattr(ctx, "methods", None) or ())
        deps = getattr(ctx, "dependencies", None)
        asgi = getattr(ctx, "endpoint", None)
        if not isinstance(asgi, DeclaredApp):
            asgi = None
        elif deps is None:
            deps = asgi.dependencies
        if deps is None:
            raise TypeError(
                f"route {path!r} is not an API route and cannot declare its access "
                "(a plain ASGI endpoint declares with common.auth.declare.add_asgi_route)"
            )
        needs = _needs(deps)
        if len(needs) != 1:
            what = "declares no access" if not needs else "declares access twice"
            raise TypeError(
                f"route {'/'.join(sorted(methods))} {path} {what}: add dependencies=[...] with one "
                "of common.auth.declare's OPEN, STATE, CONFIG, INTERNAL, SELF or datasource_param()"
            )
        out.append(DeclaredRoute(path, methods, needs[0], asgi))
    return out


def _direct_routes(declared: Iterable[DeclaredRoute]) -> dict[str, DeclaredRoute]:
    """The plain ASGI routes the security middleware serves itself (``direct=True``)."""
    direct: dict[str, DeclaredRoute] = {}
    for route in declared:
        if route.asgi is None or not route.asgi.direct:
            continue
        if "{" in route.path or route.need.kind != "resource":
            raise TypeError(
                f"route {route.path} cannot be direct: only a path without parameters with a "
                "resource declaration (STATE, INTERNAL, CONFIG...) is served by the middleware"
            )
        direct[route.path] = route
    return direct


# ---- the middleware


def _deny_headers(status: int) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b"Basic"))
    return headers


def unauthorized_body(host: str) -> bytes:
    return dumps(
        {
            "error": "Unauthorized",
            "errorMessage": "Unauthorized",
            "errorClass": None,
            "host": host,
        }
    )


FORBIDDEN_BODY = dumps({"Access-Check-Result": "Unauthorized"})


class SecurityMiddleware:
    """Authenticate every request but the open paths; refuse responses nobody authorized."""

    def __init__(
        self,
        app: ASGIApp,
        holder: HasEngine,
        open_paths: frozenset[str],
        host: str,
        direct: Mapping[str, DeclaredRoute] | None = None,
    ) -> None:
        self.app = app
        self.holder = holder
        self.open_paths = open_paths
        self.host = host
        self.direct: Mapping[str, DeclaredRoute] = direct or {}

    def _is_open(self, path: str, method: str) -> bool:
        engine = self.holder.engine
        if method == "OPTIONS" and engine.settings.allow_unauthenticated_http_options:
            return True
        if path in self.open_paths:
            return True
        for p in engine.settings.unsecured_paths:
            if path == p or (p.endswith("/*") and path.startswith(p[:-1])):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self._is_open(path, scope["method"]):
            scope[CHECKED_KEY] = True
            await self.app(scope, receive, send)
            return
        try:
            who = scope[AUTH_KEY] = self._authenticate(scope)
        except Unauthenticated:
            await _send(send, 401, unauthorized_body(self.host))
            return
        lane = self.direct.get(path)
        if lane is not None and scope["method"] in lane.methods and not scope.get("root_path"):
            # A ``direct`` plain ASGI route: authorized as declared, then its app, nothing
            # between. No response guard is needed: a ``resource`` declaration either marks the
            # request checked or raises ``Forbidden``.
            assert lane.asgi is not None
            if self._authorized(lane.need, scope):
                await lane.asgi.app(scope, receive, send)
            else:
                await _send(send, 403, FORBIDDEN_BODY)
            return
        if path in DOCS_PATHS:  # FastAPI's pages: whoever may read the cluster's state
            if not self.holder.engine.authorize(who, ResourceType.STATE, "STATE", Action.READ):
                await _send(send, 403, FORBIDDEN_BODY)
                return
            scope[CHECKED_KEY] = True
        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start":
                if message["status"] < 300 and not scope.get(CHECKED_KEY):
                    log.error(
                        "%s %s answered without an authorization check", scope["method"], path
                    )
                    replaced = True
                    await _send(send, 403, FORBIDDEN_BODY)
                    return
            elif replaced:
                return
            await send(message)

        await self.app(scope, receive, guarded_send)

    def _authenticate(self, scope: Scope) -> AuthenticationResult:
        # Not inline in ``__call__``: the decoded headers would live as long as its frame, that
        # is as long as the request (minutes for a parked long poll).
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        return self.holder.engine.authenticate(headers)

    @staticmethod
    def _authorized(need: Need, scope: Scope) -> bool:
        try:
            need.check(scope)
        except Forbidden as exc:
            log.info("forbidden: %s %s: %s", scope["method"], scope["path"], exc)
            return False
        return True


async def _send(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_deny_headers(status), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_security(app: FastAPI, holder: HasEngine, host: str) -> list[DeclaredRoute]:
    """Check every route's declaration, map ``Forbidden`` to 403, add the middleware."""
    declared = check_routes(app)
    open_paths = frozenset(r.path for r in declared if r.need.kind == "open")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Any:
        from starlette.responses import Response

        log.info("forbidden: %s %s: %s", request.method, request.url.path, exc)
        return Response(FORBIDDEN_BODY, status_code=403, media_type="application/json")

    app.add_middleware(
        SecurityMiddleware,
        holder=holder,
        open_paths=open_paths,
        host=host,
        direct=_direct_routes(declared),
    )
    app.state.security = holder
    app.state.declared_routes = declared
    return declared


@dataclass(frozen=True)
class _AllowAll:
    engine: SecurityEngine


def install_allow_all(app: FastAPI, host: str = "localhost") -> list[DeclaredRoute]:
    """Druid's default (``allowAll``) on an app that is not a node (tests, benchmarks):
    every route still has to declare its access."""
    from common.auth.config import SecuritySettings
    from common.auth.db import SecuritySnapshot

    snapshot = SecuritySnapshot(loaded=True)
    return install_security(
        app, _AllowAll(SecurityEngine(SecuritySettings(), lambda: snapshot)), host
    )


def spec_datasources(body: Any) -> list[str]:
    """The datasource(s) a task or supervisor spec writes (``dataSource``,
    ``spec.dataSchema.dataSource``, ``dataSchema.dataSource`` or ``dataSources``).

    Raises ``InvalidInput`` when there is none: what cannot be authorized is not accepted.
    """
    from common.errors import InvalidInput

    found: list[str] = []
    if isinstance(body, dict):
        spec = body.get("spec")
        for holder in (body, spec if isinstance(spec, dict) else {}):
            schema = holder.get("dataSchema")
            if isinstance(schema, dict) and isinstance(schema.get("dataSource"), str):
                found.append(schema["dataSource"])
        if isinstance(body.get("dataSource"), str):
            found.append(body["dataSource"])
        if isinstance(body.get("dataSources"), list):
            found.extend(d for d in body["dataSources"] if isinstance(d, str))
    if not found:
        raise InvalidInput("spec names no dataSource")
    return sorted(set(found))


def keep_security_outermost(app: FastAPI) -> None:
    """Run authentication before any other middleware (e.g. the leader redirect), so nothing
    answers an unauthenticated request but a 401."""
    app.user_middleware.sort(key=lambda m: getattr(m, "cls", None) is not SecurityMiddleware)
