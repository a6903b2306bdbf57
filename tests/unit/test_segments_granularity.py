"""Granularities: Druid's bucketing rules, scalar and vectorised paths agreeing, JSON forms."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from pydantic import BaseModel, ValidationError

from common.errors import InvalidInput
from common.segments.granularity import (
    ALL,
    NONE,
    DurationGranularity,
    Granularity,
    PeriodGranularity,
    parse_granularity,
)
from common.segments.intervals import ETERNITY, Interval
from common.segments.isotime import format_iso, parse_iso

H = 3_600_000


def g(value: object) -> Granularity:
    return parse_granularity(value)


def start(gran: object, iso: str) -> str:
    return format_iso(g(gran).bucket_start(parse_iso(iso)))


def la(period: str, origin: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {"type": "period", "period": period, "timeZone": "America/Los_Angeles"}
    if origin:
        out["origin"] = origin
    return out


def test_simple_granularities_in_utc() -> None:
    t = "2024-05-15T13:47:31.123Z"
    assert start("none", t) == t
    assert start("second", t) == "2024-05-15T13:47:31.000Z"
    assert start("minute", t) == "2024-05-15T13:47:00.000Z"
    assert start("five_minute", t) == "2024-05-15T13:45:00.000Z"
    assert start("ten_minute", t) == "2024-05-15T13:40:00.000Z"
    assert start("FIFTEEN_MINUTE", t) == "2024-05-15T13:45:00.000Z"
    assert start("thirty_minute", t) == "2024-05-15T13:30:00.000Z"
    assert start("hour", t) == "2024-05-15T13:00:00.000Z"
    assert start("six_hour", t) == "2024-05-15T12:00:00.000Z"
    assert start("eight_hour", t) == "2024-05-15T08:00:00.000Z"
    assert start("day", t) == "2024-05-15T00:00:00.000Z"
    assert start("week", t) == "2024-05-13T00:00:00.000Z"  # a Monday
    assert start("month", t) == "2024-05-01T00:00:00.000Z"
    assert start("quarter", t) == "2024-04-01T00:00:00.000Z"
    assert start("year", t) == "2024-01-01T00:00:00.000Z"
    assert ALL.bucket(parse_iso(t)) == ETERNITY
    assert start("day", "1969-12-31T23:00:00Z") == "1969-12-31T00:00:00.000Z"


def test_period_granularities_with_zone_and_origin() -> None:
    # Local midnight across the spring-forward day: the bucket is 23 hours long.
    day = g(la("P1D"))
    b = day.bucket(parse_iso("2024-03-10T12:00:00-07:00"))
    assert b == Interval.of("2024-03-10T00:00:00-08:00", "2024-03-11T00:00:00-07:00")
    assert b.duration == 23 * H
    assert day.bucket(parse_iso("2024-11-03T12:00:00-08:00")).duration == 25 * H
    # Multi-hour periods align on 1970-01-01T00:00 in the zone (Druid's default origin).
    assert start(la("PT6H"), "2024-01-15T05:00:00Z") == "2024-01-15T02:00:00.000Z"
    # Hours floor in local time: India is UTC+05:30.
    assert start({"type": "period", "period": "PT1H", "timeZone": "Asia/Kolkata"},
                 "2024-01-01T10:45:00Z") == "2024-01-01T10:30:00.000Z"  # fmt: skip
    # Month origin on the 31st: Joda clamps to the end of shorter months.
    m31 = {"type": "period", "period": "P1M", "origin": "2024-01-31T00:00:00Z"}
    assert start(m31, "2024-03-01T00:00:00Z") == "2024-02-29T00:00:00.000Z"
    assert start(m31, "2024-01-30T00:00:00Z") == "2023-12-31T00:00:00.000Z"
    assert start(la("P1M"), "2024-03-01T07:59:59Z") == "2024-02-01T08:00:00.000Z"
    assert start(la("P2D", "2024-01-01T06:00:00-08:00"), "2024-01-03T05:00:00-08:00") == (
        "2024-01-01T14:00:00.000Z"
    )
    assert start({"type": "period", "period": "P2W"}, "1970-01-14T00:00:00Z") == (
        "1970-01-01T00:00:00.000Z"  # P2W counts from the origin, a Thursday
    )
    dur = {"type": "duration", "duration": 3600000, "origin": "2012-01-01T00:30:00Z"}
    assert start(dur, "2024-01-01T10:10:00Z") == "2024-01-01T09:30:00.000Z"
    assert start(dur, "1960-01-01T10:10:00Z") == "1960-01-01T09:30:00.000Z"


def test_iterate_buckets() -> None:
    hours = list(g(la("PT1H")).iter_buckets(Interval.of("2024-11-03T07:00Z", "2024-11-04T08:00Z")))
    assert len(hours) == 25 and all(b.duration == H for b in hours)
    days = list(g(la("P1D")).iter_buckets(Interval.of("2024-03-09T08:00Z", "2024-03-12T07:00Z")))
    assert [d.duration // H for d in days] == [24, 23, 24]
    months = list(g("month").iter_buckets(Interval.of("2024-01-15", "2024-04-01")))
    assert str(months[0]) == "2024-01-01T00:00:00.000Z/2024-02-01T00:00:00.000Z"
    assert len(months) == 3
    assert g("day").next(parse_iso("2024-01-01T05:00Z")) == parse_iso("2024-01-02")


GRANULARITIES = [
    "minute",
    "fifteen_minute",
    "hour",
    "day",
    "week",
    "month",
    "quarter",
    "year",
    la("PT1H"),
    la("PT6H"),
    la("P1D"),
    la("P1W"),
    la("P1M"),
    la("P3M"),
    la("P1Y"),
    la("P2D", "2020-01-01T06:00:00Z"),
    la("P1M", "2020-01-31T12:00:00Z"),
    la("PT1H30M"),
    la("P1M1D"),
    {"type": "period", "period": "PT1H", "timeZone": "Asia/Kolkata"},
    {"type": "period", "period": "P1D", "timeZone": "Europe/Berlin"},
    {"type": "period", "period": "P1W", "timeZone": "Australia/Lord_Howe"},
    {"type": "period", "period": "P1D", "timeZone": "+05:30"},
    {"type": "period", "period": "P1DT12H", "timeZone": "-03:00"},
    {"type": "duration", "duration": 7200000, "origin": "2012-01-01T00:30:00Z"},
]


def _sample_instants() -> list[int]:
    rnd = random.Random(7)
    lo, hi = parse_iso("2019-01-01"), parse_iso("2026-01-01")
    ts = [rnd.randrange(lo, hi) for _ in range(3000)]
    # Every 10 minutes around the 2024 US and EU DST changes.
    for base in (
        "2024-03-09T00:00Z",
        "2024-11-02T00:00Z",
        "2024-03-30T00:00Z",
        "2024-10-26T00:00Z",
    ):
        b = parse_iso(base)
        ts += [b + i * 600_000 for i in range(3 * 144)]
    return ts


@pytest.mark.parametrize("spec", GRANULARITIES, ids=str)
def test_vectorised_matches_scalar(spec: object) -> None:
    gran = g(spec)
    ts = _sample_instants()
    if spec == la("P1M1D"):
        ts = ts[::20]  # the scalar path steps from the origin one period at a time: slow
    arr = pa.array(ts, pa.int64())
    got = gran.bucket_starts(arr).to_pylist()
    want = [gran.bucket_start(t) for t in ts]
    assert got == want
    for t, s in zip(ts[:300], want[:300], strict=True):
        # Not always t < increment(s): a month origin on the 31st leaves gaps, as in Joda.
        assert s <= t and gran.bucket_start(s) == s


def test_bucket_starts_keeps_type_and_nulls() -> None:
    typ = pa.timestamp("ms", tz="UTC")
    arr = pa.array([parse_iso("2024-01-01T05:00Z"), None, parse_iso("2024-01-02T23:00Z")], typ)
    out = g("day").bucket_starts(arr)
    assert out.type == typ
    assert out.cast(pa.int64()).to_pylist() == [
        parse_iso("2024-01-01"),
        None,
        parse_iso("2024-01-02"),
    ]
    chunked = pa.chunked_array([arr, arr])
    assert g("hour").bucket_starts(chunked).num_chunks == 2
    us = pa.array([parse_iso("2024-01-01T05:00Z") * 1000 + 7], pa.timestamp("us", tz="UTC"))
    assert g("day").bucket_starts(us).type == pa.timestamp("ms", tz="UTC")
    assert g("none").bucket_starts(pa.array([5], pa.int64())).to_pylist() == [5]
    with pytest.raises(InvalidInput):
        g("day").bucket_starts(pa.array(["x"]))


def test_bucket_starts_million_rows_is_vectorised() -> None:
    arr = pa.array(range(0, 10**6 * 997, 997), pa.int64())
    out = g(la("P1D")).bucket_starts(arr)
    assert len(out) == 10**6 and out[0].as_py() == parse_iso("1969-12-31T08:00Z")


@pytest.mark.parametrize(
    "spec",
    [
        "DAY",
        "ALL",
        "NONE",
        "QUARTER",
        la("P1D"),
        la("PT6H", "2024-01-01T00:00:00.000Z"),
        {"type": "duration", "duration": 7200000, "origin": "1970-01-01T00:00:00.000Z"},
    ],
    ids=str,
)
def test_json_round_trip(spec: object) -> None:
    gran = g(spec)
    assert g(gran.to_json()) == gran
    assert gran.to_json() == spec


def test_json_forms_and_errors() -> None:
    assert g({"type": "period", "period": "P1D"}).to_json() == "DAY"
    assert g({"type": "all"}) is ALL and g({"type": "none"}) is NONE
    assert g("hour") == PeriodGranularity(g("hour").period)  # type: ignore[attr-defined]
    assert g({"type": "duration", "duration": "60000"}) == DurationGranularity(60000)

    class Q(BaseModel):
        granularity: Granularity

    q = Q.model_validate({"granularity": la("P1D")})
    assert q.model_dump(mode="json")["granularity"]["timeZone"] == "America/Los_Angeles"
    for bad in (
        "fortnight",
        {"type": "period"},
        {"type": "period", "period": "PT0S"},
        {"type": "period", "period": "P1D", "timeZone": "Nowhere/City"},
        {"type": "duration", "duration": -5},
        {"type": "duration", "duration": "abc"},
        {"type": "cron"},
        42,
    ):
        with pytest.raises(InvalidInput):
            g(bad)
        with pytest.raises(ValidationError):
            Q.model_validate({"granularity": bad})
