"""The historical's segment cache: segments on local disk under the configured locations.

Layout, one directory per segment, as deep storage's (``segment_dir``)::

    <location>/<dataSource>/<start>_<end>/<version>/<partitionNum>/
        index.arrow     uncompressed Arrow IPC, converted from the deep-storage Parquet
        segment.json    the DataSegment JSON (Druid's ``info_dir`` entry, kept next to the data)

A segment is built in ``<location>/.tmp/<random>/`` and renamed into place only once both files
are complete, so a crash never leaves a half-written segment where the start-up scan looks; the
scan deletes ``.tmp`` and any entry that does not open.

Each location has a byte budget (``maxSize``; 0 = the size of its disk). Space is reserved before
a download and settled to the bytes really on disk after conversion; a segment goes to the
location with the most free space. The I/O methods block: callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from common.config import SegmentCacheLocation
from common.errors import KdruidError
from common.segments.deep_storage import DeepStorage, segment_dir
from common.segments.errors import SegmentFormatError
from common.segments.format import parquet_to_ipc
from common.segments.segment import DataSegment, SegmentId

log = logging.getLogger(__name__)

SEGMENT_FILE = "index.arrow"
INFO_FILE = "segment.json"
TMP_DIR = ".tmp"


class NoCacheSpace(KdruidError):
    """No cache location has room for a segment."""

    error_code = "Segment cache full"
    error_class = "org.apache.druid.segment.loading.SegmentLoadingException"


@dataclass
class Location:
    """One cache location and its byte accounting (``used`` on disk + ``reserved`` in flight)."""

    path: Path
    max_size: int
    used: int = 0
    reserved: int = 0
    #: segment id -> (bytes on disk, directory)
    entries: dict[SegmentId, tuple[int, Path]] = field(default_factory=dict)

    @property
    def free(self) -> int:
        return self.max_size - self.used - self.reserved


def choose_location(locations: Sequence[Location], size: int) -> Location | None:
    """The location with the most free space, if it has room for ``size`` bytes."""
    best = max(locations, key=lambda loc: loc.free, default=None)
    if best is None or best.free < size:
        return None
    return best


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


@dataclass(frozen=True)
class CachedSegment:
    segment: DataSegment
    path: Path  # the segment's directory

    @property
    def file(self) -> Path:
        return self.path / SEGMENT_FILE


class SegmentCache:
    """Segment directories under the cache locations; thread-safe accounting."""

    def __init__(self, locations: Sequence[SegmentCacheLocation], storage: DeepStorage) -> None:
        if not locations:
            raise KdruidError("druid.segmentCache.locations is empty")
        self.storage = storage
        self.locations: list[Location] = []
        for cfg in locations:
            path = Path(cfg.path).absolute()
            path.mkdir(parents=True, exist_ok=True)
            size = cfg.max_size or shutil.disk_usage(path).total
            self.locations.append(Location(path, size))
        self._lock = threading.Lock()

    @property
    def max_size(self) -> int:
        return sum(loc.max_size for loc in self.locations)

    @property
    def used(self) -> int:
        with self._lock:
            return sum(loc.used for loc in self.locations)

    def location_of(self, segment_id: SegmentId) -> Location | None:
        with self._lock:
            return next((loc for loc in self.locations if segment_id in loc.entries), None)

    # ---- start-up ------------------------------------------------------------------------

    def scan(self) -> list[CachedSegment]:
        """What a previous run left in the cache: complete entries only, the rest deleted."""
        found: list[CachedSegment] = []
        for loc in self.locations:
            shutil.rmtree(loc.path / TMP_DIR, ignore_errors=True)
            for info in sorted(loc.path.glob(f"*/*/*/*/{INFO_FILE}")):
                entry = self._read_entry(loc, info.parent)
                if entry is None:
                    log.warning("removing unusable segment cache entry %s", info.parent)
                    self._remove_dir(loc, info.parent)
                    continue
                with self._lock:
                    size = _dir_bytes(entry.path)
                    loc.entries[entry.segment.id] = (size, entry.path)
                    loc.used += size
                found.append(entry)
            self._remove_orphans(loc)
        return found

    def _read_entry(self, loc: Location, directory: Path) -> CachedSegment | None:
        try:
            segment = DataSegment.from_json((directory / INFO_FILE).read_bytes())
            expected = loc.path / segment_dir(segment)
        except (OSError, ValueError, KdruidError) as exc:
            log.warning("bad segment info in %s: %s", directory, exc)
            return None
        if expected != directory or not (directory / SEGMENT_FILE).is_file():
            return None
        if segment.id in loc.entries:
            return None
        return CachedSegment(segment, directory)

    def _remove_orphans(self, loc: Location) -> None:
        """Delete partition directories with no info file (data without its description)."""
        for d in loc.path.glob("*/*/*/*"):
            if d.is_dir() and not (d / INFO_FILE).is_file():
                self._remove_dir(loc, d)

    # ---- load and drop -------------------------------------------------------------------

    def cached(self, segment: DataSegment) -> CachedSegment | None:
        """The segment's entry if this cache holds it already."""
        with self._lock:
            for loc in self.locations:
                if segment.id in loc.entries:
                    return CachedSegment(segment, loc.entries[segment.id][1])
        return None

    def load(self, segment: DataSegment) -> CachedSegment:
        """Download and convert a segment into the cache (blocking).

        Raises ``NoCacheSpace``, ``DeepStorageError``, ``SegmentFormatError`` or ``InvalidInput``
        (bad load spec); nothing is left behind on failure.
        """
        existing = self.cached(segment)
        if existing is not None:
            return existing
        rel = segment_dir(segment)
        with self._lock:
            loc = choose_location(self.locations, segment.size)
            if loc is None:
                raise NoCacheSpace(self._no_space_message(segment, segment.size))
            loc.reserved += segment.size
        tmp = loc.path / TMP_DIR / uuid.uuid4().hex
        target = loc.path / rel
        settled = False
        try:
            tmp.mkdir(parents=True)
            parquet = tmp / "download.parquet"
            self.storage.pull(segment.load_spec, parquet)
            parquet_to_ipc(parquet, tmp / SEGMENT_FILE)
            parquet.unlink()
            (tmp / INFO_FILE).write_bytes(orjson.dumps(segment.to_json()))
            size = _dir_bytes(tmp)
            with self._lock:
                loc.reserved -= segment.size
                settled = True
                if loc.free < size:
                    raise NoCacheSpace(self._no_space_message(segment, size, loc))
                loc.used += size
                loc.entries[segment.id] = (size, target)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():  # a stale leftover of an entry the scan rejected
                    shutil.rmtree(target)
                os.replace(tmp, target)
            except OSError:
                with self._lock:
                    loc.used -= loc.entries.pop(segment.id, (0, target))[0]
                raise
            return CachedSegment(segment, target)
        except OSError as exc:
            raise SegmentFormatError(f"cannot write {segment.id} to the cache: {exc}") from exc
        finally:
            if not settled:
                with self._lock:
                    loc.reserved -= segment.size
            shutil.rmtree(tmp, ignore_errors=True)

    def remove(self, segment_id: SegmentId) -> None:
        """Delete a cached segment's directory and release its bytes (blocking)."""
        for loc in self.locations:
            with self._lock:
                entry = loc.entries.pop(segment_id, None)
                if entry is None:
                    continue
                loc.used -= entry[0]
            self._remove_dir(loc, entry[1])

    def _remove_dir(self, loc: Location, directory: Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        d = directory.parent
        while d != loc.path and loc.path in d.parents:
            try:
                d.rmdir()
            except OSError:
                return
            d = d.parent

    def _no_space_message(
        self, segment: DataSegment, size: int, loc: Location | None = None
    ) -> str:
        where = self.locations if loc is None else [loc]
        free = ", ".join(f"{x.path}: {max(x.free, 0)} bytes free" for x in where)
        return f"no space in the segment cache for {segment.id} ({size} bytes); {free}"
