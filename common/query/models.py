"""Druid native query models and ``parse_query``, which turns JSON into one of them or raises
``QueryParseError`` (400 "Json parse failed") with a message naming what is wrong."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.errors import QueryParseError, describe_validation_errors
from common.query.aggregators import Aggregator
from common.query.datasource import AnyDataSource, base_table_of, parse_datasource
from common.query.extraction import SearchSpec
from common.query.filters import Filter
from common.query.postaggs import PostAggregator
from common.query.specs import (
    DimensionSpec,
    Having,
    IntervalsSpec,
    LimitSpec,
    QueryContext,
    TopNMetric,
    parse_data_source,
)
from common.query.virtual import VirtualColumn, check_virtual_columns
from common.segments.granularity import ALL, Granularity


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    queryType: str
    dataSource: str
    dataSourceSpec: AnyDataSource | None = Field(default=None, exclude=True)
    """The inline/join/union datasource when ``dataSource`` was not a plain table; then
    ``dataSource`` names the table whose segments are read (``__inline`` for inline)."""
    intervals: IntervalsSpec
    filter: Filter | None = None
    virtualColumns: list[VirtualColumn] = []
    context: QueryContext = Field(default_factory=QueryContext)

    @model_validator(mode="before")
    @classmethod
    def _datasource_spec(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if k != "dataSourceSpec"}
        ds = data.get("dataSource")
        if isinstance(ds, dict) and ds.get("type", "table") != "table":
            spec = parse_datasource(ds)
            data["dataSourceSpec"] = spec
            data["dataSource"] = base_table_of(spec)
        return data

    @field_validator("dataSource", mode="before")
    @classmethod
    def _ds(cls, v: Any) -> str:
        return parse_data_source(v)

    @field_validator("intervals", mode="before")
    @classmethod
    def _intervals(cls, v: Any) -> IntervalsSpec:
        return IntervalsSpec.parse(v)

    @field_validator("context", mode="before")
    @classmethod
    def _context(cls, v: Any) -> Any:
        return {} if v is None else v

    @field_validator("virtualColumns")
    @classmethod
    def _vcs(cls, v: list[VirtualColumn]) -> list[VirtualColumn]:
        check_virtual_columns(v)
        return v

    @property
    def query_id(self) -> str:
        return self.context.queryId

    @property
    def timeout_ms(self) -> int:
        return self.context.timeout

    @property
    def priority(self) -> int:
        return self.context.priority

    def to_json(self) -> dict[str, Any]:
        """The query as Druid JSON (context included, so a data node sees the same queryId)."""
        out: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        out["intervals"] = self.intervals.to_json()
        if self.dataSourceSpec is not None:
            out["dataSource"] = self.dataSourceSpec.to_json()
        return out


class _AggregatingQuery(_Query):
    granularity: Granularity = ALL
    aggregations: list[Aggregator] = []
    postAggregations: list[PostAggregator] = []

    @field_validator("granularity", mode="before")
    @classmethod
    def _gran(cls, v: Any) -> Any:
        return "all" if v is None else v

    def _output_names(self, extra: list[str]) -> list[str]:
        names = [*extra, *(a.name for a in self.aggregations)]
        for p in self.postAggregations:
            if not p.name:
                raise ValueError("every top-level post-aggregator needs a name")
            names.append(p.name)
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise ValueError(f"duplicate output name [{n}]")
            seen.add(n)
        return names


class TimeseriesQuery(_AggregatingQuery):
    queryType: Literal["timeseries"]
    descending: bool = False
    limit: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _names(self) -> TimeseriesQuery:
        self._output_names([])
        return self


class TopNQuery(_AggregatingQuery):
    queryType: Literal["topN"]
    dimension: DimensionSpec
    metric: TopNMetric
    threshold: int = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> TopNQuery:
        if self.dimension.outputType.startswith("ARRAY"):
            # Druid's topN has no array dimensions (its SQL planner uses groupBy for them).
            raise ValueError(
                f"topN dimension outputType [{self.dimension.outputType}] is not supported; "
                "group arrays with a groupBy query"
            )
        names = self._output_names([self.dimension.output])
        m = self.metric
        while m.type == "inverted" and m.inner is not None:
            m = m.inner
        if m.type == "numeric" and m.metric not in names[1:]:
            raise ValueError(
                f"Must have an AggregatorFactory or PostAggregator for metric[{m.metric}]"
            )
        return self


class GroupByQuery(_AggregatingQuery):
    queryType: Literal["groupBy"]
    dimensions: list[DimensionSpec] = []
    having: Having | None = None
    limitSpec: LimitSpec | None = None
    subtotalsSpec: list[list[str]] | None = None

    @model_validator(mode="after")
    def _check(self) -> GroupByQuery:
        outputs = [d.output for d in self.dimensions]
        for sub in self.subtotalsSpec or []:
            for name in sub:
                if name not in outputs:
                    raise ValueError(
                        f"subtotalSpec [{', '.join(sub)}] names [{name}], not a dimension"
                    )
        names = self._output_names([d.output for d in self.dimensions])
        if self.limitSpec is not None:
            for c in self.limitSpec.columns:
                if c.dimension not in names:
                    raise ValueError(f"limitSpec column [{c.dimension}] is not a query output")
        return self


class ScanQuery(_Query):
    queryType: Literal["scan"]
    columns: list[str] = []
    limit: int | None = Field(default=None, ge=0)
    offset: int = Field(default=0, ge=0)
    order: Literal["none", "ascending", "descending"] = "none"
    resultFormat: Literal["list", "compactedList"] = "list"
    batchSize: int = Field(default=20480, gt=0)

    @field_validator("limit", mode="before")
    @classmethod
    def _no_limit(cls, v: Any) -> Any:
        # Druid serialises "no limit" as Long.MAX_VALUE, and 0 also means unlimited.
        return None if v in (None, 0) or (isinstance(v, int) and v >= 2**63 - 1) else v

    @model_validator(mode="before")
    @classmethod
    def _order_by(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("orderBy"):
            ob = data["orderBy"]
            if (
                isinstance(ob, list)
                and len(ob) == 1
                and isinstance(ob[0], dict)
                and ob[0].get("columnName") == "__time"
            ):
                data = {**data, "order": ob[0].get("order", "ascending")}
            else:
                raise ValueError("scan orderBy is only supported on __time")
        return data


SEARCH_SORTS = ("lexicographic", "strlen")


class SearchQuery(_Query):
    """Druid's ``search``: per time bucket, the values of ``searchDimensions`` that the search
    ``query`` (``contains``, ``insensitive_contains``, ``fragment``, ``regex``; absent: every
    value) accepts, with their row counts, sorted by ``sort`` and cut to ``limit``."""

    queryType: Literal["search"]
    granularity: Granularity = ALL
    searchDimensions: list[DimensionSpec] = Field(min_length=1)
    query: SearchSpec | None = None
    sort: str = "lexicographic"
    limit: int = Field(default=1000, gt=0)

    @field_validator("granularity", mode="before")
    @classmethod
    def _gran(cls, v: Any) -> Any:
        return "all" if v is None else v

    @model_validator(mode="before")
    @classmethod
    def _check_input(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("searchDimensions"):
            raise ValueError(
                "searchDimensions is required: kdruid does not search every dimension "
                "(name the dimensions to search)"
            )
        return data

    @field_validator("sort", mode="before")
    @classmethod
    def _sort(cls, v: Any) -> str:
        name = v.get("type") if isinstance(v, dict) else v
        if name is None:
            return "lexicographic"
        if name not in SEARCH_SORTS:
            raise ValueError(
                f"search sort [{name}] is not supported; expected {list(SEARCH_SORTS)}"
            )
        return str(name)

    @field_validator("searchDimensions")
    @classmethod
    def _strings(cls, v: list[DimensionSpec]) -> list[DimensionSpec]:
        for d in v:
            if d.outputType != "STRING":
                raise ValueError("search dimensions must be STRING dimension specs")
        return v


class TimeBoundaryQuery(_Query):
    queryType: Literal["timeBoundary"]
    bound: Literal["minTime", "maxTime"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_intervals(cls, data: Any) -> Any:
        # Druid's timeBoundary may omit intervals: it then covers all time.
        if isinstance(data, dict) and data.get("intervals") is None:
            data = {**data, "intervals": ["1000-01-01/3000-01-01"]}
        return data


class SegmentMetadataQuery(_Query):
    queryType: Literal["segmentMetadata"]
    merge: bool = False
    analysisTypes: list[str] = ["cardinality", "interval", "minmax"]
    lenientAggregatorMerge: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_intervals(cls, data: Any) -> Any:
        # Druid's segmentMetadata may omit intervals (it then looks at recent data); we take all.
        if isinstance(data, dict) and data.get("intervals") is None:
            data = {**data, "intervals": ["1000-01-01/3000-01-01"]}
        return data


class DataSourceMetadataQuery(_Query):
    queryType: Literal["dataSourceMetadata"]

    @model_validator(mode="before")
    @classmethod
    def _default_intervals(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("intervals") is None:
            data = {**data, "intervals": ["1000-01-01/3000-01-01"]}
        return data


class WindowOperatorQuery(_Query):
    """Druid's ``windowOperator`` query: window operators over the rows of a ``query`` or
    ``inline`` datasource, run at the broker (``common.query.operators``)."""

    queryType: Literal["windowOperator"]
    operatorDefinition: list[dict[str, Any]]
    leafOperators: list[dict[str, Any]] = []
    outputSignature: list[dict[str, Any]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        ds = data.get("dataSource")
        kind = ds.get("type", "table") if isinstance(ds, dict) else "table"
        if kind not in ("query", "inline"):
            raise ValueError(
                "WindowOperatorQuery must run on top of a query or inline data source, got "
                f"[{kind}]"
            )
        if data.get("intervals") is None:  # Druid: always eternity
            data["intervals"] = ["-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"]
        if data.get("outputSignature") is None and data.get("rowSignature") is not None:
            data["outputSignature"] = data["rowSignature"]
        if data.get("leafOperators"):
            raise ValueError(
                "leafOperators are not supported: kdruid runs window operators at the broker "
                "only, over the query datasource's results"
            )
        return data

    @model_validator(mode="after")
    def _operators(self) -> WindowOperatorQuery:
        from common.query.operators import parse_operators

        parse_operators(self.operatorDefinition)
        for col in self.outputSignature or []:
            if not isinstance(col, dict) or not isinstance(col.get("name"), str):
                raise ValueError("outputSignature entries need a name")
        return self

    def operators(self) -> list[Any]:
        from common.query.operators import parse_operators

        return parse_operators(self.operatorDefinition)


Query = (
    TimeseriesQuery
    | TopNQuery
    | GroupByQuery
    | ScanQuery
    | TimeBoundaryQuery
    | SegmentMetadataQuery
    | DataSourceMetadataQuery
    | SearchQuery
    | WindowOperatorQuery
)

QUERY_TYPES: dict[str, type[_Query]] = {
    "timeseries": TimeseriesQuery,
    "topN": TopNQuery,
    "groupBy": GroupByQuery,
    "scan": ScanQuery,
    "timeBoundary": TimeBoundaryQuery,
    "segmentMetadata": SegmentMetadataQuery,
    "dataSourceMetadata": DataSourceMetadataQuery,
    "search": SearchQuery,
    "windowOperator": WindowOperatorQuery,
}


def parse_query(body: bytes | str | dict[str, Any]) -> Query:
    """Validate a native query (raw JSON or a decoded object) into its model.

    Raises ``QueryParseError`` for malformed JSON, an unknown ``queryType``, unknown filter,
    aggregator or post-aggregator types, bad intervals or granularities, and missing fields.
    """
    obj: Any = body
    if isinstance(body, bytes | str):
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise QueryParseError(f"Malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise QueryParseError("A native query must be a JSON object")
    qtype = obj.get("queryType")
    if qtype is None:
        raise QueryParseError("Missing type id: a native query needs 'queryType'")
    model = QUERY_TYPES.get(qtype) if isinstance(qtype, str) else None
    if model is None:
        raise QueryParseError(
            f"Could not resolve type id '{qtype}' as a subtype of Query: known type ids = "
            f"{sorted(QUERY_TYPES)}"
        )
    if "intervals" not in obj and qtype not in (
        "segmentMetadata",
        "dataSourceMetadata",
        "timeBoundary",
        "windowOperator",
    ):
        raise QueryParseError(f"{qtype} query: missing 'intervals'")
    try:
        return model.model_validate(obj)  # type: ignore[return-value]
    except ValidationError as exc:
        detail = describe_validation_errors(exc.errors())
        raise QueryParseError(f"{qtype} query: {detail}") from None
    except ValueError as exc:
        raise QueryParseError(f"{qtype} query: {exc}") from None
