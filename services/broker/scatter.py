"""Scatter-gather: send a query to the data nodes serving its segments, gather their partials.

One request per server, all in parallel over one shared HTTP client, each naming its segments in
a segments spec and carrying what is left of the query's timeout. Partials come back as Arrow IPC
streams, counted against the query's scatter-gather byte budget while they stream in. Segments a
server reports missing (or all of a server's segments, when the server cannot be reached) are
retried once on another replica; a server that closes the connection before answering (a stale
keep-alive connection) is first asked once more on a new connection. What is still missing is
reported to the caller, which merges and finalizes the partials (in a worker thread unless they
are small).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pyarrow as pa

from common.aio import Deadline
from common.errors import (
    CapacityExceeded,
    InvalidInput,
    KdruidError,
    QueryCancelled,
    QueryParseError,
    QueryTimeout,
    ResourceLimitExceeded,
    UnsupportedQuery,
)
from common.jsonresp import dumps
from common.query import finalize, from_ipc, merge
from common.query.datanode import descriptor_json
from common.query.http import RESPONSE_CONTEXT_HEADER, parse_response_context
from common.query.local import (
    is_local,
    max_subquery_rows,
    results_table,
    run_local,
    run_on_rows,
    subquery_of,
    union_members,
)
from common.query.models import Query
from common.query.specs import SegmentDescriptor
from services.broker.plan import ByteBudget, SegmentUnit, assign, segments_to_query
from services.broker.view import BrokerServerView, ServerRef

log = logging.getLogger(__name__)

_REMOTE_ERRORS: dict[str, type[KdruidError]] = {
    c.error_code: c
    for c in (
        QueryParseError,
        InvalidInput,
        ResourceLimitExceeded,
        CapacityExceeded,
        QueryCancelled,
        QueryTimeout,
        UnsupportedQuery,
    )
}


_JSON = {"Content-Type": "application/json"}


class _Unreachable(Exception):
    """The server could not answer (connection refused or reset, or 503): try elsewhere."""


@dataclass
class Partials:
    """Every data node's partial of a query, not yet merged, and what no server answered for."""

    partials: list[pa.Table]
    missing: list[SegmentDescriptor]
    servers: set[str] = field(default_factory=set)
    #: The partials are data nodes' answers, each already merged over the node's segments.
    from_nodes: bool = False

    @property
    def rows(self) -> int:
        return sum(p.num_rows for p in self.partials)

    def merged(self, query: Query) -> pa.Table:
        """The partials merged into one. One data node's answer is that node's ``merge`` over
        its segments, which merging again would give back unchanged: it is used as it is."""
        if self.from_nodes and len(self.partials) == 1:
            return self.partials[0]
        return merge(query, self.partials)


class ScatterGather:
    def __init__(
        self,
        view: BrokerServerView,
        client: aiohttp.ClientSession,
        *,
        rng: random.Random | None = None,
        retries: int = 1,
    ) -> None:
        self.view = view
        self.client = client
        self.rng = rng or random.Random()
        self.retries = retries
        #: Data nodes each running query was sent to (so a cancel can be forwarded).
        self.contacted: dict[str, set[str]] = {}

    async def gather(
        self, query: Query, *, max_bytes: int | None, timeout_s: float | None
    ) -> Partials:
        """Send the query to the servers of its segments (retrying missing ones elsewhere)."""
        special = await self._gather_datasource(query, max_bytes, timeout_s)
        if special is not None:
            return special
        deadline = Deadline(timeout_s)
        units = segments_to_query(self.view.timeline(query.dataSource), query.intervals.intervals)
        budget = ByteBudget(max_bytes, query.query_id)
        base = query.to_json()
        retries = (query.context.model_extra or {}).get("numRetriesOnMissingSegments", self.retries)
        retries = retries if isinstance(retries, int) and retries >= 0 else self.retries
        partials: list[pa.Table] = []
        missing: list[SegmentUnit] = []
        tried: dict[SegmentDescriptor, set[str]] = {}
        contacted = self.contacted.setdefault(query.query_id, set())
        pending = units
        try:
            for attempt in range(retries + 1):
                by_server, unavailable = assign(pending, self.view.servers_of, self.rng, tried)
                missing += unavailable
                pending = []
                calls = list(by_server.items())
                contacted.update(server.url for server, _ in calls)
                answers = await asyncio.gather(
                    *(self._call(s, base, us, budget, deadline) for s, us in calls)
                )
                for (server, server_units), (partial, lost) in zip(calls, answers, strict=True):
                    if partial is not None:
                        partials.append(partial)
                    for unit in server_units:
                        if unit.descriptor in lost:
                            tried.setdefault(unit.descriptor, set()).add(server.name)
                            pending.append(unit)
                if not pending:
                    break
                if attempt < retries:
                    log.info("query %s: retrying %d missing segments", query.query_id, len(pending))
            missing += pending
        finally:
            self.contacted.pop(query.query_id, None)
        return Partials(partials, [u.descriptor for u in missing], set(contacted), from_nodes=True)

    async def _gather_datasource(
        self, query: Query, max_bytes: int | None, timeout_s: float | None
    ) -> Partials | None:
        """Inline, query and union datasources (``common.query.local``); None for a table."""
        deadline = Deadline(timeout_s)
        if is_local(query):  # inline rows: answered here, no data node holds them
            return Partials([await asyncio.to_thread(run_local, query)], [])
        inner = subquery_of(query)
        if inner is not None:  # query datasource: run the inner query, then the outer on its rows
            got = await self.gather(inner, max_bytes=max_bytes, timeout_s=deadline.remaining())

            def outer() -> pa.Table:
                rows = finalize(inner, got.merged(inner))
                return run_on_rows(query, results_table(inner, rows, max_subquery_rows(query)))

            return Partials([await asyncio.to_thread(outer)], got.missing, got.servers)
        members = union_members(query)
        if members is None:
            return None
        parts = []  # union: each table in turn, within one deadline; the caller merges
        for m in members:
            parts.append(await self.gather(m, max_bytes=max_bytes, timeout_s=deadline.remaining()))
        return Partials(
            [p for g in parts for p in g.partials],
            [d for g in parts for d in g.missing],
            {s for g in parts for s in g.servers},
        )

    async def _call(
        self,
        server: ServerRef,
        base: dict[str, Any],
        units: list[SegmentUnit],
        budget: ByteBudget,
        deadline: Deadline,
    ) -> tuple[pa.Table | None, set[SegmentDescriptor]]:
        """One data node's partial and the descriptors it did not answer for."""
        body = dict(base)
        body["intervals"] = {
            "type": "segments",
            "segments": [descriptor_json(u.descriptor) for u in units],
        }
        remaining = deadline.remaining()
        # Druid's context timeout 0 means none; the node must not outlive the broker's deadline.
        body["context"] = {**base.get("context", {}), "timeout": _ms(remaining)}
        url = f"{server.url}/druid/v2"
        for attempt in range(2):
            answered = False  # a response began: a failure now is the server's, not the socket's
            try:
                async with self.client.post(
                    url,
                    data=dumps(body),
                    headers=_JSON,
                    timeout=aiohttp.ClientTimeout(
                        total=remaining, connect=min(remaining or 10.0, 10.0)
                    ),
                    allow_redirects=False,
                ) as resp:
                    answered = True
                    if resp.status == 503:
                        raise _Unreachable(f"{url} answered 503")
                    if resp.status != 200:
                        raise _remote_error(server, resp.status, await resp.read())
                    chunks: list[bytes] = []
                    async for chunk in resp.content.iter_any():
                        budget.take(len(chunk), url)
                        chunks.append(chunk)
                    context = parse_response_context(resp.headers.get(RESPONSE_CONTEXT_HEADER))
                break
            except aiohttp.ServerDisconnectedError as exc:
                if attempt == 0 and not answered:
                    # Most likely a pooled keep-alive connection the node closed as idle while
                    # this loop was busy (the close not yet seen): ask again on a new connection
                    # (a query is safe to send twice).
                    log.info("data node %s closed an idle connection; asking again", server.name)
                    continue
                return _unreachable_of(server, units, exc)
            except (aiohttp.ClientError, TimeoutError, _Unreachable) as exc:
                if isinstance(exc, TimeoutError) and deadline.expired:
                    raise QueryTimeout(f"Query timed out waiting for {server.name}") from None
                return _unreachable_of(server, units, exc)
        partial = from_ipc(b"".join(chunks))
        return partial, _missing_of(context)


def _unreachable_of(
    server: ServerRef, units: list[SegmentUnit], exc: Exception
) -> tuple[None, set[SegmentDescriptor]]:
    log.warning("data node %s failed, its segments go to replicas: %s", server.name, exc)
    return None, {u.descriptor for u in units}


def _ms(remaining: float | None) -> int:
    return 0 if remaining is None else max(1, int(remaining * 1000))


def _missing_of(context: dict[str, Any]) -> set[SegmentDescriptor]:
    out: set[SegmentDescriptor] = set()
    raw = context.get("missingSegments")
    for item in raw if isinstance(raw, list) else []:
        try:
            out.add(SegmentDescriptor.model_validate(item))
        except ValueError:
            log.warning("ignoring an unreadable missing segment %r", item)
    return out


def _remote_error(server: ServerRef, status: int, raw: bytes) -> KdruidError:
    """A data node's Druid error, raised again at the broker with the same code and status."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = f"{server.name}: {body.get('errorMessage') or raw[:200].decode(errors='replace')}"
    cls = _REMOTE_ERRORS.get(str(body.get("error")))
    if cls is None:
        cls = InvalidInput if 400 <= status < 500 else KdruidError
    return cls(message)
