"""``POST /druid/v2/sql`` and ``DELETE /druid/v2/sql/{sqlQueryId}`` on the broker.

The SQL query's native query runs in-process through the broker's scatter-gather, under the
same capacity limiter, timeout and cancellation as ``/druid/v2``. The whole SQL request is a
running query of its ``sqlQueryId`` (and its native ``queryId`` defaults to it), so a DELETE
cancels it like a native cancel and forwards the cancel to the data nodes contacted.

Segments still missing after the scatter-gather's retries fail the SQL query (500,
``SegmentMissingException``) unless the context sets ``returnPartialResults``, as Druid's
``RetryQueryRunner``: an SQL answer has no response context to say it is partial, so it must not
silently leave them out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from common.auth.declare import SELF, STATE, authorize_datasources
from common.errors import QueryParseError, SegmentMissing, describe_validation_errors
from common.ids import header_value, url_id
from common.lookups.datasource import inline_lookups
from common.query import finalize, parse_query
from common.query.datanode import INLINE_MERGE_ROWS
from common.query.engine import finalized_table
from common.query.lifecycle import query_timeout_s
from common.query.models import Query
from common.query.specs import SegmentDescriptor
from common.query.sql.execute import NativeTable
from common.query.sql.results import CONTENT_TYPES, write_result
from common.query.sql.runner import NativeResult, SqlQuery, run_sql
from services.broker.plan import scatter_gather_limit
from services.broker.service import BrokerService
from services.broker.sql_auth import UserCatalog, authorized_runner
from services.broker.sql_catalog import BrokerCatalog

SQL_QUERY_ID_HEADER = "X-Druid-SQL-Query-Id"
HEADER_INCLUDED = "X-Druid-SQL-Header-Included"


def sql_router(service: BrokerService) -> APIRouter:
    router = APIRouter(tags=["sql"])
    http = service.settings.server_http

    async def run_native(body: dict[str, Any]) -> list[dict[str, Any]]:
        """Druid's JSON rows of a native query (the schema lookups)."""
        result = await native_result(body, columns=False)
        assert isinstance(result, list)
        return result

    async def sql_native(body: dict[str, Any]) -> NativeResult:
        """A SQL query's native query: a groupBy's or scan's finalized rows as columns, which
        the SQL layer reads without building Druid's JSON rows first (``NativeTable``)."""
        return await native_result(body, columns=True)

    async def native_result(body: dict[str, Any], *, columns: bool) -> NativeResult:
        # lookup.<name> tables and lookup join sides are this broker's lookups, inlined
        query = parse_query(inline_lookups(body, service.lookups.get))
        limit = scatter_gather_limit(
            service.max_scatter_gather_bytes,
            (query.context.model_extra or {}).get("maxScatterGatherBytes"),
        )
        timeout = query_timeout_s(query, http.default_query_timeout, http.max_query_timeout)

        async def work() -> NativeResult:
            got = await service.scatter.gather(query, max_bytes=limit, timeout_s=timeout)
            if got.missing and not return_partial_results(query):
                raise SegmentMissing(missing_message(got.missing))

            def render() -> NativeResult:
                merged = got.merged(query)
                table = finalized_table(query, merged) if columns else None
                if table is not None:
                    return NativeTable(table)
                return finalize(query, merged)

            # Merge and finalize in one step: inline when small (a thread hop costs more than
            # the work), else in one worker thread so the event loop stays free.
            return render() if got.rows <= INLINE_MERGE_ROWS else await asyncio.to_thread(render)

        return await service.running.run(query.query_id, work(), timeout)

    catalog = BrokerCatalog(service, run_native)

    async def post_sql(request: Request) -> Response:
        try:
            req = SqlQuery.model_validate(orjson.loads(await request.body()))
        except orjson.JSONDecodeError as exc:
            raise QueryParseError(f"Malformed JSON: {exc}") from exc
        except ValidationError as exc:
            raise QueryParseError(describe_validation_errors(exc.errors())) from exc
        qid = req.sql_query_id()
        # A statement that reads no datasource needs no permission, as in Druid; every
        # table it reads is authorized as it is planned (UserCatalog, authorized_runner).
        authorize_datasources(request, [])
        async with service.limiter:
            # The whole request (schema lookup, native query, post-processing) runs as a task
            # of the sqlQueryId, so a DELETE cancels it at whichever step it is.
            answer = await service.running.run(
                qid,
                run_sql(
                    req,
                    UserCatalog(catalog, request),
                    authorized_runner(sql_native, request),
                    sql_query_id=qid,
                    max_subquery_rows=http.max_subquery_rows,
                ),
                None,
            )
        body = write_result(
            answer.result,
            req.resultFormat,
            header=req.header,
            types_header=req.typesHeader,
            sql_types_header=req.sqlTypesHeader,
        )
        headers = {SQL_QUERY_ID_HEADER: header_value(qid)}
        if req.header:
            headers[HEADER_INCLUDED] = "yes"
        return Response(body, media_type=CONTENT_TYPES[req.resultFormat], headers=headers)

    async def cancel_sql(sql_query_id: str) -> Response:
        urls = sorted(service.scatter.contacted.get(sql_query_id, ()))
        found = service.running.cancel(sql_query_id)
        for url in urls:
            service.tasks.start(
                service.http.delete(f"{url}/druid/v2/{url_id(sql_query_id)}", timeout=5.0),
                f"cancel:{sql_query_id}",
            )
        return Response(status_code=202 if found or urls else 404)

    for path in ("/druid/v2/sql", "/druid/v2/sql/"):
        router.add_api_route(
            path, post_sql, methods=["POST"], summary="Run a Druid SQL query.", dependencies=[SELF]
        )
    router.add_api_route(
        "/druid/v2/sql/{sql_query_id}",
        cancel_sql,
        methods=["DELETE"],
        summary="Cancel SQL.",
        dependencies=[STATE],
    )
    return router


def return_partial_results(query: Query) -> bool:
    """Druid's ``returnPartialResults`` context key (default false)."""
    value = (query.context.model_extra or {}).get("returnPartialResults", False)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def missing_message(missing: list[SegmentDescriptor]) -> str:
    """Druid's ``SegmentMissingException`` message (descriptors as ``SegmentDescriptor``'s
    ``toString``)."""
    items = ", ".join(
        f"SegmentDescriptor{{interval={d.itvl}, version='{d.ver}', partitionNumber={d.part}}}"
        for d in missing
    )
    return f"No results found for segments[[{items}]]"
