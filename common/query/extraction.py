"""Druid's extraction functions, for ``extraction``/``lookup`` dimension specs and the
``extractionFn`` of filters (Druid's ``org.apache.druid.query.extraction``, SQL-compatible null
handling: a null input stays null unless the function says otherwise).

Lookups:

- ``{"type": "registeredLookup", "lookup": "name", ...}`` (``RegisteredLookupExtractionFn``): a
  lookup registered through the coordinator, as loaded on the node evaluating the query.
- ``{"type": "lookup", "lookup": {"type": "map", "map": {...}}, ...}`` (``LookupExtractionFn``):
  an inline ``map`` lookup carried in the query.

Both take ``retainMissingValue`` (a missing value keeps the input), ``replaceMissingValueWith``
(else the missing value becomes this; default null), ``injective`` and ``optimize`` (accepted:
they only let Druid choose a faster plan with the same answer). Both at once is Druid's 400
``Cannot specify a [replaceMissingValueWith] and set [retainMissingValue] to true``. Values are
looked up as strings (a LONG ``6`` as ``'6'``); see ``common.expr.lookups`` for null handling.

The others: ``regex``, ``partial``, ``searchQuery``, ``substring``, ``strlen``, ``timeFormat``,
``time``, ``upper``, ``lower``, ``cascade``, ``stringFormat``, ``bucket`` (see each class).
``javascript`` is refused (Druid disables JavaScript by default). A function sees a LONG value
as its digits and a DOUBLE as Java prints it, except ``timeFormat`` (epoch millis) and
``bucket`` (the number); ``__time`` is its epoch millis. Functions run once per distinct value
(on the dictionary of a dictionary-encoded column), then the results are taken back per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from common.errors import InvalidInput
from common.expr.fns_time import format_time, joda_tokens, parse_time, zone_of
from common.expr.kernels import normalise, strs
from common.expr.lookups import MapLookup, extract, resolve
from common.expr.values import java_double
from common.segments.granularity import Granularity, parse_granularity
from common.segments.period import Zone

SUPPORTED = (
    "registeredLookup",
    "lookup",
    "regex",
    "partial",
    "searchQuery",
    "substring",
    "strlen",
    "timeFormat",
    "time",
    "upper",
    "lower",
    "cascade",
    "stringFormat",
    "bucket",
)
TIME_COLUMN = "__time"


def _map_distinct(arr: Any, fn: Callable[[Any], str | None]) -> Any:
    """``fn`` over each distinct value of ``arr`` once, taken back per row, as strings."""
    encoded = pc.dictionary_encode(arr)
    mapped = pa.array([fn(x) for x in encoded.dictionary.to_pylist()], pa.string())
    out = mapped.take(encoded.indices)
    if arr.null_count:
        on_null = fn(None)
        if on_null is not None:
            out = pc.if_else(pc.is_null(arr), pa.scalar(on_null, pa.string()), out)
    return out


def _is_number(typ: pa.DataType) -> bool:
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ))


def _on_dictionary(fn: _Fn, values: Any) -> Any:
    """``fn`` over a dictionary array's dictionary once, taken back per row (a null row gets
    what ``fn`` makes of a null)."""
    out = fn.apply(values.dictionary).take(values.indices)
    if values.null_count:
        on_null = fn.apply(pa.nulls(1, pa.string()))[0]
        if on_null.is_valid:
            out = pc.if_else(pc.is_null(values), on_null, out)
    return out


class _Fn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def apply(self, values: Any) -> Any:
        """``values`` (a plain Arrow array of any type) as extracted strings; a dictionary
        array is extracted on its dictionary once."""
        if pa.types.is_dictionary(values.type):
            return _on_dictionary(self, values)
        return self._apply(normalise(values))

    def _apply(self, arr: Any) -> Any:
        return _map_distinct(strs(arr), self.one)

    def one(self, value: str | None) -> str | None:
        """Druid's ``apply(String)``."""
        raise NotImplementedError


class _LookupFn(_Fn):
    retainMissingValue: bool = False
    replaceMissingValueWith: str | None = None
    injective: bool | None = None
    optimize: bool = True

    @model_validator(mode="after")
    def _not_both(self) -> _LookupFn:
        if self.retainMissingValue and self.replaceMissingValueWith is not None:
            raise ValueError(
                "Cannot specify a [replaceMissingValueWith] and set [retainMissingValue] to true"
            )
        return self

    def extractor(self) -> MapLookup:
        raise NotImplementedError

    def apply(self, values: Any) -> Any:
        if pa.types.is_dictionary(values.type):
            return _on_dictionary(self, values)
        return extract(
            self.extractor(),
            strs(normalise(values)),
            self.replaceMissingValueWith,
            self.retainMissingValue,
        )


class RegisteredLookupFn(_LookupFn):
    type: Literal["registeredLookup"]
    lookup: str = Field(min_length=1)

    def extractor(self) -> MapLookup:
        return resolve(self.lookup)


class MapLookupSpec(BaseModel):
    """An inline ``map`` lookup: ``{"type": "map", "map": {...}, "isOneToOne": false}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["map"] = "map"
    map: dict[str, str | None]
    isOneToOne: bool = False

    @model_validator(mode="before")
    @classmethod
    def _map_only(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type", "map") != "map":
            raise ValueError(
                f"inline lookup type [{data.get('type')}] is not supported; only [map]"
            )
        return data


class InlineLookupFn(_LookupFn):
    type: Literal["lookup"]
    lookup: MapLookupSpec

    def extractor(self) -> MapLookup:
        return MapLookup(self.lookup.map, self.lookup.isOneToOne)


def _compile(expr: str) -> re.Pattern[str]:
    try:
        return re.compile(expr)
    except re.error as exc:
        raise ValueError(f"invalid regex [{expr}]: {exc}") from None


class RegexFn(_Fn):
    """``regex``: the ``index``-th group (default 1; 0 is the whole match) of the first match of
    ``expr``; no match keeps the value, or gives ``replaceMissingValueWith`` when
    ``replaceMissingValue``. A group that did not take part is null."""

    type: Literal["regex"]
    expr: str
    index: int = 1
    replaceMissingValue: bool = False
    replaceMissingValueWith: str | None = None

    @model_validator(mode="after")
    def _check(self) -> RegexFn:
        groups = _compile(self.expr).groups
        if self.index < 0 or self.index > groups:
            raise ValueError(
                f"regex extractionFn index [{self.index}] must be between 0 and the number of "
                f"groups [{groups}] in [{self.expr}]"
            )
        return self

    def one(self, value: str | None) -> str | None:
        m = None if value is None else _compile(self.expr).search(value)
        if m is not None:
            return m.group(self.index)
        return self.replaceMissingValueWith if self.replaceMissingValue else value


class PartialFn(_Fn):
    """``partial``: the value when ``expr`` matches somewhere in it, else null."""

    type: Literal["partial"]
    expr: str

    @field_validator("expr")
    @classmethod
    def _valid(cls, v: str) -> str:
        _compile(v)
        return v

    def one(self, value: str | None) -> str | None:
        if value is None or _compile(self.expr).search(value) is None:
            return None
        return value


class SearchSpec(BaseModel):
    """Druid's ``SearchQuerySpec``: ``contains`` (``value``, ``caseSensitive`` default false),
    ``insensitive_contains``, ``fragment`` (all of ``values``), ``regex`` (``pattern`` found)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["contains", "insensitive_contains", "fragment", "regex"]
    value: str | None = None
    values: list[str] | None = None
    caseSensitive: bool = False
    pattern: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        if isinstance(data, dict):
            typ = data.get("type")
            if typ not in ("contains", "insensitive_contains", "fragment", "regex"):
                raise ValueError(
                    f"search query spec type [{typ}] is not supported; expected contains, "
                    "insensitive_contains, fragment or regex"
                )
        return data

    @model_validator(mode="after")
    def _fields(self) -> SearchSpec:
        if self.type == "regex":
            if self.pattern is None:
                raise ValueError("a regex search query spec needs a [pattern]")
            _compile(self.pattern)
        if self.type == "fragment" and self.values is None:
            raise ValueError("a fragment search query spec needs [values]")
        return self

    def accept(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.type == "regex":
            assert self.pattern is not None
            return _compile(self.pattern).search(value) is not None
        case = self.caseSensitive and self.type != "insensitive_contains"
        if self.type != "fragment" and self.value is None:
            return False  # Druid's contains without a value matches nothing
        wanted = (self.values or []) if self.type == "fragment" else [self.value or ""]
        text = value if case else value.lower()
        return all((w if case else w.lower()) in text for w in wanted)

    def mask(self, arr: Any) -> Any:
        """Per row of a string array: true when accepted, null for a null value."""
        hit = _map_distinct(arr, lambda v: None if v is None else "1" if self.accept(v) else "")
        return pc.equal(hit, "1")


class SearchQueryFn(_Fn):
    """``searchQuery``: the value when the search ``query`` accepts it, else null."""

    type: Literal["searchQuery"]
    query: SearchSpec

    def one(self, value: str | None) -> str | None:
        return value if self.query.accept(value) else None


class SubstringFn(_Fn):
    """``substring``: from ``index`` for ``length`` characters (to the end without it); null
    when ``index`` is at or past the end."""

    type: Literal["substring"]
    index: int = Field(ge=0)
    length: int | None = Field(default=None, ge=0)

    def one(self, value: str | None) -> str | None:
        if value is None or self.index >= len(value):
            return None
        if self.length is not None and self.index + self.length > 0:
            return value[self.index : self.index + self.length]
        return value[self.index :]


class StrlenFn(_Fn):
    """``strlen``: the length in UTF-16 units, as Java counts; null stays null."""

    type: Literal["strlen"]

    def one(self, value: str | None) -> str | None:
        if value is None:
            return None
        return str(len(value.encode("utf-16-le")) // 2)


def _english(locale: str | None) -> str | None:
    if locale is not None and locale.split("-")[0].split("_")[0].lower() not in ("", "en"):
        raise ValueError(f"locale [{locale}] is not supported; kdruid formats in English only")
    return locale


def _joda(pattern: str) -> str:
    try:
        joda_tokens(pattern)
    except Exception as exc:  # the expression error names the letter
        raise ValueError(str(exc)) from None
    return pattern


class TimeFormatFn(_Fn):
    """``timeFormat``: epoch millis (``__time``, a LONG) or a time string (ISO, or millis digits
    with ``asMillis``) bucketed by ``granularity`` and printed with the Joda ``format`` (ISO
    without one; the millis with ``asMillis`` and no format) in ``timeZone``."""

    type: Literal["timeFormat"]
    format: str | None = None
    timeZone: str | None = None
    locale: str | None = None
    granularity: Any = None
    asMillis: bool = False

    @model_validator(mode="after")
    def _check(self) -> TimeFormatFn:
        if self.asMillis and self.format is None:
            if self.timeZone is not None:
                raise ValueError("timeZone requires a format")
            if self.locale is not None:
                raise ValueError("locale requires a format")
        if self.format is not None:
            _joda(self.format)
        _english(self.locale)
        self._zone()
        self._granularity()
        return self

    def _zone(self) -> Zone:
        try:
            return zone_of(self.timeZone)
        except Exception as exc:
            raise ValueError(f"invalid timeZone [{self.timeZone}]: {exc}") from None

    def _granularity(self) -> Granularity:
        try:
            return parse_granularity(self.granularity)
        except Exception as exc:
            raise ValueError(f"invalid granularity [{self.granularity}]: {exc}") from None

    def print_millis(self, t: int | None) -> str | None:
        if t is None:
            return None
        start = self._granularity().bucket_start(t)
        if self.asMillis and self.format is None:
            return str(start)
        return format_time(start, self.format, self._zone())

    def _apply(self, arr: Any) -> Any:
        if pa.types.is_floating(arr.type):
            raise InvalidInput("a timeFormat extractionFn on a DOUBLE column is not supported")
        if pa.types.is_integer(arr.type):
            return _map_distinct(arr, self.print_millis)
        return _map_distinct(strs(arr), self.one)

    def one(self, value: str | None) -> str | None:
        if value is None:
            return None
        if self.asMillis and re.fullmatch(r"[+-]?\d+", value):
            return self.print_millis(int(value))
        t = parse_time(value, None, zone_of(None))
        if t is None:
            raise InvalidInput(f"timeFormat extractionFn: invalid time [{value}]")
        return self.print_millis(t)


class TimeFn(_Fn):
    """``time``: a value parsed with ``timeFormat`` printed with ``resultFormat`` (UTC); a
    value that does not parse is kept. kdruid reads both as Joda patterns whether ``joda`` is
    set or not; without ``joda`` (Java's ``SimpleDateFormat``) text after the date is ignored,
    with it the whole value must parse. ``SimpleDateFormat``'s leniency about out-of-range
    fields (month 13 rolling into the next year) is not copied: such a value is kept."""

    type: Literal["time"]
    timeFormat: str
    resultFormat: str
    joda: bool = False

    @field_validator("timeFormat", "resultFormat")
    @classmethod
    def _pattern(cls, v: str) -> str:
        return _joda(v)

    def one(self, value: str | None) -> str | None:
        if value is None:
            return None
        utc = zone_of(None)
        t = parse_time(value, self.timeFormat, utc)
        if t is None and not self.joda:
            # SimpleDateFormat.parse reads a date from the start and ignores what follows
            for end in range(len(value) - 1, 0, -1):
                t = parse_time(value[:end], self.timeFormat, utc)
                if t is not None:
                    break
        return value if t is None else format_time(t, self.resultFormat, utc)


_SPECIAL_CASE_LOCALES = ("tr", "az", "lt")


class _CaseFn(_Fn):
    locale: str | None = None

    @field_validator("locale")
    @classmethod
    def _plain_locale(cls, v: str | None) -> str | None:
        if v is not None and v.replace("_", "-").split("-")[0].lower() in _SPECIAL_CASE_LOCALES:
            raise ValueError(f"locale [{v}] is not supported (its case rules differ)")
        return v


class UpperFn(_CaseFn):
    """``upper``: the value in upper case; null stays null."""

    type: Literal["upper"]

    def one(self, value: str | None) -> str | None:
        return None if value is None else value.upper()


class LowerFn(_CaseFn):
    """``lower``: the value in lower case; null stays null."""

    type: Literal["lower"]

    def one(self, value: str | None) -> str | None:
        return None if value is None else value.lower()


_JAVA_FORMAT = re.compile(r"%(?:(\d+)\$)?(-)?(\d+)?([sSn%])|%")


def _java_format(fmt: str) -> Callable[[str], str]:
    """Java's ``String.format`` for one string argument: ``%s``/``%S`` (with ``n$``, ``-``
    and a width), ``%n`` and ``%%``; anything else is refused."""
    pieces: list[Any] = []
    pos = 0
    for m in _JAVA_FORMAT.finditer(fmt):
        pieces.append(fmt[pos : m.start()])
        pos = m.end()
        arg, left, width, conv = m.groups()
        if conv is None or (arg is not None and arg != "1"):
            raise ValueError(
                f"stringFormat [{fmt}]: only %s, %S, %n and %% with one argument are supported"
            )
        if conv == "%":
            pieces.append("%")
        elif conv == "n":
            pieces.append("\n")
        else:
            pieces.append((conv == "S", bool(left), int(width or 0)))
    pieces.append(fmt[pos:])

    def run(value: str) -> str:
        out = []
        for p in pieces:
            if isinstance(p, str):
                out.append(p)
                continue
            upper, left, width = p
            text = value.upper() if upper else value
            out.append(text.ljust(width) if left else text.rjust(width))
        return "".join(out)

    return run


class StringFormatFn(_Fn):
    """``stringFormat``: the value through Java's ``String.format(format, value)``; a null
    value per ``nullHandling``: ``nullString`` (formats ``null``, the default),
    ``emptyString`` (formats ``""``) or ``returnNull``."""

    type: Literal["stringFormat"]
    format: str = Field(min_length=1)
    nullHandling: str = "nullString"

    @field_validator("nullHandling")
    @classmethod
    def _handling(cls, v: str) -> str:
        key = v.lower()
        if key not in ("nullstring", "emptystring", "returnnull"):
            raise ValueError(
                f"nullHandling [{v}] is not one of nullString, emptyString, returnNull"
            )
        return key

    @field_validator("format")
    @classmethod
    def _valid(cls, v: str) -> str:
        _java_format(v)
        return v

    def one(self, value: str | None) -> str | None:
        if value is None:
            if self.nullHandling == "returnnull":
                return None
            value = "" if self.nullHandling == "emptystring" else "null"
        return _java_format(self.format)(value)


_JAVA_DOUBLE = re.compile(r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[dDfF]?)")


class BucketFn(_Fn):
    """``bucket``: a number (or a string parsing as one; else null) as the start of its bucket
    of ``size`` from ``offset``: ``floor((x - offset) / size) * size + offset``."""

    type: Literal["bucket"]
    size: float = 1
    offset: float = 0

    def bucket(self, x: float | None) -> str | None:
        if x is None:
            return None
        with np.errstate(all="ignore"):
            ret = float(np.floor((x - self.offset) / self.size) * self.size + self.offset)
        if np.isnan(ret):
            return "NaN"
        if np.isinf(ret):
            return "Infinity" if ret > 0 else "-Infinity"
        if abs(ret) < 2**63 and ret == int(ret):  # Java's ``ret == (long) ret``
            return str(int(ret))
        return java_double(ret)

    def _apply(self, arr: Any) -> Any:
        if _is_number(arr.type):
            return _map_distinct(arr, self.bucket)
        return _map_distinct(strs(arr), self.one)

    def one(self, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if not _JAVA_DOUBLE.fullmatch(text):
            return None  # Double.parseDouble's NumberFormatException
        return self.bucket(float(text.rstrip("dDfF")))


class CascadeFn(_Fn):
    """``cascade``: ``extractionFns`` one after the other."""

    type: Literal["cascade"]
    extractionFns: list[ExtractionFn] = Field(min_length=1)

    def apply(self, values: Any) -> Any:
        if pa.types.is_dictionary(values.type):
            return _on_dictionary(self, values)
        for fn in self.extractionFns:
            values = fn.apply(values)
        return values


def _known_type(data: Any) -> Any:
    if isinstance(data, dict):
        typ = data.get("type")
        if typ == "javascript":
            raise ValueError(
                "extractionFn type [javascript] is not supported: JavaScript is disabled "
                "(as in Druid by default)"
            )
        if typ not in SUPPORTED:
            raise ValueError(
                f"extractionFn type [{typ}] is not supported; kdruid builds {list(SUPPORTED)}"
            )
    return data


AnyFn = (
    RegisteredLookupFn
    | InlineLookupFn
    | RegexFn
    | PartialFn
    | SearchQueryFn
    | SubstringFn
    | StrlenFn
    | TimeFormatFn
    | TimeFn
    | UpperFn
    | LowerFn
    | CascadeFn
    | StringFormatFn
    | BucketFn
)

ExtractionFn = Annotated[
    Annotated[AnyFn, Field(discriminator="type")],
    BeforeValidator(_known_type),
]

CascadeFn.model_rebuild()


def extract_column(col: pa.ChunkedArray, fn: _Fn) -> pa.ChunkedArray:
    """A segment column through ``fn``, keeping its shape: a multi-value row stays a list of the
    extracted values (an empty or null list is one null value, as filters and grouping see it)."""
    chunks = [_extract_chunk(chunk, fn) for chunk in col.chunks]
    if not chunks:
        return pa.chunked_array([], pa.string())
    return pa.chunked_array(chunks, type=chunks[0].type)


def _extract_chunk(chunk: Any, fn: _Fn) -> Any:
    typ = chunk.type
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        lengths = pc.fill_null(pc.list_value_length(chunk), 0).to_numpy(zero_copy_only=False)
        empty = lengths == 0
        if empty.any():
            one_null = pa.scalar([None], type=pa.list_(typ.value_type))
            chunk = pc.if_else(pa.array(empty), one_null, chunk.cast(pa.list_(typ.value_type)))
        values = fn.apply(chunk.flatten())
        offsets = np.concatenate([[0], np.cumsum(np.maximum(lengths, 1))]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), values)
    return fn.apply(chunk)
