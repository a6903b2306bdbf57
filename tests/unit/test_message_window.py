"""``minimumMessageTime`` / ``maximumMessageTime`` of an ``index_kafka`` task: rows outside are
thrown away on both parse paths, rows exactly on a bound are kept (Druid's
``withinMinMaxRecordTime``)."""

from __future__ import annotations

from typing import Any

import pytest

from common.ingest.batch import BatchParser
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import RowParser
from common.ingest.route import Router
from services.peon.taskspec import parse_task
from tests.unit.test_ingest_batch import T0, records, seq

LOW, HIGH = T0, T0 + 60_000


def task(**io: Any) -> dict[str, Any]:
    return {
        "type": "index_kafka",
        "id": "t1",
        "dataSchema": {
            "dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
        },
        "ioConfig": {
            "type": "kafka",
            "topic": "t",
            "inputFormat": {"type": "json"},
            "startSequenceNumbers": {"partitionSequenceNumberMap": {"0": 0}},
            "endSequenceNumbers": {"partitionSequenceNumberMap": {"0": 100}},
            **io,
        },
    }


def test_no_bounds_no_window() -> None:
    assert parse_task(task()).message_window == (None, None)


@pytest.mark.parametrize("batch", [False, True])
def test_rows_outside_the_bounds_are_thrown_away_rows_on_them_kept(batch: bool) -> None:
    spec = parse_task(
        task(minimumMessageTime="2024-01-01T00:00:00Z", maximumMessageTime="2024-01-01T00:01:00Z")
    )
    assert spec.message_window == (LOW, HIGH + 1)
    meters = RowIngestionMeters()
    handler = ParseExceptionHandler(meters, 1000, 10, False)
    router = Router(
        RowParser(spec.schema, spec.input_format, handler),
        BatchParser(spec.schema, spec.input_format, meters) if batch else None,
        spec.schema.granularitySpec.segmentGranularity,
        *spec.message_window,
    )
    times = [LOW - 1, LOW, LOW + 5, HIGH, HIGH + 1]
    part = records(*({"ts": t, "page": "p"} for t in times))
    routed = router.route([part], {0: 0}, {0: 100}, [seq("s0", {0: 0}, {0: 100})], now_ms=T0)
    kept = sum(len(r) for r in routed.rows.values()) + sum(len(c) for c in routed.columns.values())
    assert kept == 3
    assert meters.totals()["thrownAway"] == 2
    assert meters.totals()["processed"] == 3
