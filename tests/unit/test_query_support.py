"""Shared fixtures for the native query tests: a generated dataset split into segment tables, a
DuckDB connection over the same rows, and a runner doing per-segment -> per-node merge -> IPC ->
broker merge -> finalize, as the cluster will."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import datasketches as ds
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.query import finalize, from_ipc, merge, parse_query, run_segment, to_ipc
from common.segments.intervals import Interval

COUNTRIES = ["US", "FR", "DE", "JP", None]
TAGS = ["a", "b", "c", "d"]
START = datetime(2023, 12, 28, tzinfo=UTC)
END = datetime(2024, 3, 15, tzinfo=UTC)
GAP = (datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 1, 17, 6, tzinfo=UTC))

SEGMENTS = [
    ("2023-12-01/2024-01-01", "ds_2023-12-01_2024-01-01_v1"),
    ("2024-01-01/2024-02-01", "ds_2024-01-01_2024-02-01_v1"),
    ("2024-02-01/2024-03-01", "ds_2024-02-01_2024-03-01_v1"),
    ("2024-02-01/2024-03-01", "ds_2024-02-01_2024-03-01_v1_1"),
    ("2024-03-01/2024-04-01", "ds_2024-03-01_2024-04-01_v1"),
]


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def iso(millis: int) -> str:
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def _generate(n: int = 3000, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    t = rng.integers(ms(START), ms(END), n)
    t = t[(t < ms(GAP[0])) | (t >= ms(GAP[1]))]
    t.sort()
    n = len(t)
    country = [COUNTRIES[i] for i in rng.choice(5, n, p=[0.4, 0.2, 0.15, 0.15, 0.1])]
    page = [f"p{i:02d}" for i in rng.integers(0, 40, n)]
    tags: list[list[str] | None] = []
    for _ in range(n):
        k = int(rng.integers(-1, 4))
        tags.append(None if k < 0 else sorted(rng.choice(TAGS, k, replace=False).tolist()))
    added = rng.integers(-50, 1000, n)
    added_mask = rng.random(n) < 0.1
    delta = np.round(rng.normal(0, 100, n), 3)
    delta_mask = rng.random(n) < 0.05
    users = [f"u{i}" for i in rng.integers(0, 300, n)]
    theta, hll = [], []
    for u in users:
        s = ds.update_theta_sketch(12)
        s.update(u)
        theta.append(s.compact().serialize())
        h = ds.hll_sketch(12)
        h.update(u)
        hll.append(h.serialize_compact())
    return pa.table(
        {
            "__time": pa.array(t, pa.timestamp("ms", tz="UTC")),
            "country": pa.array(country, pa.string()),
            "page": pa.array(page, pa.string()),
            "tags": pa.array(tags, pa.list_(pa.string())),
            "added": pa.array(added, pa.int64(), mask=added_mask),
            "delta": pa.array(delta, pa.float64(), mask=delta_mask),
            "user": pa.array(users, pa.string()),
            "user_theta": pa.array(theta, pa.binary()),
            "user_hll": pa.array(hll, pa.binary()),
        }
    )


def _segment_format(table: pa.Table) -> pa.Table:
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if name in ("country", "page", "user"):
            col = col.combine_chunks().dictionary_encode()
        cols[name] = col
    return pa.table(cols)


FULL = _generate()


def _split() -> list[tuple[Interval, str, pa.Table]]:
    out = []
    millis = FULL["__time"].cast(pa.int64())
    seen: dict[str, int] = {}
    for itv_text, seg_id in SEGMENTS:
        itv = Interval.parse(itv_text)
        mask = pc.and_(pc.greater_equal(millis, itv.start), pc.less(millis, itv.end))
        rows = FULL.filter(mask)
        parts = sum(1 for t, _ in SEGMENTS if t == itv_text)
        if parts > 1:
            k = seen.get(itv_text, 0)
            seen[itv_text] = k + 1
            idx = np.arange(rows.num_rows)
            rows = rows.filter(pa.array(idx % parts == k))
        out.append((itv, seg_id, _segment_format(rows)))
    return out


SEGMENT_TABLES = _split()


def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("t", FULL)
    con.execute("SET TimeZone='UTC'")
    return con


def run_query(query: dict[str, Any] | Any) -> list[dict[str, Any]]:
    """Per segment, merge on two 'nodes', ship through IPC, merge at the 'broker', finalize."""
    q = parse_query(query) if isinstance(query, dict) else query
    partials = [
        run_segment(q, table, interval=itv, segment_id=seg_id)
        for itv, seg_id, table in SEGMENT_TABLES
    ]
    node1 = merge(q, partials[:2])
    node2 = merge(q, partials[2:])
    broker = merge(q, [from_ipc(to_ipc(node1)), from_ipc(to_ipc(node2))])
    return finalize(q, broker)


def base(query_type: str, **kw: Any) -> dict[str, Any]:
    return {
        "queryType": query_type,
        "dataSource": "ds",
        "intervals": ["2023-12-01/2024-04-01"],
        **kw,
    }
