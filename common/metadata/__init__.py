"""The SQL metadata store (SQLite or PostgreSQL): Druid's tables plus ``nodes`` and ``leases``.

Only this package talks SQL. ``MetadataStore`` is the entry point; the modules hold the schema
(``schema``), the engine and transactions (``engine``), URI parsing (``uri``) and one module of
query functions per concern (``nodes``, ``leases``, ``configs``, ``rules``).
"""

from common.metadata.engine import translate_errors
from common.metadata.leases import LeaseRow
from common.metadata.nodes import NodeRow
from common.metadata.rules import DEFAULT_DATASOURCE, DEFAULT_RULES, iso_millis
from common.metadata.schema import Tables
from common.metadata.segments import SegmentRow
from common.metadata.store import MetadataStore
from common.metadata.uri import URI_KEY, ConnectTarget, parse_connect_uri

__all__ = [
    "DEFAULT_DATASOURCE",
    "DEFAULT_RULES",
    "URI_KEY",
    "ConnectTarget",
    "LeaseRow",
    "MetadataStore",
    "NodeRow",
    "SegmentRow",
    "Tables",
    "iso_millis",
    "parse_connect_uri",
    "translate_errors",
]
