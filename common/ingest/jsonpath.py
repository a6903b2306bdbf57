"""The JSONPath subset used by ``flattenSpec`` fields of type ``path``.

Supported: ``$``, ``.name``, ``['name']`` / ``["name"]``, ``[index]`` (negative counts from the
end) and ``[*]`` (every element; the result is then a list, a multi-value field in Druid).
Compiled once to a function over a decoded JSON value; a missing step gives ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

JsonPath = Callable[[Any], Any]

_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_$@][\w$@-]*)
      | \[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]
      | \[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*(?P<star>\*)\s*\]
      | \.(?P<dotstar>\*)""",
    re.VERBOSE,
)


def compile_json_path(expr: str) -> JsonPath:
    """``ValueError`` with the position for anything outside the subset."""
    text = expr.strip()
    if not text.startswith("$"):
        raise ValueError(f"JSONPath {expr!r} must start with '$'")
    steps: list[tuple[str, Any]] = []
    pos = 1
    while pos < len(text):
        m = _STEP.match(text, pos)
        if not m:
            raise ValueError(f"JSONPath {expr!r}: unsupported syntax at position {pos}")
        if m.group("name") is not None:
            steps.append(("key", m.group("name")))
        elif m.group("sq") is not None:
            steps.append(("key", m.group("sq").replace("\\'", "'")))
        elif m.group("dq") is not None:
            steps.append(("key", m.group("dq").replace('\\"', '"')))
        elif m.group("index") is not None:
            steps.append(("index", int(m.group("index"))))
        else:
            steps.append(("star", None))
        pos = m.end()

    def apply(value: Any, i: int = 0) -> Any:
        while i < len(steps):
            kind, arg = steps[i]
            if kind == "key":
                value = value.get(arg) if isinstance(value, dict) else None
            elif kind == "index":
                ok = isinstance(value, list) and -len(value) <= arg < len(value)
                value = value[arg] if ok else None
            else:
                if not isinstance(value, list | dict):
                    return None
                items = value if isinstance(value, list) else list(value.values())
                return [apply(v, i + 1) for v in items]
            if value is None:
                return None
            i += 1
        return value

    return apply
