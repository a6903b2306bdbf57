"""``/status`` memory figures add up as Druid's do: used = total - free, free <= total <= max."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from common.procinfo import (
    GC_FREEZE_ENV,
    MALLOC_TUNING_ENV,
    lean_allocators,
    malloc_free_bytes,
    memory_figures,
    memory_limit_bytes,
    memory_status,
    rss_bytes,
)

MB = 1 << 20


def invariants(m: dict[str, int]) -> None:
    assert m["usedMemory"] == m["totalMemory"] - m["freeMemory"]
    assert 0 <= m["freeMemory"] <= m["totalMemory"] <= m["maxMemory"]


def test_figures_of_a_process() -> None:
    m = memory_figures(rss=200 * MB, allocator_free=30 * MB, limit=32_000 * MB)
    assert m == {
        "maxMemory": 32_000 * MB,
        "totalMemory": 200 * MB,
        "freeMemory": 30 * MB,
        "usedMemory": 170 * MB,
        "directMemory": -1,
    }


@pytest.mark.parametrize(
    ("rss", "free", "limit"),
    [
        (200 * MB, 300 * MB, 1000 * MB),  # allocator free exceeds resident (not all touched)
        (200 * MB, 0, 100 * MB),  # resident over a (shared) cgroup limit
        (0, 5, 0),  # nothing known
        (200 * MB, -1, 1000 * MB),
    ],
)
def test_figures_hold_the_invariants_on_odd_inputs(rss: int, free: int, limit: int) -> None:
    invariants(memory_figures(rss, free, limit))


def test_this_process_adds_up() -> None:
    m = memory_status()
    invariants(m)
    assert m["totalMemory"] > 0
    assert m["maxMemory"] == max(memory_limit_bytes(), m["totalMemory"])
    # The issue: freeMemory (limit - rss, 25 GB) was larger than totalMemory (rss, 207 MB).
    assert m["freeMemory"] <= rss_bytes() * 2


@pytest.mark.skipif(malloc_free_bytes() == 0, reason="not glibc >= 2.33: no mallinfo2")
def test_free_counts_what_malloc_holds_unused() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 KiB blocks are under malloc's mmap threshold: they come from (and go back to) an arena.
    blocks = [libc.malloc(64 * 1024) for _ in range(1000)]
    for b in blocks:
        ctypes.memset(b, 1, 64 * 1024)
    before = malloc_free_bytes()
    # Every other block: each freed one sits between two in use, so none is trimmed to the OS.
    for b in blocks[::2]:
        libc.free(b)
    after = malloc_free_bytes()
    try:
        assert after - before >= 20 * MB
        invariants(memory_status())
    finally:
        for b in blocks[1::2]:
            libc.free(b)


def test_lean_allocators_return_big_freed_blocks_to_the_os() -> None:
    assert lean_allocators()
    assert pa.default_memory_pool().backend_name == "system"
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = malloc_free_bytes()
    # glibc's own threshold would rise to 4 MiB at the first free, and the next blocks would
    # then be carved from the heap and stay there once freed.
    for _ in range(4):
        block = libc.malloc(4 * MB)
        ctypes.memset(block, 1, 4 * MB)
        libc.free(block)
    assert malloc_free_bytes() - before < MB


_QUERY_ALLOCATORS = """
import resource, sys
import numpy as np
from common.procinfo import query_allocators
took = query_allocators()
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(5_000_000)  # 40 MB: past glibc's own mmap threshold (at most 32 MiB)
    block.sum()
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(took, max(faults[1:]))
"""


@pytest.mark.parametrize("setting", [None, "1", "0"])
def test_query_allocators_keep_big_temporaries_in_the_heap(setting: str | None) -> None:
    # In a child process: the setting is process-wide.
    env = {k: v for k, v in os.environ.items() if k != MALLOC_TUNING_ENV}
    if setting is not None:
        env[MALLOC_TUNING_ENV] = setting
    out = subprocess.run(
        [sys.executable, "-c", _QUERY_ALLOCATORS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    took, faults = out[0] == "True", int(out[1])
    if setting == "0":
        assert not took
        assert faults > 0  # glibc maps each 40 MB block anew: its pages fault in again
    else:
        assert took
        assert faults < 20  # the freed block is reused, its pages already there


_FREEZE = """
import gc
from common.procinfo import freeze_heap
gc.unfreeze()
print(freeze_heap(), gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize(("setting", "frozen"), [(None, True), ("1", True), ("0", False)])
def test_freeze_heap_moves_start_up_objects_out_of_the_collector(
    setting: str | None, frozen: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != GC_FREEZE_ENV}
    if setting is not None:
        env[GC_FREEZE_ENV] = setting
    out = subprocess.run(
        [sys.executable, "-c", _FREEZE], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [str(frozen), str(frozen)]
