"""A JSON response rendered with orjson (fast, and handles datetimes and numpy scalars)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from common.jsonrows import OPTIONS as _OPTIONS


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
