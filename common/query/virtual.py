"""Native ``virtualColumns``: columns computed per segment.

- ``{"type": "expression", "name", "expression", "outputType"}``: a Druid expression.
  ``outputType`` casts the value (LONG, FLOAT, DOUBLE, STRING, ARRAY<STRING|LONG|DOUBLE>);
  without it the expression's own type is kept. An ARRAY result is held as an Arrow
  ``large_list`` (a multi-value STRING as a ``list``), so grouping and expressions can tell them
  apart.
- The multi-value filtering columns (Druid's ``ListFilteredVirtualColumn``,
  ``RegexFilteredVirtualColumn``, ``PrefixFilteredVirtualColumn``): ``{"type": "mv-filtered",
  "name", "delegate", "values", "isAllowList"}``, ``{"type": "mv-regex-filtered", "name",
  "delegate", "pattern"}`` and ``{"type": "mv-prefix-filtered", "name", "delegate", "prefix"}``:
  the delegate dimension spec's values (a lookup extraction applied), each row keeping only the
  values in (or, with ``isAllowList`` false, not in) ``values``, matching ``pattern`` in full (a
  Java ``Pattern.matches``, as ``RegexFilteredDimensionSpec``), or starting with ``prefix``; a
  null value is ``[null]`` (kept by a list holding null or a deny list without it, never by a
  pattern or prefix); a row left with no values is empty, which expressions read as null and
  grouping as the null group.

Virtual columns may read each other (evaluated in dependency order, a cycle is refused) and
shadow a physical column of the same name, as in Druid; other types are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from common.expr import Expr, parse_expression
from common.expr.registry import FUNCTIONS
from common.expr.vector import V, call
from common.query.columns import get_column, is_multi_value, plain, to_strings
from common.query.extraction import extract_column
from common.query.specs import DimensionSpec

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

    @property
    def inputs(self) -> frozenset[str]:
        return self.expr.columns


class _FilteredVirtualColumn(BaseModel):
    """The multi-value filtering virtual columns: ``delegate``'s values, some of them kept."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1)
    delegate: DimensionSpec

    @field_validator("name")
    @classmethod
    def _not_time(cls, v: str) -> str:
        if v == "__time":
            raise ValueError("virtualColumn name [__time] not allowed")
        return v

    @field_validator("delegate")
    @classmethod
    def _string_delegate(cls, v: DimensionSpec) -> DimensionSpec:
        if v.outputType != "STRING":
            raise ValueError(
                f"a filtered virtual column's delegate must be a STRING dimension, got "
                f"[{v.outputType}]"
            )
        return v

    @property
    def inputs(self) -> frozenset[str]:
        return frozenset([self.delegate.dimension])

    def keep(self, values: pa.Array) -> pa.Array:
        raise NotImplementedError

    def evaluate(self, table: pa.Table) -> pa.Array:
        col = get_column(table, self.delegate.dimension)
        if self.delegate.extraction is not None:
            col = extract_column(col, self.delegate.extraction)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if is_multi_value(col.type):
            lists = col.cast(pa.list_(col.type.value_type))
            # A null row is one null value, as a multi-value column stores it.
            lists = pc.if_else(pc.is_null(lists), pa.scalar([None], lists.type), lists)
            values = to_strings(plain(lists.flatten()))
            lengths = np.asarray(
                pc.list_value_length(lists).to_numpy(zero_copy_only=False), dtype=np.int64
            )
        else:
            values = to_strings(plain(col))
            lengths = np.ones(len(values), dtype=np.int64)
        parents = np.repeat(np.arange(len(lengths)), lengths)
        kept = np.asarray(self.keep(values).to_numpy(zero_copy_only=False), dtype=bool)
        counts = np.bincount(parents[kept], minlength=len(lengths))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
        np.cumsum(counts, out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), values.filter(pa.array(kept)))


class ListFilteredVirtualColumn(_FilteredVirtualColumn):
    type: Literal["mv-filtered"]
    values: list[str | None]
    isAllowList: bool = True

    def keep(self, values: pa.Array) -> pa.Array:
        wanted = [v for v in self.values if v is not None]
        hit = pc.fill_null(pc.is_in(values, pa.array(wanted, pa.string())), False)
        if None in self.values:
            hit = pc.or_(hit, pc.is_null(values))
        return hit if self.isAllowList else pc.invert(hit)


class RegexFilteredVirtualColumn(_FilteredVirtualColumn):
    type: Literal["mv-regex-filtered"]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            pc.match_substring_regex(pa.array([""]), v)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"invalid regular expression [{v}]: {exc}") from exc
        return v

    def keep(self, values: pa.Array) -> pa.Array:
        # Pattern.matches: the whole value must match.
        return pc.fill_null(pc.match_substring_regex(values, f"^(?:{self.pattern})$"), False)


class PrefixFilteredVirtualColumn(_FilteredVirtualColumn):
    type: Literal["mv-prefix-filtered"]
    prefix: str

    def keep(self, values: pa.Array) -> pa.Array:
        return pc.fill_null(pc.starts_with(values, self.prefix), False)


def _known_type(data: Any) -> Any:
    if isinstance(data, dict) and data.get("type") not in TYPES:
        raise ValueError(
            f"virtual column type [{data.get('type')}] is not supported; expected one of "
            f"{list(TYPES)}"
        )
    return data


TYPES = ("expression", "mv-filtered", "mv-regex-filtered", "mv-prefix-filtered")

VirtualColumn = Annotated[
    Annotated[
        ExpressionVirtualColumn
        | ListFilteredVirtualColumn
        | RegexFilteredVirtualColumn
        | PrefixFilteredVirtualColumn,
        Field(discriminator="type"),
    ],
    BeforeValidator(_known_type),
]


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
        for dep in sorted(v.inputs):
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
    if not target.startswith("ARRAY") and is_multi_value(value.type):
        # A multi-value result stays multi-value: each value is cast.
        if pa.types.is_large_list(value.type):
            value = value.cast(pa.list_(value.type.value_type))
        flat = cast_output(value.flatten(), output_type, len(value.flatten()))
        return pa.ListArray.from_arrays(value.offsets, flat, mask=value.is_null())
    out = call(FUNCTIONS["cast"], [value, pa.scalar(target)], n)
    if isinstance(out, pa.Scalar):
        out = pa.repeat(out, n)
    if target.startswith("ARRAY"):
        # An ARRAY is a large_list (a multi-value string a list): grouping keeps it whole.
        if pa.types.is_null(out.type):
            out = pa.nulls(len(out), pa.list_(pa.string()))
        if pa.types.is_list(out.type):
            out = out.cast(pa.large_list(out.type.value_type))
    return out


def apply_virtual_columns(table: pa.Table, vcs: list[VirtualColumn]) -> pa.Table:
    """``table`` with every virtual column added (or replacing a column of its name)."""
    for vc in _order(vcs):
        if not isinstance(vc, ExpressionVirtualColumn):
            value = vc.evaluate(table)
            table = _set(table, vc.name, value)
            continue
        value = vc.expr.evaluate_table(table, encoded=True, chunked=True)
        if pa.types.is_dictionary(value.type):
            if vc.outputType not in (None, "STRING"):
                value = cast_output(value.dictionary_decode(), vc.outputType, table.num_rows)
        else:
            value = cast_output(value, vc.outputType, table.num_rows)
        table = _set(table, vc.name, value)
    return table


def _set(table: pa.Table, name: str, value: Any) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, value)
    return table.append_column(name, value)
