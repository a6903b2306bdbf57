"""Scan, timeBoundary, segmentMetadata and dataSourceMetadata over several segments, the IPC
round trip and the associativity of merge."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from test_query_support import FULL, SEGMENT_TABLES, base, duck, iso, run_query

from common.query import finalize, from_ipc, merge, parse_query, run_segment, to_ipc
from common.query.engine.scan import druid_multi_value


def _events(result: list[dict[str, Any]]) -> list[Any]:
    return [e for batch in result for e in batch["events"]]


def test_scan_ordered_with_offset_and_limit() -> None:
    q = base(
        "scan",
        columns=["__time", "country", "tags", "added"],
        order="descending",
        offset=5,
        limit=20,
        filter={"type": "selector", "dimension": "country", "value": "DE"},
    )
    result = run_query(q)
    rows = (
        duck()
        .execute(
            "SELECT epoch_ms(__time), country, tags, added FROM t WHERE country = 'DE' "
            "ORDER BY __time DESC LIMIT 20 OFFSET 5"
        )
        .fetchall()
    )
    got = [(e["__time"], e["country"], e["tags"], e["added"]) for e in _events(result)]
    # Multi-value rows as Druid prints them: null when empty, the value alone when one.
    assert got == [(t, c, druid_multi_value(tags), a) for t, c, tags, a in rows]
    assert all(b["columns"] == ["__time", "country", "tags", "added"] for b in result)
    assert {b["segmentId"] for b in result} <= {s for _, s, _ in SEGMENT_TABLES}


def test_scan_compacted_list_all_columns_unordered() -> None:
    q = base("scan", intervals=["2024-03-10/2024-03-11"], resultFormat="compactedList")
    result = run_query(q)
    [batch] = result
    assert batch["segmentId"] == "ds_2024-03-01_2024-04-01_v1"
    assert batch["columns"][0] == "__time" and "user_theta" in batch["columns"]
    n = (
        duck()
        .execute("SELECT count(*) FROM t WHERE __time >= '2024-03-10' AND __time < '2024-03-11'")
        .fetchone()
    )
    assert n is not None and len(batch["events"]) == n[0]
    assert all(isinstance(e, list) and len(e) == len(batch["columns"]) for e in batch["events"])


def test_scan_missing_column_is_null_and_limit_without_order() -> None:
    q = base("scan", columns=["page", "nope"], limit=7)
    events = _events(run_query(q))
    assert len(events) == 7 and all(e["nope"] is None for e in events)


def test_time_boundary() -> None:
    lo, hi = duck().execute(
        "SELECT epoch_ms(min(__time)), epoch_ms(max(__time)) FROM t WHERE country = 'JP'"
    ).fetchone() or (0, 0)
    flt = {"type": "selector", "dimension": "country", "value": "JP"}
    assert run_query(base("timeBoundary", filter=flt)) == [
        {"timestamp": iso(lo), "result": {"minTime": iso(lo), "maxTime": iso(hi)}}
    ]
    assert run_query(base("timeBoundary", filter=flt, bound="maxTime")) == [
        {"timestamp": iso(hi), "result": {"maxTime": iso(hi)}}
    ]
    assert run_query(base("timeBoundary", intervals=["2030-01-01/2031-01-01"])) == []


def test_data_source_metadata() -> None:
    hi = FULL["__time"].cast(pa.int64()).to_pylist()[-1]
    q = {"queryType": "dataSourceMetadata", "dataSource": "ds"}
    assert run_query(q) == [{"timestamp": iso(hi), "result": {"maxIngestedEventTime": iso(hi)}}]


def test_segment_metadata_per_segment_and_merged() -> None:
    q = {"queryType": "segmentMetadata", "dataSource": "ds"}
    result = run_query(q)
    assert [r["id"] for r in result] == sorted(s for _, s, _ in SEGMENT_TABLES)
    total = 0
    for itv, seg_id, table in SEGMENT_TABLES:
        [r] = [r for r in result if r["id"] == seg_id]
        assert r["numRows"] == table.num_rows and r["intervals"] == [str(itv)]
        total += table.num_rows
        page = r["columns"]["page"]
        assert page["type"] == "STRING" and page["hasMultipleValues"] is False
        assert page["cardinality"] == len(set(table["page"].to_pylist()))
        assert page["minValue"] == min(table["page"].to_pylist())
        assert r["columns"]["tags"]["hasMultipleValues"] is True
        assert r["columns"]["added"]["type"] == "LONG"
        assert r["columns"]["delta"]["type"] == "DOUBLE"
        assert r["columns"]["user_theta"]["type"].startswith("COMPLEX")
    [m] = run_query({**q, "merge": True})
    assert m["id"] == "merged" and m["numRows"] == total
    assert m["intervals"] == ["2023-12-01T00:00:00.000Z/2024-04-01T00:00:00.000Z"]
    assert m["columns"]["country"]["cardinality"] == 4
    assert m["columns"]["country"]["hasNulls"] is True


def test_merge_is_associative_and_partials_survive_ipc() -> None:
    q = parse_query(
        base(
            "groupBy",
            granularity="week",
            dimensions=["country"],
            aggregations=[
                {"type": "count", "name": "rows"},
                {"type": "thetaSketch", "name": "users", "fieldName": "user"},
                {"type": "doubleMin", "name": "m", "fieldName": "delta"},
            ],
        )
    )
    parts = [run_segment(q, t, interval=i, segment_id=s) for i, s, t in SEGMENT_TABLES]
    flat = finalize(q, merge(q, parts))
    nested = finalize(
        q, merge(q, [merge(q, parts[:1]), merge(q, [merge(q, parts[1:3]), merge(q, parts[3:])])])
    )
    shipped = finalize(q, merge(q, [from_ipc(to_ipc(p)) for p in parts]))
    assert flat == nested == shipped
    assert finalize(q, merge(q, [])) == []


def test_segments_spec_restricts_to_descriptor_interval() -> None:
    _, seg_id, table = SEGMENT_TABLES[1]
    q = parse_query(
        {
            "queryType": "timeseries",
            "dataSource": "ds",
            "granularity": "all",
            "intervals": {
                "type": "segments",
                "segments": [{"itvl": "2024-01-05/2024-01-10", "ver": "v1", "part": 0}],
            },
            "aggregations": [{"type": "count", "name": "rows"}],
        }
    )
    desc = q.intervals.segments[0]  # type: ignore[index]
    part = run_segment(q, table, interval=desc.itvl, segment_id=seg_id)
    [row] = finalize(q, merge(q, [part]))
    n = (
        duck()
        .execute("SELECT count(*) FROM t WHERE __time >= '2024-01-05' AND __time < '2024-01-10'")
        .fetchone()
    )
    assert row == {"timestamp": "2024-01-05T00:00:00.000Z", "result": {"rows": n[0] if n else 0}}
    assert parse_query(q.to_json()) == q
