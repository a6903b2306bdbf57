"""Druid SQL result formats, byte for byte as Druid's writers (``sql/http/*Writer.java``).

- ``object``: ``[{...},{...}]`` + LF; ``array``: ``[[...],[...]]`` + LF.
- ``objectLines`` / ``arrayLines``: one JSON value per line, then an empty line.
- ``csv``: opencsv (quote only when needed, ``"`` doubled, LF), null as empty, then an empty line.
- ``header``: a first row of names (object formats: ``{"col":null}``); ``typesHeader`` and
  ``sqlTypesHeader`` add Druid's native and SQL types (object formats: ``{"col":{"type",
  "sqlType"}}``; array and csv formats: one more row each).

Doubles print as Java's ``Double.toString`` (Jackson does), timestamps as ISO-8601 text.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pyarrow as pa

from common.errors import InvalidInput
from common.query.sql.execute import ResultSet
from common.query.sql.functions import java_double

FORMATS = ("object", "array", "objectLines", "arrayLines", "csv")
CONTENT_TYPES = {
    "object": "application/json",
    "array": "application/json",
    "objectLines": "text/plain",
    "arrayLines": "text/plain",
    "csv": "text/csv",
}


def _json(value: Any) -> bytes:
    if isinstance(value, float):
        text = java_double(value)
        # Jackson writes NaN and the infinities as strings (QUOTE_NON_NUMERIC_NUMBERS)
        return (text if math.isfinite(value) else f'"{text}"').encode()
    if isinstance(value, list):
        return b"[" + b",".join(_json(v) for v in value) + b"]"
    return orjson.dumps(value)


def _json_row(values: list[Any]) -> bytes:
    if not any(isinstance(v, float | list) for v in values):
        return orjson.dumps(values)
    return b"[" + b",".join(_json(v) for v in values) + b"]"


def _json_object(names: list[str], values: list[Any]) -> bytes:
    parts = [orjson.dumps(n) + b":" + _json(v) for n, v in zip(names, values, strict=True)]
    return b"{" + b",".join(parts) + b"}"


def _object_header(rs: ResultSet, types: bool, sql_types: bool) -> bytes:
    parts = []
    for i, name in enumerate(rs.names):
        if not types and not sql_types:
            head = b"null"
        else:
            info: dict[str, str] = {}
            if types:
                info["type"] = rs.native_types[i]
            if sql_types:
                info["sqlType"] = rs.sql_types[i]
            head = orjson.dumps(info)
        parts.append(orjson.dumps(name) + b":" + head)
    return b"{" + b",".join(parts) + b"}"


def _array_header(rs: ResultSet, types: bool, sql_types: bool) -> list[list[Any]]:
    rows: list[list[Any]] = [list(rs.names)]
    if types:
        rows.append(list(rs.native_types))
    if sql_types:
        rows.append(list(rs.sql_types))
    return rows


def write_result(
    rs: ResultSet,
    result_format: str = "object",
    *,
    header: bool = False,
    types_header: bool = False,
    sql_types_header: bool = False,
) -> bytes:
    """The response body for ``rs`` in ``result_format``."""
    if result_format not in FORMATS:
        raise InvalidInput(f"Unsupported resultFormat [{result_format}]; one of {list(FORMATS)}")
    rows = rs.rows()
    if not header and result_format in ("object", "array") and _plain(rs):
        # No doubles (Java's text) nor lists: orjson writes the same bytes in one call.
        if result_format == "array":
            return orjson.dumps(rows) + b"\n"
        return orjson.dumps([dict(zip(rs.names, r, strict=True)) for r in rows]) + b"\n"
    if result_format in ("object", "objectLines"):
        items = [_json_object(rs.names, r) for r in rows]
        if header:
            items.insert(0, _object_header(rs, types_header, sql_types_header))
        if result_format == "object":
            return b"[" + b",".join(items) + b"]\n"
        return b"".join(i + b"\n" for i in items) + b"\n"
    if result_format in ("array", "arrayLines"):
        items = [_json_row(r) for r in rows]
        if header:
            items[:0] = [orjson.dumps(h) for h in _array_header(rs, types_header, sql_types_header)]
        if result_format == "array":
            return b"[" + b",".join(items) + b"]\n"
        return b"\n".join(items) + b"\n\n"
    lines: list[str] = []
    if header:
        lines += [_csv_line(h, False) for h in _array_header(rs, types_header, sql_types_header)]
    for r in rows:
        cells = ["" if v is None else _csv_text(v) for v in r]
        lines.append(_csv_line(cells, len(cells) == 1 and cells[0] == ""))
    return ("".join(lines) + "\n").encode()


def _plain(rs: ResultSet) -> bool:
    """Unique names and no double or list column."""
    if len(set(rs.names)) != len(rs.names):
        return False
    return not any(
        pa.types.is_floating(c.type)
        or pa.types.is_list(c.type)
        or pa.types.is_large_list(c.type)
        or pa.types.is_null(c.type)
        for c in rs.columns
    )


def _csv_text(v: Any) -> str:
    if isinstance(v, float):
        return java_double(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return orjson.dumps(v).decode()
    return str(v)


def _csv_line(cells: list[Any], quote_all: bool) -> str:
    out = []
    for c in cells:
        if c is None:
            out.append("")
            continue
        s = str(c)
        if quote_all or any(ch in s for ch in ',"\n\r'):
            s = '"' + s.replace('"', '""') + '"'
        out.append(s)
    return ",".join(out) + "\n"
