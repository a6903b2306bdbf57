"""Sketch metrics at ingestion: build one sketch per input row, union them when rows roll up.

The metricsSpec types ``hyperUnique``, ``HLLSketchBuild``/``HLLSketchMerge``, ``thetaSketch`` and
``quantilesDoublesSketch`` become ``binary`` columns holding serialised ``datasketches`` sketches,
the same bytes the query-side aggregators (``common.query.aggregators``) build and merge, so a
query over the peon's in-memory rows, its persisted hydrants or the handed-off segment unions the
same sketches. Every binary column is tagged with Druid's complex type name in the Arrow field
metadata (``druid.complexType``: ``hyperUnique``, ``HLLSketch``, ``thetaSketch``,
``quantilesDoublesSketch``), which segmentMetadata and SQL read as ``COMPLEX<...>``.

Inputs: raw values are hashed (HLL, theta) or added (quantiles, numbers only). Pre-built sketches
are accepted where Druid accepts them: ``HLLSketchMerge``, ``thetaSketch`` with
``isInputThetaSketch`` and ``quantilesDoublesSketch`` given a non-numeric string take a base64
serialised datasketches sketch; a value that is not one is a parse exception of that row.
``hyperUnique`` is an HLL sketch (lgK 11), not Druid's ``HyperLogLogCollector`` byte format.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from common.errors import InvalidInput
from common.ingest.spec import AggregatorSpec
from common.query import sketches
from common.query.sketches import SketchKind
from common.segments.format import COMPLEX_TYPE_KEY

_COMPLEX_NAMES = {
    "hyperUnique": "hyperUnique",
    "HLLSketchBuild": "HLLSketch",
    "HLLSketchMerge": "HLLSketch",
    "thetaSketch": "thetaSketch",
    "quantilesDoublesSketch": "quantilesDoublesSketch",
}


class SketchInputError(ValueError):
    """An input value that should be a serialised sketch is not one."""


def kind_of(spec: AggregatorSpec) -> SketchKind:
    if spec.type == "thetaSketch":
        return "theta"
    if spec.type == "quantilesDoublesSketch":
        return "quantiles"
    return "hll"


def complex_name(spec: AggregatorSpec) -> str:
    return _COMPLEX_NAMES[spec.type]


def _params(spec: AggregatorSpec) -> tuple[int, str]:
    """(size, hll target type) of the sketches a metric stores."""
    if spec.type == "hyperUnique":
        return sketches.CARDINALITY_LGK, "HLL_4"
    if spec.type == "thetaSketch":
        return spec.size, "HLL_4"
    if spec.type == "quantilesDoublesSketch":
        return spec.k, "HLL_4"
    return spec.lgK, spec.tgtHllType


def _takes_sketches(spec: AggregatorSpec) -> bool:
    return spec.type == "HLLSketchMerge" or (spec.type == "thetaSketch" and spec.isInputThetaSketch)


def _decode(kind: SketchKind, value: Any) -> bytes:
    if isinstance(value, bytes):
        blob = value
    elif isinstance(value, str):
        try:
            blob = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SketchInputError(f"value [{value[:40]}] is not a base64 sketch") from None
    else:
        raise SketchInputError(f"value [{value}] is not a serialised sketch")
    try:
        sketches.deserialize(kind, blob)
    except InvalidInput as e:
        raise SketchInputError(f"value is not a serialised {kind} sketch: {e.message}") from None
    return blob


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def input_converter(spec: AggregatorSpec) -> Callable[[Any], Any]:
    """What the row parser keeps of a sketch metric's input field: the raw value, or for inputs
    that are sketches the decoded bytes (``SketchInputError`` when they are not)."""
    kind = kind_of(spec)
    if _takes_sketches(spec):

        def sketch_input(v: Any) -> Any:
            if v is None:
                return None
            if isinstance(v, list):
                return [_decode(kind, x) for x in v if x is not None]
            return _decode(kind, v)

        return sketch_input
    if kind == "quantiles":

        def quantiles_input(v: Any) -> Any:
            if isinstance(v, str) and not _is_number_text(v):
                return _decode(kind, v)
            return v

        return quantiles_input
    return lambda v: v


def build_column(spec: AggregatorSpec, values: Sequence[Any]) -> pa.Array:
    """One serialised sketch per row (null where the row has no value for the field)."""
    kind = kind_of(spec)
    size, tgt = _params(spec)
    count_empty = spec.type == "hyperUnique"
    out: list[bytes | None] = []
    for v in values:
        if v is None or v == []:
            out.append(None)
            continue
        items = v if isinstance(v, list) else [v]
        blobs = [x for x in items if isinstance(x, bytes)]
        raw = [x for x in items if not isinstance(x, bytes)]
        if raw:
            sk = sketches.new_sketch(kind, size, tgt)
            sketches.update(kind, sk, raw, count_empty)
            blobs.append(sketches.serialize(kind, sk))
        if not blobs:
            out.append(None)
        elif len(blobs) == 1:
            out.append(blobs[0])
        else:
            out.append(sketches.union_blobs(kind, blobs, size=size, hll_tgt=tgt))
    return pa.array(out, pa.binary())


def combiner(spec: AggregatorSpec) -> Callable[[Any], pa.Array]:
    """How rolled-up rows' sketches merge: a ``list<binary>`` column in, their unions out."""
    kind = kind_of(spec)
    size, tgt = _params(spec)

    def combine(groups: Any) -> pa.Array:
        return sketches.union(kind, groups, size=size, hll_tgt=tgt)

    return combine


def tag(table: pa.Table, metrics: Sequence[AggregatorSpec]) -> pa.Table:
    """``table`` with each sketch metric's field carrying its Druid complex type name."""
    names = {m.name: complex_name(m) for m in metrics if m.is_sketch}
    if not names:
        return table
    fields = []
    changed = False
    for f in table.schema:
        want = names.get(f.name)
        if want is not None and (f.metadata or {}).get(COMPLEX_TYPE_KEY) != want.encode():
            f = f.with_metadata({**(f.metadata or {}), COMPLEX_TYPE_KEY: want.encode()})
            changed = True
        fields.append(f)
    if not changed:
        return table
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))
