"""Intervals, ISO instants and periods: parsing and printing as Druid does."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from common.errors import InvalidInput
from common.segments.intervals import ETERNITY, Interval, condense, umbrella
from common.segments.isotime import format_iso, parse_iso, to_millis
from common.segments.period import Period, add_period, parse_zone

DAY = 86_400_000


def test_iso_round_trip_and_forms() -> None:
    assert parse_iso("1970-01-01T00:00:00.000Z") == 0
    assert parse_iso("2024-01-01") == 1704067200000
    assert parse_iso("2024-01-01T00:00:00Z") == 1704067200000
    assert parse_iso("2024-01-01T01:00:00+01:00") == 1704067200000
    assert parse_iso("2024-01-01T00:00:00.5-0130") == 1704067200500 + 5_400_000
    assert parse_iso("2024") == 1704067200000
    assert parse_iso("2024-03") == parse_iso("2024-03-01T00:00:00.000Z")
    assert parse_iso("2024-01-01T12") == 1704067200000 + 12 * 3_600_000
    assert format_iso(1704067200123) == "2024-01-01T00:00:00.123Z"
    assert format_iso(-1) == "1969-12-31T23:59:59.999Z"
    assert format_iso(parse_iso("0001-02-03T04:05:06.007Z")) == "0001-02-03T04:05:06.007Z"
    assert to_millis("1704067200000") == 1704067200000
    assert to_millis(5) == 5


@pytest.mark.parametrize(
    "bad", ["", "2024-13-01", "2024-02-30", "2024-01-01T25:00", "yesterday", "2024-01-01T00:00+25"]
)
def test_bad_instants_are_domain_errors(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_iso(bad)


def test_eternity_matches_druid() -> None:
    assert str(ETERNITY) == "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"
    assert Interval.parse(str(ETERNITY)) == ETERNITY


def test_interval_forms() -> None:
    iv = Interval.parse("2024-01-01/2024-01-02")
    assert str(iv) == "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"
    assert Interval.parse("2024-01-01T00:00:00.000Z/P1D") == iv
    assert Interval.parse("P1D/2024-01-02") == iv
    assert Interval.parse("2024-01-31/P1M").end == parse_iso("2024-02-29")
    assert Interval.parse("2024-01-01/PT1H30M").duration == 90 * 60_000
    assert Interval.of("2024-01-01", "2024-01-02") == iv
    with pytest.raises(InvalidInput):
        Interval.parse("2024-01-02/2024-01-01")
    with pytest.raises(InvalidInput):
        Interval.parse("2024-01-01")
    with pytest.raises(InvalidInput):
        Interval.parse("P1D/P2D")


def test_interval_relations() -> None:
    a = Interval(0, 10)
    assert a.overlaps(Interval(5, 15)) and a.overlaps(Interval(2, 3))
    assert not a.overlaps(Interval(10, 20))
    assert a.abuts(Interval(10, 20)) and Interval(-5, 0).abuts(a)
    assert a.contains(Interval(0, 10)) and a.contains(Interval(3, 4))
    assert not a.contains(Interval(5, 11))
    assert a.contains(0) and not a.contains(10)
    assert a.intersection(Interval(5, 15)) == Interval(5, 10)
    assert a.intersection(Interval(10, 15)) is None
    assert not Interval(5, 5).overlaps(a)
    assert condense([Interval(5, 8), Interval(0, 5), Interval(7, 9), Interval(20, 30)]) == [
        Interval(0, 9),
        Interval(20, 30),
    ]
    assert umbrella([Interval(5, 8), Interval(0, 2)]) == Interval(0, 8)
    assert sorted([Interval(1, 5), Interval(0, 9), Interval(0, 3)]) == [
        Interval(0, 3),
        Interval(0, 9),
        Interval(1, 5),
    ]


def test_interval_in_pydantic() -> None:
    class M(BaseModel):
        interval: Interval

    m = M.model_validate({"interval": "2024-01-01/P1D"})
    assert m.model_dump(mode="json") == {
        "interval": "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"
    }
    with pytest.raises(ValidationError):
        M.model_validate({"interval": "nope"})
    with pytest.raises(ValidationError):
        M.model_validate({"interval": 5})


def test_periods() -> None:
    assert Period.parse("P1D") == Period(days=1)
    assert Period.parse("PT0.750S") == Period(millis=750)
    assert str(Period.parse("P1Y2M3W4DT5H6M7.008S")) == "P1Y2M3W4DT5H6M7.008S"
    assert str(Period.parse("pt15m")) == "PT15M"
    for bad in ("P", "PT", "1D", "P1DT", "P-1D"):
        with pytest.raises(InvalidInput):
            Period.parse(bad)


def test_add_period_across_dst() -> None:
    la = parse_zone("America/Los_Angeles")
    # 2024-03-10 is 23 hours long in Los Angeles; P1D keeps local midnight, PT24H does not.
    start = parse_iso("2024-03-10T00:00:00-08:00")
    assert add_period(la, start, Period(days=1)) == parse_iso("2024-03-11T00:00:00-07:00")
    assert add_period(la, start, Period(hours=24)) == start + DAY
    assert add_period(la, parse_iso("2024-03-11T00:00:00-07:00"), Period(days=1), -1) == start
    # A local time in the gap moves forward.
    assert la.local_to_utc(parse_iso("2024-03-10T02:30:00Z")) == parse_iso(
        "2024-03-10T03:30:00-07:00"
    )
    # An ambiguous local time takes the earlier instant, unless a hint says otherwise.
    ambiguous = parse_iso("2024-11-03T01:30:00Z")
    assert la.local_to_utc(ambiguous) == parse_iso("2024-11-03T01:30:00-07:00")
    late = parse_iso("2024-11-03T01:45:00-08:00")
    assert la.local_to_utc(ambiguous, late) == parse_iso("2024-11-03T01:30:00-08:00")
    berlin = parse_zone("Europe/Berlin")
    assert berlin.local_to_utc(parse_iso("2024-03-31T02:30:00Z")) == parse_iso(
        "2024-03-31T03:30:00+02:00"
    )
    assert parse_zone("+05:30").offset(0) == 19_800_000
    with pytest.raises(InvalidInput):
        parse_zone("Mars/Olympus")


def test_validated_intervals_are_shared_and_bad_text_is_refused_every_time() -> None:
    from pydantic import TypeAdapter

    adapter = TypeAdapter(Interval)
    text = "2024-01-01T00:00:00.000Z/P1D"
    first, again = adapter.validate_python(text), adapter.validate_python(text)
    assert first == Interval.parse(text) and first is again
    for _ in range(2):
        with pytest.raises((ValidationError, InvalidInput)):
            adapter.validate_python("2024-01-02/2024-01-01")
