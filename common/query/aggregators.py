"""Druid aggregators: models, and how each one aggregates a segment, merges and finalizes.

Every aggregator has a mergeable PARTIAL form, one column named after the aggregator:
``count``/``long*`` -> int64, ``double*``/``float*`` -> float64 (floats are summed in double
precision), sketches -> binary (serialised theta or HLL). Per segment the input column is prepared
vectorised and reduced by Acero (``Table.group_by().aggregate()``); partials merge with sum, min,
max or a sketch union; finalizing turns sketches into estimates. Sums, mins and maxes over no
values are null, as in Druid's SQL-compatible mode; ``count`` is 0.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.expr import parse_expression
from common.query import sketches
from common.query.columns import get_column, is_multi_value, plain, to_numbers, to_strings
from common.query.filters import Filter, filter_mask
from common.query.sketches import SketchKind

AggInput = tuple[Any, str, Any]
"""(input array, Acero aggregate function, options) for one per-segment reduction."""

_COUNT_VALID = pc.CountOptions(mode="only_valid")


class _Agg(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    name: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _no_expression(cls, data: Any) -> Any:
        simple = issubclass(cls, _SimpleAgg)
        if not simple and isinstance(data, dict) and data.get("expression") is not None:
            raise ValueError(f"aggregator [{data.get('type')}] does not take an expression")
        return data

    # What a subclass sets: its partial column type, how partials merge, its sketch family.
    PARTIAL_TYPE: ClassVar[Any] = pa.int64()
    MERGE_OP: ClassVar[str] = "sum"
    SKETCH: ClassVar[SketchKind | None] = None

    @property
    def partial_type(self) -> Any:
        return self.PARTIAL_TYPE

    @property
    def merge_op(self) -> str:
        return self.MERGE_OP

    @property
    def sketch_kind(self) -> SketchKind | None:
        return self.SKETCH

    def inputs(self, table: pa.Table) -> list[AggInput]:
        raise NotImplementedError

    def segment_finish(self, reduced: list[Any]) -> Any:
        return reduced[0].cast(self.partial_type)

    def merge_finish(self, merged: Any) -> Any:
        return merged.cast(self.partial_type)

    GATHERS_ROWS: ClassVar[bool] = False
    """True for aggregators whose partials Acero cannot gather (lists): they aggregate row
    numbers, and ``segment_finish_rows`` / ``merge_finish_rows`` get the rows themselves."""

    @property
    def gathers_rows(self) -> bool:
        return self.GATHERS_ROWS

    def segment_finish_rows(self, reduced: list[Any], table: pa.Table) -> Any:
        return self.segment_finish(reduced)

    def merge_finish_rows(self, merged: Any, partials: Any) -> Any:
        return self.merge_finish(merged)

    def finalize(self, partial: Any) -> Any:
        return partial

    def empty_value(self) -> Any:
        """The partial value of a group with no rows (timeseries empty buckets)."""
        return None


class CountAgg(_Agg):
    type: Literal["count"]
    PARTIAL_TYPE: ClassVar[Any] = pa.int64()

    def inputs(self, table: pa.Table) -> list[AggInput]:
        ones = pa.array(np.ones(table.num_rows, dtype=np.int64))
        return [(ones, "count", _COUNT_VALID)]

    def finalize(self, partial: Any) -> Any:
        return pc.fill_null(partial, 0)

    def empty_value(self) -> Any:
        return 0


def _numeric(table: pa.Table, field: str, typ: Any) -> Any:
    col = get_column(table, field)
    if is_multi_value(col.type):
        return pa.nulls(table.num_rows, typ)
    col = plain(col)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        col = to_numbers(col)
    return pc.cast(col, typ, safe=False)


class _SimpleAgg(_Agg):
    """Sum/min/max of a column (``fieldName``) or of a Druid expression (``expression``)."""

    fieldName: str | None = None
    expression: str | None = None

    @model_validator(mode="after")
    def _one_input(self) -> _SimpleAgg:
        if (self.fieldName is None) == (self.expression is None):
            raise ValueError(
                f"aggregator [{self.name}] needs exactly one of fieldName or expression"
            )
        if self.expression is not None:
            parse_expression(self.expression)
        return self

    def inputs(self, table: pa.Table) -> list[AggInput]:
        if self.expression is not None:
            value = parse_expression(self.expression).evaluate_table(table, chunked=True)
            arr = pa.table({"v": value})
            return [(_numeric(arr, "v", self.partial_type), self.merge_op, None)]
        field = self.fieldName or ""
        return [(_numeric(table, field, self.partial_type), self.merge_op, None)]


class LongSumAgg(_SimpleAgg):
    type: Literal["longSum"]
    PARTIAL_TYPE: ClassVar[Any] = pa.int64()


class DoubleSumAgg(_SimpleAgg):
    type: Literal["doubleSum", "floatSum"]
    PARTIAL_TYPE: ClassVar[Any] = pa.float64()


class LongMinAgg(_SimpleAgg):
    type: Literal["longMin"]
    PARTIAL_TYPE: ClassVar[Any] = pa.int64()
    MERGE_OP: ClassVar[str] = "min"


class LongMaxAgg(_SimpleAgg):
    type: Literal["longMax"]
    PARTIAL_TYPE: ClassVar[Any] = pa.int64()
    MERGE_OP: ClassVar[str] = "max"


class DoubleMinAgg(_SimpleAgg):
    type: Literal["doubleMin", "floatMin"]
    PARTIAL_TYPE: ClassVar[Any] = pa.float64()
    MERGE_OP: ClassVar[str] = "min"


class DoubleMaxAgg(_SimpleAgg):
    type: Literal["doubleMax", "floatMax"]
    PARTIAL_TYPE: ClassVar[Any] = pa.float64()
    MERGE_OP: ClassVar[str] = "max"


class _SketchAgg(_Agg):
    """Sketch aggregators: build from raw values, or union a binary (pre-aggregated) column."""

    PARTIAL_TYPE: ClassVar[Any] = pa.binary()
    MERGE_OP: ClassVar[str] = "list"

    def _size(self) -> int:
        raise NotImplementedError

    def _hll_tgt(self) -> str:
        return "HLL_4"

    def _count_empty(self) -> bool:
        return False

    def _fields(self) -> list[str]:
        raise NotImplementedError

    def inputs(self, table: pa.Table) -> list[AggInput]:
        out: list[AggInput] = []
        for field in self._fields():
            col = get_column(table, field)
            if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
                out.append((col.cast(pa.binary()), "list", None))
            else:
                out.append((_sketch_values(col), "distinct", None))
        return out

    def segment_finish(self, reduced: list[Any]) -> Any:
        kind = self.sketch_kind or "hll"
        built = [r for r in reduced if not _is_binary_list(r.type)]
        merged = [r for r in reduced if _is_binary_list(r.type)]
        parts = []
        if built:
            parts.append(
                sketches.build(
                    kind,
                    built,
                    size=self._size(),
                    hll_tgt=self._hll_tgt(),
                    count_empty=self._count_empty(),
                )
            )
        parts.extend(merged)
        if len(parts) == 1 and not merged:
            return parts[0]
        # Built sketches and pre-aggregated blobs of the same group are unioned together.
        n = len(parts[0])
        lists = [[b for p in parts for b in _as_blob_list(p, g) if b is not None] for g in range(n)]
        return sketches.union(
            kind,
            pa.array(lists, pa.list_(pa.binary())),
            size=self._size(),
            hll_tgt=self._hll_tgt(),
        )

    def merge_finish(self, merged: Any) -> Any:
        kind = self.sketch_kind or "hll"
        return sketches.union(kind, merged, size=self._size(), hll_tgt=self._hll_tgt())

    def finalize(self, partial: Any) -> Any:
        return sketches.estimate(self.sketch_kind or "hll", partial)


def _is_binary_list(typ: Any) -> bool:
    return bool(pa.types.is_list(typ) and pa.types.is_binary(typ.value_type))


def _as_blob_list(arr: Any, g: int) -> list[Any]:
    v = arr[g].as_py()
    return v if isinstance(v, list) else [v]


MV_SEPARATOR = "\x1f"


def _sketch_values(col: Any) -> Any:
    """Values hashed into a sketch: strings for dimensions, numbers as they are.

    Acero cannot de-duplicate lists, so a multi-value row travels as its values joined by U+001F
    in a ``large_string`` column (the type tells ``sketches.build`` to split it again).
    """
    if is_multi_value(col.type):
        col = col.cast(pa.list_(pa.string()))
        joined = pc.binary_join(col, MV_SEPARATOR)
        empty = pc.equal(pc.fill_null(pc.list_value_length(col), 0), 0)
        return pc.if_else(empty, pa.scalar(None, pa.string()), joined).cast(pa.large_string())
    col = plain(col)
    return (
        col
        if (pa.types.is_integer(col.type) or pa.types.is_floating(col.type))
        else (to_strings(col))
    )


class ThetaSketchAgg(_SketchAgg):
    type: Literal["thetaSketch"]
    fieldName: str
    size: int = Field(default=sketches.THETA_DEFAULT_SIZE, gt=0)
    shouldFinalize: bool = True
    isInputThetaSketch: bool = False
    SKETCH: ClassVar[SketchKind | None] = "theta"

    def _size(self) -> int:
        return self.size

    def _fields(self) -> list[str]:
        return [self.fieldName]

    def finalize(self, partial: Any) -> Any:
        return sketches.estimate("theta", partial) if self.shouldFinalize else partial


class HllSketchAgg(_SketchAgg):
    type: Literal["HLLSketchBuild", "HLLSketchMerge"]
    fieldName: str
    lgK: int = Field(default=sketches.HLL_DEFAULT_LGK, ge=4, le=21)
    tgtHllType: Literal["HLL_4", "HLL_6", "HLL_8"] = "HLL_4"
    round: bool = False
    shouldFinalize: bool = True
    SKETCH: ClassVar[SketchKind | None] = "hll"

    def _size(self) -> int:
        return self.lgK

    def _hll_tgt(self) -> str:
        return self.tgtHllType

    def _fields(self) -> list[str]:
        return [self.fieldName]

    def finalize(self, partial: Any) -> Any:
        if not self.shouldFinalize:
            return partial
        est = sketches.estimate("hll", partial)
        return pc.round(est).cast(pa.int64()) if self.round else est


class HyperUniqueAgg(_SketchAgg):
    type: Literal["hyperUnique"]
    fieldName: str
    round: bool = False
    SKETCH: ClassVar[SketchKind | None] = "hll"

    def _size(self) -> int:
        return sketches.CARDINALITY_LGK

    def _count_empty(self) -> bool:
        return True

    def _fields(self) -> list[str]:
        return [self.fieldName]

    def finalize(self, partial: Any) -> Any:
        est = sketches.estimate("hll", partial)
        return pc.round(est).cast(pa.int64()) if self.round else est


class CardinalityAgg(_SketchAgg):
    type: Literal["cardinality"]
    fields: list[str] = Field(min_length=1)
    byRow: bool = False
    round: bool = False
    SKETCH: ClassVar[SketchKind | None] = "hll"

    @model_validator(mode="before")
    @classmethod
    def _plain_fields(cls, data: Any) -> Any:
        # Druid accepts dimension specs here; only their "dimension" matters without extraction.
        if isinstance(data, dict) and isinstance(data.get("fields"), list):
            for f in data["fields"]:
                if isinstance(f, dict) and (
                    f.get("extractionFn") is not None or f.get("type") in ("extraction", "lookup")
                ):
                    raise ValueError(
                        "cardinality over an extraction or lookup dimension spec is not supported"
                    )
            data = dict(data)
            data["fields"] = [
                f.get("dimension") if isinstance(f, dict) else f for f in data["fields"]
            ]
        return data

    def _size(self) -> int:
        return sketches.CARDINALITY_LGK

    def _count_empty(self) -> bool:
        return True

    def _fields(self) -> list[str]:
        return self.fields

    def inputs(self, table: pa.Table) -> list[AggInput]:
        if not self.byRow or len(self.fields) == 1:
            return super().inputs(table)
        # One value per row: the fields joined; rows whose fields are all null are skipped.
        parts = [to_strings(plain(_first_value(get_column(table, f)))) for f in self.fields]
        all_null = pc.is_null(parts[0])
        for p in parts[1:]:
            all_null = pc.and_(all_null, pc.is_null(p))
        joined = pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], "\u0001")
        joined = pc.if_else(all_null, pa.scalar(None, pa.string()), joined)
        return [(joined, "distinct", None)]

    def finalize(self, partial: Any) -> Any:
        est = sketches.estimate("hll", partial)
        return pc.round(est).cast(pa.int64()) if self.round else est


class QuantilesDoublesSketchAgg(_SketchAgg):
    """Druid's ``quantilesDoublesSketch``: builds from numbers or merges a sketch column; its
    finalized value is the sketch's N (how many values it saw), as in Druid."""

    type: Literal["quantilesDoublesSketch"]
    fieldName: str
    k: int = Field(default=sketches.QUANTILES_DEFAULT_K, ge=2, le=32768)
    maxStreamLength: int | None = None
    shouldFinalize: bool = True
    SKETCH: ClassVar[SketchKind | None] = "quantiles"

    @model_validator(mode="after")
    def _k_power_of_two(self) -> QuantilesDoublesSketchAgg:
        if self.k & (self.k - 1):
            raise ValueError(f"quantilesDoublesSketch [{self.name}]: k must be a power of 2")
        return self

    def _size(self) -> int:
        return self.k

    def _fields(self) -> list[str]:
        return [self.fieldName]

    def inputs(self, table: pa.Table) -> list[AggInput]:
        col = get_column(table, self.fieldName)
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            return [(col.cast(pa.binary()), "list", None)]
        # Every value counts (not only distinct ones): the list of each group's numbers.
        return [(_numeric(table, self.fieldName, pa.float64()), "list", None)]

    def segment_finish(self, reduced: list[Any]) -> Any:
        r = reduced[0]
        if _is_binary_list(r.type):
            return sketches.union("quantiles", r, size=self.k)
        return sketches.build("quantiles", [r], size=self.k)

    def finalize(self, partial: Any) -> Any:
        return sketches.count_n(partial) if self.shouldFinalize else partial


def _first_value(col: Any) -> Any:
    if is_multi_value(col.type):
        return pc.list_element(
            pc.if_else(
                pc.fill_null(pc.list_value_length(col), 0) > 0, col, pa.scalar([None], col.type)
            ),
            0,
        )
    return col


class FilteredAgg(_Agg):
    type: Literal["filtered"]
    name: str = ""
    filter: Filter
    aggregator: Aggregator

    @model_validator(mode="after")
    def _inherit_name(self) -> FilteredAgg:
        if not self.name:
            object.__setattr__(self, "name", self.aggregator.name)
        return self

    @property
    def inner(self) -> _Agg:
        return self.aggregator

    def inputs(self, table: pa.Table) -> list[AggInput]:
        mask = filter_mask(self.filter, table)
        return [
            (pc.if_else(mask, arr, pa.scalar(None, arr.type)), op, opts)
            for arr, op, opts in self.inner.inputs(table)
        ]

    def segment_finish(self, reduced: list[Any]) -> Any:
        return self.inner.segment_finish(reduced)

    def merge_finish(self, merged: Any) -> Any:
        return self.inner.merge_finish(merged)

    @property
    def gathers_rows(self) -> bool:
        return self.inner.gathers_rows

    def segment_finish_rows(self, reduced: list[Any], table: pa.Table) -> Any:
        return self.inner.segment_finish_rows(reduced, table)

    def merge_finish_rows(self, merged: Any, partials: Any) -> Any:
        return self.inner.merge_finish_rows(merged, partials)

    def finalize(self, partial: Any) -> Any:
        return self.inner.finalize(partial)

    def empty_value(self) -> Any:
        return self.inner.empty_value()

    @property
    def partial_type(self) -> Any:
        return self.inner.partial_type

    @property
    def merge_op(self) -> str:
        return self.inner.merge_op

    @property
    def sketch_kind(self) -> SketchKind | None:
        return self.inner.sketch_kind


from common.query.expragg import ExpressionAgg  # noqa: E402 - builds on _Agg above
from common.query.firstlast import (  # noqa: E402 - they build on _Agg above
    DoubleFirstAgg,
    DoubleLastAgg,
    LongFirstAgg,
    LongLastAgg,
    StringFirstAgg,
    StringLastAgg,
)
from common.query.variance_agg import VarianceAgg  # noqa: E402 - builds on _Agg above


class GroupingAgg(_Agg):
    """Druid's ``grouping`` aggregator (``GroupingAggregatorFactory``): a constant per subtotal
    of a groupBy ``subtotalsSpec``, one bit per entry of ``groups`` (the first the highest
    bit), set when that dimension is not grouped on in the subtotal. Without subtotals (no
    ``keyDimensions``) every dimension is grouped on: 0."""

    type: Literal["grouping"]
    groups: list[str] = Field(min_length=1, max_length=63)
    keyDimensions: list[str] | None = None

    PARTIAL_TYPE: ClassVar[Any] = pa.int64()
    MERGE_OP: ClassVar[str] = "max"

    def value(self) -> int:
        out = 0
        for group in self.groups:
            out <<= 1
            if self.keyDimensions is not None and group not in self.keyDimensions:
                out |= 1
        return out

    def inputs(self, table: pa.Table) -> list[AggInput]:
        return [(pa.array(np.full(table.num_rows, self.value(), np.int64)), "max", None)]

    def finalize(self, partial: Any) -> Any:
        return pa.array(np.full(len(partial), self.value(), np.int64))

    def empty_value(self) -> Any:
        return self.value()


Aggregator = Annotated[
    CountAgg
    | LongSumAgg
    | DoubleSumAgg
    | LongMinAgg
    | LongMaxAgg
    | DoubleMinAgg
    | DoubleMaxAgg
    | ThetaSketchAgg
    | HllSketchAgg
    | HyperUniqueAgg
    | CardinalityAgg
    | QuantilesDoublesSketchAgg
    | FilteredAgg
    | LongFirstAgg
    | LongLastAgg
    | DoubleFirstAgg
    | DoubleLastAgg
    | StringFirstAgg
    | StringLastAgg
    | ExpressionAgg
    | VarianceAgg
    | GroupingAgg,
    Field(discriminator="type"),
]

FilteredAgg.model_rebuild()
