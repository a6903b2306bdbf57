"""Long-poll fan-out benchmark: N clients parked on one server, one change, time until each has it.

The server is built as a historical's app is (Druid error handlers, the lookup-scope middleware,
``SecurityMiddleware`` with the allow-all authenticator, the route declared ``INTERNAL``) and runs
under uvicorn in its own process. The N clients are spread over ``--client-procs`` processes
(aiohttp): one process parsing 1,000 responses is itself a bottleneck on a small machine, and
would be counted in the latency. ``--client-nice 10`` runs them below the server's priority, so
that on a machine of a few cores they stand for other machines rather than take the CPU from the
server they measure (the client figures then include waiting behind everything else the machine
runs). For each N it prints the load average and, as medians of ``--runs`` runs (each with a
fresh server):

* ``client``: change-to-client latency, p50/p99/max (wall clock shared by the processes), from the
  change until each client has parsed its answer;
* ``server``: change-to-written latency, p50/p99/max, measured in the server: from
  ``history.add`` until uvicorn finished writing each parked request's response (its
  ``on_response_complete``), so the server's own cost is reported whatever the clients do;
* the server's CPU time for the fan-out, from the change until the last long-poll response was
  written (``time.process_time`` in the server: on a loaded machine it moves far less than the
  wall clock);
* ``CPU all``: the CPU time of the server and the client processes together, from the change to
  the last answer received (``/proc`` schedstat), which the clients' share of the 2 cores shows in;
* ``GC ms``: of that, the time the server spent in the cyclic garbage collector (the server
  freezes its start-up heap as every role does, ``KDRUID_GC_FREEZE=0``: off);
* the server's RSS before and after N requests are parked, per parked request, against the budget
  of 20 KB (issue #16).

``--raw-clients`` replaces aiohttp with one request written on a bare asyncio socket per client
(the answer counts when its ``content-length`` bytes are in): aiohttp costs about as much CPU as
the server, on the same cores. ``--http kdruid uvicorn`` runs kdruid's protocol
(``common.httpproto``, one write per response) and uvicorn's own in turn, run by run, and prints
the ratios of their medians; ``--loop asyncio uvloop`` does the same with the server's event loop
(kdruid does not depend on uvloop; uvicorn's ``loop="auto"`` would pick it where installed).

    .venv/bin/python bench/longpoll.py --clients 1000 --client-procs 4 --runs 3
    .venv/bin/python -m bench.longpoll --clients 1000 --runs 7 --raw-clients --http kdruid uvicorn
    .venv/bin/python -m bench.longpoll --clients 1000 --runs 9 --raw-clients --loop asyncio uvloop

``--tracemalloc`` instead prints what the server's Python allocations still alive while the N
requests are parked are, by line, file and traceback (tracing starts just before they park; no
latency figures), and ``--profile FILE`` records the server with py-spy during the fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import re
import resource
import signal
import statistics
import subprocess
import time
import urllib.parse
import urllib.request
from multiprocessing.connection import Connection
from typing import Any

PATH = "/druid-internal/v1/segments"
BUDGET_KB = 20


def run_server(conn: Connection, http: str, loop: str = "asyncio") -> None:
    """The server process: a historical-like app, plus open control routes for the bench.

    ``http``: ``kdruid`` (the protocol kdruid's servers run) or ``uvicorn`` (uvicorn's own
    ``HttpToolsProtocol``, which writes a response's head and body separately). ``loop``:
    ``asyncio`` (what kdruid's servers run) or ``uvloop``."""
    import uvicorn
    from fastapi import FastAPI
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from common.aio import wait_until
    from common.auth.declare import INTERNAL, OPEN, install_allow_all
    from common.errors import install_error_handlers
    from common.httpproto import OneWriteHttpToolsProtocol
    from common.jsonresp import OrjsonResponse
    from common.longpoll import ChangeHistory, add_longpoll_route
    from common.lookups.node import NodeLookups
    from common.lookups.routes import LookupScopeMiddleware
    from common.procinfo import freeze_heap
    from common.serve import uvicorn_config

    base = OneWriteHttpToolsProtocol if http == "kdruid" else HttpToolsProtocol

    written: list[float] = []
    changed: list[float] = []
    cpu = [0.0, 0.0]  # process CPU time at the change and at the last long-poll response
    gc_time = [0.0, 0.0]  # time in the cyclic GC during the fan-out; when the current one began
    expected = [0]  # long-poll responses the change is to reach

    class TimedProtocol(base):  # type: ignore[valid-type,misc]
        """uvicorn's protocol noting when each long-poll response has been written in full."""

        def on_response_complete(self) -> None:
            if changed and self.cycle is not None and self.cycle.scope["path"] == PATH:
                written.append(time.perf_counter())
                if len(written) == expected[0]:
                    cpu[1] = time.process_time()
                    changed.append(0.0)  # the fan-out is over: GC no longer counted
            super().on_response_complete()

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if len(changed) == 1:  # during a fan-out
            if phase == "start":
                gc_time[1] = time.perf_counter()
            else:
                gc_time[0] += time.perf_counter() - gc_time[1]

    gc.callbacks.append(on_gc)
    history: ChangeHistory[dict[str, Any]] = ChangeHistory()
    served = [{"action": "load", "id": f"seg{i}"} for i in range(10)]
    history.add(served)
    app = FastAPI(default_response_class=OrjsonResponse)
    install_error_handlers(app, "bench")
    add_longpoll_route(app, PATH, history, lambda: served, dependencies=[INTERNAL])

    @app.get("/bench/parked", dependencies=[OPEN])
    async def parked() -> int:
        return history.parked

    @app.post("/bench/change", dependencies=[OPEN])
    async def change() -> float:
        expected[0] = history.parked
        written.clear()
        gc_time[0] = 0.0
        changed[:] = [time.perf_counter()]
        cpu[0] = time.process_time()
        at = time.time()
        history.add([{"action": "drop", "id": "seg0", "at": at}])
        return at

    @app.get("/bench/fanout", dependencies=[OPEN])
    async def fanout() -> dict[str, Any]:
        return {
            "written_ms": [(t - changed[0]) * 1000 for t in written],
            "cpu_ms": (cpu[1] - cpu[0]) * 1000,
            "gc_ms": gc_time[0] * 1000,
        }

    @app.post("/bench/trace/{what}", dependencies=[OPEN])
    async def trace(what: str) -> str:
        # Tracing starts just before the requests park, so what it holds afterwards (still
        # alive) is what they cost; nothing from before is traced.
        import gc
        import tracemalloc

        gc.collect()
        if what == "start":
            tracemalloc.start(12)
            return ""
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        tracemalloc.stop()
        return _trace_report(snapshot, history.parked)

    app.add_middleware(LookupScopeMiddleware, provider=NodeLookups("_default_tier", 60.0))
    install_allow_all(app, "bench")

    async def serve() -> None:
        config = uvicorn_config(
            app, lifespan="off", host="127.0.0.1", port=0, backlog=4096, http=TimedProtocol
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        await wait_until(lambda: server.started, within=30, what="uvicorn to start")
        freeze_heap()  # as every role once started (KDRUID_GC_FREEZE=0: off)
        conn.send(server.servers[0].sockets[0].getsockname()[1])
        await task

    factory = asyncio.new_event_loop
    if loop == "uvloop":  # pip install uvloop; kdruid's servers run asyncio's loop
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve())


def _trace_report(snapshot: Any, n: int) -> str:
    """Live Python allocations per parked request, by allocating line and by traceback."""
    by_line = snapshot.statistics("lineno")
    total = sum(s.size for s in by_line)
    lines = [f"python allocations alive per parked request ({n} parked): {total / n:.0f} B"]
    for s in by_line[:30]:
        frame = s.traceback[0]
        where = f"{_short(frame.filename)}:{frame.lineno}"
        lines.append(f"  {s.size / n:8.0f} B {s.count / n:6.2f} blocks  {where}")
    lines.append("by file:")
    for s in snapshot.statistics("filename")[:25]:
        where = _short(s.traceback[0].filename)
        lines.append(f"  {s.size / n:8.0f} B {s.count / n:6.2f} blocks  {where}")
    lines.append("by traceback (top 15, innermost frame last):")
    for s in snapshot.statistics("traceback")[:15]:
        lines.append(f"  {s.size / n:8.0f} B {s.count / n:6.2f} blocks")
        for frame in list(s.traceback)[-8:]:
            lines.append(f"      {_short(frame.filename)}:{frame.lineno}")
    return "\n".join(lines)


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "lib/python3.12/", "lib/python3.13/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return os.path.relpath(path)


def run_clients(
    url: str, counter: dict[str, Any], n: int, timeout_ms: int, nice: int, conn: Connection
) -> None:
    """One client process: park ``n`` requests, send back when each got the change (wall time)."""
    import aiohttp

    async def one(session: aiohttp.ClientSession) -> float:
        params = {"counter": counter["counter"], "hash": counter["hash"], "timeout": timeout_ms}
        async with session.get(url, params=params) as r:
            body = await r.json()
            arrived = time.time()
        if r.status != 200 or body["requests"][0]["action"] != "drop":
            raise RuntimeError(f"unexpected answer {r.status}: {body}")
        return arrived

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=n + 10, limit_per_host=n + 10)
        timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000 + 30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            conn.send(list(await asyncio.gather(*(one(session) for _ in range(n)))))
            # The connections stay open until the server's figures are read: closing 1,000
            # connections costs the server CPU too, but it is not the fan-out.
            conn.recv()

    # With ``nice`` > 0 the clients stand for other machines: they do not take the CPU from the
    # server they measure (they would be counted in its latency).
    os.nice(nice)
    _raise_nofile(n + 100)
    asyncio.run(main())


def run_raw_clients(
    url: str, counter: dict[str, Any], n: int, timeout_ms: int, nice: int, conn: Connection
) -> None:
    """``run_clients`` on bare asyncio sockets: one request written per connection, the answer
    taken in when its ``content-length`` bytes are in. An HTTP client library costs a core's worth
    of CPU per 1,000 answers on this machine, which the server then waits behind; this client is
    a few microseconds per answer, so the figures are the server's."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode(
        {"counter": counter["counter"], "hash": counter["hash"], "timeout": timeout_ms}
    )
    request = (f"GET {parts.path}?{query} HTTP/1.1\r\nhost: {parts.netloc}\r\n\r\n").encode()

    class Client(asyncio.Protocol):
        def __init__(self, done: asyncio.Future[float]) -> None:
            self.done = done
            self.data = b""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.write(request)

        def data_received(self, data: bytes) -> None:
            self.data += data
            head, sep, body = self.data.partition(b"\r\n\r\n")
            if not sep:
                return
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            if length is None or len(body) < int(length[1]):
                return
            if not self.done.done():
                if not head.startswith(b"HTTP/1.1 200 ") or b'"action":"drop"' not in body:
                    self.done.set_exception(RuntimeError(f"unexpected answer {self.data!r}"))
                else:
                    self.done.set_result(time.time())

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_exception(RuntimeError(f"connection lost: {exc}"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(n)]
        transports = []
        for done in futures:
            transport, _ = await loop.create_connection(
                lambda done=done: Client(done), parts.hostname, parts.port
            )
            transports.append(transport)
        conn.send(list(await asyncio.gather(*futures)))
        await loop.run_in_executor(None, conn.recv)  # as ``run_clients``: close after the figures
        for transport in transports:
            transport.close()

    os.nice(nice)
    _raise_nofile(n + 100)
    asyncio.run(main())


def _http(method: str, url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=60) as r:
        body = r.read()
    return json.loads(body) if body else None


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _pcts(values: list[float]) -> tuple[float, float, float]:
    lat = sorted(values)
    return statistics.median(lat), lat[min(len(lat) - 1, round(0.99 * len(lat)) - 1)], lat[-1]


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in ns (``/proc`` schedstat: the tick-based
    ``utime`` is too coarse for a fan-out of a few tens of ms)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def measure(
    n: int,
    procs: int,
    timeout_ms: int,
    nice: int = 0,
    profile: str | None = None,
    trace: bool = False,
    http: str = "kdruid",
    raw: bool = False,
    loop: str = "asyncio",
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    port_rx, port_tx = ctx.Pipe(duplex=False)
    server = ctx.Process(target=run_server, args=(port_tx, http, loop), daemon=True)
    server.start()
    clients: list[tuple[mp.process.BaseProcess, Connection]] = []
    try:
        assert server.pid is not None
        if not port_rx.poll(60):
            raise RuntimeError("the server did not start")
        base = f"http://127.0.0.1:{port_rx.recv()}"
        url = base + PATH
        # Warm the server (imports, first requests) before the baseline reading.
        for _ in range(20):
            snapshot = _http("GET", url + "?counter=-1&timeout=1")
        counter = snapshot["counter"]
        time.sleep(0.2)
        rss_before = rss_kb(server.pid)
        if trace:
            _http("POST", base + "/bench/trace/start")

        for i in range(procs):
            share = n // procs + (1 if i < n % procs else 0)
            mine, theirs = ctx.Pipe()
            p = ctx.Process(
                target=run_raw_clients if raw else run_clients,
                args=(url, counter, share, timeout_ms, nice, theirs),
                daemon=True,
            )
            p.start()
            clients.append((p, mine))
        deadline = time.monotonic() + 120
        while (parked := _http("GET", base + "/bench/parked")) != n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {parked}/{n} requests parked")
            time.sleep(0.05)
        time.sleep(0.2)
        rss_after = rss_kb(server.pid)
        if trace:
            print(_http("POST", base + "/bench/trace/report"), flush=True)

        spy = None
        if profile:
            # py-spy (pip install py-spy) samples the server while it delivers the change.
            spy = subprocess.Popen(
                ["py-spy", "record", "--nonblocking", "--rate", "1000", "--format",
                 "flamegraph" if profile.endswith(".svg") else "raw", "-o", profile,
                 "--pid", str(server.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(2)
        pids = [server.pid] + [p.pid for p, _ in clients if p.pid is not None]
        cpu_before = sum(cpu_ns(pid) for pid in pids)
        changed_at = float(_http("POST", base + "/bench/change"))
        arrivals: list[float] = []
        for _, rx in clients:
            if not rx.poll(timeout_ms / 1000 + 60):
                raise RuntimeError("a client process did not answer")
            arrivals.extend(rx.recv())
        cpu_all_ms = (sum(cpu_ns(pid) for pid in pids) - cpu_before) / 1e6
        fanout = _http("GET", base + "/bench/fanout")
        written: list[float] = fanout["written_ms"]
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
    finally:
        for _, rx in clients:
            with contextlib.suppress(OSError):
                rx.send("close")
        for p, _ in clients:
            p.join(10)
            if p.is_alive():
                p.kill()
        server.terminate()
        server.join(10)
        if server.is_alive():
            server.kill()
    if len(written) != n:
        raise RuntimeError(f"the server wrote {len(written)} long-poll responses, not {n}")
    c50, c99, cmax = _pcts([(a - changed_at) * 1000 for a in arrivals])
    s50, s99, smax = _pcts(written)
    return {
        "c50": c50,
        "c99": c99,
        "cmax": cmax,
        "s50": s50,
        "s99": s99,
        "smax": smax,
        "rss_before_mb": rss_before / 1024,
        "rss_after_mb": rss_after / 1024,
        "kb_per_parked": (rss_after - rss_before) / n,
        "server_cpu_ms": fanout["cpu_ms"],
        "gc_ms": fanout["gc_ms"],
        "cpu_all_ms": cpu_all_ms,
    }


def _raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def _tag(variant: str, variants: list[str]) -> str:
    return f" {variants.index(variant) + 1}" if len(variants) > 1 else ""


def _row(label: str, r: dict[str, float]) -> str:
    verdict = "ok" if r["kb_per_parked"] <= BUDGET_KB else f"OVER {BUDGET_KB} KB"
    return (
        f"{label:>10} {r['c50']:>7.1f} {r['c99']:>7.1f} {r['cmax']:>7.1f} "
        f"{r['s50']:>7.1f} {r['s99']:>7.1f} {r['smax']:>7.1f} "
        f"{r['rss_before_mb']:>7.1f} {r['rss_after_mb']:>7.1f} "
        f"{r['kb_per_parked']:>7.1f} {r['server_cpu_ms']:>7.1f} {r['gc_ms']:>7.1f} "
        f"{r['cpu_all_ms']:>7.1f}  {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--client-procs", type=int, default=4, help="processes the clients use")
    parser.add_argument("--runs", type=int, default=3, help="runs per N; medians are printed")
    parser.add_argument(
        "--client-nice", type=int, default=0, help="niceness of the client processes"
    )
    parser.add_argument("--timeout-ms", type=int, default=120_000, help="server hold per poll")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy the server during the fan-out (.svg or raw)"
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="print the parked requests' allocations"
    )
    parser.add_argument(
        "--raw-clients",
        action="store_true",
        help="clients on bare asyncio sockets instead of aiohttp (far less client CPU)",
    )
    parser.add_argument(
        "--http",
        nargs="+",
        choices=["kdruid", "uvicorn"],
        default=["kdruid"],
        help="server HTTP protocol(s); several are run interleaved, run by run (A/B)",
    )
    parser.add_argument(
        "--loop",
        nargs="+",
        choices=["asyncio", "uvloop"],
        default=["asyncio"],
        help="server event loop(s) (uvloop: pip install uvloop); several are run interleaved "
        "with each --http, run by run (A/B)",
    )
    args = parser.parse_args()
    variants = [f"{http}/{loop}" for http in args.http for loop in args.loop]
    if len(variants) > 1:
        for i, v in enumerate(variants):
            print(f"variant {i + 1}: {v}")
    _raise_nofile(2 * max(args.clients) + 200)

    print(f"load average before: {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")
    print(
        f"{'N / run':>10} {'cli p50':>7} {'cli p99':>7} {'cli max':>7} "
        f"{'srv p50':>7} {'srv p99':>7} {'srv max':>7} "
        f"{'RSS MB':>7} {'parked':>7} {'KB/park':>7} {'CPU ms':>7} {'GC ms':>7} {'CPU all':>7}"
        "  (latencies and CPU in ms)"
    )
    for n in args.clients:
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for i in range(1 if args.tracemalloc else args.runs):
            for variant in variants:
                http, loop = variant.split("/")
                r = measure(
                    n,
                    args.client_procs,
                    args.timeout_ms,
                    args.client_nice,
                    args.profile,
                    args.tracemalloc,
                    http,
                    args.raw_clients,
                    loop,
                )
                runs[variant].append(r)
                print(_row(f"{n} #{i + 1}" + _tag(variant, variants), r), flush=True)
        meds = {}
        for variant, rs in runs.items():
            if len(rs) > 1:
                meds[variant] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                print(_row(f"{n} median" + _tag(variant, variants), meds[variant]), flush=True)
        if len(meds) == 2:
            a, b = (meds[v] for v in variants)
            print(
                f"{n}: {variants[0]} / {variants[1]}, medians: server p99 "
                f"{a['s99'] / b['s99']:.2f}x, client p99 {a['c99'] / b['c99']:.2f}x, server CPU "
                f"{a['server_cpu_ms'] / b['server_cpu_ms']:.2f}x, CPU all "
                f"{a['cpu_all_ms'] / b['cpu_all_ms']:.2f}x",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
