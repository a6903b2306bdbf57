"""The Kafka record supplier (Druid's ``KafkaRecordSupplier``) over aiokafka.

With ``multi_topic`` the supplier reads every topic whose whole name matches ``topic`` (the
supervisor's ``topicPattern``) and names partitions ``"<topic>:<partition>"``; otherwise it reads
the one topic and names them by number (``common.ingest.partitions``).

No consumer group and no commits: the task owns its offsets, assigns partitions by hand and
seeks, exactly as Druid's seekable-stream tasks do; the offsets it has read are committed with the
segments it publishes, never to Kafka. Offsets are Kafka offsets; "latest" is the offset the
next produced record will get (the log end offset), as Druid's ``getLatestSequenceNumber``.

``consumerProperties`` keys are Kafka's Java names; the ones listed in ``PROPERTY_MAP`` are passed
to aiokafka, group-management keys are dropped silently (the task never joins a group), and any
other key is logged and ignored. ``isolation.level`` defaults to ``read_committed`` as in Druid.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.errors import CorruptRecordException, KafkaError, OffsetOutOfRangeError

from common.errors import InvalidInput, KdruidError
from common.ingest.partitions import (
    PartitionId,
    compile_topic_pattern,
    make_partition_id,
    sorted_ids,
    topic_and_partition,
    topic_matches,
)

log = logging.getLogger(__name__)


class Record(NamedTuple):
    """One record: ``value`` is ``None`` for a tombstone (no rows, but the offset still counts)."""

    partition: PartitionId
    offset: int
    value: bytes | None


class PartitionRecords(NamedTuple):
    """Records of one partition from one poll, in offset order, as parallel lists."""

    partition: PartitionId
    offsets: list[int]
    values: list[bytes | None]

    def records(self) -> list[Record]:
        p = self.partition
        return [Record(p, o, v) for o, v in zip(self.offsets, self.values, strict=True)]


class RecordSupplierError(KdruidError):
    """The broker could not be reached or answered with an error."""

    error_code = "Kafka error"


class OffsetOutOfRange(RecordSupplierError):
    """A fetch position is outside the partition's retained offsets (Druid's
    ``OffsetOutOfRangeException``); ``offsets`` maps partition -> the offending position."""

    def __init__(self, offsets: Mapping[PartitionId, int]) -> None:
        super().__init__(f"offsets out of range: {dict(offsets)}")
        self.offsets = dict(offsets)


def _int(v: Any) -> int:
    return int(str(v).strip())


_JAAS_RE = re.compile(r'(\w+)\s*=\s*"([^"]*)"')

PROPERTY_MAP: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "bootstrap.servers": ("bootstrap_servers", lambda v: [s.strip() for s in str(v).split(",")]),
    "client.id": ("client_id", str),
    "client.rack": ("client_rack", str),
    "fetch.max.bytes": ("fetch_max_bytes", _int),
    "fetch.min.bytes": ("fetch_min_bytes", _int),
    "fetch.max.wait.ms": ("fetch_max_wait_ms", _int),
    "max.partition.fetch.bytes": ("max_partition_fetch_bytes", _int),
    "max.poll.records": ("max_poll_records", _int),
    "request.timeout.ms": ("request_timeout_ms", _int),
    "retry.backoff.ms": ("retry_backoff_ms", _int),
    "metadata.max.age.ms": ("metadata_max_age_ms", _int),
    "connections.max.idle.ms": ("connections_max_idle_ms", _int),
    "receive.buffer.bytes": ("receive_buffer_bytes", _int),
    "send.buffer.bytes": ("send_buffer_bytes", _int),
    "check.crcs": ("check_crcs", lambda v: str(v).lower() == "true"),
    "isolation.level": ("isolation_level", str),
    "security.protocol": ("security_protocol", str),
    "sasl.mechanism": ("sasl_mechanism", str),
}

# Keys that only matter to consumer groups or to Java; the task never uses a group.
_IGNORED_QUIETLY = {
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "key.deserializer",
    "value.deserializer",
}


def consumer_kwargs(props: Mapping[str, Any]) -> dict[str, Any]:
    """aiokafka ``AIOKafkaConsumer`` keyword arguments for Druid's ``consumerProperties``."""
    if not props.get("bootstrap.servers"):
        raise InvalidInput("consumerProperties must contain bootstrap.servers")
    kwargs: dict[str, Any] = {
        "group_id": None,
        "enable_auto_commit": False,
        # Out-of-range positions surface as OffsetOutOfRange; the task decides what to do.
        "auto_offset_reset": "none",
        "isolation_level": "read_committed",
    }
    for key, value in props.items():
        if key in PROPERTY_MAP:
            name, convert = PROPERTY_MAP[key]
            try:
                kwargs[name] = convert(value)
            except (TypeError, ValueError) as e:
                raise InvalidInput(f"consumerProperties.{key}: bad value {value!r}") from e
        elif key == "sasl.jaas.config":
            creds = dict(_JAAS_RE.findall(str(value)))
            if "username" in creds:
                kwargs["sasl_plain_username"] = creds["username"]
            if "password" in creds:
                kwargs["sasl_plain_password"] = creds["password"]
        elif key not in _IGNORED_QUIETLY:
            log.info("consumerProperties.%s is not supported by this consumer; ignored", key)
    if kwargs["isolation_level"] not in ("read_committed", "read_uncommitted"):
        raise InvalidInput(
            f"consumerProperties.isolation.level: {kwargs['isolation_level']!r} is not "
            "read_committed or read_uncommitted"
        )
    return kwargs


#: aiokafka's ``READ_COMMITTED`` isolation level as its fetcher stores it.
_READ_COMMITTED = 1
_FETCHER_ATTRS = ("_records", "_notify", "_create_fetch_waiter", "_wait_consume_future")
_PARTITION_RECORDS_ATTRS = (
    "_records",
    "_tp",
    "_check_crcs",
    "_isolation_level",
    "_aborted_producers",
    "_consume_aborted_up_to",
    "_contains_abort_marker",
    "next_fetch_offset",
    "_records_iterator",
)


def bulk_capable(consumer: Any) -> bool:
    """Whether ``consumer``'s fetcher has the internals ``drain_records`` and the supplier's
    bulk take rely on (aiokafka 0.14 has them); otherwise ``getmany`` is used."""
    fetcher = getattr(consumer, "_fetcher", None)
    result = getattr(aiokafka_fetcher, "FetchResult", None)
    return (
        fetcher is not None
        and result is not None
        and isinstance(getattr(fetcher, "_records", None), dict)
        and all(hasattr(fetcher, a) for a in _FETCHER_ATTRS)
        and all(hasattr(result, a) for a in ("check_assignment", "_update_position", "has_more"))
        and hasattr(getattr(consumer, "_subscription", None), "fetch_context")
    )


def drain_records(
    partition_records: Any, limit: int | None = None
) -> tuple[list[int], list[bytes | None], bool]:
    """The records of an aiokafka ``PartitionRecords`` not read yet as ``(offsets, values,
    exhausted)``: all of them, or whole record batches until at least ``limit`` records are in
    hand (``exhausted`` False: the rest stays for the next call).

    The rules are aiokafka's own iterator's (``PartitionRecords._unpack_records``): a batch
    failing its CRC raises ``CorruptRecordException`` (when ``check_crcs``); under
    ``read_committed`` the batches of aborted transactions are skipped; control batches are
    skipped; records before the fetch offset (the rest of a batch fetched from its middle) are
    skipped. Its ``next_fetch_offset`` ends one past the last batch read, as the iterator leaves
    it. What is skipped is the ``ConsumerRecord`` aiokafka builds per record (eleven fields, a
    deserializer call, a generator step): a fifth of the cost per record.
    """
    pr = partition_records
    records = pr._records
    read_committed = pr._isolation_level == _READ_COMMITTED
    check_crcs = pr._check_crcs
    offsets: list[int] = []
    values: list[bytes | None] = []
    add_offset, add_value = offsets.append, values.append
    nxt = pr.next_fetch_offset
    while records.has_next():
        batch = records.next_batch()
        if check_crcs and not batch.validate_crc():
            raise CorruptRecordException(f"Invalid CRC - {pr._tp}")
        if read_committed and batch.producer_id is not None:
            pr._consume_aborted_up_to(batch.base_offset)
            if batch.is_control_batch and pr._contains_abort_marker(batch):
                pr._aborted_producers.discard(batch.producer_id)
            if batch.is_transactional and batch.producer_id in pr._aborted_producers:
                nxt = batch.next_offset
                continue
        if batch.is_control_batch:
            nxt = batch.next_offset
            continue
        # Offsets rise within a batch, so comparing with the batch's starting point is the
        # iterator's record-by-record rule.
        for record in batch:
            offset = record.offset
            if offset >= nxt:
                add_offset(offset)
                add_value(record.value)
        nxt = batch.next_offset
        if limit is not None and len(offsets) >= limit:
            break
    pr.next_fetch_offset = nxt
    return offsets, values, not records.has_next()


def _unread(partition_records: Any) -> bool:
    """Whether aiokafka's own iterator has not started on these records (then they may be
    drained in bulk; ``drain_records`` leaves the iterator alone and its state consistent)."""
    it = getattr(partition_records, "_records_iterator", None)
    return (
        it is not None
        and inspect.isgenerator(it)
        and inspect.getgeneratorstate(it) == inspect.GEN_CREATED
        and all(hasattr(partition_records, a) for a in _PARTITION_RECORDS_ATTRS)
    )


class KafkaRecordSupplier:
    """Reads one topic (or, ``multi_topic``, the topics matching a pattern) with manual partition
    assignment. Use as ``async with``."""

    def __init__(
        self, consumer_properties: Mapping[str, Any], topic: str, multi_topic: bool = False
    ) -> None:
        self.topic = topic
        self.multi_topic = multi_topic
        self._pattern = compile_topic_pattern(topic) if multi_topic else None
        self._kwargs = consumer_kwargs(consumer_properties)
        self._consumer: AIOKafkaConsumer | None = None
        #: Whether ``poll_partitions`` takes aiokafka's fetched records in bulk (its internals
        #: are the known ones), decided when the consumer starts.
        self.bulk = False

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(**self._kwargs)
        try:
            await consumer.start()
        except KafkaError as e:
            await consumer.stop()
            raise RecordSupplierError(f"cannot connect to Kafka: {e}") from e
        except BaseException:
            # Cancelled while connecting (the task was shut down): close what was opened.
            await consumer.stop()
            raise
        self._consumer = consumer
        self.bulk = bulk_capable(consumer)
        if not self.bulk:
            log.info("aiokafka's fetcher is not the known one: records are read one by one")

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> KafkaRecordSupplier:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RecordSupplierError("record supplier is not started")
        return self._consumer

    def _tp(self, partition: PartitionId) -> TopicPartition:
        return TopicPartition(*topic_and_partition(partition, self.topic))

    def _pid(self, tp: TopicPartition) -> PartitionId:
        return make_partition_id(tp.topic, tp.partition, self.multi_topic)

    async def partitions(self, topic: str | None = None) -> list[PartitionId]:
        """Partition ids of ``topic`` (default: this supplier's), from fresh metadata. In
        multi-topic mode, those of every (non-internal) topic matching the pattern."""
        name = topic or self.topic
        try:
            # The consumer's own metadata only tracks assigned topics, so ask for all of them.
            cluster = await self.consumer._client.fetch_all_metadata()
        except KafkaError as e:
            raise RecordSupplierError(f"cannot read metadata for topic [{name}]: {e}") from e
        if self._pattern is not None and topic is None:
            found: list[PartitionId] = []
            for t in cluster.topics(exclude_internal_topics=True):
                if topic_matches(self._pattern, t):
                    found += [f"{t}:{p}" for p in cluster.partitions_for_topic(t) or ()]
            if not found:
                raise RecordSupplierError(f"No partitions found for stream [{name}]")
            return sorted_ids(found)
        ids = cluster.partitions_for_topic(name)
        if ids is None:
            raise RecordSupplierError(f"Topic [{name}] is not found")
        return sorted_ids(ids)

    def assign(self, partitions: Iterable[PartitionId]) -> None:
        """Replace the assignment (an empty one stops all fetching)."""
        self.consumer.assign([self._tp(p) for p in partitions])

    def assignment(self) -> set[PartitionId]:
        return {self._pid(tp) for tp in self.consumer.assignment()}

    def seek(self, partition: PartitionId, offset: int) -> None:
        self.consumer.seek(self._tp(partition), offset)

    async def seek_to_earliest(self, partitions: Iterable[PartitionId]) -> None:
        tps = [self._tp(p) for p in partitions]
        if tps:
            await self.consumer.seek_to_beginning(*tps)

    async def seek_to_latest(self, partitions: Iterable[PartitionId]) -> None:
        tps = [self._tp(p) for p in partitions]
        if tps:
            await self.consumer.seek_to_end(*tps)

    async def position(self, partition: PartitionId) -> int:
        """The offset of the next record ``poll`` returns for ``partition``."""
        return int(await self.consumer.position(self._tp(partition)))

    async def _getmany(self, max_wait: float, max_records: int | None) -> dict[Any, list[Any]]:
        try:
            batches: dict[Any, list[Any]] = await self.consumer.getmany(
                timeout_ms=max(0, int(max_wait * 1000)), max_records=max_records
            )
        except OffsetOutOfRangeError as e:
            bad = e.args[0] if e.args and isinstance(e.args[0], dict) else {}
            raise OffsetOutOfRange({self._pid(tp): off for tp, off in bad.items()}) from e
        except KafkaError as e:
            raise RecordSupplierError(f"poll failed on topic [{self.topic}]: {e}") from e
        return batches

    async def poll(self, max_wait: float, max_records: int | None = None) -> list[Record]:
        """Records from the assigned partitions, waiting up to ``max_wait`` seconds for any;
        per partition in offset order."""
        if not self.consumer.assignment():
            return []
        batches = await self._getmany(max_wait, max_records)
        return [
            Record(self._pid(tp), msg.offset, msg.value)
            for tp, msgs in batches.items()
            for msg in msgs
        ]

    async def poll_partitions(
        self, max_wait: float, max_records: int | None = None, step: int | None = None
    ) -> list[PartitionRecords]:
        """``poll`` as one ``(partition, offsets, values)`` per partition: no object per record
        (the records of a full-speed poll cost less this way).

        When aiokafka's fetcher is the known one (``bulk``), fetched records are decoded by
        ``drain_records`` a record batch at a time until at least ``max_records`` are in hand
        (it may overshoot by part of a batch): about 0.2 us per record on the event loop.
        Otherwise records go through ``getmany``: with ``step``, ``step`` at a time up to
        ``max_records`` while more are already fetched, yielding to the event loop in between
        (aiokafka decodes records on the loop, and one big take would hold it for tens of
        milliseconds)."""
        if not self.consumer.assignment():
            return []
        if self.bulk:
            return await self._poll_bulk(max_wait, max_records)
        offsets: dict[PartitionId, list[int]] = {}
        values: dict[PartitionId, list[bytes | None]] = {}
        remaining = max_records
        wait = max_wait
        while True:
            take = step if step is not None else remaining
            if remaining is not None and take is not None:
                take = min(take, remaining)
            batches = await self._getmany(wait, take)
            got = 0
            for tp, msgs in batches.items():
                if msgs:
                    pid = self._pid(tp)
                    offsets.setdefault(pid, []).extend([m.offset for m in msgs])
                    values.setdefault(pid, []).extend([m.value for m in msgs])
                    got += len(msgs)
            if remaining is not None:
                remaining -= got
            if not got or step is None or (take is not None and got < take) or remaining == 0:
                break
            wait = 0.0
            await asyncio.sleep(0)
        return [PartitionRecords(p, offs, values[p]) for p, offs in offsets.items()]

    async def _poll_bulk(self, max_wait: float, max_records: int | None) -> list[PartitionRecords]:
        consumer = self.consumer
        deadline = time.monotonic() + max(0.0, max_wait)
        try:
            with consumer._subscription.fetch_context():
                while True:
                    taken = self._take_fetched(max_records)
                    left = deadline - time.monotonic()
                    if taken or left <= 0:
                        break
                    waiter = consumer._fetcher._create_fetch_waiter()
                    done, _ = await asyncio.wait([waiter], timeout=left)
                    if not done:
                        waiter.cancel()
                        break
                    waiter.result()  # authorization and other fetch errors
        except OffsetOutOfRangeError as e:
            bad = e.args[0] if e.args and isinstance(e.args[0], dict) else {}
            raise OffsetOutOfRange({self._pid(tp): off for tp, off in bad.items()}) from e
        except KafkaError as e:
            raise RecordSupplierError(f"poll failed on topic [{self.topic}]: {e}") from e
        return [PartitionRecords(p, offs, vals) for p, (offs, vals) in taken.items()]

    def _take_fetched(
        self, max_records: int | None
    ) -> dict[PartitionId, tuple[list[int], list[bytes | None]]]:
        """aiokafka's ``Fetcher.fetched_records`` taking whole record batches: the consumer's
        position moves past what was taken, and a partition whose fetched records are all
        taken is fetched again at once (while the caller works on these). A fetch error is
        raised when nothing was taken before it, as there."""
        fetcher = self.consumer._fetcher
        fetched: dict[Any, Any] = fetcher._records
        out: dict[PartitionId, tuple[list[int], list[bytes | None]]] = {}
        count = 0
        for tp in list(fetched):
            res = fetched[tp]
            if type(res) is not aiokafka_fetcher.FetchResult:  # a FetchError
                if out:
                    break
                del fetched[tp]
                fetcher._notify(fetcher._wait_consume_future)
                res.check_raise()
            if not res.check_assignment(tp):  # unassigned or paused meanwhile
                del fetched[tp]
                fetcher._notify(fetcher._wait_consume_future)
                continue
            pr = res._partition_records
            limit = None if max_records is None else max_records - count
            if _unread(pr):
                try:
                    offsets, values, exhausted = drain_records(pr, limit)
                except CorruptRecordException:
                    # The position stays: the fetcher fetches these records again.
                    del fetched[tp]
                    fetcher._notify(fetcher._wait_consume_future)
                    raise
                res._update_position()
                if exhausted:
                    # The unstarted iterator and the records refer to each other: without
                    # this the fetched bytes wait for the cyclic garbage collector.
                    pr._records_iterator = None
                    res._partition_records = None
            else:
                msgs = res.getall(limit)
                offsets = [m.offset for m in msgs]
                values = [m.value for m in msgs]
            if not res.has_more():
                # All taken: the fetcher fetches this partition's next records now.
                del fetched[tp]
                fetcher._notify(fetcher._wait_consume_future)
            if offsets:
                part = out.setdefault(self._pid(tp), ([], []))
                part[0].extend(offsets)
                part[1].extend(values)
                count += len(offsets)
                if max_records is not None and count >= max_records:
                    break
        return out

    async def earliest_offsets(self, partitions: Iterable[PartitionId]) -> dict[PartitionId, int]:
        tps = [self._tp(p) for p in partitions]
        try:
            found = await self.consumer.beginning_offsets(tps) if tps else {}
        except KafkaError as e:
            raise RecordSupplierError(f"cannot list earliest offsets: {e}") from e
        return {self._pid(tp): int(off) for tp, off in found.items()}

    async def latest_offsets(self, partitions: Iterable[PartitionId]) -> dict[PartitionId, int]:
        tps = [self._tp(p) for p in partitions]
        try:
            found = await self.consumer.end_offsets(tps) if tps else {}
        except KafkaError as e:
            raise RecordSupplierError(f"cannot list latest offsets: {e}") from e
        return {self._pid(tp): int(off) for tp, off in found.items()}

    async def get_earliest_offset(self, partition: PartitionId) -> int:
        return (await self.earliest_offsets([partition]))[partition]

    async def get_latest_offset(self, partition: PartitionId) -> int:
        return (await self.latest_offsets([partition]))[partition]
