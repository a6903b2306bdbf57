"""Partitioning of one time chunk's rows into segments (Druid's ``partitionsSpec``).

``dynamic``: rows in order, a new segment every ``maxRowsPerSegment`` rows (numbered shard specs,
``partitions`` = the number of segments, so the set is complete only when all are present).
``hashed``: ``numShards`` buckets, or ``ceil(rows / targetRowsPerSegment)``; a row's bucket is
``abs(murmur3_32(key) % buckets)``; the non-empty buckets are numbered ``0..k-1`` and are the
core set (``bucketId``/``numBuckets`` keep the hashing), as Druid does. The key is the JSON of
the values of ``partitionDimensions`` (all dimensions and the time when none are named), as
Druid's ``HashPartitioner`` builds it. Pure: tables in, tables out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from common.ingest.batch_input.spec import DynamicPartitions, HashedPartitions
from common.segments.segment import HashBasedNumberedShardSpec, NumberedShardSpec

TIME_COLUMN = "__time"


@dataclass(frozen=True)
class Partition:
    table: pa.Table
    shard_spec: NumberedShardSpec | HashBasedNumberedShardSpec


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit (Guava's ``murmur3_32``), as a signed 32-bit int."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & 0xFFFFFFFF
    n = len(data)
    full = n - n % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[full:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h - (1 << 32) if h >= 1 << 31 else h


def _values(v: Any) -> list[Any]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def hash_buckets(table: pa.Table, dimensions: list[str], buckets: int) -> np.ndarray[Any, Any]:
    """The bucket of every row of ``table``."""
    if buckets == 1:
        return np.zeros(table.num_rows, dtype=np.int64)
    if dimensions:
        cols = [
            table.column(d).to_pylist() if d in table.column_names else [None] * table.num_rows
            for d in dimensions
        ]
        keys: Iterator[list[Any]] = ([_values(c[i]) for c in cols] for i in range(table.num_rows))
    else:
        dims = [c for c in table.column_names if c != TIME_COLUMN]
        times = table.column(TIME_COLUMN).cast(pa.int64()).to_pylist()
        dcols = {d: table.column(d).to_pylist() for d in dims}
        keys = (
            [times[i], {d: _values(dcols[d][i]) for d in sorted(dims)}]
            for i in range(table.num_rows)
        )
    out = np.empty(table.num_rows, dtype=np.int64)
    for i, key in enumerate(keys):
        # Java's % keeps the dividend's sign; Math.abs of that is the bucket.
        h = murmur3_32(orjson.dumps(key))
        out[i] = abs(int(math.fmod(h, buckets)))
    return out


def partition(
    table: pa.Table,
    spec: DynamicPartitions | HashedPartitions,
    dimension_names: list[str],
) -> list[Partition]:
    """The segments of one time chunk; an empty chunk gives none."""
    rows = table.num_rows
    if rows == 0:
        return []
    if isinstance(spec, DynamicPartitions):
        size = spec.maxRowsPerSegment
        parts = [table.slice(o, size) for o in range(0, rows, size)]
        return [
            Partition(t, NumberedShardSpec(partitionNum=i, partitions=len(parts)))
            for i, t in enumerate(parts)
        ]
    n = spec.numShards or max(1, math.ceil(rows / spec.target_rows))
    dims = list(spec.partitionDimensions)
    missing = [d for d in dims if d not in dimension_names]
    if missing:
        raise ValueError(f"partitionDimensions {missing} are not dimensions of the dataSchema")
    buckets = hash_buckets(table, dims, n)
    # Druid numbers only the non-empty buckets' segments, and those are the core set.
    filled = [(b, np.nonzero(buckets == b)[0]) for b in range(n)]
    filled = [(b, idx) for b, idx in filled if len(idx)]
    out = []
    for num, (b, idx) in enumerate(filled):
        out.append(
            Partition(
                table.take(pa.array(idx)),
                HashBasedNumberedShardSpec(
                    partitionNum=num,
                    partitions=len(filled),
                    bucketId=b,
                    numBuckets=n,
                    partitionDimensions=tuple(dims),
                ),
            )
        )
    return out
