"""Row meters, Druid's rowStats JSON, and parse-exception accounting."""

from __future__ import annotations

import math

import pytest

from common.ingest.meters import (
    MaxParseExceptionsExceeded,
    ParseExceptionHandler,
    ParseFailure,
    RowIngestionMeters,
)


def test_row_stats_shape_and_totals() -> None:
    m = RowIngestionMeters(now=0.0)
    m.add_processed(10, 1000)
    m.add_processed_bytes(50)
    m.add_thrown_away(2)
    m.add_unparseable()
    m.add_processed_with_error(3)
    stats = m.row_stats(now=1.0)
    assert stats["totals"] == {
        "buildSegments": {
            "processed": 10,
            "processedBytes": 1050,
            "processedWithError": 3,
            "thrownAway": 2,
            "unparseable": 1,
        }
    }
    averages = stats["movingAverages"]["buildSegments"]
    assert set(averages) == {"1m", "5m", "15m"}
    assert set(averages["1m"]) == set(stats["totals"]["buildSegments"])
    # No 5 s tick has elapsed yet, so no rate yet.
    assert averages["1m"]["processed"] == 0.0


def test_moving_averages_follow_dropwizard_ewma() -> None:
    m = RowIngestionMeters(now=0.0)
    m.add_processed(500)
    first = m.moving_averages(now=5.0)
    # First tick: the instant rate, 500 rows over 5 s.
    assert first["1m"]["processed"] == pytest.approx(100.0)
    assert first["15m"]["processed"] == pytest.approx(100.0)
    # A minute of silence: the 1m rate decays by e^-1, the 15m rate barely moves.
    later = m.moving_averages(now=65.0)
    assert later["1m"]["processed"] == pytest.approx(100.0 * math.exp(-1.0), rel=1e-6)
    assert later["15m"]["processed"] == pytest.approx(100.0 * math.exp(-1.0 / 15), rel=1e-6)
    assert later["5m"]["processed"] > later["1m"]["processed"]


def test_parse_exceptions_saved_newest_and_counted() -> None:
    m = RowIngestionMeters()
    h = ParseExceptionHandler(m, max_saved_parse_exceptions=2)
    h.handle(ParseFailure("a", ("bad json",)), now_ms=1)
    h.handle(ParseFailure("b", ("bad long",), fatal=False), now_ms=2)
    h.handle(ParseFailure("c", ("no timestamp",)), now_ms=3)
    assert (m.unparseable, m.processed_with_error) == (2, 1)
    saved = h.unparseable_events()["buildSegments"]
    assert [s["input"] for s in saved] == ["b", "c"]
    assert saved[0] == {
        "timeOfExceptionMillis": 2,
        "input": "b",
        "errorType": "processedWithError",
        "details": ["bad long"],
    }


def test_nothing_saved_by_default() -> None:
    h = ParseExceptionHandler(RowIngestionMeters())
    h.handle(ParseFailure("a", ("x",)), now_ms=1)
    assert h.saved() == []


def test_max_parse_exceptions_exceeded_after_the_limit() -> None:
    m = RowIngestionMeters()
    h = ParseExceptionHandler(m, max_parse_exceptions=2)
    h.handle(ParseFailure("a", ("x",)), now_ms=1)
    h.handle(ParseFailure("b", ("y",), fatal=False), now_ms=1)
    with pytest.raises(MaxParseExceptionsExceeded, match=r"Max parse exceptions\[2\] exceeded"):
        h.handle(ParseFailure("c", ("z",)), now_ms=1)
