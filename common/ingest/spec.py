"""Druid's ``dataSchema`` and Kafka ``inputFormat`` as pydantic models, validated up front.

Every part that will later be compiled (timestamp formats, transform expressions, the
transform filter, granularities, intervals) is compiled here too, so a bad spec is refused when it
is submitted, with a message naming the field: ``parse_data_schema`` and ``parse_input_format``
raise ``InvalidInput`` (HTTP 400). Unknown JSON properties are ignored, as Druid's object mapper
does.

Ingest-time aggregators supported: ``count``, ``longSum``, ``doubleSum``, ``floatSum``,
``longMin``, ``longMax``, ``doubleMin``, ``doubleMax``, ``floatMin``, ``floatMax``, and the sketch
metrics ``hyperUnique``, ``HLLSketchBuild``/``HLLSketchMerge`` (``lgK``, ``tgtHllType``),
``thetaSketch`` (``size``, ``isInputThetaSketch``) and ``quantilesDoublesSketch`` (``k``), built
and merged by ``common.ingest.sketch_metrics``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from common.errors import InvalidInput, describe_validation_errors
from common.expr import ExpressionError, compile_expression
from common.ids import id_problem
from common.ingest.jsonpath import compile_json_path
from common.ingest.rowfilter import FilterError, compile_filter
from common.ingest.timestamps import make_timestamp_parser, parse_iso_millis
from common.segments.granularity import NONE, Granularity, parse_granularity
from common.segments.intervals import Interval

TIME_COLUMN = "__time"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TimestampSpec(_Model):
    column: str = "timestamp"
    format: str = "auto"
    missingValue: str | None = None

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        make_timestamp_parser(v)
        return v

    @field_validator("missingValue")
    @classmethod
    def _missing(cls, v: str | None) -> str | None:
        if v is not None:
            parse_iso_millis(v)
        return v

    def missing_millis(self) -> int | None:
        return None if self.missingValue is None else parse_iso_millis(self.missingValue)


DimensionType = Literal["string", "long", "float", "double"]
MultiValueHandling = Literal["SORTED_ARRAY", "SORTED_SET", "ARRAY"]


def _dimension(v: Any) -> Any:
    if isinstance(v, str):
        return {"name": v}
    if isinstance(v, dict) and isinstance(v.get("multiValueHandling"), str):
        return {**v, "multiValueHandling": v["multiValueHandling"].upper()}
    return v


class DimensionSchema(_Model):
    type: DimensionType = "string"
    name: str = Field(min_length=1)
    multiValueHandling: MultiValueHandling = "SORTED_ARRAY"
    createBitmapIndex: bool = True


class DimensionsSpec(_Model):
    dimensions: list[Annotated[DimensionSchema, BeforeValidator(_dimension)]] = []
    dimensionExclusions: list[str] = []
    spatialDimensions: list[Any] = []
    useSchemaDiscovery: bool = False
    includeAllDimensions: bool = False

    @field_validator("spatialDimensions")
    @classmethod
    def _no_spatial(cls, v: list[Any]) -> list[Any]:
        if v:
            raise ValueError("spatial dimensions are not supported")
        return v

    @model_validator(mode="after")
    def _unique(self) -> DimensionsSpec:
        seen: set[str] = set()
        for d in self.dimensions:
            if d.name in seen:
                raise ValueError(f"duplicate dimension [{d.name}]")
            if d.name == TIME_COLUMN:
                raise ValueError(f"[{TIME_COLUMN}] cannot be a dimension")
            seen.add(d.name)
        return self

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    @property
    def discovers(self) -> bool:
        """Dimensions are (also) found in the data: Druid's schemaless mode."""
        return self.useSchemaDiscovery or self.includeAllDimensions or not self.dimensions


AggregatorType = Literal[
    "count",
    "longSum",
    "doubleSum",
    "floatSum",
    "longMin",
    "longMax",
    "doubleMin",
    "doubleMax",
    "floatMin",
    "floatMax",
    "hyperUnique",
    "HLLSketchBuild",
    "HLLSketchMerge",
    "thetaSketch",
    "quantilesDoublesSketch",
]
_AGGREGATOR_TYPES = AggregatorType.__args__  # type: ignore[attr-defined]
SKETCH_TYPES = frozenset(
    {"hyperUnique", "HLLSketchBuild", "HLLSketchMerge", "thetaSketch", "quantilesDoublesSketch"}
)


class AggregatorSpec(_Model):
    type: str
    name: str = Field(min_length=1)
    fieldName: str | None = None
    expression: str | None = None
    # Sketch parameters (Druid's names and defaults).
    lgK: int = Field(default=12, ge=4, le=21)
    tgtHllType: Literal["HLL_4", "HLL_6", "HLL_8"] = "HLL_4"
    size: int = Field(default=16384, gt=0)
    isInputThetaSketch: bool = False
    k: int = Field(default=128, ge=2, le=32768)

    @model_validator(mode="after")
    def _check(self) -> AggregatorSpec:
        if self.type not in _AGGREGATOR_TYPES:
            raise ValueError(
                f"aggregator type [{self.type}] is not supported at ingestion time "
                f"(supported: {', '.join(_AGGREGATOR_TYPES)})"
            )
        if self.expression is not None:
            raise ValueError(f"aggregator [{self.name}]: 'expression' is not supported")
        if self.type != "count" and not self.fieldName:
            raise ValueError(f"aggregator [{self.name}] of type {self.type} needs a fieldName")
        if self.type == "quantilesDoublesSketch" and self.k & (self.k - 1):
            raise ValueError(f"aggregator [{self.name}]: k must be a power of 2")
        if self.type == "thetaSketch" and self.size & (self.size - 1):
            raise ValueError(f"aggregator [{self.name}]: size must be a power of 2")
        return self

    @property
    def is_sketch(self) -> bool:
        return self.type in SKETCH_TYPES

    @property
    def output_kind(self) -> Literal["long", "double", "binary"]:
        if self.is_sketch:
            return "binary"
        return "long" if self.type == "count" or self.type.startswith("long") else "double"

    @property
    def combine(self) -> Literal["sum", "min", "max", "sketch"]:
        """How two already-aggregated values combine (count's combining aggregator is a sum;
        sketches are unioned by ``common.ingest.sketch_metrics``)."""
        if self.is_sketch:
            return "sketch"
        if self.type == "count" or self.type.endswith("Sum"):
            return "sum"
        return "min" if self.type.endswith("Min") else "max"


class GranularitySpec(_Model):
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    type: Literal["uniform", "arbitrary"] = "uniform"
    segmentGranularity: Granularity = Field(default_factory=lambda: parse_granularity("DAY"))
    queryGranularity: Granularity = NONE
    rollup: bool = True
    intervals: list[Interval] | None = None

    @field_validator("segmentGranularity", "queryGranularity", mode="before")
    @classmethod
    def _granularity(cls, v: Any) -> Granularity:
        return parse_granularity(v)


class ExpressionTransform(_Model):
    type: Literal["expression"] = "expression"
    name: str = Field(min_length=1)
    expression: str

    @field_validator("expression")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            compile_expression(v)
        except ExpressionError as e:
            raise ValueError(f"bad expression {v!r}: {e}") from None
        return v


class TransformSpec(_Model):
    filter: dict[str, Any] | None = None
    transforms: list[ExpressionTransform] = []

    @field_validator("filter")
    @classmethod
    def _filter(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        try:
            compile_filter(v)
        except FilterError as e:
            raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _unique(self) -> TransformSpec:
        names = [t.name for t in self.transforms]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate transform names {sorted(dup)}")
        return self


def _id(v: str) -> str:
    """Druid's ``IdUtils.validateId("dataSource", ...)`` (``common/ids.py``)."""
    problem = id_problem("dataSource", v)
    if problem is not None:
        raise ValueError(problem)
    return v


class DataSchema(_Model):
    dataSource: Annotated[str, BeforeValidator(lambda v: _id(v) if isinstance(v, str) else v)]
    timestampSpec: TimestampSpec = TimestampSpec()
    dimensionsSpec: DimensionsSpec = DimensionsSpec()
    metricsSpec: list[AggregatorSpec] = []
    granularitySpec: GranularitySpec = GranularitySpec()
    transformSpec: TransformSpec = TransformSpec()
    parser: Any = None

    @field_validator("parser")
    @classmethod
    def _no_parser(cls, v: Any) -> Any:
        if v is not None:
            raise ValueError("the legacy 'parser' is not supported; use ioConfig.inputFormat")
        return v

    @model_validator(mode="after")
    def _columns(self) -> DataSchema:
        dims = set(self.dimensionsSpec.names)
        seen: set[str] = set()
        for m in self.metricsSpec:
            if m.name in seen:
                raise ValueError(f"duplicate metric name [{m.name}]")
            if m.name in dims:
                raise ValueError(f"[{m.name}] is both a dimension and a metric")
            if m.name == TIME_COLUMN:
                raise ValueError(f"[{TIME_COLUMN}] cannot be a metric")
            seen.add(m.name)
        return self

    def dimension_exclusions(self) -> set[str]:
        """Fields schemaless discovery must not turn into dimensions (Druid's
        ``DataSchema.computeDimensionsSpec``): the timestamp column, metric names and input
        fields, and ``dimensionExclusions``, minus any declared dimension."""
        out = set(self.dimensionsSpec.dimensionExclusions)
        out.add(self.timestampSpec.column)
        out.add(TIME_COLUMN)
        for m in self.metricsSpec:
            out.add(m.name)
            if m.fieldName:
                out.add(m.fieldName)
        return out - set(self.dimensionsSpec.names)


# ------------------------------------------------------------------------------------------
# input formats


class FlattenField(_Model):
    type: Literal["root", "path", "tree"]
    name: str = Field(min_length=1)
    expr: str | None = None
    nodes: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> FlattenField:
        if self.type == "path":
            if not self.expr:
                raise ValueError(f"flatten field [{self.name}] of type path needs 'expr'")
            compile_json_path(self.expr)
        if self.type == "tree" and not self.nodes:
            raise ValueError(f"flatten field [{self.name}] of type tree needs 'nodes'")
        return self


class FlattenSpec(_Model):
    useFieldDiscovery: bool = True
    fields: list[FlattenField] = []


class JsonInputFormat(_Model):
    type: Literal["json"]
    flattenSpec: FlattenSpec | None = None
    keepNullColumns: bool = False


class DelimitedInputFormat(_Model):
    type: Literal["csv", "tsv"]
    columns: list[str] | None = None
    findColumnsFromHeader: bool | None = None
    skipHeaderRows: int = Field(default=0, ge=0)
    delimiter: str | None = None
    listDelimiter: str | None = None
    tryParseNumbers: bool = False

    @model_validator(mode="after")
    def _check(self) -> DelimitedInputFormat:
        if not self.columns and not self.findColumnsFromHeader:
            raise ValueError(
                "If [columns] is not set, the first row of your data must have your header "
                "and [findColumnsFromHeader] must be set to true."
            )
        if self.columns and self.findColumnsFromHeader:
            raise ValueError("Cannot accept both [findColumnsFromHeader] and [columns]")
        if self.columns and len(set(self.columns)) != len(self.columns):
            raise ValueError(f"duplicate column names in {self.columns}")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError("delimiter must be one character")
        return self

    @property
    def field_delimiter(self) -> str:
        return self.delimiter or ("," if self.type == "csv" else "\t")

    @property
    def multi_value_delimiter(self) -> str:
        return self.listDelimiter if self.listDelimiter is not None else "\u0001"


InputFormat = Annotated[JsonInputFormat | DelimitedInputFormat, Field(discriminator="type")]


class _InputFormatHolder(_Model):
    inputFormat: InputFormat


def _invalid(what: str, exc: ValidationError) -> InvalidInput:
    text = describe_validation_errors(exc.errors()).replace("Value error, ", "")
    return InvalidInput(f"Invalid {what}: {text}")


def parse_data_schema(obj: Any) -> DataSchema:
    """A validated ``DataSchema``; ``InvalidInput`` (400) naming the bad field otherwise."""
    if isinstance(obj, DataSchema):
        return obj
    try:
        return DataSchema.model_validate(obj)
    except ValidationError as e:
        raise _invalid("dataSchema", e) from None


def parse_input_format(obj: Any) -> JsonInputFormat | DelimitedInputFormat:
    """A validated ``inputFormat`` (json, csv or tsv); ``InvalidInput`` otherwise."""
    if isinstance(obj, JsonInputFormat | DelimitedInputFormat):
        return obj
    try:
        return _InputFormatHolder.model_validate({"inputFormat": obj}).inputFormat
    except ValidationError as e:
        raise _invalid("inputFormat", e) from None
