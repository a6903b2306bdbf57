"""The historical's segment cache: layout, location choice, space accounting, start-up scan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.config import SegmentCacheLocation
from common.segments.deep_storage import DeepStorage, segment_dir
from common.segments.errors import DeepStorageError, SegmentFormatError
from common.segments.format import open_segment
from common.segments.segment import DataSegment
from services.historical.cache import (
    INFO_FILE,
    SEGMENT_FILE,
    TMP_DIR,
    Location,
    NoCacheSpace,
    SegmentCache,
    choose_location,
)
from tests.support import segments


def make_segment(tmp: Path, storage: DeepStorage, day: int = 0, rows: int = 50) -> DataSegment:
    return segments.make_segment(tmp, day, rows=rows, storage=storage)


@pytest.fixture
def storage(tmp_path: Path) -> DeepStorage:
    return DeepStorage("local", storage_directory=str(tmp_path / "deep"))


def cache_at(tmp_path: Path, storage: DeepStorage, *sizes: int) -> SegmentCache:
    locs = [
        SegmentCacheLocation(path=str(tmp_path / f"cache{i}"), max_size=s)
        for i, s in enumerate(sizes)
    ]
    return SegmentCache(locs, storage)


def test_choose_location_picks_most_free_space() -> None:
    a = Location(Path("/a"), max_size=100, used=50)
    b = Location(Path("/b"), max_size=100, used=10, reserved=20)
    assert choose_location([a, b], 60) is b
    assert choose_location([a, b], 71) is None
    assert choose_location([], 1) is None


def test_load_writes_ipc_and_info_in_druid_layout(tmp_path: Path, storage: DeepStorage) -> None:
    seg = make_segment(tmp_path, storage)
    cache = cache_at(tmp_path, storage, 10_000_000)
    entry = cache.load(seg)
    assert entry.path == (tmp_path / "cache0" / segment_dir(seg)).absolute()
    assert sorted(p.name for p in entry.path.iterdir()) == [SEGMENT_FILE, INFO_FILE]
    assert DataSegment.from_json((entry.path / INFO_FILE).read_bytes()) == seg
    with open_segment(entry.file) as mapped:
        assert mapped.table.num_rows == 50
    assert cache.used == sum(p.stat().st_size for p in entry.path.iterdir())
    assert not any((tmp_path / "cache0" / TMP_DIR).iterdir())
    assert cache.load(seg) == entry  # already cached: no second download


def test_load_goes_to_the_emptier_location(tmp_path: Path, storage: DeepStorage) -> None:
    cache = cache_at(tmp_path, storage, 10_000_000, 10_000_000)
    first = cache.load(make_segment(tmp_path, storage, 0))
    second = cache.load(make_segment(tmp_path, storage, 1))
    assert {first.path.parts[-5], second.path.parts[-5]} == {"cache0", "cache1"}


def test_full_cache_fails_with_no_space_and_leaves_nothing(
    tmp_path: Path, storage: DeepStorage
) -> None:
    seg = make_segment(tmp_path, storage)
    # Room for the Parquet file but not for the (bigger) uncompressed IPC file.
    cache = cache_at(tmp_path, storage, seg.size + 1)
    with pytest.raises(NoCacheSpace, match="no space"):
        cache.load(seg)
    tiny = cache_at(tmp_path / "t", storage, 10)
    with pytest.raises(NoCacheSpace, match="no space"):
        tiny.load(seg)
    for c in (cache, tiny):
        assert c.used == 0 and c.locations[0].reserved == 0
        assert [p.name for p in c.locations[0].path.iterdir()] in ([], [TMP_DIR])


def test_missing_and_corrupt_files_fail_cleanly(tmp_path: Path, storage: DeepStorage) -> None:
    seg = make_segment(tmp_path, storage)
    cache = cache_at(tmp_path, storage, 10_000_000)
    Path(seg.load_spec["path"]).write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SegmentFormatError):
        cache.load(seg)
    Path(seg.load_spec["path"]).unlink()
    with pytest.raises(DeepStorageError, match="not found"):
        cache.load(seg)
    assert cache.used == 0 and cache.locations[0].reserved == 0
    assert not list((tmp_path / "cache0").glob("wiki*"))


def test_scan_finds_complete_entries_and_removes_the_rest(
    tmp_path: Path, storage: DeepStorage
) -> None:
    cache = cache_at(tmp_path, storage, 10_000_000)
    good = cache.load(make_segment(tmp_path, storage, 0))
    half = cache.load(make_segment(tmp_path, storage, 1))
    (half.path / INFO_FILE).unlink()  # data without its description
    bad = cache.load(make_segment(tmp_path, storage, 2))
    (bad.path / INFO_FILE).write_text("{not json")
    moved = cache.load(make_segment(tmp_path, storage, 3))
    info = json.loads((moved.path / INFO_FILE).read_text())
    info["version"] = "other"  # the description names another directory
    (moved.path / INFO_FILE).write_text(json.dumps(info))
    (tmp_path / "cache0" / TMP_DIR / "abc").mkdir(parents=True)  # an interrupted download

    again = cache_at(tmp_path, storage, 10_000_000)
    found = again.scan()
    assert [e.segment for e in found] == [good.segment]
    assert again.used == cache.locations[0].entries[good.segment.id][0]
    for gone in (half, bad, moved):
        assert not gone.path.exists()
    assert not (tmp_path / "cache0" / TMP_DIR).exists()


def test_remove_releases_space_and_prunes_dirs(tmp_path: Path, storage: DeepStorage) -> None:
    cache = cache_at(tmp_path, storage, 10_000_000)
    seg = make_segment(tmp_path, storage)
    cache.load(seg)
    cache.remove(seg.id)
    assert cache.used == 0 and cache.cached(seg) is None
    assert [p.name for p in (tmp_path / "cache0").iterdir()] == [TMP_DIR]


def test_zero_max_size_means_the_disk(tmp_path: Path, storage: DeepStorage) -> None:
    cache = cache_at(tmp_path, storage, 0)
    assert cache.max_size > 0
