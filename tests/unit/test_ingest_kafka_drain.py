"""``drain_records`` against aiokafka's own record iterator on the same fetched bytes.

Each case builds a fetch response's record set with aiokafka's batch builder (plain batches,
transactional ones, commit and abort markers, a batch fetched from its middle, a corrupted one)
and checks that the bulk decoder yields exactly the offsets and values aiokafka's
``PartitionRecords`` yields, and leaves the same next fetch offset.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition

from common.ingest.kafka import _unread, drain_records

TP = TopicPartition("t", 0)
READ_UNCOMMITTED, READ_COMMITTED = 0, 1
_CONTROL_BIT = 0x20
_ATTRIBUTES_AT, _CRC_AT = 21, 17


def batch(
    base: int,
    values: list[bytes | None],
    producer: int = -1,
    transactional: bool = False,
    skip: set[int] | None = None,
) -> bytes:
    """A record batch at ``base``; offsets in ``skip`` are left out (a compacted log)."""
    builder = DefaultRecordBatchBuilder(
        2, 0, int(transactional), producer, 0 if producer >= 0 else -1, -1, 1 << 20
    )
    for delta, value in enumerate(values):
        if skip and base + delta in skip:
            continue
        assert builder.append(delta, 1_700_000_000_000, None, value, []) is not None
    raw = builder.build()
    struct.pack_into(">q", raw, 0, base)
    return bytes(raw)


def marker(base: int, producer: int, commit: bool) -> bytes:
    """A control batch holding a commit or abort marker for ``producer``."""
    builder = DefaultRecordBatchBuilder(2, 0, 1, producer, 0, -1, 1 << 20)
    builder.append(0, 1_700_000_000_000, struct.pack(">HH", 0, int(commit)), b"\0" * 6, [])
    raw = builder.build()
    struct.pack_into(">q", raw, 0, base)
    (attributes,) = struct.unpack_from(">h", raw, _ATTRIBUTES_AT)
    struct.pack_into(">h", raw, _ATTRIBUTES_AT, attributes | _CONTROL_BIT)
    struct.pack_into(">I", raw, _CRC_AT, calc_crc32c(bytes(raw[_ATTRIBUTES_AT:])))
    return bytes(raw)


def partition_records(
    data: bytes,
    fetch_offset: int,
    isolation: int = READ_COMMITTED,
    aborted: list[tuple[int, int]] | None = None,
    check_crcs: bool = True,
) -> Any:
    return PartitionRecords(
        TP, MemoryRecords(data), aborted, fetch_offset, None, None, check_crcs, isolation
    )


def aiokafka_reads(data: bytes, fetch_offset: int, **kw: Any) -> tuple[list[Any], int]:
    pr = partition_records(data, fetch_offset, **kw)
    got = [(m.offset, m.value) for m in pr]
    return got, pr.next_fetch_offset


def bulk_reads(data: bytes, fetch_offset: int, limit: int | None = None, **kw: Any) -> Any:
    pr = partition_records(data, fetch_offset, **kw)
    assert _unread(pr)
    got: list[Any] = []
    while True:
        offsets, values, exhausted = drain_records(pr, limit)
        got += zip(offsets, values, strict=True)
        if exhausted:
            return got, pr.next_fetch_offset


CASES: dict[str, tuple[bytes, int, dict[str, Any]]] = {
    "plain batches": (batch(0, [b"a", b"b", b"c"]) + batch(3, [b"d", None, b""]), 0, {}),
    "fetched from the middle of a batch": (batch(10, [b"a", b"b", b"c", b"d"]), 12, {}),
    "compacted offsets": (batch(0, [b"a", b"b", b"c", b"d"], skip={1, 2}), 0, {}),
    "committed transaction": (
        batch(0, [b"a", b"b"], producer=7, transactional=True) + marker(2, 7, commit=True),
        0,
        {"aborted": []},
    ),
    "aborted transaction": (
        batch(0, [b"a"])
        + batch(1, [b"x", b"y"], producer=7, transactional=True)
        + marker(3, 7, commit=False)
        + batch(4, [b"b"], producer=8, transactional=True)
        + marker(5, 8, commit=True),
        0,
        {"aborted": [(7, 1)]},
    ),
    "aborted transaction read uncommitted": (
        batch(1, [b"x", b"y"], producer=7, transactional=True) + marker(3, 7, commit=False),
        1,
        {"aborted": [(7, 1)], "isolation": READ_UNCOMMITTED},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("limit", [None, 1, 2])
def test_bulk_reads_what_aiokafka_reads(case: str, limit: int | None) -> None:
    data, fetch_offset, kw = CASES[case]
    want, want_next = aiokafka_reads(data, fetch_offset, **kw)
    got, got_next = bulk_reads(data, fetch_offset, limit, **kw)
    assert got == want
    assert got_next == want_next
    assert want  # every case yields records


def test_limit_stops_between_batches() -> None:
    data = batch(0, [b"a", b"b", b"c"]) + batch(3, [b"d", b"e"]) + batch(5, [b"f"])
    pr = partition_records(data, 0)
    offsets, _, exhausted = drain_records(pr, 2)
    assert offsets == [0, 1, 2] and not exhausted and pr.next_fetch_offset == 3
    offsets, _, exhausted = drain_records(pr, 2)
    assert offsets == [3, 4] and not exhausted and pr.next_fetch_offset == 5
    offsets, values, exhausted = drain_records(pr, 2)
    assert (offsets, values, exhausted, pr.next_fetch_offset) == ([5], [b"f"], True, 6)


def test_a_corrupt_batch_raises_as_aiokafka_does() -> None:
    good = batch(0, [b"a"])
    bad = bytearray(batch(1, [b"b", b"cc"]))
    at = bad.rindex(b"cc")
    bad[at : at + 2] = b"CC"  # the bytes still parse; only the CRC tells
    data = good + bytes(bad)
    with pytest.raises(CorruptRecordException):
        aiokafka_reads(data, 0)
    with pytest.raises(CorruptRecordException):
        bulk_reads(data, 0)
    # Without CRC checks both read the damaged bytes alike.
    unchecked = bulk_reads(data, 0, check_crcs=False)
    assert unchecked == aiokafka_reads(data, 0, check_crcs=False)
    assert unchecked[0] == [(0, b"a"), (1, b"b"), (2, b"CC")]


def test_started_iterator_is_not_drained_in_bulk() -> None:
    pr = partition_records(batch(0, [b"a", b"b"]), 0)
    assert _unread(pr)
    next(pr)
    assert not _unread(pr)
