"""``kdruid quickstart`` end to end: five processes on the default ports, the printed curl commands
answer, Ctrl-C stops everything cleanly, and a second run on the same directory starts again.

The quickstart runs the sample supervisor plus two more of two tasks each, on datasource names
with spaces, ``%`` and non-ASCII letters: all run at once on the one peon, all are queryable
(native and SQL), and all publish on Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.config import DEFAULT_PORTS, ROLES
from common.ids import url_id
from services.quickstart_ingest import SAMPLES, count_query, sql_identifier
from tests.support.procs import listening_addresses

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "Press Ctrl-C to stop."
READY_DEADLINE = 60.0
STOP_DEADLINE = 20.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
OVERLORD = f"http://localhost:{DEFAULT_PORTS['overlord']}"
BROKER = f"http://localhost:{DEFAULT_PORTS['broker']}"


def busy_ports() -> list[int]:
    busy = []
    for port in DEFAULT_PORTS.values():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                busy.append(port)
    return busy


def descendants(pid: int) -> list[int]:
    """Process ids whose parent chain leads to ``pid`` (children live in their own sessions)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


class Quickstart:
    """One ``kdruid quickstart`` process with its stdout read line by line on a thread."""

    def __init__(self, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRUID_", "druid_"))}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "quickstart", "--dir", str(data_dir)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, text: str, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} within {within}s; output:\n" + self.output)
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"quickstart exited ({self.proc.poll()}) before {text!r}; output:\n"
                    + self.output
                )
            self.lines.append(line)
            if text in line:
                return

    def drain(self) -> None:
        """Collect the rest of the output after the process has exited."""
        self._reader.join(5.0)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(STOP_DEADLINE)
        self.drain()
        return code

    def kill_everything(self) -> None:
        """Last resort after a failure: never leave role processes behind on the fixed ports."""
        kids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.drain()


def curl_urls(output: str) -> list[str]:
    return re.findall(r"curl (http://\S+)", output)


def check_curl_commands(output: str) -> None:
    urls = curl_urls(output)
    assert len(urls) >= 4, output
    by_path = {httpx.URL(u).path: u for u in urls}
    with httpx.Client(timeout=10.0) as http:
        for url in urls:
            resp = http.get(url)
            assert resp.status_code == 200, f"{url}: {resp.status_code} {resp.text}"

        cluster_url = by_path["/druid/coordinator/v1/cluster"]
        cluster = http.get(cluster_url).json()
        for role in ROLES:
            nodes = cluster[role.upper()]
            assert [n["plaintextPort"] for n in nodes] == [DEFAULT_PORTS[role]], cluster

        leader = http.get(by_path["/druid/coordinator/v1/leader"]).text
        assert leader.endswith(f":{DEFAULT_PORTS['coordinator']}")
        assert leader.startswith("http://")

        workers = http.get(by_path["/druid/indexer/v1/workers"]).json()
        assert len(workers) == 1
        assert workers[0]["worker"]["host"].endswith(f":{DEFAULT_PORTS['peon']}")
        assert workers[0]["worker"]["capacity"] >= 1

        rules = http.get(by_path["/druid/coordinator/v1/rules"]).json()
        # One historical, one replica: nothing under-replicated forever.
        [default] = rules["_default"]
        assert default["type"] == "loadForever"
        assert default["tieredReplicants"] == {"_default_tier": 1}

        status = http.get(by_path["/status"]).json()
        assert status["version"]
        assert "memory" in status


def check_printed_posts(output: str) -> None:
    """The printed POST commands (native, SQL, SQL on an extra datasource) answer with rows."""
    posts = [shlex.split(line) for line in output.splitlines() if "curl -s -XPOST" in line]
    assert len(posts) >= 3, output
    with httpx.Client(timeout=30.0) as http:
        for argv in posts:
            url, body = argv[argv.index("-d") - 1], argv[argv.index("-d") + 1]
            resp = http.post(url, content=body, headers={"Content-Type": "application/json"})
            assert resp.status_code == 200, f"{url} {body}: {resp.status_code} {resp.text}"
            assert resp.json(), f"{url} {body}: no rows"


def check_every_sample_supervisor(output: str) -> None:
    """Each sample supervisor has all its tasks reading on the peon and its rows queryable."""
    with httpx.Client(timeout=30.0) as http:
        workers = http.get(f"{OVERLORD}/druid/indexer/v1/workers").json()
        assert workers[0]["worker"]["capacity"] >= 2 * sum(s.task_count for s in SAMPLES) + 4
        for s in SAMPLES:
            assert re.search(rf"\[queryable\]\s+\d+ rows of {re.escape(s.datasource)} ", output)
            status_url = f"{OVERLORD}/druid/indexer/v1/supervisor/{url_id(s.datasource)}/status"
            deadline = time.monotonic() + 60
            while True:
                payload = http.get(status_url).json()["payload"]
                active = payload["activeTasks"]
                if len(active) == s.task_count and all(t["startTime"] for t in active):
                    break
                assert time.monotonic() < deadline, f"{s.datasource}: {payload}"
                time.sleep(0.5)
            assert payload["dataSource"] == s.datasource and payload["state"] == "RUNNING"
            assert not [e for e in payload["recentErrors"] if e["exceptionClass"] == "NoTaskSlot"]
            native = http.post(f"{BROKER}/druid/v2", json=count_query(s.datasource)).json()
            assert native[0]["result"]["rows"] > 0, native
            sql = f"SELECT COUNT(*) AS n FROM {sql_identifier(s.datasource)}"
            rows = http.post(f"{BROKER}/druid/v2/sql", json={"query": sql}).json()
            assert rows[0]["n"] > 0, rows


def check_every_sample_published(data_dir: Path, output: str) -> None:
    assert "[publishing] not finished" not in output, output
    with sqlite3.connect(data_dir / "metadata.db") as db:
        for s in SAMPLES:
            (n,) = db.execute(
                "SELECT COUNT(*) FROM druid_segments WHERE datasource = ? AND used",
                (s.datasource,),
            ).fetchone()
            assert n >= 1, f"nothing of {s.datasource} published"
            payload = db.execute(
                "SELECT payload FROM druid_segments WHERE datasource = ? LIMIT 1",
                (s.datasource,),
            ).fetchone()[0]
            assert json.loads(payload)["dataSource"] == s.datasource


def check_clean_stop(qs: Quickstart, data_dir: Path) -> None:
    code = qs.interrupt()
    assert code == 0, qs.output
    stopped = re.findall(r"\[stopped\]\s+(\w+)", qs.output)
    assert sorted(stopped) == sorted(ROLES), qs.output
    assert "[killed]" not in qs.output
    assert not descendants(qs.proc.pid)
    for role in ROLES:
        log = (data_dir / "log" / f"{role}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{role}.log:\n{log}"
        assert f"{role} stopped" in log, f"{role}.log:\n{log}"


@pytest.fixture
def free_default_ports() -> Iterator[None]:
    busy = busy_ports()
    if busy:
        pytest.skip(f"quickstart needs its fixed ports; busy before start: {busy}")
    yield


def test_quickstart_starts_answers_stops_and_resumes(
    tmp_path: Path, free_default_ports: None
) -> None:
    data_dir = tmp_path / "qs"
    for run in (1, 2):
        qs = Quickstart(data_dir)
        try:
            qs.wait_for_line(READY_LINE, READY_DEADLINE)
            for role in ROLES:
                assert re.search(rf"\[discovered\]\s+{role}\b", qs.output), qs.output
            assert re.search(r"\[leader\]\s+coordinator", qs.output)
            assert re.search(r"\[leader\]\s+overlord", qs.output)
            check_curl_commands(qs.output)
            for port in DEFAULT_PORTS.values():  # no --bind: this machine only
                assert listening_addresses(port) == {"127.0.0.1"}, port
            check_printed_posts(qs.output)
            check_every_sample_supervisor(qs.output)
            check_clean_stop(qs, data_dir)
            check_every_sample_published(data_dir, qs.output)
        except BaseException:
            qs.kill_everything()
            raise
        assert (data_dir / "metadata.db").exists(), f"run {run}"
        assert (data_dir / "conf" / "common.runtime.properties").exists()
    assert busy_ports() == []
