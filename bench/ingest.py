"""Streaming ingestion throughput, against a baseline measured in the same run.

(a) baseline: a bare aiokafka consumer reads the M pre-produced rows from the local broker and
    decodes each with orjson: rows/s;
(b) kdruid: a Kafka supervisor with one task on one peon (every role a real process) ingests the
    same topic until all M rows are queryable through the broker: rows/s, from the supervisor
    POST to the broker answering count = M.
Prints both, the ratio (b)/(a), the p50/p99 of the peon's ``/status`` during (b) (the event loop
must stay responsive at full speed) and the peon's peak RSS. Targets: ratio >= 0.4, >= 50k rows/s,
``/status`` p99 < 100 ms.

    .venv/bin/python bench/ingest.py --rows 500000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.procinfo import rss_bytes  # noqa: E402
from services.localkafka import start_local_kafka  # noqa: E402
from tests.support.cluster import FAST_DISCOVERY  # noqa: E402
from tests.support.procs import ProcCluster  # noqa: E402

TOPIC = "wiki"
T0 = 1_704_067_200_000
PAGES = [f"page-{i}" for i in range(200)]
CHANNELS = ["#en", "#de", "#fr", "#ja", "#es"]


def edit(i: int) -> bytes:
    return orjson.dumps(
        {
            "timestamp": T0 + i,  # one hour holds 3.6 M rows: one segment per hour
            "channel": CHANNELS[i % 5],
            "page": PAGES[i % 200],
            "user": f"user{i % 1000}",
            "added": i % 500,
            "deleted": i % 70,
        }
    )


async def produce(bootstrap: str, rows: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=50, max_batch_size=1 << 20
    )
    await producer.start()
    try:
        batch = []
        for i in range(rows):
            batch.append(producer.send(TOPIC, edit(i), partition=0))
            if len(batch) == 5000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
        await producer.flush()
    finally:
        await producer.stop()


async def baseline(bootstrap: str, rows: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    try:
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen = 0
        started = time.perf_counter()
        while seen < rows:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=50_000)
            for records in batches.values():
                for r in records:
                    orjson.loads(r.value)
                seen += sum(len(v) for v in batches.values())
        return rows / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def spec(bootstrap: str) -> dict[str, object]:
    return {
        "type": "kafka",
        "spec": {
            "dataSchema": {
                "dataSource": "wiki",
                "timestampSpec": {"column": "timestamp", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["channel", "page", "user"]},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                    {"type": "longSum", "name": "deleted", "fieldName": "deleted"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "hour",
                    "queryGranularity": "none",
                    "rollup": False,
                },
            },
            "ioConfig": {
                "topic": TOPIC,
                "inputFormat": {"type": "json"},
                "consumerProperties": {"bootstrap.servers": bootstrap},
                "taskCount": 1,
                "replicas": 1,
                "taskDuration": "PT1H",
                "startDelay": "PT0S",
                "period": "PT1S",
                "useEarliestOffset": True,
            },
            "tuningConfig": {"type": "kafka"},
        },
    }


COUNT = {
    "queryType": "timeseries",
    "dataSource": "wiki",
    "intervals": ["2024-01-01/2024-01-02"],
    "granularity": "all",
    "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}],
}


async def through_kdruid(
    bootstrap: str, rows: int, workdir: Path, profile: str | None = None
) -> dict[str, float]:
    props = {
        "druid.metadata.storage.connector.connectURI": str(workdir / "metadata.db"),
        "druid.storage.storageDirectory": str(workdir / "deep"),
        "druid.indexer.task.baseTaskDir": str(workdir / "task"),
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(workdir / "cache"), "maxSize": 10**10}]
        ),
        **FAST_DISCOVERY,
    }
    procs = ProcCluster(workdir, props)
    for role in ("coordinator", "overlord", "historical", "broker", "peon"):
        procs.add(role)
        procs.start(role)
    try:
        for name in procs.procs:
            await asyncio.to_thread(procs.wait_healthy, name)
        overlord, broker = procs.procs["overlord"].url, procs.procs["broker"].url
        peon = procs.procs["peon"]
        async with httpx.AsyncClient(timeout=30.0) as http:
            while True:
                w = await http.get(overlord + "/druid/indexer/v1/workers")
                if w.status_code == 200 and w.json():
                    break
                await asyncio.sleep(0.1)
            status_ms: list[float] = []
            peak_rss = 0
            done = asyncio.Event()

            async def probe_status() -> None:
                nonlocal peak_rss
                async with httpx.AsyncClient(timeout=10.0) as probe:
                    while not done.is_set():
                        t = time.perf_counter()
                        await probe.get(peon.url + "/status")
                        status_ms.append((time.perf_counter() - t) * 1000)
                        if peon.process is not None:
                            peak_rss = max(peak_rss, rss_bytes(peon.process.pid))
                        await asyncio.sleep(0.05)

            prober = asyncio.create_task(probe_status())
            spy = None
            if profile and peon.process is not None:
                # py-spy (pip install py-spy) samples the peon for the whole of (b).
                spy = await asyncio.create_subprocess_exec(
                    "py-spy",
                    "record",
                    "--format",
                    "flamegraph" if profile.endswith(".svg") else "raw",
                    "-o",
                    profile,
                    "--pid",
                    str(peon.process.pid),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            started = time.perf_counter()
            resp = await http.post(overlord + "/druid/indexer/v1/supervisor", json=spec(bootstrap))
            resp.raise_for_status()
            while True:
                q = await http.post(broker + "/druid/v2", json=COUNT)
                if q.status_code == 200 and q.json() and q.json()[0]["result"]["rows"] == rows:
                    break
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - started
            done.set()
            await prober
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
        status_ms.sort()
        return {
            "rows_per_s": rows / elapsed,
            "elapsed_s": elapsed,
            "status_p50_ms": statistics.median(status_ms),
            "status_p99_ms": status_ms[int(0.99 * (len(status_ms) - 1))],
            "status_samples": float(len(status_ms)),
            "peon_peak_rss_mb": peak_rss / 2**20,
        }
    finally:
        procs.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows to ingest (M)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the peon with py-spy during (b): .svg a flamegraph, else collapsed stacks",
    )
    args = parser.parse_args()
    kafka = start_local_kafka()
    try:
        print(f"producing {args.rows} rows to {kafka.bootstrap} ...", flush=True)
        await produce(kafka.bootstrap, args.rows)
        base = await baseline(kafka.bootstrap, args.rows)
        with tempfile.TemporaryDirectory(prefix="kdruid-bench-ingest-") as tmp:
            got = await through_kdruid(kafka.bootstrap, args.rows, Path(tmp), args.profile)
    finally:
        kafka.stop()
    ratio = got["rows_per_s"] / base
    print(f"(a) aiokafka consume + orjson decode : {base:12,.0f} rows/s")
    print(
        f"(b) supervisor -> peon -> queryable  : {got['rows_per_s']:12,.0f} rows/s"
        f"  ({args.rows:,} rows in {got['elapsed_s']:.1f} s)"
    )
    print(f"ratio (b)/(a)                        : {ratio:12.2f}   (target >= 0.4)")
    print(
        f"peon /status during (b)              : p50 {got['status_p50_ms']:.1f} ms, "
        f"p99 {got['status_p99_ms']:.1f} ms over {got['status_samples']:.0f} probes"
        "   (target p99 < 100 ms)"
    )
    print(f"peon peak RSS during (b)             : {got['peon_peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
