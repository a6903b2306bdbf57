"""``first``/``last`` aggregators (longFirst ... stringLast): the value of the row with the
earliest / latest time (``timeColumn``, default ``__time``), as Druid's ``NumericFirstAggregator``:
rows with a null time are skipped, a null value on the chosen row IS the answer (SQL-compatible
mode), and a group with no rows is null. Among rows with the same time Druid may take any of
them; here the choice is deterministic.

Druid's intermediate is a (timestamp, value) pair. Here the pair is packed into one sortable
binary value so the engine's ordinary machinery aggregates and merges it with ``min`` (first) or
``max`` (last) and nothing special: 8 bytes of the time (big-endian, sign bit flipped, so byte
order is time order), 1 byte saying whether the value is non-null, then the value (8 bytes of a
long or double, or the UTF-8 of a string cut to ``maxStringBytes``). Finalizing unpacks the value.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from common.errors import InvalidInput
from common.query.aggregators import AggInput, _Agg
from common.query.columns import get_column, is_multi_value, plain, to_numbers, to_strings

_SIGN = np.uint64(1 << 63)

ROW_TIME = "__firstlast_time"
"""The rows' own ``__time``, kept aside before an engine replaces ``__time`` with bucket starts
(``common.query.prepare`` adds it when a query has first/last aggregators)."""
_PREFIX = np.dtype([("t", ">u8"), ("f", "u1")])


def _fixed_binary(raw: np.ndarray[Any, Any], width: int, n: int) -> pa.Array:
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), n, [None, pa.py_buffer(raw.tobytes())]
    )
    return fixed.cast(pa.binary())


class _FirstLastAgg(_Agg):
    fieldName: str = Field(min_length=1)
    timeColumn: str = "__time"

    PARTIAL_TYPE: ClassVar[Any] = pa.binary()
    VALUE: ClassVar[str] = "long"  # long | double | string
    LAST: ClassVar[bool] = False

    @property
    def merge_op(self) -> str:
        return "max" if self.LAST else "min"

    def _times(self, table: pa.Table) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        name = self.timeColumn
        if name == "__time" and ROW_TIME in table.column_names:
            name = ROW_TIME
        col = plain(get_column(table, name))
        if is_multi_value(col.type):
            raise InvalidInput(f"timeColumn [{self.timeColumn}] is multi-value")
        if not pa.types.is_integer(col.type):
            col = pc.cast(to_numbers(col), pa.int64(), safe=False)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        valid = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool)
        t = np.asarray(pc.fill_null(col, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        return t, valid

    def _values(self, table: pa.Table) -> Any:
        col = get_column(table, self.fieldName)
        if is_multi_value(col.type):
            raise InvalidInput(
                f"{self.type} over the multi-value column [{self.fieldName}] is not supported"
            )
        col = plain(col)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if self.VALUE == "string":
            return to_strings(col)
        if self.VALUE == "long":
            if not pa.types.is_integer(col.type):
                col = to_numbers(col)
            return pc.cast(col, pa.int64(), safe=False)
        return pc.cast(col if pa.types.is_floating(col.type) else to_numbers(col), pa.float64())

    def inputs(self, table: pa.Table) -> list[AggInput]:
        n = table.num_rows
        t, t_valid = self._times(table)
        values = self._values(table)
        v_valid = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)
        prefix = np.empty(n, dtype=_PREFIX)
        prefix["t"] = t.astype(np.uint64) ^ _SIGN
        prefix["f"] = v_valid
        if self.VALUE == "string":
            head = _fixed_binary(prefix, 9, n)
            body = pc.binary_slice(pc.fill_null(values, "").cast(pa.binary()), 0, self._max_bytes())
            packed = pc.binary_join_element_wise(head, body, b"")
        else:
            dtype = "<i8" if self.VALUE == "long" else "<f8"
            rec = np.empty(n, dtype=[("t", ">u8"), ("f", "u1"), ("v", dtype)])
            rec["t"], rec["f"] = prefix["t"], prefix["f"]
            rec["v"] = np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False))
            packed = _fixed_binary(rec, 17, n)
        packed = pc.if_else(pa.array(t_valid), packed, pa.scalar(None, pa.binary()))
        return [(packed, self.merge_op, None)]

    def _max_bytes(self) -> int:
        return 1024

    def finalize(self, partial: Any) -> Any:
        out: list[Any] = []
        for b in partial.to_pylist():
            if b is None or b[8] == 0:
                out.append(None)
            elif self.VALUE == "string":
                out.append(b[9:].decode("utf-8", errors="ignore"))
            else:
                out.append(struct.unpack("<q" if self.VALUE == "long" else "<d", b[9:17])[0])
        typ = {"long": pa.int64(), "double": pa.float64(), "string": pa.string()}[self.VALUE]
        return pa.array(out, typ)


def uses_row_time(aggs: list[Any]) -> bool:
    """Whether any aggregator (or a filtered aggregator's inner one) is first/last on __time."""
    for a in aggs:
        inner = getattr(a, "aggregator", None)
        if isinstance(a, _FirstLastAgg) and a.timeColumn == "__time":
            return True
        if inner is not None and uses_row_time([inner]):
            return True
    return False


class LongFirstAgg(_FirstLastAgg):
    type: Literal["longFirst"]


class LongLastAgg(_FirstLastAgg):
    type: Literal["longLast"]
    LAST: ClassVar[bool] = True


class DoubleFirstAgg(_FirstLastAgg):
    type: Literal["doubleFirst", "floatFirst"]
    VALUE: ClassVar[str] = "double"


class DoubleLastAgg(_FirstLastAgg):
    type: Literal["doubleLast", "floatLast"]
    VALUE: ClassVar[str] = "double"
    LAST: ClassVar[bool] = True


class _StringFirstLast(_FirstLastAgg):
    VALUE: ClassVar[str] = "string"
    maxStringBytes: int = Field(default=1024, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _no_filter_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("filterNullValues"):
            raise ValueError("filterNullValues is not supported (removed from Druid)")
        return data

    def _max_bytes(self) -> int:
        return self.maxStringBytes


class StringFirstAgg(_StringFirstLast):
    type: Literal["stringFirst"]


class StringLastAgg(_StringFirstLast):
    type: Literal["stringLast"]
    LAST: ClassVar[bool] = True
