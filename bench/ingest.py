"""Streaming ingestion throughput, against a baseline measured in the same run.

(a) baseline: a bare aiokafka consumer reads the M pre-produced rows from the local broker and
    decodes each with orjson: rows/s, measured before and after (b), the faster one counting
    (the machine's load moves between the two);
(b) kdruid: a Kafka supervisor with one task on one peon (every role a real process) ingests the
    same topic until all M rows are queryable through the broker: rows/s, from the supervisor
    POST to the broker answering count = M, with when the peon had the task, its first row and
    all rows processed (its ``rowStats``).
Prints both, the ratio (b)/(a), CPU seconds per million rows of (a) and of the peon (steadier
than wall time on a shared machine), the p50/p99 of the peon's ``/status`` during (b) (the
event loop must stay responsive at full speed) and the peon's peak RSS (and its anonymous part:
RSS less mapped files). Targets (issue #16): ratio >= 0.85 at 300 k and 1 M rows, peon RSS
<= 250 MB, ``/status`` p99 < 100 ms.

    .venv/bin/python bench/ingest.py --rows 1000000 [--runs 3] [--consumer-property k=v ...]
        [--logs DIR] [--profile FILE]

``--runs N`` repeats (a) and (b) N times on the same topic and prints medians (each run's ratio
against its own baseline); ``--consumer-property`` adds a key to the supervisor's
``consumerProperties`` (e.g. ``fetch.max.bytes=1048576``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

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


async def baseline(bootstrap: str, rows: int) -> tuple[float, float]:
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
        started, cpu = time.perf_counter(), time.process_time()
        while seen < rows:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=50_000)
            for records in batches.values():
                for r in records:
                    orjson.loads(r.value)
                seen += sum(len(v) for v in batches.values())
        return rows / (time.perf_counter() - started), time.process_time() - cpu
    finally:
        await consumer.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_anon(pid: int) -> int:
    """Anonymous resident memory (heap, Arrow buffers): RSS less mapped files' pages."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


async def _track(
    http: httpx.AsyncClient, peon: str, task_id: str | None, rows: int, phases: dict[str, float]
) -> str | None:
    """Note when the peon runs the task, has processed a first row and all ``rows``."""
    if task_id is None:
        ids = (await http.get(peon + "/druid/worker/v1/tasks")).json()
        if not ids:
            return None
        task_id = str(ids[0])
        phases["task"] = time.perf_counter()
    r = await http.get(f"{peon}/druid/worker/v1/chat/{quote(task_id, safe='')}/rowStats")
    if r.status_code == 200:
        processed = r.json()["totals"]["buildSegments"]["processed"]
        now = time.perf_counter()
        if processed > 0:
            phases.setdefault("first_row", now)
        if processed >= rows:
            phases.setdefault("read_all", now)
    return task_id


def spec(bootstrap: str, consumer_properties: dict[str, str] | None = None) -> dict[str, object]:
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
                "consumerProperties": {
                    "bootstrap.servers": bootstrap,
                    **(consumer_properties or {}),
                },
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


#: The broker count poll's interval once the peon has processed every row (``read_all``).
POLL_AFTER_READ_S = 0.01

COUNT = {
    "queryType": "timeseries",
    "dataSource": "wiki",
    "intervals": ["2024-01-01/2024-01-02"],
    "granularity": "all",
    "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}],
}


async def through_kdruid(
    bootstrap: str,
    rows: int,
    workdir: Path,
    profile: str | None = None,
    consumer_properties: dict[str, str] | None = None,
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
            peak_anon = 0
            idle_rss = rss_bytes(peon.process.pid) if peon.process is not None else 0
            done = asyncio.Event()
            #: When (perf_counter) the peon had the task, had processed a first row and had
            #: processed all of them (rowStats, polled with /status).
            phases: dict[str, float] = {}

            async def probe_status() -> None:
                nonlocal peak_rss, peak_anon
                task_id: str | None = None
                async with httpx.AsyncClient(timeout=10.0) as probe:
                    while not done.is_set():
                        t = time.perf_counter()
                        await probe.get(peon.url + "/status")
                        status_ms.append((time.perf_counter() - t) * 1000)
                        if peon.process is not None:
                            peak_rss = max(peak_rss, rss_bytes(peon.process.pid))
                            peak_anon = max(peak_anon, _rss_anon(peon.process.pid))
                        if "read_all" not in phases:
                            task_id = await _track(probe, peon.url, task_id, rows, phases)
                        await asyncio.sleep(0.05)

            prober = asyncio.create_task(probe_status())
            spy = None
            if profile and peon.process is not None:
                # py-spy (pip install py-spy) samples the peon for the whole of (b).
                spy = await asyncio.create_subprocess_exec(
                    "py-spy",
                    "record",
                    "--threads",
                    "--rate",
                    "250",
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
            cpu_before = _cpu_seconds(peon.process.pid) if peon.process is not None else 0.0
            resp = await http.post(
                overlord + "/druid/indexer/v1/supervisor", json=spec(bootstrap, consumer_properties)
            )
            resp.raise_for_status()
            while True:
                q = await http.post(broker + "/druid/v2", json=COUNT)
                if q.status_code == 200 and q.json() and q.json()[0]["result"]["rows"] == rows:
                    break
                # Every 0.2 s while the peon reads (the rowStats probe, every 50 ms, sees when
                # it has processed every row), then every 10 ms: the end is seen within about
                # 10 ms plus one query, not up to 0.2 s late, without querying the peon all along.
                await asyncio.sleep(POLL_AFTER_READ_S if "read_all" in phases else 0.2)
            elapsed = time.perf_counter() - started
            cpu = (_cpu_seconds(peon.process.pid) if peon.process is not None else 0.0) - cpu_before
            done.set()
            await prober
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
        status_ms.sort()
        for name in ("task", "first_row", "read_all"):
            print(f"  {name:10s} {phases.get(name, float('nan')) - started:6.2f} s after submit")
        print(f"  queryable  {elapsed:6.2f} s after submit")
        return {
            "rows_per_s": rows / elapsed,
            "elapsed_s": elapsed,
            "status_p50_ms": statistics.median(status_ms),
            "status_p99_ms": status_ms[int(0.99 * (len(status_ms) - 1))],
            "status_samples": float(len(status_ms)),
            "peon_peak_rss_mb": peak_rss / 2**20,
            "peon_peak_anon_mb": peak_anon / 2**20,
            "peon_idle_rss_mb": idle_rss / 2**20,
            "peon_cpu_s": cpu,
        }
    finally:
        procs.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows to ingest (M)")
    parser.add_argument(
        "--runs", type=int, default=1, help="repeat (a) and (b) this many times; print medians"
    )
    parser.add_argument(
        "--consumer-property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add to the supervisor's consumerProperties (repeatable): fetch.max.bytes=1048576",
    )
    parser.add_argument(
        "--logs", metavar="DIR", help="keep every role's log of (b) in DIR/run<N>/ (for timings)"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the peon with py-spy during (b): .svg a flamegraph, else collapsed stacks",
    )
    args = parser.parse_args()
    props = dict(kv.split("=", 1) for kv in args.consumer_property)
    kafka = start_local_kafka()
    runs: list[tuple[tuple[float, float], tuple[float, float], dict[str, float]]] = []
    try:
        print(f"producing {args.rows} rows to {kafka.bootstrap} ...", flush=True)
        await produce(kafka.bootstrap, args.rows)
        for run in range(args.runs):
            if args.runs > 1:
                print(f"run {run + 1} of {args.runs}", flush=True)
            before = await baseline(kafka.bootstrap, args.rows)
            with tempfile.TemporaryDirectory(prefix="kdruid-bench-ingest-") as tmp:
                got = await through_kdruid(
                    kafka.bootstrap, args.rows, Path(tmp), args.profile, props
                )
                if args.logs:
                    shutil.copytree(Path(tmp) / "log", Path(args.logs) / f"run{run + 1}")
            after = await baseline(kafka.bootstrap, args.rows)
            runs.append((before, after, got))
            if args.runs > 1:
                base = max(before, after)[0]
                print(
                    f"  ratio {got['rows_per_s'] / base:.2f}, peon peak RSS "
                    f"{got['peon_peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    finally:
        kafka.stop()
    report(args.rows, runs)


def report(
    rows: int, runs: list[tuple[tuple[float, float], tuple[float, float], dict[str, float]]]
) -> None:
    """One run's figures, or the medians over several runs (each ratio against its own run's
    baseline)."""
    med = statistics.median
    n = len(runs)
    what = "" if n == 1 else f" (medians of {n} runs)"
    # The faster of the two baselines (before and after (b)): the machine's load changes.
    bases = [max(before, after) for before, after, _ in runs]
    base = med(b[0] for b in bases)
    base_cpu = med(b[1] for b in bases)
    got = {k: med(g[k] for _, _, g in runs) for k in runs[0][2]}
    ratio = med(g["rows_per_s"] / b[0] for (_, _, g), b in zip(runs, bases, strict=True))
    if n == 1:
        before, after, _ = runs[0]
        note = f"  (the faster of {before[0]:,.0f} before and {after[0]:,.0f} after (b))"
    else:
        ratios = sorted(g["rows_per_s"] / b[0] for (_, _, g), b in zip(runs, bases, strict=True))
        note = "  (ratios " + ", ".join(f"{r:.2f}" for r in ratios) + ")"
    print(f"{rows:,} rows{what}")
    print(f"(a) aiokafka consume + orjson decode : {base:12,.0f} rows/s" + (note if n == 1 else ""))
    print(
        f"(b) supervisor -> peon -> queryable  : {got['rows_per_s']:12,.0f} rows/s"
        f"  ({rows:,} rows in {got['elapsed_s']:.1f} s)"
    )
    print(
        f"ratio (b)/(a)                        : {ratio:12.2f}   (target >= 0.85)"
        + ("" if n == 1 else note)
    )
    print(
        f"CPU s per 1M rows                    : (a) {base_cpu * 1e6 / rows:.2f}, "
        f"(b) peon {got['peon_cpu_s'] * 1e6 / rows:.2f}"
    )
    print(
        f"peon /status during (b)              : p50 {got['status_p50_ms']:.1f} ms, "
        f"p99 {got['status_p99_ms']:.1f} ms over {got['status_samples']:.0f} probes"
        "   (target p99 < 100 ms)"
    )
    print(
        f"peon peak RSS during (b)             : {got['peon_peak_rss_mb']:.0f} MB"
        f"  (anonymous {got['peon_peak_anon_mb']:.0f} MB; {got['peon_idle_rss_mb']:.0f} MB idle)"
        "   (target <= 250 MB)"
    )


if __name__ == "__main__":
    asyncio.run(main())
