"""Query overhead of TLS and of basic security on bench/query.py's data, in one run: three
broker+historical pairs (plain, TLS only, basic security) queried in turn with the same bodies,
plus the TLS handshake cost (a new connection per request vs a kept-alive one).

    python -m bench.security_query --rows 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.query import INTERVAL, QUERIES, build_segments, make_table
from common.serverview.changes import SegmentChangeRequest
from tests.support.cluster import Cluster, sqlite_properties
from tests.support.security import ADMIN, INTERNAL_PASSWORD, basic_security_properties
from tests.support.tls import make_pki, tls_properties


def ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def start(
    kind: str, tmp: Path, segments: list[Any], ctx: ssl.SSLContext
) -> tuple[Cluster, str, httpx.AsyncClient, Any]:
    d = tmp / kind
    d.mkdir()
    props: dict[str, Any] = {
        **sqlite_properties(d),
        "druid.segmentCache.locations": json.dumps([{"path": str(d / "cache"), "maxSize": 10**12}]),
    }
    if kind == "basic":
        props.update(basic_security_properties())
    if kind == "tls":
        props.update(tls_properties(make_pki(d)))
        ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    client = httpx.AsyncClient(verify=ctx if kind == "tls" else True, timeout=300)
    c = Cluster(props)
    if kind == "basic":  # serves the users and roles the other nodes fetch
        await c.start("coordinator")
    h = await c.start("historical")
    registry = h.service.registry  # type: ignore[attr-defined]
    pending = [SegmentChangeRequest.load(s).to_json() for s in segments]
    internal = ("druid_system", INTERNAL_PASSWORD) if kind == "basic" else None
    while len(registry) < len(segments):
        await client.post(
            f"{h.url}/druid-internal/v1/segments/changeRequests?timeout=60000",
            json=pending,
            auth=internal,
        )
    broker = await c.start("broker")
    auth = ADMIN if kind == "basic" else None
    body = {"dataSource": "bench", **next(iter(QUERIES.values()))[0], "intervals": [INTERVAL]}
    while True:  # until the broker sees every segment
        r = await client.post(f"{broker.url}/druid/v2", json=body, auth=auth)
        if r.status_code == 200 and r.json():
            break
        await asyncio.sleep(0.1)
    return c, broker.url, client, auth


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kdruid-bench-secq-"))
    segments = build_segments(make_table(args.rows), args.segments, tmp)
    kinds = ["plain", "tls", "basic"]
    ctx = ssl.create_default_context()
    setups = {k: await start(k, tmp, segments, ctx) for k in kinds}
    try:
        print(
            f"{'query':<20} {'plain ms':>9} {'tls ms':>8} {'basic ms':>9} {'tls/plain':>9} "
            f"{'basic/plain':>11}"
        )
        for name, (spec, _) in QUERIES.items():
            content = orjson.dumps({"dataSource": "bench", **spec, "intervals": [INTERVAL]})
            times: dict[str, list[float]] = {k: [] for k in kinds}
            for i in range(args.runs + 1):  # round 0 warms up
                for k in kinds:
                    _, url, client, auth = setups[k]
                    t = time.perf_counter()
                    r = await client.post(
                        f"{url}/druid/v2",
                        content=content,
                        headers={"Content-Type": "application/json"},
                        auth=auth,
                    )
                    if i:
                        times[k].append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text
            p, t_, b = (ms(times[k]) for k in kinds)
            print(
                f"{name:<20} {p:>9.1f} {t_:>8.1f} {b:>9.1f} {t_ / p:>9.2f} {b / p:>11.2f}",
                flush=True,
            )
        # handshake: GET /status/health on a fresh connection each time vs one kept alive
        for k in ("plain", "tls"):
            _, url, client, _ = setups[k]
            verify = client._transport._pool._ssl_context  # type: ignore[attr-defined]
            fresh, kept = [], []
            for _ in range(args.handshakes):
                async with httpx.AsyncClient(verify=verify) as one:
                    t = time.perf_counter()
                    await one.get(f"{url}/status/health")
                    fresh.append(time.perf_counter() - t)
                t = time.perf_counter()
                await client.get(f"{url}/status/health")
                kept.append(time.perf_counter() - t)
            print(
                f"{k}: GET /status/health new connection p50 {ms(fresh):.2f} ms, "
                f"kept-alive p50 {ms(kept):.2f} ms, connection setup {ms(fresh) - ms(kept):.2f} ms"
            )
        print(f"rows={args.rows:,} segments={args.segments} runs={args.runs}")
    finally:
        for c, _, client, _ in setups.values():
            await client.aclose()
            await c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--handshakes", type=int, default=200)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
