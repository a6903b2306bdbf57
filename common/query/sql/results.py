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

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from common.errors import InvalidInput
from common.jsonrows import (
    ARROW_ROWS,
    arrays_json_arrays,
    objects_json,
    objects_json_arrays,
    text_array,
    value_texts,
)
from common.query.javatext import (
    double_json_array,
    double_json_texts,
    double_texts,
    jackson_text,
)
from common.query.sql.execute import UTC_ZONES, ResultSet, iso_utc_array, json_values
from common.query.sql.functions import TS, java_double

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
        return jackson_text(java_double(value)).encode()
    if isinstance(value, list):
        return b"[" + b",".join(_json(v) for v in value) + b"]"
    return orjson.dumps(value)


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
    """The response body for ``rs`` in ``result_format``.

    Built from the columns: each column becomes its JSON-ready values once (doubles as Java's
    text, vectorised). ``object`` splices the rows from each column's JSON texts
    (``common.jsonrows``, no dict per row); the others carry doubles into orjson as
    ``orjson.Fragment`` and write the rows in one call per body (per line for ``*Lines``)."""
    if result_format not in FORMATS:
        raise InvalidInput(f"Unsupported resultFormat [{result_format}]; one of {list(FORMATS)}")
    if result_format == "csv":
        return _csv(rs, header, types_header, sql_types_header)
    names = rs.names
    if result_format == "object":
        if rs.num_rows >= ARROW_ROWS:
            body = objects_json_arrays(names, [_text_array(c, rs) for c in rs.columns])
        else:
            body = objects_json(names, [_texts(c, rs) for c in rs.columns], rs.num_rows)
        if header:
            head = _object_header(rs, types_header, sql_types_header)
            body = b"[" + head + (b"," + body[1:] if rs.num_rows else b"]")
        return body + b"\n"
    if result_format == "array" and rs.num_rows >= ARROW_ROWS:
        body = arrays_json_arrays([_text_array(c, rs) for c in rs.columns])
        if header:
            head = orjson.dumps(_array_header(rs, types_header, sql_types_header))
            body = head[:-1] + b"," + body[1:]
        return body + b"\n"
    cols = [_json_cells(c, rs) for c in rs.columns]
    if result_format in ("array", "arrayLines"):
        rows: list[Any] = list(zip(*cols, strict=True)) if cols else []
        if header:
            rows[:0] = _array_header(rs, types_header, sql_types_header)
        if result_format == "array":
            return orjson.dumps(rows) + b"\n"
        return b"\n".join(map(orjson.dumps, rows)) + b"\n\n"
    if len(set(names)) == len(names):
        objects: list[Any] = [dict(zip(names, r, strict=True)) for r in zip(*cols, strict=True)]
    else:  # a repeated name: each key written, as Druid's writer does (a dict would keep one)
        objects = [_object_fragment(names, r) for r in zip(*cols, strict=True)]
    if header:
        objects.insert(0, orjson.Fragment(_object_header(rs, types_header, sql_types_header)))
    if result_format == "object":
        return orjson.dumps(objects) + b"\n"
    return b"".join(orjson.dumps(o) + b"\n" for o in objects) + b"\n"


def _texts(col: pa.Array, rs: ResultSet) -> list[bytes]:
    """``_json_cells``' values as orjson writes them, a column at a time."""
    if pa.types.is_floating(col.type):
        return double_json_texts(col)
    return value_texts(_json_cells(col, rs))


def _text_array(col: pa.Array, rs: ResultSet) -> pa.Array:
    """``_texts`` as a binary array (``common.jsonrows.objects_json_arrays``): doubles and the
    columns whose values are written as they are (numbers, booleans, strings) built in Arrow,
    timestamps in UTC as ``iso_utc_array`` writes them; arrays and zoned timestamps from
    ``_texts``."""
    if pa.types.is_floating(col.type):
        return double_json_array(col)
    texts = None
    if pa.types.is_timestamp(col.type):
        if rs.time_zone in UTC_ZONES:
            texts = text_array(iso_utc_array(col.cast(TS)))
    elif not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        texts = text_array(col)
    return texts if texts is not None else pa.array(_texts(col, rs), pa.binary())


def _object_fragment(names: list[str], values: tuple[Any, ...]) -> orjson.Fragment:
    parts = [orjson.dumps(n) + b":" + orjson.dumps(v) for n, v in zip(names, values, strict=True)]
    return orjson.Fragment(b"{" + b",".join(parts) + b"}")


def _json_cells(col: pa.Array, rs: ResultSet) -> list[Any]:
    """A column's values as orjson writes them as Druid's JSON: doubles (also inside arrays) as
    fragments of Java's text, NaN and the infinities as strings (Jackson's
    QUOTE_NON_NUMERIC_NUMBERS)."""
    if pa.types.is_floating(col.type):
        return [None if t is None else orjson.Fragment(jackson_text(t)) for t in double_texts(col)]
    values = json_values(col, rs.time_zone, rs.stringify_arrays)
    if pa.types.is_large_list(col.type) and not rs.stringify_arrays:
        return [v if v is None else orjson.Fragment(_json(v)) for v in values]
    return values


def _csv(rs: ResultSet, header: bool, types_header: bool, sql_types_header: bool) -> bytes:
    lines: list[str] = []
    if header:
        lines += [_csv_line(h, False) for h in _array_header(rs, types_header, sql_types_header)]
    cols = [_csv_cells(c, rs) for c in rs.columns]
    single = len(cols) == 1
    for cells in zip(*cols, strict=True):
        lines.append(_csv_line(cells, single and cells[0] == ""))
    return ("".join(lines) + "\n").encode()


def _csv_cells(col: pa.Array, rs: ResultSet) -> list[str]:
    """A column's CSV cells: null as empty, doubles as Java's text."""
    if pa.types.is_floating(col.type):
        return ["" if t is None else t for t in double_texts(col)]
    values = json_values(col, rs.time_zone, rs.stringify_arrays)
    if pa.types.is_integer(col.type) or pa.types.is_string(col.type):
        return ["" if v is None else str(v) for v in values]
    return ["" if v is None else _csv_text(v) for v in values]


def _csv_text(v: Any) -> str:
    if isinstance(v, float):
        return java_double(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return orjson.dumps(v).decode()
    return str(v)


def _csv_line(cells: Sequence[str], quote_all: bool) -> str:
    """One opencsv line: a cell is quoted (``"`` doubled) only when it holds a comma, a quote
    or a line break, or when it is the only cell and empty."""
    out = []
    for c in cells:
        if quote_all or "," in c or '"' in c or "\n" in c or "\r" in c:
            c = '"' + c.replace('"', '""') + '"'
        out.append(c)
    return ",".join(out) + "\n"
