"""The exception tree of kdruid and its mapping onto Druid's error JSON.

``common`` raises these domain errors; each app installs one handler (``install_error_handlers``)
that turns them into Druid's legacy error shape ``{"error", "errorMessage", "errorClass", "host"}``
with the HTTP status Druid uses for the same failure.

    KdruidError                      500 "Unknown exception"
    ├── ConfigError                  bad runtime.properties / environment (start-up only)
    ├── InvalidInput                 400 "Invalid input" (bad spec, bad request body)
    │   ├── QueryParseError          400 "Json parse failed"
    │   ├── SqlInputError            400 Druid's newer "druidException" shape (invalidInput)
    │   │   ├── SqlParseError        the SQL text does not parse
    │   │   └── PlanValidationError  it parses but cannot be planned
    │   └── ResourceLimitExceeded    400 "Resource limit exceeded"
    ├── NotFound                     404
    ├── Conflict                     409
    ├── CapacityExceeded             429 "Query capacity exceeded"
    ├── QueryCancelled               500 "Query cancelled"
    ├── SegmentMissing               500 segments no server answered for (SQL)
    ├── QueryTimeout                 504 "Query timeout"
    ├── UnsupportedQuery             501 "Unsupported query"
    ├── ServiceUnavailable           503 (no leader known, shutting down)
    ├── MetadataStoreError           500 a metadata store failure
    │   └── CompareAndSwapFailed     the row changed since it was read (retryable)
    └── DiscoveryError               500 announcing or discovering failed
"""

from __future__ import annotations

import logging
import socket
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.jsonresp import OrjsonResponse

log = logging.getLogger(__name__)


class KdruidError(Exception):
    """Base of every error kdruid raises on purpose."""

    status_code: ClassVar[int] = 500
    error_code: ClassVar[str] = "Unknown exception"
    error_class: ClassVar[str] = "org.apache.druid.java.util.common.RE"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def to_druid_json(self, host: str | None = None) -> dict[str, Any]:
        """Druid's legacy ``QueryException`` JSON for this error."""
        return {
            "error": self.error_code,
            "errorMessage": self.message,
            "errorClass": self.error_class,
            "host": host,
        }


class ConfigError(KdruidError):
    """A runtime property is unknown or malformed; the message names the key."""

    error_code = "Invalid configuration"


class InvalidInput(KdruidError):
    status_code = 400
    error_code = "Invalid input"
    error_class = "org.apache.druid.error.DruidException"


class QueryParseError(InvalidInput):
    error_code = "Json parse failed"
    error_class = "com.fasterxml.jackson.databind.exc.InvalidDefinitionException"


class SqlInputError(InvalidInput):
    """Bad SQL. Druid's broker answers these in its newer ``DruidException`` shape
    (``ErrorResponse``: ``InvalidSqlInput``, persona USER, category INVALID_INPUT) with the
    context values as text and ``sourceType: sql``."""

    def to_druid_json(self, host: str | None = None) -> dict[str, Any]:
        context = {"sourceType": "sql"}
        context.update({k: str(v) for k, v in self.context.items()})
        return {
            "error": "druidException",
            "errorCode": "invalidInput",
            "persona": "USER",
            "category": "INVALID_INPUT",
            "errorMessage": self.message,
            "context": context,
        }


class SqlParseError(SqlInputError):
    """The SQL text does not parse (Druid: ``Received an unexpected token [...]``)."""

    error_code = "SQL parse failed"
    error_class = "org.apache.calcite.sql.parser.SqlParseException"


class PlanValidationError(SqlInputError):
    """The SQL parses but names what does not exist, or asks for what cannot be planned."""

    error_code = "Plan validation failed"
    error_class = "org.apache.calcite.tools.ValidationException"


class ResourceLimitExceeded(InvalidInput):
    error_code = "Resource limit exceeded"
    error_class = "org.apache.druid.query.ResourceLimitExceededException"


class NotFound(KdruidError):
    status_code = 404
    error_code = "Not found"


class Conflict(KdruidError):
    status_code = 409
    error_code = "Conflict"


class CapacityExceeded(KdruidError):
    status_code = 429
    error_code = "Query capacity exceeded"
    error_class = "org.apache.druid.query.QueryCapacityExceededException"


class QueryCancelled(KdruidError):
    status_code = 500
    error_code = "Query cancelled"
    error_class = "org.apache.druid.query.QueryInterruptedException"


class SegmentMissing(KdruidError):
    """Segments of a query no server answered for, even after the retries (Druid's
    ``RetryQueryRunner`` fails the query with this unless ``returnPartialResults``)."""

    error_class = "org.apache.druid.query.SegmentMissingException"


class QueryTimeout(KdruidError):
    status_code = 504
    error_code = "Query timeout"
    error_class = "org.apache.druid.query.QueryTimeoutException"


class UnsupportedQuery(KdruidError):
    status_code = 501
    error_code = "Unsupported query"
    error_class = "org.apache.druid.query.QueryUnsupportedException"


class ServiceUnavailable(KdruidError):
    status_code = 503
    error_code = "Service unavailable"


class MetadataStoreError(KdruidError):
    error_code = "Metadata store failure"


class CompareAndSwapFailed(MetadataStoreError):
    """The row was changed by someone else since it was read; re-read and retry."""


class DiscoveryError(KdruidError):
    error_code = "Discovery failure"


def druid_error_response(exc: KdruidError, host: str | None) -> OrjsonResponse:
    return OrjsonResponse(exc.to_druid_json(host), status_code=exc.status_code)


def install_error_handlers(app: FastAPI, host: str | None = None) -> None:
    """Map every error an endpoint can raise onto Druid's JSON and status code.

    Bad request bodies (pydantic validation) become 400 ``Json parse failed`` with the first
    problem spelled out; anything unexpected becomes Druid's 500 ``Unknown exception``, logged.
    """
    host = host or socket.gethostname()

    @app.exception_handler(KdruidError)
    async def _kdruid(_: Request, exc: KdruidError) -> OrjsonResponse:
        if exc.status_code >= 500:
            log.warning("request failed: %s", exc)
        return druid_error_response(exc, host)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> OrjsonResponse:
        return druid_error_response(QueryParseError(describe_validation_errors(exc.errors())), host)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        err = KdruidError(str(exc.detail))
        body = err.to_druid_json(host)
        body["error"] = {404: "Not found", 405: "Method not allowed"}.get(
            exc.status_code, body["error"]
        )
        return OrjsonResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unhandled exception")
        err = KdruidError(f"Unhandled exception made it to the top: {type(exc).__name__}: {exc}")
        return druid_error_response(err, host)


def describe_validation_errors(errors: Any) -> str:
    """One readable line per pydantic error: ``field.path: message``."""
    parts = []
    for e in list(errors)[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts) or "invalid request"
