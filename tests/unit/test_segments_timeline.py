"""The versioned interval timeline, in the spirit of Druid's VersionedIntervalTimelineTest."""

from __future__ import annotations

from common.segments.intervals import ETERNITY, Interval
from common.segments.segment import DataSegment, NumberedShardSpec, TombstoneShardSpec
from common.segments.timeline import (
    PartitionChunk,
    SegmentTimeline,
    VersionedIntervalTimeline,
)

TL = VersionedIntervalTimeline[str]


def iv(text: str) -> Interval:
    a, b = text.split("/")
    return Interval.parse(f"2011-04-{a}/2011-04-{b}")


def add(t: TL, interval: str, version: str, part: int = 0, core: int = 1) -> None:
    t.add(iv(interval), version, PartitionChunk(part, core, f"{interval}@{version}#{part}"))


def view(holders: list) -> list[tuple[str, str, list[str]]]:  # type: ignore[type-arg]
    def day(ms: int) -> str:
        return Interval(ms, ms).__str__()[8:10]

    return [
        (f"{day(h.interval.start)}/{day(h.interval.end)}", h.version, h.objects) for h in holders
    ]


Q = iv("01/30")


def test_apart_and_abutting() -> None:
    t = TL()
    add(t, "01/03", "1")
    add(t, "03/05", "1")
    add(t, "10/12", "2")
    assert view(t.lookup(Q)) == [
        ("01/03", "1", ["01/03@1#0"]),
        ("03/05", "1", ["03/05@1#0"]),
        ("10/12", "2", ["10/12@2#0"]),
    ]
    assert view(t.lookup(iv("02/04"))) == [
        ("02/03", "1", ["01/03@1#0"]),
        ("03/04", "1", ["03/05@1#0"]),
    ]
    assert t.lookup(iv("06/09")) == []
    assert t.find_fully_overshadowed() == []


def test_partial_overlaps() -> None:
    t = TL()
    add(t, "01/10", "1")
    add(t, "05/15", "2")
    assert view(t.lookup(Q)) == [("01/05", "1", ["01/10@1#0"]), ("05/15", "2", ["05/15@2#0"])]
    # A lower version added later still loses where they overlap.
    add(t, "12/20", "0")
    assert view(t.lookup(Q))[-1] == ("15/20", "0", ["12/20@0#0"])
    assert t.lookup(Q)[-1].true_interval == iv("12/20")
    assert not t.is_overshadowed(iv("01/10"), "1")
    assert not t.is_overshadowed(iv("12/20"), "0")
    assert t.find_fully_overshadowed() == []


def test_nested_intervals() -> None:
    t = TL()
    add(t, "01/10", "1")
    add(t, "03/05", "2")
    assert [h[:2] for h in view(t.lookup(Q))] == [("01/03", "1"), ("03/05", "2"), ("05/10", "1")]
    t2 = TL()
    add(t2, "01/10", "2")
    add(t2, "03/05", "1")
    assert view(t2.lookup(Q)) == [("01/10", "2", ["01/10@2#0"])]
    assert t2.is_overshadowed(iv("03/05"), "1")
    assert [(h.true_interval, h.version) for h in t2.find_fully_overshadowed()] == [
        (iv("03/05"), "1")
    ]


def test_partial_partitions_and_atomic_replacement() -> None:
    t = TL()
    add(t, "01/05", "1")
    add(t, "01/05", "2", part=0, core=2)
    # v2 is missing partition 1: queries still see v1, v1 is not overshadowed.
    assert view(t.lookup(Q)) == [("01/05", "1", ["01/05@1#0"])]
    assert view(t.lookup_with_incomplete_partitions(Q)) == [("01/05", "2", ["01/05@2#0"])]
    assert not t.is_overshadowed(iv("01/05"), "1")
    assert t.find_fully_overshadowed() == []
    add(t, "01/05", "2", part=1, core=2)
    assert view(t.lookup(Q)) == [("01/05", "2", ["01/05@2#0", "01/05@2#1"])]
    assert t.is_overshadowed(iv("01/05"), "1")
    assert [h.version for h in t.find_fully_overshadowed()] == ["1"]
    # An appended partition beyond the core set is served along with it.
    add(t, "01/05", "2", part=2, core=2)
    assert len(t.lookup(Q)[0].chunks) == 3


def test_core_partitions_zero_is_complete_when_non_empty() -> None:
    t = TL()
    add(t, "01/05", "1")
    add(t, "01/05", "2", part=3, core=0)
    assert view(t.lookup(Q)) == [("01/05", "2", ["01/05@2#3"])]


def test_missing_first_partition_is_incomplete() -> None:
    t = TL()
    add(t, "01/05", "2", part=1, core=2)
    assert t.lookup(Q) == []
    assert len(t.lookup_with_incomplete_partitions(Q)) == 1


def test_equal_versions_first_added_wins() -> None:
    t = TL()
    add(t, "01/10", "1")
    add(t, "05/15", "1")
    assert view(t.lookup(Q)) == [("01/10", "1", ["01/10@1#0"]), ("10/15", "1", ["05/15@1#0"])]
    # Same interval and version: partitions of one set.
    add(t, "01/10", "1", part=1, core=1)
    assert view(t.lookup(iv("01/02")))[0][2] == ["01/10@1#0", "01/10@1#1"]


def test_removal_re_exposes_older_versions() -> None:
    t = TL()
    add(t, "01/10", "1")
    add(t, "01/10", "2", part=0, core=2)
    add(t, "01/10", "2", part=1, core=2)
    add(t, "03/04", "3")
    assert [h[:2] for h in view(t.lookup(Q))] == [("01/03", "2"), ("03/04", "3"), ("04/10", "2")]
    assert t.remove(iv("01/10"), "2", 1) == "01/10@2#1"
    assert [h[:2] for h in view(t.lookup(Q))] == [("01/03", "1"), ("03/04", "3"), ("04/10", "1")]
    assert t.remove(iv("01/10"), "2", 1) is None
    assert t.remove(iv("01/10"), "9", 0) is None
    assert t.remove(iv("01/10"), "2", 0) == "01/10@2#0"
    assert t.remove(iv("03/04"), "3", 0) == "03/04@3#0"
    assert view(t.lookup(Q)) == [("01/10", "1", ["01/10@1#0"])]
    assert t.remove(iv("01/10"), "1", 0) is not None
    assert t.is_empty() and t.lookup(Q) == []


def test_overshadowed_sets() -> None:
    t = TL()
    add(t, "01/03", "1")
    add(t, "03/05", "1")
    add(t, "01/05", "2")  # covers both v1 entries
    add(t, "05/08", "1")
    add(t, "06/07", "3")  # covers only part of 05/08
    add(t, "08/09", "1")
    add(t, "08/09", "4", part=0, core=2)  # incomplete: overshadows nothing
    add(t, "08/09", "0")  # below v1 there: hidden everywhere
    got = sorted((str(h.true_interval)[8:10], h.version) for h in t.find_fully_overshadowed())
    assert got == [("01", "1"), ("03", "1"), ("08", "0")]
    assert t.is_overshadowed(iv("02/04"), "1")
    assert not t.is_overshadowed(iv("02/06"), "1")  # 05/06 has only v1
    assert not t.is_overshadowed(iv("01/05"), "2")  # equal version does not overshadow
    assert t.is_overshadowed(iv("06/07"), "2")
    assert not t.is_overshadowed(iv("20/21"), "0")  # nothing there at all


def seg(
    interval: str, version: str, part: int = 0, parts: int = 1, tomb: bool = False
) -> DataSegment:
    spec = TombstoneShardSpec() if tomb else NumberedShardSpec(partition_num=part, partitions=parts)
    return DataSegment(data_source="ds", interval=iv(interval), version=version, shard_spec=spec)


def test_segment_timeline_and_tombstones() -> None:
    old = [seg("01/03", "v1"), seg("03/05", "v1")]
    tomb = seg("02/04", "v2", tomb=True)
    t = SegmentTimeline.of([*old, tomb])
    holders = t.lookup(Q)
    assert [(h.version, h.objects) for h in holders] == [
        ("v1", [old[0]]),
        ("v2", [tomb]),
        ("v1", [old[1]]),
    ]
    skipped = t.lookup(Q, skip_objects_with_no_data=True)
    assert [(str(h.interval)[8:10], h.version) for h in skipped] == [("01", "v1"), ("04", "v1")]
    assert not t.is_segment_overshadowed(old[0])
    full = seg("01/05", "v3", part=0, parts=2)
    t.add_segment(full)
    assert not t.is_segment_overshadowed(old[0])
    t.add_segment(seg("01/05", "v3", part=1, parts=2))
    assert sorted(s.version for s in t.overshadowed_segments()) == ["v1", "v1", "v2"]
    assert t.is_segment_overshadowed(tomb)
    assert t.remove_segment(full) == full
    assert t.overshadowed_segments() == []
    assert len(list(t.iter_all())) == 4
    assert t.lookup(ETERNITY)[0].interval == iv("01/02")
