"""``kdruid quickstart``: every role as a local process on its default port, one data directory.

With ``--kafka HOST:PORT`` it uses that Kafka broker; without it, it starts the bundled tansu
broker (in memory: its data does not survive a restart). Either way it produces a steady stream of
sample wikipedia edits to the ``wikipedia`` topic, and two more to two-partition topics, submits a
Kafka supervisor for each (the two more run two tasks each, on datasources whose names have spaces
and non-ASCII letters), waits until the first rows of each are queryable through the broker, and
prints native and SQL queries to try. The peon gets task slots for all of them and more
(``quickstart_ingest.slots``).

Every role listens on 127.0.0.1 only unless ``--bind`` asks for another address of this machine
(``0.0.0.0``: every interface, so other machines can reach the broker; the roles still announce
``localhost`` to each other). It sets the ``_default`` retention rule to one replica (it runs one
historical) through the coordinator's rules API, unless you changed ``_default`` yourself.

Uses the ``metadata`` discovery backend on SQLite under the data directory, local deep storage and
segment cache there too. Shows progress while starting (up, discovered, leaders elected), prints the
URLs and curl commands that work right now, and on Ctrl-C (or SIGTERM) stops every process cleanly:
peons and brokers first, the coordinator last, each given time to unannounce.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from common.aio import bounded, wait_event
from common.auth.clients import PLAIN_CLIENTS
from common.config import DEFAULT_PORTS, ROLES
from services import quickstart_ingest as sample
from services.localkafka import LocalKafka, LocalKafkaError, start_local_kafka
from services.quickstart_bind import ALL_INTERFACES, DEFAULT_BIND, bind_environment, check_bind
from services.quickstart_rules import set_default_rules
from services.sample_stream import ensure_topic, produce_forever

START_ORDER = ("coordinator", "overlord", "historical", "broker", "peon")
SAMPLE_TOPIC = sample.SAMPLES[0].topic
SAMPLE_RATE = sample.SAMPLES[0].rate  # edits per second
STOP_ORDER = ("peon", "broker", "historical", "overlord", "coordinator")
READY_TIMEOUT = 90.0
PUBLISH_ON_STOP_TIMEOUT = 30.0
FIRST_ROWS_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
HISTORICALS = START_ORDER.count("historical")


@dataclass
class Child:
    role: str
    port: int
    log_path: Path
    host: str = "localhost"
    proc: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def write_config(data_dir: Path) -> Path:
    """The common runtime.properties of the quickstart (kept if the user already has one)."""
    conf = data_dir / "conf" / "common.runtime.properties"
    if conf.exists():
        return conf
    conf.parent.mkdir(parents=True, exist_ok=True)
    locations = json.dumps([{"path": str(data_dir / "segment-cache"), "maxSize": "10GiB"}])
    conf.write_text(
        "\n".join(
            [
                "# kdruid quickstart: every role on this machine, metadata in SQLite.",
                "druid.host=localhost",
                "druid.discovery.type=metadata",
                "druid.metadata.storage.type=sqlite",
                f"druid.metadata.storage.connector.connectURI={data_dir / 'metadata.db'}",
                "druid.storage.type=local",
                f"druid.storage.storageDirectory={data_dir / 'deep-storage'}",
                f"druid.segmentCache.locations={locations}",
                f"druid.indexer.task.baseTaskDir={data_dir / 'task'}",
                "# one machine: tasks learn of their handoff within a second, not a minute",
                "druid.segment.handoff.pollDuration=PT1S",
                "# the sample supervisors' tasks, two more two-task supervisors of yours, and",
                "# their publishing tasks at a rollover (Druid's default is processors - 1)",
                f"druid.worker.capacity={sample.slots()}",
                "",
            ]
        )
    )
    return conf


def busy_ports() -> list[str]:
    busy = []
    for role in ROLES:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", DEFAULT_PORTS[role]))
            except OSError:
                busy.append(f"{DEFAULT_PORTS[role]} ({role})")
    return busy


def say(text: str) -> None:
    print(text, flush=True)


class Quickstart:
    def __init__(self, data_dir: Path, kafka: str | None = None, bind: str = DEFAULT_BIND) -> None:
        self.data_dir = data_dir
        self.bind_env = bind_environment(bind)
        self.kafka_address = kafka
        self.local_kafka: LocalKafka | None = None
        self.stream_stop = asyncio.Event()
        self.ingesting = False
        self.children = {
            role: Child(
                role,
                DEFAULT_PORTS[role],
                data_dir / "log" / f"{role}.log",
                host=self.bind_env["druid_host"],
            )
            for role in START_ORDER
        }
        self.stopping = asyncio.Event()

    def start_children(self, conf: Path) -> None:
        (self.data_dir / "log").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRUID_", "druid_"))}
        env.update(self.bind_env)
        for child in self.children.values():
            child.log_file = open(child.log_path, "ab")  # closed in stop_children
            child.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", child.role, "--config", str(conf)],
                stdout=child.log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )

    def start_kafka(self) -> str:
        """The Kafka bootstrap address: ``--kafka``, else a bundled tansu broker started now."""
        if self.kafka_address:
            return self.kafka_address
        log_path = self.data_dir / "log" / "kafka.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log_file:
            self.local_kafka = start_local_kafka("127.0.0.1", log=log_file)
        return self.local_kafka.bootstrap

    def stop_kafka(self) -> None:
        if self.local_kafka is not None:
            self.local_kafka.stop()

    def dead_child(self) -> Child | None:
        for child in self.children.values():
            if child.proc is not None and child.proc.poll() is not None:
                return child
        return None

    async def wait_ready(self) -> bool:
        """Up, discovered by each other, leaders elected; False if stopped or a child died."""
        expected = {r: f"{c.host}:{c.port}" for r, c in self.children.items()}
        up: set[str] = set()
        discovered: set[str] = set()
        leaders: dict[str, str] = {}
        deadline = time.monotonic() + READY_TIMEOUT
        async with PLAIN_CLIENTS.new(timeout=2.0) as http:
            while not self.stopping.is_set():
                if (dead := self.dead_child()) is not None:
                    code = dead.proc.returncode if dead.proc else "?"
                    say(f"\n{dead.role} exited with code {code};")
                    say(f"last lines of {dead.log_path}:\n{dead.log_tail()}")
                    return False
                if time.monotonic() > deadline:
                    logs = self.data_dir / "log"
                    say(f"\nnot ready after {READY_TIMEOUT:.0f}s; logs are in {logs}")
                    return False
                for role, child in self.children.items():
                    if role not in up and await _ok(http, f"{child.url}/status/health"):
                        up.add(role)
                        say(f"  [up]         {role:<12} {child.url}")
                    if role in up and role not in discovered:
                        view = await _json(http, f"{child.url}/druid-internal/v1/discovery")
                        if view and all(
                            expected[r] in view.get(r, {}).get("nodes", []) for r in expected
                        ):
                            discovered.add(role)
                            say(f"  [discovered] {role:<12} sees all {len(expected)} roles")
                for role, path in (
                    ("coordinator", "/druid/coordinator/v1/leader"),
                    ("overlord", "/druid/indexer/v1/leader"),
                ):
                    if role in up and role not in leaders:
                        resp = await _get(http, self.children[role].url + path)
                        if resp is not None and resp.status_code == 200:
                            leaders[role] = resp.text
                            say(f"  [leader]     {role:<12} {resp.text}")
                if len(discovered) == len(expected) and len(leaders) == 2:
                    return True
                await wait_event(self.stopping, 0.25)
        return False

    def stop_children(self) -> None:
        for role in STOP_ORDER:
            child = self.children[role]
            if child.proc is None or child.proc.poll() is not None:
                continue
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(STOP_TIMEOUT)
                say(f"  [stopped]    {role}")
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
                say(f"  [killed]     {role} (not stopped in {STOP_TIMEOUT:.0f}s); its last lines:")
                say(child.log_tail(10))
        for child in self.children.values():
            if child.log_file is not None:
                child.log_file.close()

    async def start_ingestion(self, kafka: str) -> bool:
        """Submit the sample supervisors and wait for the first queryable rows of each."""
        overlord, broker = self.children["overlord"].url, self.children["broker"].url
        async with PLAIN_CLIENTS.new(timeout=30.0) as http:
            for s in sample.SAMPLES:
                try:
                    await sample.submit(
                        http, overlord, kafka, s, reset_offsets=self.local_kafka is not None
                    )
                except (RuntimeError, httpx.HTTPError) as exc:
                    say(f"\n{exc}")
                    return False
                tasks = f" ({s.task_count} tasks)" if s.task_count > 1 else ""
                say(f"  [supervisor] {s.datasource} reads topic {s.topic!r}{tasks}")
                self.ingesting = True
            for s in sample.SAMPLES:
                rows = await sample.wait_first_rows(
                    http, broker, self.stopping, FIRST_ROWS_TIMEOUT, s.datasource
                )
                if rows == 0:
                    if not self.stopping.is_set():
                        logs = self.data_dir / "log"
                        say(
                            f"\nno rows of {s.datasource} queryable after "
                            f"{FIRST_ROWS_TIMEOUT:.0f}s; see {logs}/peon.log"
                        )
                    return False
                say(f"  [queryable]  {rows} rows of {s.datasource} through the broker")
        return True

    async def publish_on_stop(self) -> None:
        """Let the sample tasks publish what they read, so the next run finds it (bounded)."""
        if not self.ingesting or self.dead_child() is not None:
            return
        say("  [publishing] suspending the supervisors so their tasks publish what they read...")
        async with PLAIN_CLIENTS.new(timeout=10.0) as http:
            try:
                done = await sample.publish_and_suspend(
                    http, self.children["overlord"].url, PUBLISH_ON_STOP_TIMEOUT
                )
            except httpx.HTTPError:
                done = False
        if not done:
            say(f"  [publishing] not finished in {PUBLISH_ON_STOP_TIMEOUT:.0f}s; stopping anyway")

    def print_welcome(self, kafka: str) -> None:
        c = {r: ch.url for r, ch in self.children.items()}
        bundled = " (bundled tansu, in memory)" if self.local_kafka else ""
        say(
            f"""
kdruid is running. Data directory: {self.data_dir}
  Kafka {kafka}{bundled}: {SAMPLE_RATE:.0f} sample wikipedia edits/s to topic {SAMPLE_TOPIC!r}
{_extra_streams()}
  coordinator {c["coordinator"]}   overlord {c["overlord"]}   broker {c["broker"]}
  historical  {c["historical"]}   peon     {c["peon"]}
Logs: {self.data_dir / "log"}/<role>.log

Query the sample data (rows arrive every second; first answers come from the peon):
{_lines(sample.curl_commands(c["broker"], c["overlord"]))}

Look around:
{_curls(c)}

Press Ctrl-C to stop."""
        )


def _extra_streams() -> str:
    return "\n".join(
        f"    and {s.rate:.0f}/s to topic {s.topic!r}, {s.partitions} partitions, read by "
        f"{s.task_count} tasks into datasource {s.datasource!r}"
        for s in sample.SAMPLES[1:]
    )


def _lines(commands: list[tuple[str, str]]) -> str:
    return "\n".join(f"  # {what}\n  {cmd}" for cmd, what in commands)


def _curls(c: dict[str, str]) -> str:
    lines = [
        (f"{c['coordinator']}/druid/coordinator/v1/cluster", "every node, by role"),
        (f"{c['coordinator']}/druid/coordinator/v1/leader", "the coordinator leader"),
        (f"{c['overlord']}/druid/indexer/v1/workers", "peons that can run tasks"),
        (f"{c['coordinator']}/druid/coordinator/v1/rules", "retention rules"),
        (f"{c['broker']}/status", "version and memory of a node"),
    ]
    width = max(len(url) for url, _ in lines)
    return "\n".join(f"  curl {url:<{width}}  # {what}" for url, what in lines)


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        return await http.get(url)
    except httpx.HTTPError:
        return None


async def _ok(http: httpx.AsyncClient, url: str) -> bool:
    resp = await _get(http, url)
    return resp is not None and resp.status_code == 200


async def _json(http: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    resp = await _get(http, url)
    if resp is None or resp.status_code != 200:
        return None
    value = resp.json()
    return value if isinstance(value, dict) else None


async def _main(data_dir: Path, kafka_address: str | None, bind: str) -> int:
    qs = Quickstart(data_dir, kafka_address, bind)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, qs.stopping.set)
    conf = write_config(data_dir)
    say(f"Starting kdruid in {data_dir} (config {conf})")
    where = "every interface" if bind == ALL_INTERFACES else f"{bind} only"
    say(f"  [listen]     on {where} (--bind ADDRESS to change)")
    try:
        kafka = qs.start_kafka()
    except LocalKafkaError as exc:
        say(f"cannot start the bundled Kafka broker: {exc}")
        return 1
    say(f"  [kafka]      {kafka}")
    qs.start_children(conf)
    streams: list[asyncio.Task[int]] = []
    try:
        if not await qs.wait_ready():
            return 0 if qs.stopping.is_set() else 1
        try:
            async with PLAIN_CLIENTS.new(timeout=10.0) as http:
                said = await set_default_rules(http, qs.children["coordinator"].url, HISTORICALS)
        except (RuntimeError, httpx.HTTPError) as exc:
            say(f"\ncannot set the retention rules: {exc}")
            return 1
        say(f"  [rules]      {said}")
        try:
            for s in sample.SAMPLES:
                await ensure_topic(kafka, s.topic, s.partitions)
        except Exception as exc:  # any Kafka client error: say it, stop cleanly
            say(f"\ncannot create the sample topics on {kafka}: {exc}")
            return 1
        streams = [
            asyncio.create_task(
                produce_forever(kafka, s.topic, s.rate, qs.stream_stop), name=f"stream:{s.topic}"
            )
            for s in sample.SAMPLES
        ]
        if not await qs.start_ingestion(kafka):
            return 0 if qs.stopping.is_set() else 1
        qs.print_welcome(kafka)
        while not qs.stopping.is_set():
            if (dead := qs.dead_child()) is not None:
                say(f"\n{dead.role} exited unexpectedly; last lines of {dead.log_path}:")
                say(dead.log_tail())
                return 1
            for stream in streams:
                if stream.done() and not stream.cancelled() and stream.exception() is not None:
                    say(f"\nthe sample stream {stream.get_name()} stopped: {stream.exception()}")
                    return 1
            await wait_event(qs.stopping, 1.0)
        say("\nStopping...")
        return 0
    finally:
        qs.stream_stop.set()
        for stream in streams:
            with contextlib.suppress(Exception):
                await bounded(stream, 5.0)
        await qs.publish_on_stop()
        await asyncio.to_thread(qs.stop_children)
        qs.stop_kafka()


def run_quickstart(directory: str, kafka: str | None = None, bind: str = DEFAULT_BIND) -> int:
    import logging

    if (refused := check_bind(bind)) is not None:
        print(f"kdruid quickstart: {refused}", file=sys.stderr)
        return 2
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per readiness probe
    busy = busy_ports()
    if busy:
        print(f"kdruid quickstart: ports in use: {', '.join(busy)}", file=sys.stderr)
        return 1
    return asyncio.run(_main(Path(directory).resolve(), kafka, bind))
