"""Long-poll fan-out benchmark: N clients parked on one server, one change, time until each has it.

The server (uvicorn + ``add_longpoll_route``) runs in its own process so the clients' CPU does
not distort it; the clients are one aiohttp session with a connector wide enough for all of them.
For each N it prints the change-to-client latency (p50/p99/max, wall clock shared by both
processes), the server's CPU time spent delivering the change (user + system, from /proc: on a
loaded machine it moves far less than the wall clock) and the server's RSS before and after N
requests are parked, against the budget of <= 30 KB per parked request (docs/architecture.md,
"Budgets").

    .venv/bin/python bench/longpoll.py --clients 100 1000
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import signal
import statistics
import time
from multiprocessing.queues import Queue
from typing import Any

import aiohttp

PATH = "/druid-internal/v1/segments"
BUDGET_KB = 30


def run_server(port_out: Queue[int]) -> None:
    """The server process: a ChangeHistory endpoint plus two control routes for the bench."""
    import uvicorn
    from fastapi import FastAPI

    from common.aio import wait_until
    from common.longpoll import ChangeHistory, add_longpoll_route

    history: ChangeHistory[dict[str, Any]] = ChangeHistory()
    served = [{"action": "load", "id": f"seg{i}"} for i in range(10)]
    history.add(served)
    app = FastAPI()
    add_longpoll_route(app, PATH, history, lambda: served)

    @app.get("/bench/parked")
    async def parked() -> int:
        return history.parked

    @app.post("/bench/change")
    async def change() -> float:
        at = time.time()
        history.add([{"action": "drop", "id": "seg0", "at": at}])
        return at

    async def serve() -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", backlog=4096, lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        await wait_until(lambda: server.started, within=30, what="uvicorn to start")
        port_out.put(server.servers[0].sockets[0].getsockname()[1])
        await task

    asyncio.run(serve())


def cpu_ms(pid: int) -> float:
    """User + system CPU time of ``pid`` so far: unlike wall clock, not inflated by other load."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def one_client(
    session: aiohttp.ClientSession, url: str, counter: dict[str, Any], timeout_ms: int
) -> float:
    """Park on ``counter``; return the wall time at which the change arrived."""
    params = {"counter": counter["counter"], "hash": counter["hash"], "timeout": timeout_ms}
    async with session.get(url, params=params) as r:
        body = await r.json()
        arrived = time.time()
    if r.status != 200 or body["requests"][0]["action"] != "drop":
        raise RuntimeError(f"unexpected answer {r.status}: {body}")
    return arrived


async def measure(n: int, timeout_ms: int, profile: str | None = None) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    port_q: Queue[int] = ctx.Queue()
    proc = ctx.Process(target=run_server, args=(port_q,), daemon=True)
    proc.start()
    try:
        assert proc.pid is not None
        base = f"http://127.0.0.1:{port_q.get(timeout=30)}"
        url = base + PATH
        connector = aiohttp.TCPConnector(limit=n + 10, limit_per_host=n + 10)
        timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000 + 30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            # Warm the server (imports, first request) before the baseline reading.
            for _ in range(20):
                async with session.get(url, params={"counter": -1, "timeout": 1}) as r:
                    snapshot = await r.json()
            counter = snapshot["counter"]
            rss_before = rss_kb(proc.pid)

            clients = [
                asyncio.create_task(one_client(session, url, counter, timeout_ms)) for _ in range(n)
            ]
            deadline = time.monotonic() + 60
            while True:
                async with session.get(base + "/bench/parked") as r:
                    parked = await r.json()
                if parked == n:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {parked}/{n} requests parked")
                await asyncio.sleep(0.05)
            rss_after = rss_kb(proc.pid)

            spy = None
            if profile:
                # py-spy (pip install py-spy) samples the server while it delivers the change.
                spy = await asyncio.create_subprocess_exec(
                    "py-spy", "record", "--nonblocking", "--rate", "1000", "--format",
                    "flamegraph" if profile.endswith(".svg") else "raw", "-o", profile,
                    "--pid", str(proc.pid),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                await asyncio.sleep(2)
            cpu_before = cpu_ms(proc.pid)
            async with session.post(base + "/bench/change") as r:
                changed_at = float(await r.json())
            arrivals = await asyncio.gather(*clients)
            fanout_cpu = cpu_ms(proc.pid) - cpu_before
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
    finally:
        proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    lat = sorted((a - changed_at) * 1000 for a in arrivals)
    return {
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, round(0.99 * len(lat)) - 1)],
        "max": lat[-1],
        "rss_before_mb": rss_before / 1024,
        "rss_after_mb": rss_after / 1024,
        "kb_per_parked": (rss_after - rss_before) / n,
        "server_cpu_ms": fanout_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--timeout-ms", type=int, default=120_000, help="server hold per poll")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy the server during the fan-out (.svg or raw)"
    )
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * max(args.clients) + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    print(
        f"{'N':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'RSS before':>11} {'RSS parked':>11} {'KB/parked':>10} {'srv CPU ms':>10}"
    )
    for n in args.clients:
        r = asyncio.run(measure(n, args.timeout_ms, args.profile))
        verdict = "ok" if r["kb_per_parked"] <= BUDGET_KB else f"OVER {BUDGET_KB} KB budget"
        print(
            f"{n:>6} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} "
            f"{r['rss_before_mb']:>9.1f}MB {r['rss_after_mb']:>9.1f}MB "
            f"{r['kb_per_parked']:>10.1f} {r['server_cpu_ms']:>10.0f}  {verdict}",
            flush=True,
        )


if __name__ == "__main__":
    main()
