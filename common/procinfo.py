"""Process figures read from /proc, cgroups and the C allocator: ``/status`` memory, and RSS for
benchmarks.

Druid's ``/status`` ``memory`` object holds the JVM heap: ``maxMemory`` (the most the heap may
grow to, ``-Xmx``), ``totalMemory`` (heap committed from the OS now), ``freeMemory`` (committed
but unused), ``usedMemory`` (= total - free) and ``directMemory`` (the off-heap limit,
``-XX:MaxDirectMemorySize``; -1 when the runtime cannot tell). A Python process has no heap of its
own, so the same names mean, for the whole process:

* ``maxMemory``: the most it may grow to: the least of the cgroup memory limit, the machine's
  memory (``MemTotal``) and ``RLIMIT_AS``; never below ``totalMemory``.
* ``totalMemory``: what it holds from the OS now: its resident set size (``VmRSS``).
* ``freeMemory``: held but unused: the free bytes in glibc malloc's arenas (``mallinfo2``
  ``fordblks``), at most ``totalMemory``; 0 where that is unknown (not glibc, or older than 2.33).
  A lower bound: free room inside CPython's small-object arenas and Arrow's jemalloc pool is not
  counted (it shows as used).
* ``usedMemory``: ``totalMemory - freeMemory``.
* ``directMemory``: -1, as Druid answers when the runtime cannot tell: a Python process has no
  off-heap limit (Arrow buffers are part of ``totalMemory``).

So ``usedMemory == totalMemory - freeMemory`` and ``0 <= freeMemory <= totalMemory <= maxMemory``
hold, as they do in Druid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

#: Druid's ``directMemory`` when the runtime cannot tell.
UNKNOWN_DIRECT_MEMORY = -1


def _read_kb(path: str, field: str) -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), in bytes; 0 if unknown."""
    return _read_kb(f"/proc/{pid or os.getpid()}/status", "VmRSS") or 0


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def memory_limit_bytes() -> int:
    """The least of the cgroup memory limit, the machine's memory and RLIMIT_AS; 0 if unknown."""
    limits = [_cgroup_limit(), _read_kb("/proc/meminfo", "MemTotal")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    known = [n for n in limits if n]
    return min(known) if known else 0


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _mallinfo2() -> Callable[[], _Mallinfo2] | None:
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
    except (OSError, AttributeError, TypeError):
        return None
    fn.restype = _Mallinfo2
    fn.argtypes = []
    return cast(Callable[[], _Mallinfo2], fn)


def malloc_free_bytes() -> int:
    """Bytes glibc's malloc holds free in its arenas (``mallinfo2().fordblks``); 0 if unknown."""
    fn = _mallinfo2()
    if fn is None:
        return 0
    return int(fn().fordblks)


def memory_figures(rss: int, allocator_free: int, limit: int) -> dict[str, int]:
    """Druid's ``memory`` object from a process's RSS, its allocator's free bytes and its limit."""
    total = max(0, rss)
    free = min(max(0, allocator_free), total)
    return {
        "maxMemory": max(limit, total),
        "totalMemory": total,
        "freeMemory": free,
        "usedMemory": total - free,
        "directMemory": UNKNOWN_DIRECT_MEMORY,
    }


def memory_status() -> dict[str, int]:
    """Druid's ``/status`` memory block, for this process (see the module docstring)."""
    return memory_figures(rss_bytes(), malloc_free_bytes(), memory_limit_bytes())


#: glibc ``mallopt``'s ``M_MMAP_THRESHOLD``: blocks from this size up are mapped on their own.
_M_MMAP_THRESHOLD = -3
#: glibc's own starting threshold, kept fixed by ``lean_allocators``.
LEAN_MMAP_THRESHOLD = 128 * 1024


@functools.cache
def lean_allocators() -> bool:
    """Make freed memory go back to the OS promptly, for a process whose big buffers come and
    go at a high rate (a peon reading Kafka: fetch responses, per-poll Arrow tables).

    Arrow allocates through malloc (its system pool) instead of its default mimalloc, whose
    per-thread heaps kept ~100 MB of freed buffers at full ingest speed; and glibc maps every
    block of ``LEAN_MMAP_THRESHOLD`` or more on its own (``mallopt``), so freeing one unmaps
    it. Without a fixed threshold glibc raises it to the biggest block freed so far, after
    which megabyte buffers are carved from the heap and fragment it (another ~70 MB held).
    Process-wide and idempotent; returns whether glibc took the malloc setting."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, LEAN_MMAP_THRESHOLD))


#: glibc ``mallopt``'s ``M_TRIM_THRESHOLD``: free memory at the heap's top kept up to this size.
_M_TRIM_THRESHOLD = -1
#: ``query_allocators``: blocks below this come from the heap (a 64 MiB column: 8 M rows).
QUERY_MMAP_THRESHOLD = 64 * 1024 * 1024
#: ``query_allocators``: free heap kept for the next query before it is given back.
QUERY_TRIM_THRESHOLD = 128 * 1024 * 1024
#: ``KDRUID_MALLOC_TUNING=0`` leaves glibc's defaults (``query_allocators`` does nothing).
MALLOC_TUNING_ENV = "KDRUID_MALLOC_TUNING"


@functools.cache
def query_allocators() -> bool:
    """Keep a query's big temporaries (numpy masks, gathered columns, expression values, tens
    of MB per segment at millions of rows) in the heap from one query to the next, for a
    process that runs queries over segments (a historical).

    With glibc's defaults each block of more than its (rising, at most 32 MiB) mmap threshold
    is mapped on its own and unmapped when freed, and free heap past the trim threshold is
    given back: every query then faults its temporaries in again, page by page (measured at
    10 M rows: ~5,700 page faults and ~55 ms of system CPU per groupBy over an expression
    virtual column, none with this setting). Fixed thresholds (``QUERY_MMAP_THRESHOLD``,
    ``QUERY_TRIM_THRESHOLD``) keep them: the process holds up to the trim threshold of free
    heap per malloc arena between queries. ``KDRUID_MALLOC_TUNING=0`` turns this off.
    Process-wide and idempotent; returns whether glibc took both settings. (A peon does the
    opposite, ``lean_allocators``: its RSS matters more than its queries' page faults.)"""
    if os.environ.get(MALLOC_TUNING_ENV, "1").strip() == "0":
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    mapped = bool(mallopt(_M_MMAP_THRESHOLD, QUERY_MMAP_THRESHOLD))
    return bool(mallopt(_M_TRIM_THRESHOLD, QUERY_TRIM_THRESHOLD)) and mapped


def _mallopt() -> Any:
    """glibc's ``mallopt`` through ctypes, None where there is none (another C library)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.restype = ctypes.c_int
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return mallopt


#: ``KDRUID_GC_FREEZE=0`` leaves every object to the cyclic garbage collector (``freeze_heap``
#: does nothing).
GC_FREEZE_ENV = "KDRUID_GC_FREEZE"


def freeze_heap() -> bool:
    """Move every object alive now (the imported modules, the app, the started service) out of
    the cyclic garbage collector's reach, once a service has started: a full (generation 2)
    collection then walks only the objects made since. Without it, each full collection walks
    the whole start-up heap, hundreds of thousands of objects: measured at ~80 ms on a broker,
    paid by whichever request happened to allocate past the threshold (every other SQL JOIN
    with a 10,000-row inline side, and a long-poll fan-out's tail). Those objects live as long
    as the process anyway. ``KDRUID_GC_FREEZE=0`` turns this off; returns whether it froze."""
    if os.environ.get(GC_FREEZE_ENV, "1").strip() == "0":
        return False
    gc.freeze()
    return True
