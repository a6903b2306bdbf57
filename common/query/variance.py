"""Druid's variance collector (the ``druid-stats`` extension), as numpy over arrays of them.

The collector is Druid's ``VarianceAggregatorCollector``: (count, sum, nvariance), nvariance being
the sum of squared deviations from the mean, serialised as Druid does (a big-endian long and two
doubles, 24 bytes). Parts combine by Chan, Golub and LeVeque's formula, the one Druid's ``fold``
applies pairwise. A collector's variance is null over no values (SQL-compatible mode), ``0`` over
one value, else ``nvariance / count`` for the ``population`` estimator and
``nvariance / (count - 1)`` for the sample one (the default). Used by the ``variance``
aggregator (``common.query.variance_agg``) and the ``stddev`` post-aggregator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_COLLECTOR = np.dtype([("count", ">i8"), ("sum", ">f8"), ("nvariance", ">f8")])


def is_population(estimator: str | None) -> bool:
    return estimator is not None and estimator.lower() == "population"


def pack(count: Any, total: Any, nvar: Any) -> pa.Array:
    n = len(count)
    rec = np.empty(n, dtype=_COLLECTOR)
    rec["count"], rec["sum"], rec["nvariance"] = count, total, nvar
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(_COLLECTOR.itemsize), n, [None, pa.py_buffer(rec.tobytes())]
    )
    out = fixed.cast(pa.binary())
    return pc.if_else(pa.array(np.asarray(count) > 0), out, pa.scalar(None, pa.binary()))


def unpack(partial: Any) -> tuple[Any, Any, Any, Any]:
    """(valid, count, sum, nvariance) numpy arrays of a column of collectors."""
    partial = partial.combine_chunks() if isinstance(partial, pa.ChunkedArray) else partial
    valid = np.asarray(pc.is_valid(partial).to_numpy(zero_copy_only=False), dtype=bool)
    fixed = pc.fill_null(partial, b"\0" * _COLLECTOR.itemsize).cast(pa.binary(_COLLECTOR.itemsize))
    rec = np.frombuffer(fixed.buffers()[1], dtype=_COLLECTOR)[fixed.offset :][: len(fixed)]
    count = np.where(valid, rec["count"].astype(np.int64), 0)
    return valid, count, rec["sum"].astype(np.float64), rec["nvariance"].astype(np.float64)


def variance(partial: Any, population: bool) -> pa.Array:
    """Druid's ``getVariance`` of each collector (null for none or an empty one)."""
    _, count, _, nvar = unpack(partial)
    denom = np.where(count > 1, count if population else count - 1, 1).astype(np.float64)
    value = np.where(count > 1, nvar / denom, 0.0)
    return pa.array(value, pa.float64(), mask=count == 0)


def combine(owner: Any, groups: int, count: Any, total: Any, nvar: Any) -> tuple[Any, Any, Any]:
    """Per group: the combined (count, sum, nvariance) of the parts owned by it."""
    n = np.bincount(owner, weights=count, minlength=groups)
    s = np.bincount(owner, weights=total, minlength=groups)
    safe = np.where(n > 0, n, 1)
    mean = s / safe
    part_mean = total / np.where(count > 0, count, 1)
    spread = count * (part_mean - mean[owner]) ** 2
    nv = np.bincount(owner, weights=nvar + spread, minlength=groups)
    return n.astype(np.int64), s, nv


def members(groups: Any) -> tuple[Any, Any]:
    """The non-null row numbers of each group's list, and the group owning each."""
    groups = groups.combine_chunks() if isinstance(groups, pa.ChunkedArray) else groups
    flat = groups.flatten()
    parents = np.asarray(pc.list_parent_indices(groups).to_numpy(zero_copy_only=False))
    valid = np.asarray(pc.is_valid(flat).to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.asarray(pc.fill_null(flat, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return rows[valid], parents[valid].astype(np.int64)
