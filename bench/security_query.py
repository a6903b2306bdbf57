"""What TLS and basic security cost a query: bench.query's queries on three clusters at once.

Three clusters in this process, each a coordinator, a historical and a broker serving the same
segments (bench.query's table, cut into ``--segments``, loaded by each coordinator as in
production): plain HTTP; TLS only (``druid.enablePlaintextPort=false``, certificates made here);
TLS with Druid's basic security (basic authenticator and authorizer with the initial admin and
internal-client passwords, the ``basic`` escalator for every internal call; queries run as
``admin``). Every request is interleaved across the three setups (rotating the order) so they
share the machine's load, and the three answers of each query must be identical.

Prints, per query and setup, p50/p99 latency through the broker on a kept-alive connection and
the ratio of each p50 to plain's; then ``GET /status/health`` on a new connection every time vs
on a reused one (the difference is what a connection costs), and the TCP (+ TLS) handshake
alone.

    .venv/bin/python -m bench.security_query                       # 1 M rows, 40 runs
    .venv/bin/python -m bench.security_query --rows 200000 --runs 20  # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import orjson

from bench.query import INTERVAL, QUERIES, build_segments, make_table
from common.segments.segment import DataSegment
from tests.support.cluster import Cluster, Node, sqlite_properties
from tests.support.security import ADMIN, basic_security_properties
from tests.support.tls import TestPki, make_pki, tls_properties

SETUPS = ("plain", "tls", "tls+auth")
#: Slower discovery polling than the tests' (fewer background wake-ups in the timings).
QUIET = {
    "druid.discovery.metadata.heartbeatPeriod": "PT1S",
    "druid.discovery.metadata.pollPeriod": "PT0.5S",
    "druid.discovery.metadata.nodeTtl": "PT10S",
}


@dataclass
class Setup:
    name: str
    cluster: Cluster
    broker: Node
    verify: ssl.SSLContext | bool
    #: kept-alive connections (one pool for the whole run); admin's credentials with auth on
    reused: httpx.AsyncClient
    #: a new connection (TCP, and TLS if on) for every request; the SSL context is shared
    fresh: httpx.AsyncClient
    times: dict[str, list[float]] = field(default_factory=dict)


def properties(name: str, root: Path, deep: Path, pki: TestPki) -> dict[str, str]:
    props = {
        **sqlite_properties(root),
        **QUIET,
        "druid.storage.storageDirectory": str(deep),
        "druid.segmentCache.locations": json.dumps(
            [{"path": str(root / "cache"), "maxSize": 10**12}]
        ),
    }
    if name != "plain":
        props.update(tls_properties(pki))
    if name == "tls+auth":
        props.update(basic_security_properties(polling_ms=60_000))
    return props


async def start(name: str, root: Path, deep: Path, pki: TestPki) -> Setup:
    c = Cluster(properties(name, root, deep, pki))
    await c.start("coordinator")
    await c.start("historical")
    broker = await c.start("broker")
    verify: ssl.SSLContext | bool = True
    if name != "plain":
        verify = ssl.create_default_context(cafile=str(pki.ca))
    auth = ADMIN if name == "tls+auth" else None
    setup = Setup(
        name=name,
        cluster=c,
        broker=broker,
        verify=verify,
        reused=httpx.AsyncClient(verify=verify, auth=auth, timeout=300),
        fresh=httpx.AsyncClient(
            verify=verify,
            auth=auth,
            timeout=300,
            limits=httpx.Limits(max_keepalive_connections=0),
        ),
    )
    return setup


async def close(setup: Setup) -> None:
    await setup.reused.aclose()
    await setup.fresh.aclose()
    await setup.cluster.close()


async def wait_loaded(setup: Setup, segments: list[DataSegment], rows: int) -> None:
    """Publish the segments in this cluster's metadata store, then wait until its broker counts
    every row (the coordinator loads them onto the historical)."""
    store = setup.cluster.nodes["coordinator"].service.store
    # one historical: one replica (as kdruid quickstart sets it)
    await store.set_rules(
        "bench", [{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}]
    )
    await store.insert_segments(segments)
    query = {
        "queryType": "timeseries",
        "dataSource": "bench",
        "intervals": [INTERVAL],
        "granularity": "all",
        "aggregations": [{"type": "count", "name": "n"}],
    }
    deadline = time.monotonic() + 120
    last = ""
    while time.monotonic() < deadline:
        r = await setup.reused.post(f"{setup.broker.url}/druid/v2", json=query)
        last = f"{r.status_code} {r.text[:200]}"
        if r.status_code == 200 and r.json() and r.json()[0]["result"]["n"] == rows:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{setup.name}: the broker never counted {rows} rows (last: {last})")


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q)) * 1000


async def run_queries(setups: list[Setup], runs: int) -> None:
    print(f"{'query':<18} {'setup':<9} {'p50 ms':>8} {'p99 ms':>8} {'p50/plain':>10}")
    for qname, (spec, _) in QUERIES.items():
        body = orjson.dumps({"dataSource": "bench", **spec, "intervals": [INTERVAL]})
        samples: dict[str, list[float]] = {s.name: [] for s in setups}
        for i in range(runs + 2):  # two warm-up rounds, not counted
            answers = []
            for s in setups[i % 3 :] + setups[: i % 3]:
                t = time.perf_counter()
                resp = await s.reused.post(
                    f"{s.broker.url}/druid/v2",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                elapsed = time.perf_counter() - t
                assert resp.status_code == 200, (s.name, resp.text[:300])
                answers.append(resp.json())
                if i >= 2:
                    samples[s.name].append(elapsed)
            assert answers[0] == answers[1] == answers[2], f"{qname}: setups disagree"
        base = pct(samples["plain"], 50)
        for s in setups:
            p50, p99 = pct(samples[s.name], 50), pct(samples[s.name], 99)
            print(f"{qname:<18} {s.name:<9} {p50:>8.2f} {p99:>8.2f} {p50 / base:>10.2f}")


async def handshake(setup: Setup) -> float:
    """Seconds to open a TCP connection to the broker and, with TLS, complete the handshake."""
    url = httpx.URL(setup.broker.url)
    ctx = setup.verify if isinstance(setup.verify, ssl.SSLContext) else None
    t = time.perf_counter()
    _, writer = await asyncio.open_connection(url.host, url.port, ssl=ctx)
    elapsed = time.perf_counter() - t
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError):
        pass
    return elapsed


async def run_connections(setups: list[Setup], runs: int) -> None:
    print(
        f"\n{'GET /status/health':<18} {'setup':<9} {'new conn p50':>13} {'p99':>7} "
        f"{'reused p50':>11} {'p99':>7} {'handshake p50':>14} {'p99':>7}"
    )
    new: dict[str, list[float]] = {s.name: [] for s in setups}
    reused: dict[str, list[float]] = {s.name: [] for s in setups}
    shake: dict[str, list[float]] = {s.name: [] for s in setups}
    for i in range(runs + 5):
        for s in setups[i % 3 :] + setups[: i % 3]:
            url = f"{s.broker.url}/status/health"
            t = time.perf_counter()
            r1 = await s.fresh.get(url)
            t_new = time.perf_counter() - t
            t = time.perf_counter()
            r2 = await s.reused.get(url)
            t_old = time.perf_counter() - t
            t_shake = await handshake(s)
            assert r1.status_code == r2.status_code == 200
            if i >= 5:
                new[s.name].append(t_new)
                reused[s.name].append(t_old)
                shake[s.name].append(t_shake)
    for s in setups:
        n, o, h = new[s.name], reused[s.name], shake[s.name]
        print(
            f"{'':<18} {s.name:<9} {pct(n, 50):>13.2f} {pct(n, 99):>7.2f} "
            f"{pct(o, 50):>11.2f} {pct(o, 99):>7.2f} {pct(h, 50):>14.2f} {pct(h, 99):>7.2f}"
        )


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kdruid-bench-security-"))
    print(f"building {args.rows:,} rows in {args.segments} segments ...", flush=True)
    segments = build_segments(make_table(args.rows), args.segments, tmp)
    pki = make_pki(tmp)
    setups: list[Setup] = []
    try:
        for name in SETUPS:
            root = tmp / name.replace("+", "-")
            root.mkdir()
            setups.append(await start(name, root, tmp / "deep", pki))
        for s in setups:
            await wait_loaded(s, segments, args.rows)
        print(f"three clusters ready: {', '.join(s.broker.url for s in setups)}", flush=True)
        await run_queries(setups, args.runs)
        await run_connections(setups, args.connections)
        print(
            f"\nrows={args.rows:,} segments={args.segments} runs={args.runs} "
            f"connections={args.connections} cpus={os.cpu_count()} (all in one process)"
        )
    finally:
        for s in setups:
            await close(s)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=2)
    parser.add_argument("--runs", type=int, default=40, help="timed runs per query and setup")
    parser.add_argument("--connections", type=int, default=200, help="timed connection rounds")
    logging.basicConfig(level=logging.WARNING)
    # the clusters' own start-up and teardown chatter (leaders stepping down, a historical gone)
    for noisy in ("common.discovery.leader", "services.coordinator.duty_loop"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    asyncio.run(main(parser.parse_args()))
