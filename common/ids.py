"""Ids and names as Druid allows them, and how they travel in URLs.

``validate_id`` is Druid's ``IdUtils.validateId``: the rule for datasource names (``DataSchema``),
task ids (``TaskQueue.add``), supervisor ids and every other id that becomes a path on disk or a
path segment in a URL. Druid allows a lot: spaces, ``%``, ``?``, ``!`` and any character of the
Basic Multilingual Plane outside the control and private-use ranges (its own tests use
``alpha123..*~!@#&%^&*()-+ Россия\\ 한국 中国!``). Refused: empty, a leading ``.``, ``/``,
whitespace other than the space, and the characters Curator cannot hold in a znode path (the
checks below, with Druid's exact bounds). Druid works on UTF-16 units, so a character beyond
U+FFFF (an emoji) is refused there through its low surrogate; here it is refused directly.
One deliberate difference: Druid lets U+0000 through (its ``c > 0`` bound), but no metadata store
we use can hold it in a text column (PostgreSQL refuses it), so it is refused here.

``url_id`` percent-encodes one id as one URL path segment (Druid's ``StringUtils.urlEncode``):
every internal URL that carries a datasource, task, supervisor or segment id builds it with this,
never by pasting the raw id.
"""

from __future__ import annotations

from urllib.parse import quote

from common.errors import InvalidInput

#: Whitespace Java's ``\\s`` matches, minus the space (Druid's ``[^\\S ]``).
_BAD_WHITESPACE = frozenset("\t\n\x0b\f\r")


def _illegal(c: str) -> bool:
    n = ord(c)
    return (
        n == 0
        or 0 < n < 31
        or 127 < n < 159
        or 0xD800 <= n < 0xF8FF  # surrogates (a lone one cannot be stored) and private use
        or 0xFFF0 < n < 0xFFFF
        or n > 0xFFFF  # a surrogate pair in Druid's UTF-16
    )


def id_problem(field: str, value: object) -> str | None:
    """Why ``value`` is not a valid id for ``field`` (Druid's message), or None if it is."""
    if value is None or value == "":
        return f"Invalid value for field [{field}]: must not be null"
    if not isinstance(value, str):
        return f"Invalid value for field [{field}]: must be a string"
    if value.startswith("."):
        return f"Invalid value for field [{field}]: Value [{value}] cannot start with '.'."
    if "/" in value:
        return f"Invalid value for field [{field}]: Value [{value}] cannot contain '/'."
    if any(c in _BAD_WHITESPACE for c in value):
        return (
            f"Invalid value for field [{field}]: Value [{value}] contains illegal whitespace "
            "characters.  Only space is allowed."
        )
    for i, c in enumerate(value):
        if _illegal(c):
            return (
                f"Invalid value for field [{field}]: Value [{value}] contains illegal UTF8 "
                f"character [#{ord(c)}] at position [{i}]"
            )
    return None


def validate_id(field: str, value: object) -> str:
    """``value`` if Druid would accept it as ``field``; ``InvalidInput`` (400) otherwise."""
    problem = id_problem(field, value)
    if problem is not None:
        raise InvalidInput(problem)
    assert isinstance(value, str)
    return value


def url_id(value: str) -> str:
    """One id as one percent-encoded URL path segment (UTF-8; ``/``, ``%``, ``?``, space...)."""
    return quote(value, safe="")


#: Printable ASCII a header value may keep as is.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F))


def header_value(value: str) -> str:
    """``value`` for an HTTP header, which must be ASCII: kept if it is, else its non-ASCII and
    control characters percent-encoded (a user's ``queryId`` may be any string; a datasource
    name in an id is non-ASCII more often than not)."""
    if value.isascii() and value.isprintable():
        return value
    return quote(value, safe=_HEADER_SAFE)
