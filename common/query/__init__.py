"""Druid native queries as a library: parse (``parse_query``), run per segment
(``run_segment``), merge partials (``merge``), finalize into Druid's JSON (``finalize``), and move
partials between nodes (``to_ipc``/``from_ipc``). See docs/native-queries.md."""

from common.query.engine import finalize, finalize_json, merge, run_segment
from common.query.ipc import from_ipc, to_ipc
from common.query.models import QUERY_TYPES, Query, parse_query

__all__ = [
    "QUERY_TYPES",
    "Query",
    "finalize",
    "finalize_json",
    "from_ipc",
    "merge",
    "parse_query",
    "run_segment",
    "to_ipc",
]
