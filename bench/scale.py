"""Server-inventory scale: one broker's and one coordinator's view of many data nodes.

A data-plane process serves ``--nodes`` virtual data nodes: one listening socket (own port) per
node, all served by one uvicorn server whose ASGI app picks the node by the port the request came
in on, and answers ``/druid-internal/v1/segments`` with that node's ``ChangeHistory`` exactly as a
historical does (``longpoll_response``). Each node serves ``--segments`` segments.

The watcher process holds what a broker and a coordinator hold: two ``HttpServerInventoryView``
(the broker's with its ``BrokerServerView`` timeline callback), fed by one discovery node cache.
Both views live in one process, so the figures are for a broker and a coordinator sharing a core.

It prints, for each phase, the wall time until both views equal the data plane exactly (every
node's segment set, every broker timeline entry), and the CPU each process spent on it:

* cold start: discovery hands over every node at once; each view full-syncs every node;
* restart: ``--restart`` (default 10%) of the nodes restart at once (new history epoch, parked
  polls cut with 503, one segment replaced by a newer version), and discovery shows each pod
  leave and come back;
* idle: CPU of both processes per second while every view holds one parked poll per node;
* change: one segment announced on every node at once, until both views have all of them.

Traffic goes only to 127.0.0.1.

    .venv/bin/python bench/scale.py --nodes 200 --segments 500
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CONTROL = "/bench/control"


def segment_json(node: int, j: int, generation: int) -> dict[str, Any]:
    """Segment ``j`` of ``node``: ten data sources, one hour each, partition = node."""
    start = f"2024-01-{1 + (j // 240) % 28:02d}T{(j // 10) % 24:02d}:00:00.000Z"
    end = f"2024-01-{1 + (j // 240) % 28:02d}T{(j // 10) % 24:02d}:59:59.999Z"
    return {
        "dataSource": f"ds{j % 10}",
        "interval": f"{start}/{end}",
        "version": f"v{generation}-{j // 6000}",
        "loadSpec": {"type": "local", "path": f"/deep/ds{j % 10}/{j}/{node}/index.parquet"},
        "dimensions": "channel,page,user",
        "metrics": "count,added",
        "shardSpec": {"type": "numbered", "partitionNum": node, "partitions": 0},
        "binaryVersion": 9,
        "size": 1_000_000 + j,
    }


def node_segments(node: int, count: int, restarts: int) -> list[dict[str, Any]]:
    """What ``node`` serves after ``restarts`` restarts: each restart replaces segment 0."""
    segs = [segment_json(node, j, 0) for j in range(1, count)]
    return [segment_json(node, 0, restarts), *segs]


def cpu_s(pid: int | None = None) -> float:
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the data plane


def data_plane(n: int, per_node: int, conn: Connection) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.types import Receive, Scope, Send

    from common.aio import wait_until
    from common.longpoll import ChangeHistory, longpoll_response
    from common.segments.segment import DataSegment
    from common.serverview.changes import SegmentChangeRequest

    def load(raw: dict[str, Any]) -> dict[str, Any]:
        return SegmentChangeRequest.load(DataSegment.from_json(raw)).to_json()

    @dataclass
    class Node:
        index: int
        served: list[dict[str, Any]]
        history: ChangeHistory[dict[str, Any]] = field(default_factory=ChangeHistory)
        restarts: int = 0

    socks = []
    for _ in range(n + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1024)
        s.setblocking(False)
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    control_port = ports[-1]
    nodes = {
        p: Node(i, [load(s) for s in node_segments(i, per_node, 0)])
        for i, p in enumerate(ports[:-1])
    }

    announced = 0

    def restart(indexes: list[int]) -> None:
        for node in nodes.values():
            if node.index in indexes:
                node.history.close()  # parked polls get 503, as from a stopping node
                node.restarts += 1
                node.history = ChangeHistory()
                raws = node_segments(node.index, per_node, node.restarts) + [
                    segment_json(node.index, per_node + k + 1, node.restarts)
                    for k in range(announced)
                ]
                node.served = [load(s) for s in raws]

    def announce_one() -> None:
        nonlocal announced
        announced += 1
        for node in nodes.values():
            extra = load(segment_json(node.index, per_node + announced, node.restarts))
            node.served.append(extra)
            node.history.add([extra])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        port = scope["server"][1]
        if port == control_port:
            request = Request(scope, receive)
            body = await request.json()
            if body["do"] == "restart":
                restart(body["nodes"])
            elif body["do"] == "announce":
                announce_one()
            parked = sum(node.history.parked for node in nodes.values())
            await JSONResponse({"parked": parked})(scope, receive, send)
            return
        node = nodes[port]
        history = node.history
        response = await longpoll_response(
            Request(scope, receive), history, lambda: node.served, host="bench"
        )
        await response(scope, receive, send)

    async def serve() -> None:
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=socks))
        await wait_until(lambda: server.started, within=30, what="uvicorn to start")
        conn.send(ports)
        await task

    asyncio.run(serve())


# ---------------------------------------------------------------- the watchers


class Watchers:
    def __init__(self, ports: list[int], per_node: int, server_timeout: float) -> None:
        from common.discovery.base import NodeRoleWatcher
        from common.serverview.inventory import HttpServerInventoryView
        from services.broker.view import BrokerServerView

        self.ports = ports
        self.per_node = per_node
        self.restarts = [0] * len(ports)
        self.extra = 0
        self.discovery = NodeRoleWatcher("historical")
        self.broker_view = BrokerServerView()
        self.broker = HttpServerInventoryView(
            self.discovery, server_timeout=server_timeout, name="broker"
        )
        self.broker.register_callback(self.broker_view)
        self.coordinator = HttpServerInventoryView(
            self.discovery, server_timeout=server_timeout, name="coordinator"
        )

    def node(self, i: int) -> Any:
        from common.discovery.node import DataNodeService, DiscoveryDruidNode, DruidNode

        return DiscoveryDruidNode(
            druidNode=DruidNode(
                service="druid/historical", host="127.0.0.1", plaintextPort=self.ports[i]
            ),
            nodeType="historical",
            services={"dataNodeService": DataNodeService(serverType="historical")},
            startTime=datetime.now(UTC),
        )

    def expected(self, i: int) -> set[Any]:
        from common.segments.segment import DataSegment

        raws = node_segments(i, self.per_node, self.restarts[i])
        raws += [
            segment_json(i, self.per_node + k + 1, self.restarts[i]) for k in range(self.extra)
        ]
        return {DataSegment.from_json(r).id for r in raws}

    def consistent(self, expected: list[set[Any]]) -> bool:
        total = sum(len(e) for e in expected)
        for view in (self.broker, self.coordinator):
            if not view.initialized.is_set():
                return False
            if sum(len(s.segments) for s in view.servers()) != total:
                return False
        if sum(len(v) for v in self.broker_view._servers.values()) != total:
            return False
        for view in (self.broker, self.coordinator):
            for i, want in enumerate(expected):
                server = view.get_server(f"127.0.0.1:{self.ports[i]}")
                if server is None or server.segments.keys() != want:
                    return False
        pairs = {(sid, name) for sid, refs in self.broker_view._servers.items() for name in refs}
        want_pairs = {
            (sid, f"127.0.0.1:{self.ports[i]}") for i, want in enumerate(expected) for sid in want
        }
        return pairs == want_pairs


async def _wait(
    w: Watchers,
    expected: list[set[Any]],
    t: float,
    c_self: float,
    c_data: float,
    data_pid: int,
    within: float,
) -> dict[str, float]:
    deadline = t + within
    while not w.consistent(expected):
        if time.perf_counter() > deadline:
            raise RuntimeError("views did not become consistent")
        await asyncio.sleep(0.05)
    return {
        "wall_s": time.perf_counter() - t,
        "watcher_cpu_s": cpu_s() - c_self,
        "data_cpu_s": cpu_s(data_pid) - c_data,
    }


_CONTROL: Any = None


async def control(port: int, body: dict[str, Any]) -> int:
    """Tell the data plane what to do; answers how many polls are parked there."""
    import httpx

    global _CONTROL
    if _CONTROL is None:  # one client: building one costs more than the change it times
        _CONTROL = httpx.AsyncClient(timeout=30)
    r = await _CONTROL.post(f"http://127.0.0.1:{port}{CONTROL}", json=body)
    r.raise_for_status()
    return int(r.json()["parked"])


async def run(args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=data_plane, args=(args.nodes, args.segments, child), daemon=True)
    proc.start()
    assert proc.pid is not None
    try:
        ports: list[int] = parent.recv()
        control_port, ports = ports[-1], ports[:-1]
        w = Watchers(ports, args.segments, args.server_timeout)
        expected = [w.expected(i) for i in range(len(ports))]
        print(
            f"{args.nodes} data nodes x {args.segments} segments = "
            f"{args.nodes * args.segments:,} (segment, server) pairs; one broker + one "
            "coordinator view in one process",
            flush=True,
        )
        print(f"{'phase':<34} {'wall s':>8} {'watchers CPU s':>15} {'data plane CPU s':>17}")

        def show(phase: str, r: dict[str, float]) -> None:
            print(
                f"{phase:<34} {r['wall_s']:>8.2f} {r['watcher_cpu_s']:>15.2f} "
                f"{r['data_cpu_s']:>17.2f}",
                flush=True,
            )

        t, c_self, c_data = time.perf_counter(), cpu_s(), cpu_s(proc.pid)
        w.broker.start()
        w.coordinator.start()
        for i in range(len(ports)):
            w.discovery.node_added(w.node(i))
        w.discovery.cache_initialized()
        show("cold start -> consistent", await _wait(w, expected, t, c_self, c_data, proc.pid, 300))

        # Idle: every view parks one poll per node.
        while await control(control_port, {"do": "noop"}) < 2 * len(ports):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        c_self, c_data = cpu_s(), cpu_s(proc.pid)
        await asyncio.sleep(args.idle)
        idle_self = (cpu_s() - c_self) / args.idle
        idle_data = (cpu_s(proc.pid) - c_data) / args.idle

        # One change on every node.
        w.extra += 1
        expected = [w.expected(i) for i in range(len(ports))]
        t, c_self, c_data = time.perf_counter(), cpu_s(), cpu_s(proc.pid)
        await control(control_port, {"do": "announce"})
        show(
            "1 segment on every node -> seen",
            await _wait(w, expected, t, c_self, c_data, proc.pid, 300),
        )

        # A tenth of the nodes restart at once.
        k = max(1, round(args.nodes * args.restart))
        chosen = list(range(0, len(ports), max(1, len(ports) // k)))[:k]
        while await control(control_port, {"do": "noop"}) < 2 * len(ports):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for i in chosen:
            w.restarts[i] += 1
        expected = [w.expected(i) for i in range(len(ports))]
        t, c_self, c_data = time.perf_counter(), cpu_s(), cpu_s(proc.pid)
        await control(control_port, {"do": "restart", "nodes": chosen})
        for i in chosen:
            w.discovery.node_removed(f"127.0.0.1:{ports[i]}")
            w.discovery.node_added(w.node(i))
        show(
            f"{k} nodes restart -> consistent",
            await _wait(w, expected, t, c_self, c_data, proc.pid, 300),
        )
        print(
            f"idle, {2 * len(ports)} parked polls: watchers {idle_self * 1000:.1f} ms CPU/s, "
            f"data plane {idle_data * 1000:.1f} ms CPU/s"
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"watcher process peak RSS: {rss:.0f} MB")
        await w.broker.close()
        await w.coordinator.close()
    finally:
        proc.terminate()
        proc.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--segments", type=int, default=500, help="segments per node")
    parser.add_argument("--restart", type=float, default=0.1, help="fraction of nodes restarted")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle measurement")
    parser.add_argument(
        "--server-timeout", type=float, default=240.0, help="long-poll hold (s), Druid's PT4M"
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8 * args.nodes + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
