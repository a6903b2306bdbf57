"""Pieces shared by the query models: dataSource, intervals spec, context, dimension specs,
topN metric specs, groupBy limitSpec and having specs (Druid's JSON names and defaults)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from common.query.extraction import (
    AnyFn,
    ExtractionFn,
    InlineLookupFn,
    MapLookupSpec,
    RegisteredLookupFn,
)
from common.query.filters import Filter
from common.segments.intervals import Interval

DEFAULT_TIMEOUT_MS = 300_000  # druid.server.http.defaultQueryTimeout


def parse_data_source(value: Any) -> str:
    """A table name from ``"wiki"`` or ``{"type": "table", "name": "wiki"}``."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        typ = value.get("type", "table")
        if typ != "table":
            raise ValueError(f"dataSource type [{typ}] is not supported; only 'table'")
        name = value.get("name")
        if isinstance(name, str) and name:
            return name
    raise ValueError("dataSource must be a table name or {'type': 'table', 'name': ...}")


class SegmentDescriptor(BaseModel):
    """One segment of a ``{"type": "segments"}`` intervals spec (Druid's SegmentDescriptor)."""

    model_config = ConfigDict(frozen=True)

    itvl: Interval
    ver: str
    part: int = 0


class IntervalsSpec(BaseModel):
    """Druid's QuerySegmentSpec: plain intervals, or specific segments for data nodes."""

    model_config = ConfigDict(frozen=True)

    intervals: list[Interval]
    segments: list[SegmentDescriptor] | None = None

    @classmethod
    def parse(cls, value: Any) -> IntervalsSpec:
        if isinstance(value, IntervalsSpec):
            return value
        if isinstance(value, str):
            return cls(intervals=[value])
        if isinstance(value, list):
            if not value:
                raise ValueError("intervals must not be empty")
            return cls(intervals=value)
        if isinstance(value, dict):
            typ = value.get("type")
            if typ == "intervals":
                return cls.parse(value.get("intervals"))
            if typ == "segments":
                segs = [SegmentDescriptor.model_validate(s) for s in value.get("segments") or []]
                if not segs:
                    raise ValueError("a segments spec needs at least one segment")
                return cls(intervals=[s.itvl for s in segs], segments=segs)
            raise ValueError(f"unknown intervals type [{typ}]; expected 'intervals' or 'segments'")
        raise ValueError("intervals must be an ISO interval string, a list, or an intervals spec")

    def to_json(self) -> Any:
        if self.segments is not None:
            return {
                "type": "segments",
                "segments": [
                    {"itvl": str(s.itvl), "ver": s.ver, "part": s.part} for s in self.segments
                ],
            }
        return {"type": "intervals", "intervals": [str(i) for i in self.intervals]}


class QueryContext(BaseModel):
    """The query context; unknown keys are kept (and passed on to data nodes)."""

    model_config = ConfigDict(extra="allow")

    queryId: str = Field(default_factory=lambda: str(uuid.uuid4()))
    timeout: int = Field(default=DEFAULT_TIMEOUT_MS, ge=0)
    priority: int = 0
    skipEmptyBuckets: bool = False
    sortByDimsFirst: bool = False


OUTPUT_TYPES = (
    "STRING",
    "LONG",
    "FLOAT",
    "DOUBLE",
    "ARRAY<STRING>",
    "ARRAY<LONG>",
    "ARRAY<DOUBLE>",
)


class DimensionSpec(BaseModel):
    """A dimension spec: ``default`` (``"dim"`` is short for it), ``extraction`` (with a lookup
    ``extractionFn``, ``common.query.extraction``) or ``lookup`` (Druid's ``LookupDimensionSpec``:
    a registered lookup by ``name``, or an inline ``map`` ``lookup``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["default", "extraction", "lookup"] = "default"
    dimension: str = Field(min_length=1)
    outputName: str = ""
    outputType: str = "STRING"
    extractionFn: ExtractionFn | None = None
    # the ``lookup`` type's fields
    name: str | None = None
    lookup: MapLookupSpec | None = None
    retainMissingValue: bool | None = None
    replaceMissingValueWith: str | None = None
    optimize: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"dimension": data}
        if isinstance(data, dict):
            typ = data.get("type")
            if typ not in (None, "default", "extraction", "lookup"):
                raise ValueError(f"dimension spec type [{typ}] is not supported")
            if typ in (None, "default") and data.get("extractionFn") is not None:
                raise ValueError("a default dimension spec takes no extractionFn")
        return data

    @field_validator("outputType")
    @classmethod
    def _known(cls, v: str) -> str:
        key = v.upper().replace(" ", "")
        if key not in OUTPUT_TYPES:
            raise ValueError(f"unknown outputType [{v}]; expected one of {list(OUTPUT_TYPES)}")
        return key

    @model_validator(mode="after")
    def _shape(self) -> DimensionSpec:
        if self.type == "extraction" and self.extractionFn is None:
            raise ValueError("an extraction dimension spec needs an extractionFn")
        if self.type == "lookup":
            if (self.name is None) == (self.lookup is None):
                raise ValueError(
                    "a lookup dimension spec needs exactly one of [name] (a registered lookup)"
                    " and [lookup] (an inline map lookup)"
                )
            # Druid validates the lookup dimension spec as a lookup extraction function.
            self._lookup_fn()
        return self

    def _lookup_fn(self) -> RegisteredLookupFn | InlineLookupFn:
        common = {
            "retainMissingValue": bool(self.retainMissingValue),
            "replaceMissingValueWith": self.replaceMissingValueWith,
        }
        if self.name is not None:
            return RegisteredLookupFn(type="registeredLookup", lookup=self.name, **common)
        assert self.lookup is not None
        return InlineLookupFn(type="lookup", lookup=self.lookup, **common)

    @property
    def extraction(self) -> AnyFn | None:
        """The extraction this spec applies to the dimension's values, if any."""
        if self.type == "lookup":
            return self._lookup_fn()
        return self.extractionFn

    @property
    def output(self) -> str:
        return self.outputName or self.dimension


class TopNMetric(BaseModel):
    """A topN ordering: ``numeric`` (descending), ``inverted``, or ``dimension``."""

    model_config = ConfigDict(frozen=True)

    type: Literal["numeric", "inverted", "dimension"]
    metric: str | None = None
    inner: TopNMetric | None = None
    ordering: Literal["lexicographic", "numeric"] = "lexicographic"
    previousStop: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"type": "numeric", "metric": data}
        if not isinstance(data, dict):
            raise ValueError("topN metric must be a name or a metric spec")
        typ = data.get("type")
        if typ == "numeric":
            if not isinstance(data.get("metric"), str):
                raise ValueError("numeric topN metric needs 'metric'")
            return {"type": "numeric", "metric": data["metric"]}
        if typ == "inverted":
            return {"type": "inverted", "inner": data.get("metric")}
        if typ in ("dimension", "lexicographic", "alphaNumeric"):
            ordering = data.get("ordering", "lexicographic")
            if isinstance(ordering, dict):
                ordering = ordering.get("type")
            if typ == "lexicographic":
                ordering = "lexicographic"
            stop = data.get("previousStop")
            return {"type": "dimension", "ordering": ordering, "previousStop": stop}
        raise ValueError(f"unknown topN metric type [{typ}]")

    @model_serializer
    def _druid_json(self) -> dict[str, Any]:
        if self.type == "numeric":
            return {"type": "numeric", "metric": self.metric}
        if self.type == "inverted":
            return {"type": "inverted", "metric": self.inner._druid_json() if self.inner else None}
        out: dict[str, Any] = {"type": "dimension", "ordering": self.ordering}
        if self.previousStop is not None:
            out["previousStop"] = self.previousStop
        return out


class OrderByColumn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    dimension: str
    direction: Literal["ascending", "descending"] = "ascending"
    dimensionOrder: Literal["lexicographic", "numeric", "natural"] = "lexicographic"
    """``natural``: the column type's own order (Druid's SQL planner uses it for ARRAYs)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"dimension": data}
        if isinstance(data, dict) and isinstance(data.get("dimensionOrder"), dict):
            data = {**data, "dimensionOrder": data["dimensionOrder"].get("type")}
        return data


class LimitSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["default", "NoopLimitSpec"] = "default"
    columns: list[OrderByColumn] = []
    limit: int | None = Field(default=None, gt=0)
    offset: int = Field(default=0, ge=0)


class _Having(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CompareHaving(_Having):
    type: Literal["greaterThan", "lessThan", "equalTo"]
    aggregation: str
    value: float | int


class DimSelectorHaving(_Having):
    type: Literal["dimSelector"]
    dimension: str
    value: str | None = None


class FilterHaving(_Having):
    type: Literal["filter"]
    filter: Filter


class AndHaving(_Having):
    type: Literal["and"]
    havingSpecs: list[Having] = Field(min_length=1)


class OrHaving(_Having):
    type: Literal["or"]
    havingSpecs: list[Having] = Field(min_length=1)


class NotHaving(_Having):
    type: Literal["not"]
    havingSpec: Having


Having = Annotated[
    CompareHaving | DimSelectorHaving | FilterHaving | AndHaving | OrHaving | NotHaving,
    Field(discriminator="type"),
]

for _m in (AndHaving, OrHaving, NotHaving):
    _m.model_rebuild()
