"""Row timestamp parsing for ``timestampSpec.format`` (Druid's ``TimestampParser``).

``make_timestamp_parser(format)`` returns a function from a raw field value (JSON number or
string) to epoch milliseconds, raising ``ValueError`` when the value cannot be parsed. Formats:

* ``iso``: ISO-8601 (``2024-01-01``, ``2024-01-01T10:00:00.123Z``, ``...+05:30``; no offset = UTC);
* ``auto``: a string of digits is millis, anything else ISO (a space instead of ``T`` and a
  trailing `` <zone id>`` are accepted); numbers are millis;
* ``millis``, ``posix`` (seconds), ``micro``, ``nano``, ``ruby`` (fractional seconds);
* anything else is a Joda-Time pattern (``yyyy-MM-dd HH:mm:ss``, ``dd/MMM/yyyy:HH:mm:ss Z``...),
  translated once to a ``strptime`` format; letters with no ``strptime`` equivalent are refused.

Numbers given to ``iso`` or a pattern are parsed from their text, as Druid does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.segments.errors import InvalidTime
from common.segments.isotime import MAX_INSTANT, MIN_INSTANT, parse_iso

TimestampParser = Callable[[Any], int]

NUMERIC_FORMATS = ("auto", "millis", "posix", "micro", "nano", "ruby")
NAMED_FORMATS = ("iso", *NUMERIC_FORMATS)
_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_MS = timedelta(milliseconds=1)
_DIGITS = re.compile(r"-?\d+")


def datetime_to_millis(d: datetime) -> int:
    """Exact epoch millis (truncating sub-millisecond digits); naive means UTC."""
    ms = (
        ((d.toordinal() - _EPOCH_ORDINAL) * 86400 + d.hour * 3600 + d.minute * 60 + d.second) * 1000
    ) + d.microsecond // 1000
    off = d.utcoffset()
    return ms - off // _MS if off else ms


def parse_iso_millis(text: str) -> int:
    try:
        return datetime_to_millis(datetime.fromisoformat(text))
    except ValueError:
        # fromisoformat is fast but stricter in places (e.g. >6 fraction digits before 3.11
        # patch releases); the segments parser follows Joda's grammar exactly.
        try:
            return parse_iso(text)
        except InvalidTime as e:
            raise ValueError(str(e)) from None


def _auto_string(text: str) -> int:
    text = text.strip().strip('"')
    if _DIGITS.fullmatch(text):
        return int(text)
    head, _, tail = text.rpartition(" ")
    if head and tail and ("/" in tail or tail.isalpha()):
        try:
            zone = ZoneInfo(tail)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is not None:
            local = datetime.fromisoformat(head)
            return datetime_to_millis(local.replace(tzinfo=zone) if local.tzinfo is None else local)
    return parse_iso_millis(text)


def _require_number_text(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"not a timestamp: {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    text = str(v).strip().strip('"')
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


def _numeric(scale: Callable[[int], int]) -> TimestampParser:
    return lambda v: scale(_require_number_text(v))


def _ruby(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"not a timestamp: {v!r}")
    return int(float(v) * 1000)


def _auto(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"not a timestamp: {v!r}")
    if isinstance(v, int | float):
        return int(v)
    return _auto_string(str(v))


def _iso(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"not a timestamp: {v!r}")
    return parse_iso_millis(str(v).strip())


# Joda letters -> strptime directives, longest run first within each letter.
_JODA: dict[str, list[tuple[int, str]]] = {
    "y": [(4, "%Y"), (3, "%Y"), (2, "%y"), (1, "%Y")],
    "Y": [(4, "%Y"), (3, "%Y"), (2, "%y"), (1, "%Y")],
    "M": [(4, "%B"), (3, "%b"), (1, "%m")],
    "d": [(1, "%d")],
    "D": [(1, "%j")],
    "H": [(1, "%H")],
    "h": [(1, "%I")],
    "m": [(1, "%M")],
    "s": [(1, "%S")],
    "a": [(1, "%p")],
    "E": [(4, "%A"), (1, "%a")],
    "Z": [(3, ""), (1, "%z")],  # ZZZ (a zone id) has no strptime directive
}


def joda_to_strptime(pattern: str) -> str:
    """Translate a Joda-Time pattern; ``ValueError`` naming the first unsupported letter."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise ValueError(f"unterminated quote in timestamp format {pattern!r}")
            literal = pattern[i + 1 : end] or "'"
            out.append(literal.replace("%", "%%"))
            i = end + 1
            continue
        if c.isalpha():
            run = 1
            while i + run < len(pattern) and pattern[i + run] == c:
                run += 1
            if c == "S":
                if run > 6:
                    raise ValueError(f"timestamp format {pattern!r}: at most 6 'S' digits")
                out.append("%f")
            else:
                directive = next((d for n, d in _JODA.get(c, []) if run >= n), None)
                if not directive:
                    raise ValueError(
                        f"timestamp format {pattern!r}: pattern letter {c * run!r} is not "
                        "supported (supported: y M d D H h m s S a E Z, 'quoted text')"
                    )
                out.append(directive)
            i += run
            continue
        out.append("%%" if c == "%" else c)
        i += 1
    return "".join(out)


def _pattern(fmt: str) -> TimestampParser:
    directives = joda_to_strptime(fmt)
    if not any(d in directives for d in ("%Y", "%y")):
        raise ValueError(f"timestamp format {fmt!r} has no year")

    def parse(v: Any) -> int:
        return datetime_to_millis(datetime.strptime(str(v).strip(), directives))

    return parse


def make_timestamp_parser(fmt: str) -> TimestampParser:
    """The parser for a ``timestampSpec.format``; ``ValueError`` if the format is unusable.

    Every parser rejects instants outside Druid's range with ``ValueError`` (the row is then
    unparseable), so a value such as ``1e300`` never reaches the index as an overflowing int.
    """
    parse = _parser_for(fmt)

    def bounded(v: Any) -> int:
        try:
            millis = parse(v)
        except OverflowError:
            raise ValueError(f"timestamp out of range: {v!r}") from None
        if not MIN_INSTANT <= millis <= MAX_INSTANT:
            raise ValueError(f"timestamp out of range: {v!r}")
        return millis

    return bounded


def _parser_for(fmt: str) -> TimestampParser:
    name = fmt.strip()
    key = name.lower()
    if key == "iso":
        return _iso
    if key == "auto":
        return _auto
    if key == "millis":
        return _numeric(lambda n: n)
    if key == "posix":
        return _numeric(lambda n: n * 1000)
    if key == "micro":
        return _numeric(lambda n: n // 1000)
    if key == "nano":
        return _numeric(lambda n: n // 1_000_000)
    if key == "ruby":
        return _ruby
    if not name:
        raise ValueError("empty timestamp format")
    return _pattern(name)
