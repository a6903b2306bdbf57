"""HTTP long-polling state sync, both ends (docs/architecture.md, docs/long-polling.md).

* server: ``ChangeHistory`` (Druid's ``ChangeRequestHistory``), ``ChangeRequestsSnapshot`` (the
  response body) and ``add_longpoll_route`` (the ``GET ?counter=&hash=&timeout=`` endpoint);
* client: ``ChangeRequestSyncer`` (Druid's ``ChangeRequestHttpSyncer``).
"""

from common.longpoll.endpoint import add_longpoll_route, longpoll_response, parse_query
from common.longpoll.history import (
    DEFAULT_MAX_SIZE,
    SHUTTING_DOWN,
    ZERO,
    ChangeHistory,
    ChangeRequestsSnapshot,
    Counter,
)
from common.longpoll.syncer import (
    DEFAULT_SERVER_TIMEOUT,
    HTTP_TIMEOUT_EXTRA,
    MAX_BACKOFF,
    ChangeRequestSyncer,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_SERVER_TIMEOUT",
    "HTTP_TIMEOUT_EXTRA",
    "MAX_BACKOFF",
    "SHUTTING_DOWN",
    "ZERO",
    "ChangeHistory",
    "ChangeRequestSyncer",
    "ChangeRequestsSnapshot",
    "Counter",
    "add_longpoll_route",
    "longpoll_response",
    "parse_query",
]
