"""Intermediate persists of batch ingestion (``BatchIndexes``): past ``maxRowsInMemory`` /
``maxBytesInMemory`` the time chunks spill to disk, and the merged chunks are the ones an
unlimited run builds (rollup combines rows of one key across persists)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.ingest.batch import BatchParser
from common.ingest.batch_input.spill import BatchIndexes
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import RowParser
from common.ingest.spec import DataSchema, JsonInputFormat, parse_data_schema

DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01
JSON = JsonInputFormat(type="json")


def schema(rollup: bool, **dims: Any) -> DataSchema:
    return parse_data_schema(
        {
            "dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": dims or {"dimensions": ["page", "user"]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
                {"type": "doubleMax", "name": "peak", "fieldName": "added"},
            ],
            "granularitySpec": {
                "segmentGranularity": "DAY",
                "queryGranularity": "HOUR" if rollup else "NONE",
                "rollup": rollup,
            },
        }
    )


def records(n: int) -> list[bytes]:
    """Two days; keys repeat every 7 rows, so rollup combines rows far apart in the input."""
    return [
        json.dumps(
            {
                "ts": T0 + (i % 2) * DAY + (i % 3) * 60_000,
                "page": f"p{i % 7}",
                "user": None if i % 5 == 0 else f"u{i % 2}",
                "added": i,
            }
        ).encode()
        for i in range(n)
    ]


def ingest(
    data_schema: DataSchema,
    tmp: Path,
    lines: list[bytes],
    max_rows: int,
    max_bytes: int = 0,
    batch: int = 5,
) -> BatchIndexes:
    """Rows in small batches, alternating the column-wise and the row-by-row parser."""
    meters = RowIngestionMeters()
    rows = RowParser(data_schema, JSON, ParseExceptionHandler(meters))
    columnar = (
        BatchParser(data_schema, JSON, meters) if not data_schema.dimensionsSpec.discovers else None
    )
    indexes = BatchIndexes(data_schema, tmp, max_rows, max_bytes)
    for n, i in enumerate(range(0, len(lines), batch)):
        part = lines[i : i + batch]
        parsed = columnar.parse(part) if columnar is not None and n % 2 else None
        indexes.add(parsed.rows if parsed is not None else rows.parse_many(part, 0))
    return indexes


def chunks(indexes: BatchIndexes) -> list[tuple[list[str], list[str], list[dict[str, Any]]]]:
    out = []
    for start in indexes.buckets:
        m = indexes.merged(start)
        assert m.table.column_names == ["__time", *m.dimensions, *m.metrics]
        out.append((m.dimensions, m.metrics, m.table.to_pylist()))
    return out


@pytest.mark.parametrize("rollup", [True, False])
def test_persisted_chunks_merge_into_what_an_unlimited_run_builds(
    tmp_path: Path, rollup: bool
) -> None:
    lines = records(60)
    spilled = ingest(schema(rollup), tmp_path / "a", lines, max_rows=8)
    whole = ingest(schema(rollup), tmp_path / "b", lines, max_rows=10**9)
    assert whole.persists == 0
    assert spilled.persists >= 3
    assert len(list((tmp_path / "a").rglob("*.arrow"))) >= 3
    assert chunks(spilled) == chunks(whole)
    got = chunks(spilled)
    assert len(got) == 2  # two days
    rows = [r for _, _, table in got for r in table]
    assert sum(r["count"] for r in rows) == 60
    assert sum(r["added"] for r in rows) == sum(range(60))
    if rollup:  # 2 days x 3 minutes in one hour x 7 pages x users: keys met in several persists
        assert len(rows) < 60
    spilled.close()
    assert not (tmp_path / "a").exists()


def test_rollup_that_fits_after_compaction_does_not_persist(tmp_path: Path) -> None:
    same_key = [json.dumps({"ts": T0, "page": "p", "added": i}).encode() for i in range(200)]
    indexes = ingest(schema(True), tmp_path, same_key, max_rows=10)
    assert indexes.persists == 0
    assert chunks(indexes)[0][2] == [
        {"__time": chunks(indexes)[0][2][0]["__time"], "page": "p", "user": None, "count": 200}
        | {"added": sum(range(200)), "peak": 199.0}
    ]


def test_max_bytes_in_memory_persists_too(tmp_path: Path) -> None:
    lines = records(40)
    spilled = ingest(schema(False), tmp_path / "a", lines, max_rows=10**9, max_bytes=1)
    assert spilled.persists == 7  # before every batch of 5 but the first
    assert chunks(spilled) == chunks(ingest(schema(False), tmp_path / "b", lines, 10**9))


def test_discovered_and_multi_value_dimensions_across_persists(tmp_path: Path) -> None:
    """Each persist may know other dimensions, in other kinds; the merge widens them as one
    index does with its chunks (a list anywhere makes the column multi-value)."""
    lines = [
        json.dumps(row).encode()
        for row in [
            {"ts": T0, "a": "x", "added": 1},
            {"ts": T0 + 1, "b": 5, "added": 2},
            {"ts": T0 + 2, "a": ["y", "z"], "added": 3},
            {"ts": T0 + 3, "c": "w", "b": "text", "added": 4},
            {"ts": T0 + 4, "a": "x", "added": 5},
        ]
    ]
    discovery = schema(False, dimensions=[], useSchemaDiscovery=True)
    spilled = ingest(discovery, tmp_path / "a", lines, max_rows=1, batch=1)
    whole = ingest(discovery, tmp_path / "b", lines, max_rows=10**9, batch=1)
    assert spilled.persists == 4  # four spill files and the last row still in memory
    assert chunks(spilled) == chunks(whole)
    dims, _, table = chunks(spilled)[0]
    assert dims == ["a", "b", "c"]
    assert [r["a"] for r in table] == [["x"], None, ["y", "z"], None, ["x"]]
