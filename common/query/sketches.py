"""Theta, HLL and quantiles sketches (the ``datasketches`` package) as binary Arrow columns.

Partials carry sketches serialised (compact theta sketches, compact HLL sketches, classic
quantiles ``DoublesSketch``) so they merge across segments and nodes. ``hyperUnique`` and
``cardinality`` are HLL sketches here too (lgK 11, like Druid's 2^11-register collector, but
NOT Druid's ``HyperLogLogCollector`` byte format); unlike ``datasketches``, which skips an empty
string, they count ``''`` as a value, as Druid's collector does.

The ``datasketches`` bindings have no batch update, so building a distinct-count sketch calls
``update`` once per DISTINCT value of a group (the values are de-duplicated by Acero first),
never once per row (quantiles sketches take every value); merging and estimating cost one call
per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import datasketches as ds
import pyarrow as pa

from common.errors import InvalidInput

SketchKind = Literal["theta", "hll", "quantiles"]

THETA_DEFAULT_SIZE = 16384  # Druid's thetaSketch default "size" (nominal entries)
HLL_DEFAULT_LGK = 12  # Druid's HLLSketch default lgK
CARDINALITY_LGK = 11  # Druid's HyperLogLogCollector has 2^11 registers
QUANTILES_DEFAULT_K = 128  # Druid's quantilesDoublesSketch default "k"
EMPTY_STRING_TOKEN = "\x00"
"""What ``''`` is hashed as where it must count (hyperUnique, cardinality): datasketches ignores
an empty string."""

_HLL_TYPES = {
    "HLL_4": ds.tgt_hll_type.HLL_4,
    "HLL_6": ds.tgt_hll_type.HLL_6,
    "HLL_8": ds.tgt_hll_type.HLL_8,
}


_HLL_MODE_PREINTS = 10  # preamble ints of an HLL sketch in HLL (not list/set) mode: byte 0
_HLL_OUT_OF_ORDER = 0x10  # "out of order" flag: byte 5


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


def new_sketch(kind: SketchKind, size: int, hll_tgt: str = "HLL_4") -> Any:
    """An empty updatable sketch (``size``: theta nominal entries, HLL lgK or quantiles k)."""
    if kind == "theta":
        return ds.update_theta_sketch(_lg(size))
    if kind == "quantiles":
        return ds.quantiles_doubles_sketch(size)
    return ds.hll_sketch(size, hll_type(hll_tgt))


def update(kind: SketchKind, sk: Any, value: Any, count_empty: bool = False) -> None:
    """Add one raw value (lists flattened, nulls skipped) to ``sk``."""
    for v in _iter_values(value):
        if kind == "quantiles":
            try:
                sk.update(float(v))
            except (TypeError, ValueError):
                continue  # Druid's quantiles aggregator skips what is not a number
        elif count_empty and v == "":
            sk.update(EMPTY_STRING_TOKEN)
        else:
            sk.update(v)


def serialize(kind: SketchKind, sk: Any) -> bytes:
    if kind == "theta":
        return bytes(sk.compact().serialize())
    if kind == "quantiles":
        return bytes(sk.serialize())
    return bytes(sk.serialize_compact())


def build(
    kind: SketchKind,
    columns: Sequence[Any],
    *,
    size: int,
    hll_tgt: str = "HLL_4",
    count_empty: bool = False,
) -> pa.Array:
    """One serialised sketch per group from per-group lists of raw values (distinct values for
    the distinct-count sketches, every value for quantiles).

    ``columns`` are aligned list arrays (one entry per group); a group's sketch gets the values of
    all of them, nested lists flattened, nulls skipped.
    """
    pylists = [_split_multi_value(c) for c in columns]
    n = len(pylists[0]) if pylists else 0
    out: list[bytes] = []
    for g in range(n):
        sk = new_sketch(kind, size, hll_tgt)
        for col in pylists:
            update(kind, sk, col[g], count_empty)
        out.append(serialize(kind, sk))
    return pa.array(out, pa.binary())


_NAMES = {"theta": "theta", "hll": "HLL", "quantiles": "quantiles"}


def deserialize(kind: SketchKind, blob: bytes) -> Any:
    """A serialised sketch of ``kind``; ``InvalidInput`` (400) when the bytes are not one (a
    sketch aggregator over another kind's sketch column)."""
    try:
        if kind == "theta":
            return ds.compact_theta_sketch.deserialize(blob)
        if kind == "quantiles":
            return ds.quantiles_doubles_sketch.deserialize(blob)
        return ds.hll_sketch.deserialize(blob)
    except (RuntimeError, ValueError, TypeError) as e:
        raise InvalidInput(
            f"not a serialised {_NAMES[kind]} sketch (is the column another sketch type?): {e}"
        ) from None


def union_blobs(kind: SketchKind, blobs: Sequence[bytes], *, size: int, hll_tgt: str) -> bytes:
    """One serialised sketch: the union (merge) of serialised sketches."""
    if kind == "theta":
        u = ds.theta_union(_lg(size))
        for b in blobs:
            u.update(deserialize("theta", b))
        return bytes(u.get_result().serialize())
    if kind == "quantiles":
        q = ds.quantiles_doubles_sketch(size)
        for b in blobs:
            q.merge(deserialize("quantiles", b))
        return bytes(q.serialize())
    # The union's lgK is the smallest of the aggregator's and the inputs': a union at a larger
    # lgK keeps exact-mode (coupon) inputs at full precision but cannot raise HLL-mode ones, so
    # its result would depend on which inputs had left exact mode, that is on how the rows were
    # grouped before (a peon's hydrants vs the handed-off segment). Druid unions at lgK.
    parts = [deserialize("hll", b) for b in blobs]
    lg_k = min([size, *(p.lg_config_k for p in parts)])
    hu = ds.hll_union(lg_k)
    for p in parts:
        hu.update(p)
    result = hu.get_result(hll_type(hll_tgt))
    out = bytes(result.serialize_compact())
    if out[0] == _HLL_MODE_PREINTS and not out[5] & _HLL_OUT_OF_ORDER:
        # A union fed only exact-mode inputs keeps an HIP estimate, one fed HLL-mode inputs
        # cannot (its estimate is from the registers alone): which one a union is depends on
        # how the rows were grouped before. Mark every HLL-mode union out of order, so the
        # estimate and the bytes depend on the registers only (a union with itself sets it).
        again = ds.hll_union(lg_k)
        again.update(result)
        again.update(result)
        out = bytes(again.get_result(hll_type(hll_tgt)).serialize_compact())
    return out


def _needs_hll_rework(blob: bytes, size: int, hll_tgt: str) -> bool:
    """Whether a lone HLL sketch differs from what the aggregator answers (Druid's union result
    has the aggregator's target type, and never a larger lgK)."""
    sk = deserialize("hll", blob)
    return bool(sk.lg_config_k > size or sk.tgt_type != hll_type(hll_tgt))


def union(kind: SketchKind, groups: Any, *, size: int, hll_tgt: str = "HLL_4") -> pa.Array:
    """Union each group's list of serialised sketches into one serialised sketch."""
    out: list[bytes | None] = []
    for blobs in groups.to_pylist():
        present = [b for b in (blobs or []) if b is not None]
        if not present:
            out.append(None)
            continue
        if len(present) == 1 and not (
            kind == "hll" and _needs_hll_rework(present[0], size, hll_tgt)
        ):
            out.append(present[0])
            continue
        out.append(union_blobs(kind, present, size=size, hll_tgt=hll_tgt))
    return pa.array(out, pa.binary())


def estimate(kind: SketchKind, blobs: Any) -> pa.Array:
    """The distinct-count estimate of each serialised sketch (0 for a null sketch)."""
    out: list[float] = []
    for b in blobs.to_pylist():
        if b is None:
            out.append(0.0)
        elif kind == "theta":
            out.append(float(deserialize("theta", b).get_estimate()))
        elif kind == "quantiles":
            out.append(float(deserialize("quantiles", b).n))
        else:
            out.append(float(deserialize("hll", b).get_estimate()))
    return pa.array(out, pa.float64())


def count_n(blobs: Any) -> pa.Array:
    """A quantiles sketch's finalized value (Druid's ``getN()``): how many values it saw."""
    return pa.array(
        [None if b is None else int(deserialize("quantiles", b).n) for b in blobs.to_pylist()],
        pa.int64(),
    )


def quantiles(blobs: Any, fractions: Sequence[float]) -> list[list[float]]:
    """Per sketch, the values at ``fractions`` (inclusive ranks, as Druid's ``getQuantile``);
    NaN for an empty or missing sketch."""
    out: list[list[float]] = []
    for b in blobs.to_pylist():
        q = None if b is None else deserialize("quantiles", b)
        if q is None or q.is_empty():
            out.append([float("nan")] * len(fractions))
        else:
            out.append([float(q.get_quantile(f, True)) for f in fractions])
    return out


def theta_set_op(func: str, operands: Sequence[Any], *, size: int) -> pa.Array:
    """Row-wise ``UNION``/``INTERSECT``/``NOT`` (A not B not C...) of serialised theta sketches."""
    n = len(operands[0]) if operands else 0
    rows = [o.to_pylist() for o in operands]
    out: list[bytes] = []
    for g in range(n):
        sks = [
            deserialize("theta", r[g])
            if r[g] is not None
            else ds.update_theta_sketch(_lg(size)).compact()
            for r in rows
        ]
        result: Any
        if func == "UNION":
            u = ds.theta_union(_lg(size))
            for sk in sks:
                u.update(sk)
            result = u.get_result()
        elif func == "INTERSECT":
            inter = ds.theta_intersection()
            for sk in sks:
                inter.update(sk)
            result = inter.get_result()
        else:
            result = sks[0]
            anb = ds.theta_a_not_b()
            for sk in sks[1:]:
                result = anb.compute(result, sk)
        out.append(bytes(result.serialize()))
    return pa.array(out, pa.binary())
