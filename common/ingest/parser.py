"""Kafka record bytes -> ``InputRow``s, with Druid's row accounting.

For each record (Druid's ``StreamChunkParser`` + ``InputRowSchema`` + ``Transformer``):

1. decode with the input format (``formats``); a broken record is *unparseable*;
2. take the timestamp (``timestampSpec``; a missing one uses ``missingValue``); a missing or
   unparseable timestamp makes the row *unparseable*;
3. apply ``transformSpec.transforms`` (each reads the row as it came in; one named ``__time``
   replaces the timestamp), then ``transformSpec.filter``; a filtered row is *thrownAway*, and so
   is a row outside ``granularitySpec.intervals`` or outside the caller's ``[min, max)`` window
   (late/early message rejection);
4. convert dimensions to their declared types and metric inputs to numbers; a value that does not
   convert becomes null and the row counts as *processedWithError* (it is still ingested);
   otherwise it counts as *processed*.

Failures go to the ``ParseExceptionHandler``, which may raise ``MaxParseExceptionsExceeded``:
that is the only exception ``parse`` lets out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from common.expr import ExpressionError, compile_expression
from common.expr.values import LONG_MAX, LONG_MIN
from common.ingest.formats import RecordError, make_decoder
from common.ingest.meters import ParseExceptionHandler, ParseFailure
from common.ingest.rowfilter import compile_filter
from common.ingest.sketch_metrics import SketchInputError, input_converter
from common.ingest.spec import (
    TIME_COLUMN,
    AggregatorSpec,
    DataSchema,
    DelimitedInputFormat,
    DimensionSchema,
    JsonInputFormat,
)
from common.ingest.timestamps import make_timestamp_parser

_MAX_SAVED_INPUT = 2000


class InputRow:
    """One parsed row: ``timestamp`` in epoch ms (not truncated), ``dims`` the dimension values
    present (name -> str | list[str] | int | float), ``metrics`` the converted input of each
    aggregator of ``metricsSpec`` in order (``None`` for ``count``)."""

    __slots__ = ("dims", "metrics", "timestamp")

    def __init__(self, timestamp: int, dims: dict[str, Any], metrics: tuple[Any, ...]) -> None:
        self.timestamp = timestamp
        self.dims = dims
        self.metrics = metrics

    def __repr__(self) -> str:
        return f"InputRow({self.timestamp}, {self.dims}, {self.metrics})"


class ConversionError(ValueError):
    pass


def _metric_converter(m: AggregatorSpec) -> Callable[[Any], Any] | None:
    """How a metric's input field is read: a number, a sketch input, or nothing (``count``)."""
    if m.type == "count":
        return None
    if m.is_sketch:
        return input_converter(m)
    return to_long if m.output_kind == "long" else to_double


def to_long(v: Any) -> int | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        if LONG_MIN <= v <= LONG_MAX:
            return v
        raise ConversionError(f"value [{v}] is out of the long range")
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ConversionError(f"could not convert value [{v}] to long")
        return to_long(int(v))
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return to_long(float(v))
            except (ValueError, OverflowError):
                pass
    raise ConversionError(f"could not convert value [{v}] to long")


def to_double(v: Any) -> float | None:
    if v is None or v == "":
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    raise ConversionError(f"could not convert value [{v}] to double")


def _scalar_str(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return orjson.dumps(v).decode()


def _null_first(x: str | None) -> tuple[bool, str]:
    return (x is not None, x or "")


def string_converter(handling: str) -> Callable[[Any], Any]:
    """A string dimension value: scalars as text; lists per ``multiValueHandling``; an empty
    list is null and a one-element list its element (Druid stores both that way)."""

    def convert(v: Any) -> Any:
        if not isinstance(v, list):
            return _scalar_str(v)
        items = [_scalar_str(x) for x in v]
        if handling == "SORTED_SET":
            items = sorted(set(items), key=_null_first)
        elif handling == "SORTED_ARRAY":
            items.sort(key=_null_first)
        if not items:
            return None
        return items[0] if len(items) == 1 else items

    return convert


def _dimension_converter(d: DimensionSchema) -> Callable[[Any], Any]:
    if d.type == "long":
        return to_long
    if d.type in ("float", "double"):
        return to_double
    return string_converter(d.multiValueHandling)


_DEFAULT_STRING = string_converter("SORTED_ARRAY")


def _discovered_typed(v: Any) -> Any:
    """``useSchemaDiscovery``: keep numbers as numbers (booleans as longs), lists as
    multi-value strings."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float | str):
        return v
    return _DEFAULT_STRING(v)


class RowParser:
    """Parses records for one ``dataSchema`` and ``inputFormat``; counts into ``handler``."""

    def __init__(
        self,
        schema: DataSchema,
        input_format: JsonInputFormat | DelimitedInputFormat,
        handler: ParseExceptionHandler,
    ) -> None:
        self.schema = schema
        self.handler = handler
        self.meters = handler.meters
        self._decode = make_decoder(input_format)
        ts = schema.timestampSpec
        self._ts_column = ts.column
        self._parse_ts = make_timestamp_parser(ts.format)
        self._missing_ts = ts.missing_millis()
        self._transforms = [
            (t.name, compile_expression(t.expression).evaluate)
            for t in schema.transformSpec.transforms
        ]
        self._filter = compile_filter(schema.transformSpec.filter)
        intervals = schema.granularitySpec.intervals
        self._intervals = [(i.start, i.end) for i in intervals] if intervals is not None else None
        dspec = schema.dimensionsSpec
        self._dims = [(d.name, _dimension_converter(d)) for d in dspec.dimensions]
        self._declared = set(dspec.names)
        self._discover = dspec.discovers
        self._discover_convert = _discovered_typed if dspec.useSchemaDiscovery else _DEFAULT_STRING
        self._exclusions = schema.dimension_exclusions()
        self._metrics: list[tuple[str | None, Callable[[Any], Any] | None]] = [
            (m.fieldName, _metric_converter(m)) for m in schema.metricsSpec
        ]

    def parse(
        self,
        value: bytes | None,
        now_ms: int,
        min_time: int | None = None,
        max_time: int | None = None,
    ) -> list[InputRow]:
        """Rows of one record; rows with a timestamp outside ``[min_time, max_time)`` are
        thrown away. Tombstones (``None``) and empty records give no rows and count nothing but
        their bytes."""
        if not value:
            return []
        self.meters.add_processed_bytes(len(value))
        try:
            events, failures = self._decode(value)
        except RecordError as e:
            self._fail(value, str(e), now_ms, fatal=True)
            return []
        for msg in failures:
            self._fail(value, msg, now_ms, fatal=True)
        rows: list[InputRow] = []
        for event in events:
            row = self._row(event, now_ms, min_time, max_time)
            if row is not None:
                rows.append(row)
        return rows

    def parse_many(
        self,
        values: Iterable[bytes | None],
        now_ms: int,
        min_time: int | None = None,
        max_time: int | None = None,
    ) -> list[InputRow]:
        out: list[InputRow] = []
        for v in values:
            out.extend(self.parse(v, now_ms, min_time, max_time))
        return out

    def parse_events(self, events: Iterable[dict[str, Any]], now_ms: int) -> list[InputRow]:
        """Rows of already decoded events (Parquet rows, rows of existing segments)."""
        out: list[InputRow] = []
        for event in events:
            row = self._row(dict(event), now_ms, None, None)
            if row is not None:
                out.append(row)
        return out

    def _fail(self, raw: bytes | dict[str, Any], msg: str, now_ms: int, fatal: bool) -> None:
        if isinstance(raw, bytes):
            text = raw[:_MAX_SAVED_INPUT].decode("utf-8", errors="replace")
        else:
            text = orjson.dumps(raw, default=str).decode()[:_MAX_SAVED_INPUT]
        self.handler.handle(ParseFailure(text, (msg,), fatal), now_ms)

    def _row(
        self,
        event: dict[str, Any],
        now_ms: int,
        min_time: int | None,
        max_time: int | None,
    ) -> InputRow | None:
        raw_ts = event.get(self._ts_column)
        if raw_ts is None:
            if self._missing_ts is None:
                self._fail(event, f"Timestamp[null] is unparseable! Event: {event}", now_ms, True)
                return None
            ts = self._missing_ts
        else:
            try:
                ts = self._parse_ts(raw_ts)
            except (ValueError, TypeError, OverflowError) as e:
                msg = f"Timestamp[{raw_ts}] is unparseable! Event: {event} ({e})"
                self._fail(event, msg, now_ms, True)
                return None

        if self._transforms:
            view = {**event, TIME_COLUMN: ts}
            try:
                results = [(name, ev(view)) for name, ev in self._transforms]
            except ExpressionError as e:
                self._fail(event, f"transform failed: {e}", now_ms, True)
                return None
            for name, result in results:
                if name == TIME_COLUMN:
                    try:
                        new_ts = to_long(result)
                    except ConversionError:
                        new_ts = None
                    if new_ts is None:
                        msg = f"Timestamp[{result}] from transform [__time] is unparseable!"
                        self._fail(event, msg, now_ms, True)
                        return None
                    ts = new_ts
                else:
                    event[name] = result

        if self._filter is not None:
            event[TIME_COLUMN] = ts
            keep = self._filter(event)
            del event[TIME_COLUMN]
            if not keep:
                self.meters.add_thrown_away()
                return None
        if (min_time is not None and ts < min_time) or (max_time is not None and ts >= max_time):
            self.meters.add_thrown_away()
            return None
        if self._intervals is not None and not any(s <= ts < e for s, e in self._intervals):
            self.meters.add_thrown_away()
            return None

        errors: list[str] | None = None
        dims: dict[str, Any] = {}
        for name, convert in self._dims:
            v = event.get(name)
            if v is None:
                continue
            try:
                v = convert(v)
            except ConversionError as e:
                (errors := errors or []).append(f"{e} for dimension [{name}]")
                continue
            if v is not None:
                dims[name] = v
        if self._discover:
            excluded, declared, discover = self._exclusions, self._declared, self._discover_convert
            for name, v in event.items():
                if v is None or name in declared or name in excluded or isinstance(v, dict):
                    continue
                v = discover(v)
                if v is not None:
                    dims[name] = v

        metrics: list[Any] = []
        for field, to_number in self._metrics:
            if to_number is None or field is None:
                metrics.append(None)
                continue
            try:
                metrics.append(to_number(event.get(field)))
            except (ConversionError, SketchInputError):
                (errors := errors or []).append(
                    f"Unable to parse value[{event.get(field)}] for field[{field}]"
                )
                metrics.append(None)

        if errors:
            self.handler.handle(
                ParseFailure(
                    orjson.dumps(event, default=str).decode()[:_MAX_SAVED_INPUT],
                    tuple(errors),
                    fatal=False,
                ),
                now_ms,
            )
        else:
            self.meters.increment("processed")
        return InputRow(ts, dims, tuple(metrics))
