"""Input formats: the bytes of one Kafka record -> event mappings (Druid's ``InputEntityReader``).

* ``json``: the record is one JSON object, or several separated by newlines. Any broken object
  makes the whole record unparseable, as in Druid. With a ``flattenSpec``, fields are taken by
  ``root`` / ``path`` (JSONPath subset) / ``tree`` and, with ``useFieldDiscovery``, every root
  field holding a primitive or a list of primitives.
* ``csv`` / ``tsv``: each record is a small file: ``skipHeaderRows`` lines are skipped, then with
  ``findColumnsFromHeader`` the next line names the columns. Empty values are null; a value
  containing ``listDelimiter`` (default ``\\u0001``) becomes a list (multi-value). A line with
  more values than columns is unparseable on its own; the record's other lines still count.

``make_decoder(fmt)`` returns ``decode(data) -> (events, failures)``; ``RecordError`` means the
whole record is unparseable.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import orjson

from common.ingest.jsonpath import compile_json_path
from common.ingest.spec import DelimitedInputFormat, FlattenSpec, JsonInputFormat

Event = dict[str, Any]
Decoder = Callable[[bytes], tuple[list[Event], list[str]]]
_PRIMITIVES = (str, int, float, bool)


class RecordError(ValueError):
    """The whole record cannot be parsed."""


def _preview(data: bytes, limit: int = 200) -> str:
    return data[:limit].decode("utf-8", errors="replace")


def _loads_objects(data: bytes) -> list[Event]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        obj, first = None, str(e)
    else:
        if isinstance(obj, dict):
            return [obj]
        raise RecordError(f"Unable to parse row [{_preview(data)}]: not a JSON object")
    # Not one document: try one object per line before giving up.
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    if len(lines) < 2:
        raise RecordError(f"Unable to parse row [{_preview(data)}]: {first}")
    out: list[Event] = []
    for ln in lines:
        try:
            item = orjson.loads(ln)
        except orjson.JSONDecodeError as e:
            raise RecordError(f"Unable to parse row [{_preview(ln)}]: {e}") from None
        if not isinstance(item, dict):
            raise RecordError(f"Unable to parse row [{_preview(ln)}]: not a JSON object")
        out.append(item)
    return out


def _primitive(x: Any) -> bool:
    return x is None or isinstance(x, _PRIMITIVES)


def _root_getter(key: str) -> Callable[[Event], Any]:
    return lambda e: e.get(key)


def _flattener(spec: FlattenSpec) -> Callable[[Event], Event]:
    getters: list[tuple[str, Callable[[Event], Any]]] = []
    for f in spec.fields:
        if f.type == "root":
            getters.append((f.name, _root_getter(f.expr or f.name)))
        elif f.type == "path":
            getters.append((f.name, compile_json_path(f.expr or "$")))
        else:
            nodes = list(f.nodes or [])

            def tree(e: Event, nodes: list[str] = nodes) -> Any:
                v: Any = e
                for n in nodes:
                    v = v.get(n) if isinstance(v, dict) else None
                return v

            getters.append((f.name, tree))
    discover = spec.useFieldDiscovery

    def flatten(e: Event) -> Event:
        out: Event = {}
        if discover:
            for k, v in e.items():
                if v is None or isinstance(v, _PRIMITIVES):
                    out[k] = v
                elif isinstance(v, list) and all(
                    x is None or isinstance(x, _PRIMITIVES) for x in v
                ):
                    out[k] = v
        for name, get in getters:
            out[name] = get(e)
        return out

    return flatten


def json_decoder(fmt: JsonInputFormat) -> Decoder:
    if fmt.flattenSpec is None or (
        not fmt.flattenSpec.fields and fmt.flattenSpec.useFieldDiscovery
    ):
        return lambda data: (_loads_objects(data), [])
    flatten = _flattener(fmt.flattenSpec)
    return lambda data: ([flatten(e) for e in _loads_objects(data)], [])


def _convert_number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def delimited_decoder(fmt: DelimitedInputFormat) -> Decoder:
    delimiter = fmt.field_delimiter
    list_delimiter = fmt.multi_value_delimiter
    fixed_columns = list(fmt.columns or [])
    from_header = bool(fmt.findColumnsFromHeader)
    skip = fmt.skipHeaderRows
    numbers = fmt.tryParseNumbers

    def value(text: str) -> Any:
        if text == "":
            return None
        if list_delimiter and list_delimiter in text:
            parts = text.split(list_delimiter)
            return [_convert_number(p) if numbers else p for p in parts]
        return _convert_number(text) if numbers else text

    def decode(data: bytes) -> tuple[list[Event], list[str]]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RecordError(f"Unable to parse row [{_preview(data)}]: {e}") from None
        try:
            lines = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
        except csv.Error as e:
            raise RecordError(f"Unable to parse row [{_preview(data)}]: {e}") from None
        lines = lines[skip:]
        columns = fixed_columns
        if from_header:
            if not lines:
                return [], []
            columns, lines = lines[0], lines[1:]
        events: list[Event] = []
        failures: list[str] = []
        n = len(columns)
        for row in lines:
            if len(row) > n:
                failures.append(
                    f"Unable to parse row [{delimiter.join(row)[:200]}]: found {len(row)} values "
                    f"but only {n} columns {columns}"
                )
                continue
            event = {c: value(v) for c, v in zip(columns, row, strict=False)}
            for c in columns[len(row) :]:
                event[c] = None
            events.append(event)
        return events, failures

    return decode


def make_decoder(fmt: JsonInputFormat | DelimitedInputFormat) -> Decoder:
    if isinstance(fmt, JsonInputFormat):
        return json_decoder(fmt)
    return delimited_decoder(fmt)
