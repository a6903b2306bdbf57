"""Druid's native ``expression`` aggregator (``ExpressionLambdaAggregatorFactory``), in the array
shapes Druid's SQL planner produces for ``ARRAY_AGG``, ``STRING_AGG`` and ``ARRAY_CONCAT_AGG``.

A fold of ``array_append`` / ``array_set_add`` (one value per row) or ``array_concat`` /
``array_set_add_all`` (an array per row) onto ``__acc``, with the matching ``combine``
(``array_concat`` or ``array_set_add_all`` of ``__acc`` and the aggregator's own name), an
empty-array ``initialValue`` and an optional ``finalize`` expression over ``o``: exactly what
Druid's ``ArraySqlAggregator``, ``StringSqlAggregator`` and ``ArrayConcatSqlAggregator`` write.
Also the numeric folds Druid's ``BitwiseSqlAggregator`` writes for ``BIT_AND``/``BIT_OR``/
``BIT_XOR``: ``bitwiseAnd("__acc", "<field>")`` (or ``bitwiseOr``/``bitwiseXor``) from a LONG
``initialValue`` (Druid's SQL writes ``0``, so its ``BIT_AND`` is always 0 or null), the combine
defaulting to the fold with the field replaced by the aggregator's name. A null input is skipped
unless ``shouldAggregateNullInputs`` (then the group is null, as ``bitwiseAnd(x, null)`` is).
Any other fold (a sum, a sketch) is refused with a 400 naming it.

Vectorised: each row's contribution is a list (a multi-value row contributes its values, an
empty or null multi-value row one null, as Druid's ``array_append`` over a multi-value column
does), Acero gathers each group's contributions (``hash_list``), and they are concatenated; the
set forms keep the distinct values sorted, nulls first (Druid's ``array_set_add``). A row that
is not aggregated (its input is null and ``shouldAggregateNullInputs`` is false, or a
``filtered`` wrapper drops it) contributes nothing; a group where nothing was aggregated is null
when ``isNullUnlessAggregated`` (the default), as in Druid. ``maxSizeBytes`` (default 8192)
bounds the accumulated array's serialized size, as Druid's buffer aggregator does.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ConfigDict, Field, model_validator

from common.errors import ResourceLimitExceeded
from common.expr import parse_expression
from common.expr.parse import ArrayLit, Call, ExpressionError, Ident, Unary
from common.expr.parse import Literal as ExprLiteral
from common.expr.registry import FUNCTIONS
from common.expr.vector import call
from common.query.aggregators import _Agg
from common.query.columns import get_column, is_multi_value, plain
from common.query.variance import members

DEFAULT_MAX_SIZE_BYTES = 8192  # ExpressionLambdaAggregatorFactory.DEFAULT_MAX_SIZE_BYTES

_ELEMENTS = {"STRING": pa.string(), "LONG": pa.int64(), "DOUBLE": pa.float64()}
_BITWISE = {
    "bitwiseand": np.bitwise_and,
    "bitwiseor": np.bitwise_or,
    "bitwisexor": np.bitwise_xor,
}
_FOLDS = {
    "array_append": ("value", False),
    "array_set_add": ("value", True),
    "array_concat": ("array", False),
    "array_set_add_all": ("array", True),
}


class ExpressionAgg(_Agg):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    type: Literal["expression"]
    fields: list[str] = Field(default_factory=list)
    accumulatorIdentifier: str = "__acc"
    fold: str
    combine: str | None = None
    compare: str | None = None
    finalize_expr: str | None = Field(default=None, alias="finalize")
    initialValue: str
    initialCombineValue: str | None = None
    isNullUnlessAggregated: bool = True
    shouldAggregateNullInputs: bool = True
    shouldCombineAggregateNullInputs: bool | None = None
    maxSizeBytes: int = Field(default=DEFAULT_MAX_SIZE_BYTES, gt=0)

    MERGE_OP: ClassVar[str] = "list"

    @model_validator(mode="before")
    @classmethod
    def _size_text(cls, data: Any) -> Any:
        # Druid's HumanReadableBytes also takes text ("8KiB"); kdruid takes a number of bytes.
        if isinstance(data, dict) and isinstance(data.get("maxSizeBytes"), str):
            text = data["maxSizeBytes"].strip()
            if text.isdigit():
                data = {**data, "maxSizeBytes": int(text)}
        return data

    @model_validator(mode="after")
    def _shape(self) -> ExpressionAgg:
        if self.numeric() is None:
            self.shape()
        if self.finalize_expr is not None:
            parse_expression(self.finalize_expr)
        if self.compare is not None:
            raise ValueError(
                f"expression aggregator [{self.name}]: 'compare' is not supported; the ordering "
                "of array results is the default one"
            )
        return self

    def numeric(self) -> tuple[str, Any, int, int] | None:
        """(input field, numpy bitwise ufunc, initial value, initial combine value) for a
        ``bitwiseAnd/Or/Xor("__acc", "<field>")`` fold; None for any other fold; ValueError for
        a bitwise fold in a shape Druid's planner does not write."""
        acc = self.accumulatorIdentifier
        try:
            fold = parse_expression(self.fold).node
        except ExpressionError as exc:
            raise ValueError(f"expression aggregator [{self.name}]: {exc}") from None
        if not (isinstance(fold, Call) and fold.name in _BITWISE):
            return None
        what = f"expression aggregator [{self.name}]"
        if not (
            len(fold.args) == 2
            and isinstance(fold.args[0], Ident)
            and fold.args[0].name == acc
            and isinstance(fold.args[1], Ident)
            and len(self.fields) == 1
            and fold.args[1].name == self.fields[0]
        ):
            raise ValueError(
                f'{what}: fold [{self.fold}] is not supported; kdruid runs {fold.name}("{acc}", '
                '"<field>") over one field'
            )
        if self.combine is not None:
            combine = parse_expression(self.combine).node
            if not (
                isinstance(combine, Call)
                and combine.name == fold.name
                and len(combine.args) == 2
                and isinstance(combine.args[0], Ident)
                and combine.args[0].name == acc
                and isinstance(combine.args[1], Ident)
                and combine.args[1].name == self.name
            ):
                raise ValueError(
                    f'{what}: combine must be {fold.name}("{acc}", "{self.name}") for fold '
                    f"[{self.fold}], got [{self.combine}]"
                )
        init = _long_literal(self.initialValue)
        init_combine = (
            init if self.initialCombineValue is None else _long_literal(self.initialCombineValue)
        )
        if init is None or init_combine is None:
            raise ValueError(
                f"{what}: initialValue/initialCombineValue of a {fold.name} fold must be a LONG "
                f"literal, got [{self.initialValue}]"
            )
        return fold.args[1].name, _BITWISE[fold.name], init, init_combine

    def shape(self) -> tuple[str, str, bool, pa.DataType]:
        """(input field, "value" or "array", set semantics, element type), or ValueError."""
        acc = self.accumulatorIdentifier
        try:
            fold = parse_expression(self.fold).node
            combine = parse_expression(self.combine).node if self.combine is not None else None
            init = parse_expression(self.initialValue).node
        except ExpressionError as exc:
            raise ValueError(f"expression aggregator [{self.name}]: {exc}") from None
        what = f"expression aggregator [{self.name}]"
        if not (
            isinstance(fold, Call)
            and fold.name in _FOLDS
            and len(fold.args) == 2
            and isinstance(fold.args[0], Ident)
            and fold.args[0].name == acc
            and isinstance(fold.args[1], Ident)
            and fold.args[1].name in self.fields
            and len(self.fields) == 1
        ):
            raise ValueError(
                f"{what}: fold [{self.fold}] is not supported; kdruid runs the array folds "
                f"Druid's SQL planner writes: array_append/array_set_add/array_concat/"
                f'array_set_add_all("{acc}", "<field>") over one field'
            )
        kind, is_set = _FOLDS[fold.name]
        want = "array_set_add_all" if is_set else "array_concat"
        if not (
            isinstance(combine, Call)
            and combine.name == want
            and len(combine.args) == 2
            and isinstance(combine.args[0], Ident)
            and combine.args[0].name == acc
            and isinstance(combine.args[1], Ident)
            and combine.args[1].name == self.name
        ):
            raise ValueError(
                f'{what}: combine must be {want}("{acc}", "{self.name}") for fold '
                f"[{self.fold}], got [{self.combine}]"
            )
        element = _empty_array_type(init)
        if element is None or (
            self.initialCombineValue is not None
            and _empty_array_type(parse_expression(self.initialCombineValue).node) != element
        ):
            raise ValueError(
                f"{what}: initialValue must be an empty array literal ([], ARRAY<STRING>[], "
                f"ARRAY<LONG>[], ARRAY<DOUBLE>[]), got [{self.initialValue}]"
            )
        return fold.args[1].name, kind, is_set, element

    @property
    def partial_type(self) -> Any:
        if self.numeric() is not None:
            return pa.int64()
        return pa.list_(self.shape()[3])

    def _longs(self, table: pa.Table, field: str) -> Any:
        """The field as LONGs, as Druid's bitwise functions read it (a DOUBLE is truncated)."""
        col = get_column(table, field)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if is_multi_value(col.type):
            raise ValueError(
                f"expression aggregator [{self.name}]: [{field}] is a multi-value column"
            )
        values = plain(col)
        if pa.types.is_integer(values.type):
            return values.cast(pa.int64())
        if pa.types.is_floating(values.type):
            return pc.trunc(values).cast(pa.int64(), safe=False)
        if pa.types.is_null(values.type):
            return pa.nulls(len(values), pa.int64())
        out = call(FUNCTIONS["cast"], [values, pa.scalar("LONG")], len(values))
        return out.cast(pa.int64())

    def _fold_groups(self, groups: Any, values: Any, skip_nulls: bool, init: int, op: Any) -> Any:
        """Each group's fold of ``values`` (rows by number) from ``init``; a group where nothing
        was aggregated is null (``isNullUnlessAggregated``) or ``init``."""
        n = len(groups)
        rows, owner = members(groups)
        picked = values.take(pa.array(rows, pa.int64())) if len(rows) else values.slice(0, 0)
        valid = np.asarray(pc.is_valid(picked).to_numpy(zero_copy_only=False), dtype=bool)
        nums = np.asarray(pc.fill_null(picked, 0).to_numpy(zero_copy_only=False), np.int64)
        if skip_nulls:
            nums, owner, valid = nums[valid], owner[valid], valid[valid]
        out = np.full(n, init, dtype=np.int64)
        op.at(out, owner, nums)
        aggregated = np.bincount(owner, minlength=n) > 0 if n else np.zeros(0, bool)
        has_null = np.bincount(owner[~valid], minlength=n) > 0 if n else np.zeros(0, bool)
        mask = has_null | (~aggregated if self.isNullUnlessAggregated else np.zeros(n, bool))
        return pa.array(out, pa.int64(), mask=mask)

    GATHERS_ROWS: ClassVar[bool] = True
    """Acero cannot gather lists per group: it gathers row numbers, and the contributions are
    taken by those numbers (``segment_finish_rows`` / ``merge_finish_rows``)."""

    def contributions(self, table: pa.Table) -> Any:
        """Each row's contribution, a list (null: the row is not aggregated)."""
        field, kind, _, element = self.shape()
        col = get_column(table, field)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if is_multi_value(col.type):
            lists = col.cast(pa.list_(col.type.value_type))
            if kind == "value":
                # array_append of a multi-value row: each of its values; an empty row one null.
                empty = pc.equal(pc.fill_null(pc.list_value_length(lists), 0), 0)
                lists = pc.if_else(empty, pa.scalar([None], lists.type), lists)
            return _cast_lists(lists, element)
        values = plain(col)
        if values.type != element:
            # Druid's casts: numbers print as Java does (1.0), strings parse leniently.
            values = call(FUNCTIONS["cast"], [values, pa.scalar(_TYPE_NAMES[element])], len(values))
        n = len(values)
        offsets = pa.array(np.arange(n + 1, dtype=np.int32))
        lists = pa.ListArray.from_arrays(offsets, values)
        if kind == "array" or not self.shouldAggregateNullInputs:
            lists = pc.if_else(pc.is_valid(values), lists, pa.scalar(None, lists.type))
        return lists

    def inputs(self, table: pa.Table) -> list[tuple[Any, str, Any]]:
        numeric = self.numeric()
        if numeric is not None:
            values = self._longs(table, numeric[0])
            rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
            if self.shouldAggregateNullInputs:
                return [(rows, "list", None)]
            valid = pc.is_valid(values)
            return [(pc.if_else(valid, rows, pa.scalar(None, pa.int64())), "list", None)]
        valid = pc.is_valid(self.contributions(table))
        rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
        return [(pc.if_else(valid, rows, pa.scalar(None, pa.int64())), "list", None)]

    def segment_finish_rows(self, reduced: list[Any], table: pa.Table) -> Any:
        numeric = self.numeric()
        if numeric is not None:
            field, op, init, _ = numeric
            values = self._longs(table, field)
            return self._fold_groups(reduced[0], values, False, init, op)
        return self._gather(reduced[0], self.contributions(table))

    def merge_finish_rows(self, merged: Any, partials: Any) -> Any:
        numeric = self.numeric()
        if numeric is not None:
            _, op, _, init_combine = numeric
            partials = (
                partials.combine_chunks() if isinstance(partials, pa.ChunkedArray) else partials
            )
            skip = not bool(self.shouldCombineAggregateNullInputs)
            return self._fold_groups(merged, partials.cast(pa.int64()), skip, init_combine, op)
        return self._gather(merged, partials)

    def _gather(self, groups: Any, source: Any) -> Any:
        """Each group's contributions (rows of ``source`` by number, null ones skipped),
        concatenated into one array."""
        _, _, is_set, element = self.shape()
        typ = pa.list_(element)
        n = len(groups)
        rows = groups.flatten()
        parents = pc.list_parent_indices(groups).to_numpy(zero_copy_only=False)
        valid = pc.is_valid(rows).to_numpy(zero_copy_only=False)
        aggregated = np.bincount(parents[valid], minlength=n) > 0 if n else np.zeros(0, bool)
        source = source.combine_chunks() if isinstance(source, pa.ChunkedArray) else source
        kept = source.cast(typ).take(rows.filter(pa.array(valid)))
        counts = pc.fill_null(pc.list_value_length(kept), 0).to_numpy(zero_copy_only=False)
        values = kept.flatten() if len(kept) else pa.array([], element)
        owner = np.repeat(parents[valid], counts.astype(np.int64))
        if is_set:
            values, owner = _distinct_sorted(values, owner)
        sizes = np.bincount(owner, minlength=n) if n else np.zeros(0, np.int64)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(sizes, out=offsets[1:])
        out = pa.ListArray.from_arrays(pa.array(offsets), values.cast(element))
        if self.isNullUnlessAggregated:
            out = pc.if_else(pa.array(aggregated), out, pa.scalar(None, typ))
        self._check_size(out, element)
        return out.cast(typ)

    def _check_size(self, out: Any, element: pa.DataType) -> None:
        """Druid serializes an ARRAY as a type byte and a length, then per element a null byte
        and 8 bytes (LONG/DOUBLE) or a 4-byte length and the UTF-8 bytes (STRING)."""
        if not len(out):
            return
        counts = pc.fill_null(pc.list_value_length(out), 0).to_numpy(zero_copy_only=False)
        sizes = 5 + counts.astype(np.int64) * (9 if element != pa.string() else 4)
        if element == pa.string():
            flat = out.flatten()
            nbytes = pc.fill_null(pc.binary_length(flat), 0).to_numpy(zero_copy_only=False)
            owner = pc.list_parent_indices(out).to_numpy(zero_copy_only=False)
            sizes = sizes + np.bincount(owner, weights=nbytes, minlength=len(out)).astype(np.int64)
        biggest = int(sizes.max())
        if biggest > self.maxSizeBytes:
            raise ResourceLimitExceeded(
                f"Unable to serialize [ARRAY<{_TYPE_NAMES[element]}>], size [{biggest}] is larger "
                f"than max [{self.maxSizeBytes}] (aggregator [{self.name}] maxSizeBytes)"
            )

    def finalize(self, partial: Any) -> Any:
        if self.finalize_expr is None:
            return partial
        table = pa.table({"o": partial})
        value = parse_expression(self.finalize_expr).evaluate_table(table)
        return value

    def empty_value(self) -> Any:
        if self.isNullUnlessAggregated:
            return None
        numeric = self.numeric()
        return numeric[2] if numeric is not None else []


_TYPE_NAMES = {pa.string(): "STRING", pa.int64(): "LONG", pa.float64(): "DOUBLE"}


def _long_literal(text: str) -> int | None:
    try:
        node = parse_expression(text).node
    except ExpressionError:
        return None
    sign = 1
    if isinstance(node, Unary) and node.op == "-":
        node, sign = node.arg, -1
    if isinstance(node, ExprLiteral) and type(node.value) is int:
        return sign * node.value
    return None


def _empty_array_type(node: Any) -> pa.DataType | None:
    if isinstance(node, ArrayLit) and not node.items:
        return _ELEMENTS.get(node.elem_type or "STRING")
    if isinstance(node, ExprLiteral) and node.value == []:
        return pa.string()
    return None


def _cast_lists(lists: Any, element: pa.DataType) -> Any:
    if lists.type.value_type == element:
        return lists
    return lists.cast(pa.list_(element), safe=False)


def _distinct_sorted(values: Any, owner: Any) -> tuple[Any, Any]:
    """The distinct (owner, value) pairs, ordered by owner then value (nulls first)."""
    if not len(values):
        return values, owner
    t = pa.table({"o": pa.array(owner, pa.int64()), "v": values})
    uniq = t.group_by(["o", "v"], use_threads=False).aggregate([])
    uniq = uniq.append_column("ok", pc.is_valid(uniq.column("v")))
    keys = [("o", "ascending"), ("ok", "ascending"), ("v", "ascending")]  # nulls first
    idx = pc.sort_indices(uniq, sort_keys=keys)
    uniq = uniq.take(idx)
    return uniq.column("v").combine_chunks(), uniq.column("o").to_numpy()
