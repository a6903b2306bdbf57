"""Druid's ``variance`` aggregator (the ``druid-stats`` extension).

Per segment each group's values give the collector (``common.query.variance``) at once, in two
passes (as accurate as Druid's one-row-at-a-time update, and equal to it up to rounding);
partials merge by Chan's combination. ``inputType`` is how Druid reads the column: ``float`` (the
default) reads each value as a 32-bit float, ``double`` and ``long`` as they are. A
pre-aggregated ``variance`` column is refused (kdruid does not ingest one).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from common.errors import InvalidInput
from common.query.aggregators import AggInput, _Agg
from common.query.columns import get_column, is_multi_value, plain, to_numbers
from common.query.variance import combine, is_population, members, pack, unpack, variance


class VarianceAgg(_Agg):
    type: Literal["variance"]
    fieldName: str = Field(min_length=1)
    estimator: str | None = None
    inputType: Literal["float", "double", "long"] = "float"

    PARTIAL_TYPE: ClassVar[Any] = pa.binary()
    GATHERS_ROWS: ClassVar[bool] = True
    """Acero gathers each group's row numbers; the values are reduced here with numpy."""

    def _values(self, table: pa.Table) -> Any:
        col = get_column(table, self.fieldName)
        if is_multi_value(col.type):
            raise InvalidInput(f"variance over the multi-value column [{self.fieldName}]")
        col = plain(col)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            raise InvalidInput(f"variance: [{self.fieldName}] is a complex column")
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            col = to_numbers(col)
        if self.inputType == "float":
            col = pc.cast(col, pa.float32(), safe=False)
        elif self.inputType == "long":
            col = pc.cast(col, pa.int64(), safe=False)
        return pc.cast(col, pa.float64())

    def inputs(self, table: pa.Table) -> list[AggInput]:
        valid = pc.is_valid(self._values(table))
        rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
        return [(pc.if_else(valid, rows, pa.scalar(None, pa.int64())), "list", None)]

    def segment_finish_rows(self, reduced: list[Any], table: pa.Table) -> Any:
        groups = reduced[0]
        g = len(groups)
        rows, owner = members(groups)
        x = np.asarray(
            self._values(table).take(pa.array(rows, pa.int64())).to_numpy(zero_copy_only=False),
            dtype=np.float64,
        )
        count = np.ones(len(x), dtype=np.int64)
        n, s, nv = combine(owner, g, count, x, np.zeros(len(x)))
        return pack(n, s, nv)

    def merge_finish_rows(self, merged: Any, partials: Any) -> Any:
        rows, owner = members(merged)
        picked = partials.take(pa.array(rows, pa.int64()))
        _, count, total, nvar = unpack(picked)
        n, s, nv = combine(owner, len(merged), count, total, nvar)
        return pack(n, s, nv)

    def finalize(self, partial: Any) -> Any:
        return variance(partial, is_population(self.estimator))
