"""Query-time lookups as the expression language and extraction functions see them.

Druid's ``LookupExprMacro`` is built with the node's ``LookupExtractorFactoryContainerProvider``
injected; kdruid's expressions are parsed once per process (``parse_expression`` is cached) and
evaluated deep inside filters, aggregators, virtual columns and dimension specs, on worker
threads. So the lookups of the node evaluating a query travel in an *evaluation context*: a
``ContextVar`` the node sets around each request (``lookup_scope``, installed as a middleware by
``common.server``). ``asyncio.to_thread`` copies the context, so the segment threads of a query see
the lookups of the node that received it; the broker and the data nodes each evaluate with their
own.

Semantics (Druid's ``MapLookupExtractor`` and ``FunctionalExtraction``, SQL-compatible null
handling): a null key, a key not in the map and a key mapped to null are all *missing*; a missing
value becomes ``replaceMissingValueWith`` (default null) or, with ``retainMissingValue``, the
input itself. ``''`` is a value like any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from common.errors import InvalidInput


@dataclass(frozen=True)
class MapLookup:
    """A ``map`` lookup: key -> value (Druid's ``MapLookupExtractor``)."""

    mapping: Mapping[str, str | None]
    injective: bool = False
    _reverse: dict[str | None, list[str]] | None = field(default=None, compare=False, repr=False)
    _arrays: tuple[pa.Array, pa.Array] | None = field(default=None, compare=False, repr=False)

    def apply(self, key: str | None) -> str | None:
        return None if key is None else self.mapping.get(key)

    def arrays(self) -> tuple[pa.Array, pa.Array]:
        """(keys, values) as Arrow string arrays, for vectorised lookups (built once)."""
        arrays = self._arrays
        if arrays is None:
            keys = list(self.mapping)
            arrays = (
                pa.array(keys, pa.string()),
                pa.array([self.mapping[k] for k in keys], pa.string()),
            )
            object.__setattr__(self, "_arrays", arrays)
        return arrays

    def unapply(self, value: str) -> list[str]:
        """The keys mapping to ``value`` (Druid's ``unapply``, for reverse lookups)."""
        reverse = self._reverse
        if reverse is None:  # built once, published whole (planning may run on threads)
            reverse = {}
            for k, v in self.mapping.items():
                reverse.setdefault(v, []).append(k)
            object.__setattr__(self, "_reverse", reverse)
        return list(reverse.get(value, ()))


class LookupProvider(Protocol):
    """Where a node's lookups come from (Druid's ``LookupExtractorFactoryContainerProvider``)."""

    def lookup(self, name: str) -> MapLookup | None: ...

    def lookup_names(self) -> list[str]: ...


class StaticLookups:
    """A fixed set of lookups (tests, tools)."""

    def __init__(self, lookups: Mapping[str, MapLookup | Mapping[str, str | None]]) -> None:
        self._lookups = {
            name: lk if isinstance(lk, MapLookup) else MapLookup(dict(lk))
            for name, lk in lookups.items()
        }

    def lookup(self, name: str) -> MapLookup | None:
        return self._lookups.get(name)

    def lookup_names(self) -> list[str]:
        return sorted(self._lookups)


_CURRENT: ContextVar[LookupProvider | None] = ContextVar("kdruid_lookups", default=None)


@contextlib.contextmanager
def lookup_scope(provider: LookupProvider | None) -> Iterator[None]:
    """Evaluate with ``provider``'s lookups inside the block (and in threads started from it)."""
    token = _CURRENT.set(provider)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def bind_lookups(provider: LookupProvider | None) -> None:
    """Use ``provider`` for the rest of the current context: a node's lifespan, so the
    background work it starts (ingestion tasks, their transforms) sees the node's lookups."""
    _CURRENT.set(provider)


def current_lookups() -> LookupProvider | None:
    return _CURRENT.get()


def resolve(name: str) -> MapLookup:
    """The lookup ``name`` of the node evaluating the query; a 400 naming it when unknown."""
    provider = _CURRENT.get()
    found = provider.lookup(name) if provider is not None else None
    if found is None:
        raise InvalidInput(f"Lookup [{name}] not found")
    return found


def extract(
    lookup: MapLookup, values: Any, replace: str | None = None, retain: bool = False
) -> Any:
    """``values`` (an Arrow string array or scalar) through ``lookup``: Druid's
    ``FunctionalExtraction`` of a ``MapLookupExtractor``: one hash probe of the lookup's keys per
    value (per dictionary entry for a dictionary-encoded array)."""
    if isinstance(values, pa.Scalar):
        key = values.as_py()
        got = lookup.apply(key)
        return pa.scalar(got if got is not None else (key if retain else replace), pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        mapped = extract(lookup, values.dictionary, replace, retain)
        out = mapped.take(values.indices)
        if values.indices.null_count:  # a null row is a null key: missing
            fill = pa.scalar(None if retain else replace, pa.string())
            out = pc.if_else(pc.is_null(values.indices), fill, out)
        return out
    keys, mapped = lookup.arrays()
    out = mapped.take(pc.index_in(values, value_set=keys))
    if retain:
        return pc.coalesce(out, values)
    if replace is not None:
        return pc.fill_null(out, pa.scalar(replace, pa.string()))
    return out
