"""Process figures read from /proc and cgroups: memory for ``/status`` and RSS for benchmarks."""

from __future__ import annotations

import os
from pathlib import Path


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


def memory_limit_bytes() -> int:
    """The cgroup memory limit if there is one, else the machine's total memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return _read_kb("/proc/meminfo", "MemTotal") or 0


def arrow_allocated_bytes() -> int:
    """Bytes held by Arrow's default memory pool (the analogue of the JVM's direct memory)."""
    import pyarrow as pa

    return int(pa.total_allocated_bytes())


def memory_status() -> dict[str, int]:
    """Druid's ``/status`` memory block, from this process's point of view."""
    limit = memory_limit_bytes()
    used = rss_bytes()
    return {
        "maxMemory": limit,
        "totalMemory": used,
        "freeMemory": max(0, limit - used),
        "usedMemory": used,
        "directMemory": arrow_allocated_bytes(),
    }
