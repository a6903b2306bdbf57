"""Theta and HLL sketches (the ``datasketches`` package) as binary Arrow columns.

Partials carry sketches serialised (compact theta sketches, compact HLL sketches) so they merge
across segments and nodes. The ``datasketches`` bindings have no batch update, so building a sketch
calls ``update`` once per DISTINCT value of a group (the values are de-duplicated by Acero first),
never once per row; merging and estimating cost one call per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import datasketches as ds
import pyarrow as pa

SketchKind = Literal["theta", "hll"]

THETA_DEFAULT_SIZE = 16384  # Druid's thetaSketch default "size" (nominal entries)
HLL_DEFAULT_LGK = 12  # Druid's HLLSketch default lgK
CARDINALITY_LGK = 11  # Druid's HyperLogLogCollector has 2^11 registers

_HLL_TYPES = {
    "HLL_4": ds.tgt_hll_type.HLL_4,
    "HLL_6": ds.tgt_hll_type.HLL_6,
    "HLL_8": ds.tgt_hll_type.HLL_8,
}


def hll_type(name: str) -> Any:
    return _HLL_TYPES[name]


def _lg(size: int) -> int:
    return max(4, (size - 1).bit_length())


def _iter_values(value: Any) -> Any:
    if value is None:
        return
    if isinstance(value, list):
        for v in value:
            yield from _iter_values(v)
    else:
        yield value


def _split_multi_value(col: Any) -> list[Any]:
    """Per-group value lists; multi-value rows arrive joined in a large_string column."""
    values: list[Any] = col.to_pylist()
    if pa.types.is_large_string(col.type.value_type):
        return [[p for v in (g or []) if v is not None for p in v.split("\x1f")] for g in values]
    return values


def build(
    kind: SketchKind, columns: Sequence[Any], *, size: int, hll_tgt: str = "HLL_4"
) -> pa.Array:
    """One serialised sketch per group from per-group lists of distinct raw values.

    ``columns`` are aligned list arrays (one entry per group); a group's sketch gets the values of
    all of them, nested lists flattened, nulls skipped.
    """
    pylists = [_split_multi_value(c) for c in columns]
    n = len(pylists[0]) if pylists else 0
    out: list[bytes] = []
    for g in range(n):
        sk: Any
        if kind == "theta":
            sk = ds.update_theta_sketch(_lg(size))
        else:
            sk = ds.hll_sketch(size, hll_type(hll_tgt))
        for col in pylists:
            for v in _iter_values(col[g]):
                sk.update(v)
        out.append(sk.compact().serialize() if kind == "theta" else sk.serialize_compact())
    return pa.array(out, pa.binary())


def union(kind: SketchKind, groups: Any, *, size: int, hll_tgt: str = "HLL_4") -> pa.Array:
    """Union each group's list of serialised sketches into one serialised sketch."""
    out: list[bytes | None] = []
    for blobs in groups.to_pylist():
        present = [b for b in (blobs or []) if b is not None]
        if not present:
            out.append(None)
            continue
        if len(present) == 1:
            out.append(present[0])
            continue
        if kind == "theta":
            u = ds.theta_union(_lg(size))
            for b in present:
                u.update(ds.compact_theta_sketch.deserialize(b))
            out.append(u.get_result().serialize())
        else:
            hu = ds.hll_union(size)
            for b in present:
                hu.update(ds.hll_sketch.deserialize(b))
            out.append(hu.get_result(hll_type(hll_tgt)).serialize_compact())
    return pa.array(out, pa.binary())


def estimate(kind: SketchKind, blobs: Any) -> pa.Array:
    """The distinct-count estimate of each serialised sketch (0 for a null sketch)."""
    out: list[float] = []
    for b in blobs.to_pylist():
        if b is None:
            out.append(0.0)
        elif kind == "theta":
            out.append(float(ds.compact_theta_sketch.deserialize(b).get_estimate()))
        else:
            out.append(float(ds.hll_sketch.deserialize(b).get_estimate()))
    return pa.array(out, pa.float64())
