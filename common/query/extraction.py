"""Druid's lookup extraction functions, for ``extraction``/``lookup`` dimension specs and the
``extractionFn`` of filters.

- ``{"type": "registeredLookup", "lookup": "name", ...}`` (``RegisteredLookupExtractionFn``): a
  lookup registered through the coordinator, as loaded on the node evaluating the query.
- ``{"type": "lookup", "lookup": {"type": "map", "map": {...}}, ...}`` (``LookupExtractionFn``):
  an inline ``map`` lookup carried in the query.

Both take ``retainMissingValue`` (a missing value keeps the input), ``replaceMissingValueWith``
(else the missing value becomes this; default null), ``injective`` and ``optimize`` (accepted:
they only let Druid choose a faster plan with the same answer). Both at once is Druid's 400
``Cannot specify a [replaceMissingValueWith] and set [retainMissingValue] to true``. Values are
looked up as strings (a LONG ``6`` as ``'6'``); see ``common.expr.lookups`` for null handling.

Druid's other extraction functions (``substring``, ``regex``, ``timeFormat``, ``cascade``...) are
not built: they are refused with a 400 naming the type, never ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from common.errors import InvalidInput
from common.expr.kernels import normalise, strs
from common.expr.lookups import MapLookup, extract, resolve

SUPPORTED = ("registeredLookup", "lookup")
TIME_COLUMN = "__time"


class _LookupFn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

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
        """``values`` (a plain Arrow array of any type) as extracted strings."""
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


def _known_type(data: Any) -> Any:
    if isinstance(data, dict) and data.get("type") not in SUPPORTED:
        raise ValueError(
            f"extractionFn type [{data.get('type')}] is not supported; kdruid builds "
            f"{list(SUPPORTED)} (lookups) only"
        )
    return data


ExtractionFn = Annotated[
    Annotated[RegisteredLookupFn | InlineLookupFn, Field(discriminator="type")],
    BeforeValidator(_known_type),
]


def refuse_time(dimension: str, fn: object | None) -> None:
    """Druid formats ``__time`` as ISO text for extraction functions; kdruid does not."""
    if fn is not None and dimension == TIME_COLUMN:
        raise ValueError(f"an extractionFn on [{TIME_COLUMN}] is not supported")


def extract_column(col: pa.ChunkedArray, fn: _LookupFn) -> pa.ChunkedArray:
    """A segment column through ``fn``, keeping its shape: a multi-value row stays a list of the
    extracted values (an empty or null list is one null value, as filters and grouping see it)."""
    chunks = [_extract_chunk(chunk, fn) for chunk in col.chunks]
    if not chunks:
        return pa.chunked_array([], pa.string())
    return pa.chunked_array(chunks, type=chunks[0].type)


def _extract_chunk(chunk: Any, fn: _LookupFn) -> Any:
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
    if pa.types.is_timestamp(typ):
        raise InvalidInput(f"an extractionFn on [{TIME_COLUMN}] is not supported")
    return fn.apply(chunk)
