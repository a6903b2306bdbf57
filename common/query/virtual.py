"""Native ``virtualColumns``: columns computed per segment from Druid expressions.

Only ``{"type": "expression", "name", "expression", "outputType"}`` exists in Druid core; any
other type is refused. Virtual columns may read each other (evaluated in dependency order, a
cycle is refused) and shadow a physical column of the same name, as in Druid. ``outputType``
casts the value (LONG, FLOAT, DOUBLE, STRING, ARRAY<STRING|LONG|DOUBLE>); without it the
expression's own type is kept.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.expr import Expr, parse_expression
from common.expr.registry import FUNCTIONS
from common.expr.vector import V, call

OUTPUT_TYPES = {
    "LONG": "LONG",
    "FLOAT": "DOUBLE",
    "DOUBLE": "DOUBLE",
    "STRING": "STRING",
    "ARRAY<STRING>": "ARRAY<STRING>",
    "ARRAY<LONG>": "ARRAY<LONG>",
    "ARRAY<DOUBLE>": "ARRAY<DOUBLE>",
}


class ExpressionVirtualColumn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["expression"]
    name: str = Field(min_length=1)
    expression: str
    outputType: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") != "expression":
            raise ValueError(
                f"virtual column type [{data.get('type')}] is not supported; only 'expression'"
            )
        return data

    @field_validator("name")
    @classmethod
    def _not_time(cls, v: str) -> str:
        if v == "__time":
            raise ValueError("virtualColumn name [__time] not allowed")
        return v

    @field_validator("outputType")
    @classmethod
    def _output_type(cls, v: str | None) -> str | None:
        if v is None:
            return None
        key = v.upper().replace(" ", "")
        if key not in OUTPUT_TYPES:
            raise ValueError(
                f"virtual column outputType [{v}] is not supported; expected one of "
                f"{sorted(OUTPUT_TYPES)}"
            )
        return key

    @field_validator("expression")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse_expression(v)
        return v

    @property
    def expr(self) -> Expr:
        return parse_expression(self.expression)


VirtualColumn = ExpressionVirtualColumn


def check_virtual_columns(vcs: list[VirtualColumn]) -> None:
    """Unique names and no reference cycles (raises ValueError naming the problem)."""
    names = [v.name for v in vcs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate virtual column name {sorted(dup)}")
    _order(vcs)


def _order(vcs: list[VirtualColumn]) -> list[VirtualColumn]:
    by_name = {v.name: v for v in vcs}
    done: list[VirtualColumn] = []
    state: dict[str, int] = {}

    def visit(v: VirtualColumn, path: list[str]) -> None:
        if state.get(v.name) == 2:
            return
        if state.get(v.name) == 1:
            raise ValueError(f"virtual columns refer to each other in a cycle: {[*path, v.name]}")
        state[v.name] = 1
        for dep in sorted(v.expr.columns):
            if dep in by_name and dep != v.name:
                visit(by_name[dep], [*path, v.name])
        state[v.name] = 2
        done.append(v)

    for v in vcs:
        visit(v, [])
    return done


def cast_output(value: V, output_type: str | None, n: int) -> Any:
    if output_type is None:
        return value
    if isinstance(value, pa.ChunkedArray):
        if value.num_chunks == 0:
            value = value.combine_chunks()
        else:
            parts = [cast_output(c, output_type, len(c)) for c in value.chunks]
            return pa.chunked_array(parts, type=parts[0].type)
    target = OUTPUT_TYPES[output_type]
    if not target.startswith("ARRAY") and pa.types.is_list(value.type):
        # A multi-value result stays multi-value: each value is cast.
        flat = cast_output(value.flatten(), output_type, len(value.flatten()))
        return pa.ListArray.from_arrays(value.offsets, flat, mask=value.is_null())
    out = call(FUNCTIONS["cast"], [value, pa.scalar(target)], n)
    if isinstance(out, pa.Scalar):
        return pa.repeat(out, n)
    return out


def apply_virtual_columns(table: pa.Table, vcs: list[VirtualColumn]) -> pa.Table:
    """``table`` with every virtual column added (or replacing a column of its name)."""
    for vc in _order(vcs):
        value = vc.expr.evaluate_table(table, encoded=True, chunked=True)
        if pa.types.is_dictionary(value.type):
            if vc.outputType not in (None, "STRING"):
                value = cast_output(value.dictionary_decode(), vc.outputType, table.num_rows)
        else:
            value = cast_output(value, vc.outputType, table.num_rows)
        if vc.name in table.column_names:
            table = table.set_column(table.column_names.index(vc.name), vc.name, value)
        else:
            table = table.append_column(vc.name, value)
    return table
