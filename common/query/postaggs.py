"""Druid post-aggregators: models and vectorised evaluation over merged, finalized result columns.

Post-aggregators run once at the end (after the last merge), one array operation per
post-aggregator over all result rows. ``fieldAccess`` reads an aggregator's raw (unfinalized)
value, which for sketch aggregators is the sketch itself, so ``thetaSketchEstimate`` and
``hyperUniqueCardinality`` can estimate it; ``finalizingFieldAccess`` reads the finalized value.
``thetaSketchSetOp`` returns a sketch (base64 in results, as Druid serialises it); the
``quantilesDoublesSketchToQuantile(s)`` post-aggregators read a quantiles sketch at inclusive ranks.
Arithmetic is in double precision; ``/`` returns 0 on division by zero (Druid), ``quotient`` is
plain division; a null operand gives null (SQL-compatible mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.errors import QueryParseError
from common.expr import parse_expression
from common.query import sketches
from common.query.sketches import SketchKind
from common.query.variance import is_population, variance
from common.query.virtual import OUTPUT_TYPES, cast_output


@dataclass
class Env:
    """Columns a post-aggregator can read: raw partial values (with their sketch kind) and
    finalized values, by output name."""

    raw: dict[str, tuple[Any, SketchKind | None]]
    final: dict[str, Any]
    table: pa.Table | None = None
    """The merged result rows (dimension values) an ``expression`` post-aggregator may read."""


class _PostAgg(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    name: str | None = None

    def evaluate(self, env: Env, n: int) -> Any:
        """Raw value (an array, possibly of sketches) for ``n`` rows."""
        raise NotImplementedError

    def sketch_kind(self, env: Env) -> SketchKind | None:
        return None


def _numbers(value: Any, what: str) -> Any:
    if pa.types.is_binary(value.type):
        raise QueryParseError(f"post-aggregator [{what}] cannot do arithmetic on a sketch")
    return value.cast(pa.float64())


class ArithmeticPostAgg(_PostAgg):
    type: Literal["arithmetic"]
    fn: Literal["+", "-", "*", "/", "quotient", "pow", "%"]
    fields: list[PostAggregator] = Field(min_length=1)
    ordering: str | None = None

    def evaluate(self, env: Env, n: int) -> Any:
        vals = [_numbers(f.evaluate(env, n), self.name or "arithmetic") for f in self.fields]
        out = vals[0]
        for v in vals[1:]:
            if self.fn == "+":
                out = pc.add(out, v)
            elif self.fn == "-":
                out = pc.subtract(out, v)
            elif self.fn == "*":
                out = pc.multiply(out, v)
            elif self.fn == "/":
                zero = pc.and_(pc.equal(v, 0.0), pc.is_valid(out))
                out = pc.if_else(zero, 0.0, pc.divide(out, v))
            elif self.fn == "quotient":
                out = pc.divide(out, v)
            elif self.fn == "pow":
                out = pc.power(out, v)
            else:
                out = pc.subtract(out, pc.multiply(pc.trunc(pc.divide(out, v)), v))
        return out


class FieldAccessPostAgg(_PostAgg):
    type: Literal["fieldAccess"]
    fieldName: str

    def evaluate(self, env: Env, n: int) -> Any:
        if self.fieldName not in env.raw:
            raise QueryParseError(f"fieldAccess: unknown field [{self.fieldName}]")
        return env.raw[self.fieldName][0]

    def sketch_kind(self, env: Env) -> SketchKind | None:
        return env.raw.get(self.fieldName, (None, None))[1]


class FinalizingFieldAccessPostAgg(_PostAgg):
    type: Literal["finalizingFieldAccess"]
    fieldName: str

    def evaluate(self, env: Env, n: int) -> Any:
        if self.fieldName not in env.final:
            raise QueryParseError(f"finalizingFieldAccess: unknown field [{self.fieldName}]")
        return env.final[self.fieldName]


class ConstantPostAgg(_PostAgg):
    type: Literal["constant"]
    value: float | int

    def evaluate(self, env: Env, n: int) -> Any:
        typ = pa.int64() if isinstance(self.value, int) else pa.float64()
        return pa.array([self.value] * n, typ) if n else pa.array([], typ)


class HyperUniqueCardinalityPostAgg(_PostAgg):
    type: Literal["hyperUniqueCardinality"]
    fieldName: str

    def evaluate(self, env: Env, n: int) -> Any:
        raw, kind = env.raw.get(self.fieldName, (None, None))
        if raw is None or kind != "hll":
            raise QueryParseError(
                f"hyperUniqueCardinality: [{self.fieldName}] is not a hyperUnique aggregator"
            )
        return sketches.estimate("hll", raw)


class ThetaSketchEstimatePostAgg(_PostAgg):
    type: Literal["thetaSketchEstimate"]
    field: PostAggregator

    def evaluate(self, env: Env, n: int) -> Any:
        if self.field.sketch_kind(env) != "theta":
            raise QueryParseError("thetaSketchEstimate: field is not a thetaSketch aggregator")
        return sketches.estimate("theta", self.field.evaluate(env, n))


class HllSketchEstimatePostAgg(_PostAgg):
    type: Literal["HLLSketchEstimate"]
    field: PostAggregator
    round: bool = False

    def evaluate(self, env: Env, n: int) -> Any:
        if self.field.sketch_kind(env) != "hll":
            raise QueryParseError("HLLSketchEstimate: field is not an HLL sketch aggregator")
        est = sketches.estimate("hll", self.field.evaluate(env, n))
        return pc.round(est).cast(pa.int64()) if self.round else est


class ExpressionPostAgg(_PostAgg):
    """A Druid expression over finalized aggregators, earlier post-aggregators and (groupBy,
    topN) the row's dimension values."""

    type: Literal["expression"]
    expression: str
    ordering: str | None = None
    outputType: str | None = None

    @field_validator("expression")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse_expression(v)
        return v

    @field_validator("outputType")
    @classmethod
    def _output_type(cls, v: str | None) -> str | None:
        if v is not None and v.upper() not in OUTPUT_TYPES:
            raise ValueError(f"expression post-aggregator outputType [{v}] is not supported")
        return None if v is None else v.upper()

    def evaluate(self, env: Env, n: int) -> Any:
        cols: dict[str, Any] = {}
        if env.table is not None:
            for name in env.table.column_names:
                cols[name] = env.table.column(name)
        cols.update(env.final)
        table = pa.table(cols) if cols else pa.table({"__rows": pa.nulls(n, pa.int8())})
        value = parse_expression(self.expression).evaluate_table(table)
        return cast_output(value, self.outputType, n)


class ThetaSketchSetOpPostAgg(_PostAgg):
    """A sketch: the row-wise UNION, INTERSECT or NOT (A not B...) of theta sketches."""

    type: Literal["thetaSketchSetOp"]
    func: Literal["UNION", "INTERSECT", "NOT"]
    fields: list[PostAggregator] = Field(min_length=1)
    size: int = Field(default=sketches.THETA_DEFAULT_SIZE, gt=0)

    def evaluate(self, env: Env, n: int) -> Any:
        for f in self.fields:
            if f.sketch_kind(env) != "theta":
                raise QueryParseError(
                    f"thetaSketchSetOp [{self.name}]: every field must be a theta sketch"
                )
        operands = [f.evaluate(env, n) for f in self.fields]
        return sketches.theta_set_op(self.func, operands, size=self.size)

    def sketch_kind(self, env: Env) -> SketchKind | None:
        return "theta"


def _quantiles_input(what: str, field: _PostAgg, env: Env, n: int) -> Any:
    if field.sketch_kind(env) != "quantiles":
        raise QueryParseError(f"{what}: field is not a quantilesDoublesSketch aggregator")
    return field.evaluate(env, n)


class QuantilesToQuantilePostAgg(_PostAgg):
    type: Literal["quantilesDoublesSketchToQuantile"]
    field: PostAggregator
    fraction: float = Field(ge=0.0, le=1.0)

    def evaluate(self, env: Env, n: int) -> Any:
        blobs = _quantiles_input(self.type, self.field, env, n)
        return pa.array([r[0] for r in sketches.quantiles(blobs, [self.fraction])], pa.float64())


class QuantilesToQuantilesPostAgg(_PostAgg):
    type: Literal["quantilesDoublesSketchToQuantiles"]
    field: PostAggregator
    fractions: list[float] = Field(min_length=1)

    def evaluate(self, env: Env, n: int) -> Any:
        if any(not 0.0 <= f <= 1.0 for f in self.fractions):
            raise QueryParseError(f"{self.type}: fractions must be between 0 and 1")
        blobs = _quantiles_input(self.type, self.field, env, n)
        return pa.array(sketches.quantiles(blobs, self.fractions), pa.list_(pa.float64()))


class StddevPostAgg(_PostAgg):
    """``stddev`` (druid-stats): the square root of a ``variance`` aggregator's variance."""

    type: Literal["stddev"]
    fieldName: str
    estimator: str | None = None

    def evaluate(self, env: Env, n: int) -> Any:
        raw = env.raw.get(self.fieldName, (None, None))[0]
        if raw is None or not pa.types.is_binary(raw.type):
            raise QueryParseError(f"stddev: [{self.fieldName}] is not a variance aggregator")
        return pc.sqrt(variance(raw, is_population(self.estimator)))


PostAggregator = Annotated[
    ArithmeticPostAgg
    | FieldAccessPostAgg
    | FinalizingFieldAccessPostAgg
    | ConstantPostAgg
    | HyperUniqueCardinalityPostAgg
    | ThetaSketchEstimatePostAgg
    | HllSketchEstimatePostAgg
    | ExpressionPostAgg
    | ThetaSketchSetOpPostAgg
    | QuantilesToQuantilePostAgg
    | QuantilesToQuantilesPostAgg
    | StddevPostAgg,
    Field(discriminator="type"),
]

for _m in (
    ArithmeticPostAgg,
    ThetaSketchEstimatePostAgg,
    HllSketchEstimatePostAgg,
    ThetaSketchSetOpPostAgg,
    QuantilesToQuantilePostAgg,
    QuantilesToQuantilesPostAgg,
):
    _m.model_rebuild()


def apply_post_aggs(post_aggs: list[Any], env: Env, n: int) -> dict[str, Any]:
    """Evaluate post-aggregators in order; each can read the ones before it."""
    out: dict[str, Any] = {}
    for pa_ in post_aggs:
        value = pa_.evaluate(env, n)
        kind = pa_.sketch_kind(env)
        if pa.types.is_binary(value.type) and kind is None:
            raise QueryParseError(f"post-aggregator [{pa_.name}] returns a sketch; estimate it")
        name = pa_.name or ""
        out[name] = value
        env.raw[name] = (value, kind)
        env.final[name] = value
    return out
