"""Native datasources beyond a plain table: ``inline``, ``join`` and ``union``.

- ``inline`` (``columnNames``, ``columnTypes``, ``rows``): a small table carried in the query. At
  the top level the broker runs the query on it itself; as the right side of a join it is
  broadcast to the data nodes inside the query.
- ``join`` (``left``, ``right``, ``rightPrefix``, ``condition``, ``joinType``): a broadcast hash
  join done by each data node on each segment of the left table, before virtual columns, filters
  and aggregation. As Druid: the right side's columns are renamed ``rightPrefix + name`` (left
  columns starting with the prefix are shadowed); ``condition`` is a Druid expression made of
  equalities ``<expression of left columns> == "<prefix><right column>"`` joined by ``&&``;
  ``joinType`` INNER or LEFT. Null keys never match (SQL-compatible mode). The left side is a
  table or another join; the right side an inline datasource.
- ``union`` (``dataSources``: table names): the broker queries every table and merges.
- ``unnest`` (``base``, ``virtualColumn``, ``unnestFilter``): every row of the base once per
  value of the virtual column (an array, or a multi-value string's values), the value in the
  column the virtual column names; applied by each data node per segment after the base's join
  (``common.query.unnest``), or by the broker over an inline base.
- ``filter`` (``base``, ``filter``): the base's rows the filter keeps (Druid's
  ``FilteredDataSource``, the left side of an SQL UNNEST over a filtered subquery).

- ``query`` (``query``: a timeseries, topN, groupBy or scan query): the broker runs the inner
  query, turns its results into rows (``__time`` from the result timestamp) and runs the outer
  query on them (``common.query.local``).

A ``lookup`` datasource never reaches this module: the broker replaces it with an ``inline`` one
(``common.lookups.datasource``). Refused with a clear 400: RIGHT/FULL joins, non-equi join
conditions, and right-hand sides other than inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    field_validator,
    model_validator,
)

from common.expr import parse_expression
from common.expr.kernels import normalise
from common.expr.parse import Binary, Ident, Node, columns_of
from common.query.filters import Filter
from common.query.virtual import ExpressionVirtualColumn

INLINE_TABLE = "__inline"
"""The ``dataSource`` name a query over an inline datasource carries (no segments exist for it)."""

_TYPES = {
    "STRING": pa.string(),
    "LONG": pa.int64(),
    "DOUBLE": pa.float64(),
    "FLOAT": pa.float64(),
}


class _DS(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def to_json(self) -> Any:
        return self.model_dump(mode="json", exclude_none=True)


class TableDataSource(_DS):
    type: Literal["table"]
    name: str = Field(min_length=1)

    def to_json(self) -> Any:
        return self.name


class InlineDataSource(_DS):
    type: Literal["inline"]
    columnNames: list[str] = Field(min_length=1)
    columnTypes: list[str | None] | None = None
    rows: list[Any]  # each a list: checked in _shape without a copy per row
    _table: pa.Table | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _shape(self) -> InlineDataSource:
        n = len(self.columnNames)
        if len(set(self.columnNames)) != n:
            raise ValueError("inline datasource: duplicate column names")
        if self.columnTypes is not None:
            if len(self.columnTypes) != n:
                raise ValueError("inline datasource: columnTypes and columnNames differ in length")
            for t in self.columnTypes:
                if t is not None and t.upper() not in _TYPES:
                    raise ValueError(
                        f"inline datasource: column type [{t}] is not supported; expected one of "
                        f"{sorted(_TYPES)}"
                    )
        if not set(map(type, self.rows)) <= {list}:
            i = next(i for i, r in enumerate(self.rows) if not isinstance(r, list))
            raise ValueError(f"inline datasource: row {i} is not a list")
        if self.rows and set(map(len, self.rows)) != {n}:  # map: no Python loop per row
            i, row = next((i, r) for i, r in enumerate(self.rows) if len(r) != n)
            raise ValueError(f"inline datasource: row {i} has {len(row)} values, not {n}")
        self._table = _inline_table(self.to_json())  # values must fit their types
        return self

    def table(self) -> pa.Table:
        assert self._table is not None
        return self._table

    def to_json(self) -> Any:
        out: dict[str, Any] = {"type": "inline", "columnNames": list(self.columnNames)}
        if self.columnTypes is not None:
            out["columnTypes"] = list(self.columnTypes)
        out["rows"] = self.rows
        return out


def _inline_table(spec: dict[str, Any]) -> pa.Table:
    names: list[str] = spec["columnNames"]
    types = spec.get("columnTypes") or [None] * len(names)
    cols: dict[str, Any] = {}
    rows = spec["rows"]
    for i, (name, typ) in enumerate(zip(names, types, strict=True)):
        values = [row[i] for row in rows]
        try:
            if typ is not None:
                arrow_type = _TYPES[typ.upper()]
                arr = (
                    _string_array(values)
                    if arrow_type == pa.string()
                    else pa.array(values, arrow_type)
                )
            else:
                arr = pa.array(values)
                if pa.types.is_null(arr.type):
                    arr = arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise ValueError(f"inline datasource: column [{name}] values: {exc}") from None
        if name == "__time" and pa.types.is_integer(arr.type):
            arr = arr.cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
        cols[name] = normalise(arr) if name != "__time" else arr
    return pa.table(cols)


def _string_array(values: Sequence[Any]) -> pa.Array:
    """A string column; values that are not strings (numbers, booleans) become their ``str``."""
    try:
        return pa.array(values, pa.string())  # all strings or null: no Python loop
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


class JoinDataSource(_DS):
    type: Literal["join"]
    left: DataSourceSpec
    right: DataSourceSpec
    rightPrefix: str
    condition: str
    joinType: str = "INNER"

    @field_validator("left", "right", mode="before")
    @classmethod
    def _name_is_table(cls, v: Any) -> Any:
        return {"type": "table", "name": v} if isinstance(v, str) else v

    @field_validator("rightPrefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or "__time".startswith(v):
            raise ValueError(
                f"join rightPrefix [{v}] must be non-empty and not a prefix of '__time'"
            )
        return v

    @field_validator("joinType")
    @classmethod
    def _join_type(cls, v: str) -> str:
        if v.upper() not in ("INNER", "LEFT"):
            raise ValueError(f"joinType [{v}] is not supported; only INNER and LEFT")
        return v.upper()

    @model_validator(mode="after")
    def _sides(self) -> JoinDataSource:
        if not isinstance(self.left, TableDataSource | JoinDataSource):
            raise ValueError("join: the left side must be a table or another join")
        if not isinstance(self.right, InlineDataSource):
            raise ValueError(
                f"join: a right side of type [{self.right.type}] is not supported; only inline"
            )
        self.key_pairs()
        right_cols = set(self.right.columnNames)
        for _, right in self.key_pairs():
            if right not in right_cols:
                raise ValueError(f"join condition: the right side has no column [{right}]")
        return self

    def base_table(self) -> str:
        left = self.left
        return left.name if isinstance(left, TableDataSource) else left.base_table()  # type: ignore[union-attr]

    def key_pairs(self) -> list[tuple[Node, str]]:
        """(left expression, right column without the prefix) for each equality."""
        return _key_pairs(self.condition, self.rightPrefix)

    def to_json(self) -> Any:
        return {
            "type": "join",
            "left": self.left.to_json(),
            "right": self.right.to_json(),
            "rightPrefix": self.rightPrefix,
            "condition": self.condition,
            "joinType": self.joinType,
        }


class UnionDataSource(_DS):
    type: Literal["union"]
    dataSources: list[str] = Field(min_length=1)

    @field_validator("dataSources", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        out = []
        for d in v:
            if isinstance(d, dict):
                if d.get("type", "table") != "table":
                    raise ValueError("union: every member must be a table")
                d = d.get("name")
            out.append(d)
        return out

    def to_json(self) -> Any:
        return {"type": "union", "dataSources": list(self.dataSources)}


class QueryDataSource(_DS):
    """A nested query; the broker runs it, materialises its results (at most
    ``maxSubqueryRows``) and runs the outer query on them, as Druid does."""

    type: Literal["query"]
    query: dict[str, Any]

    @field_validator("query")
    @classmethod
    def _parses(cls, v: dict[str, Any]) -> dict[str, Any]:
        from common.query.models import parse_query

        inner = parse_query(v)
        if inner.queryType not in ("timeseries", "topN", "groupBy", "scan"):
            raise ValueError(f"a [{inner.queryType}] query cannot be a datasource")
        return v

    def parsed(self) -> Any:
        from common.query.models import parse_query

        return parse_query(self.query)

    def to_json(self) -> Any:
        return {"type": "query", "query": self.query}


class UnnestDataSource(_DS):
    """Druid's ``UnnestDataSource``: the base's rows, one per value of ``virtualColumn``."""

    type: Literal["unnest"]
    base: DataSourceSpec
    virtualColumn: ExpressionVirtualColumn
    unnestFilter: Filter | None = None

    @field_validator("base", mode="before")
    @classmethod
    def _name_is_table(cls, v: Any) -> Any:
        return {"type": "table", "name": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _base_kind(self) -> UnnestDataSource:
        if not isinstance(
            self.base,
            TableDataSource
            | InlineDataSource
            | JoinDataSource
            | UnnestDataSource
            | FilterDataSource,
        ):
            raise ValueError(
                f"unnest: a base of type [{self.base.type}] is not supported; a table, inline, "
                "join, filter or another unnest"
            )
        return self

    def to_json(self) -> Any:
        return {
            "type": "unnest",
            "base": self.base.to_json(),
            "virtualColumn": self.virtualColumn.model_dump(mode="json", exclude_none=True),
            "unnestFilter": None
            if self.unnestFilter is None
            else self.unnestFilter.model_dump(mode="json", by_alias=True, exclude_none=True),
        }


class FilterDataSource(_DS):
    """Druid's ``FilteredDataSource``: the rows of ``base`` that ``filter`` keeps."""

    type: Literal["filter"]
    base: DataSourceSpec
    filter: Filter

    @field_validator("base", mode="before")
    @classmethod
    def _name_is_table(cls, v: Any) -> Any:
        return {"type": "table", "name": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _base_kind(self) -> FilterDataSource:
        if not isinstance(
            self.base,
            TableDataSource
            | InlineDataSource
            | JoinDataSource
            | UnnestDataSource
            | FilterDataSource,
        ):
            raise ValueError(
                f"filter datasource: a base of type [{self.base.type}] is not supported"
            )
        return self

    def to_json(self) -> Any:
        return {
            "type": "filter",
            "base": self.base.to_json(),
            "filter": self.filter.model_dump(mode="json", by_alias=True, exclude_none=True),
        }


DataSourceSpec = Annotated[
    TableDataSource
    | InlineDataSource
    | JoinDataSource
    | UnionDataSource
    | QueryDataSource
    | UnnestDataSource
    | FilterDataSource,
    Field(discriminator="type"),
]
JoinDataSource.model_rebuild()
UnnestDataSource.model_rebuild()
FilterDataSource.model_rebuild()
_ADAPTER: TypeAdapter[Any] = TypeAdapter(DataSourceSpec)

_REFUSED = {
    "lookup": "lookup datasources are resolved by the broker; a data node does not take them",
    "globalTable": "globalTable datasources are not supported",
}


AnyDataSource = (
    TableDataSource
    | InlineDataSource
    | JoinDataSource
    | UnionDataSource
    | QueryDataSource
    | UnnestDataSource
    | FilterDataSource
)


def parse_datasource(value: Any) -> AnyDataSource:
    if isinstance(value, str):
        value = {"type": "table", "name": value}
    if isinstance(value, dict):
        _refuse_nested(value)
    return _ADAPTER.validate_python(value)  # type: ignore[no-any-return]


def base_table_of(spec: AnyDataSource) -> str:
    """The table whose segments a query over ``spec`` reads (routing at the broker)."""
    if isinstance(spec, TableDataSource):
        return spec.name
    if isinstance(spec, JoinDataSource):
        return spec.base_table()
    if isinstance(spec, UnionDataSource):
        return spec.dataSources[0]
    if isinstance(spec, QueryDataSource):
        return str(spec.parsed().dataSource)
    if isinstance(spec, UnnestDataSource | FilterDataSource):
        return base_table_of(spec.base)
    return INLINE_TABLE


def innermost(spec: Any) -> Any:
    """The datasource an unnest or filter datasource finally reads (itself otherwise)."""
    while isinstance(spec, UnnestDataSource | FilterDataSource):
        spec = spec.base
    return spec


def _refuse_nested(value: dict[str, Any]) -> None:
    typ = value.get("type")
    if typ in _REFUSED:
        raise ValueError(_REFUSED[typ])
    for side in ("left", "right", "base"):
        inner = value.get(side)
        if isinstance(inner, dict):
            _refuse_nested(inner)


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, Binary) and node.op == "&&":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _key_pairs(condition: str, prefix: str) -> list[tuple[Node, str]]:
    node = parse_expression(condition).node
    pairs: list[tuple[Node, str]] = []
    for c in _conjuncts(node):
        pair = None
        if isinstance(c, Binary) and c.op == "==":
            for right, left in ((c.right, c.left), (c.left, c.right)):
                if (
                    isinstance(right, Ident)
                    and right.name.startswith(prefix)
                    and not any(n.startswith(prefix) for n in columns_of(left))
                ):
                    pair = (left, right.name[len(prefix) :])
                    break
        if pair is None:
            raise ValueError(
                f"join condition [{condition}] must be equalities of a left-side expression and "
                f'a right-side column ("{prefix}name"), joined by &&'
            )
        pairs.append(pair)
    return pairs
