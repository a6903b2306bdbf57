"""Leader failover time of the k8s backend after a clean stop and after a kill -9.

Runs ``--candidates`` coordinator candidates (LeaderSelector over the ConfigMap or Lease lock)
against the in-process Kubernetes API-server double, ``--rounds`` times per mode:

* clean: the leader closes its selector (steps down and releases the lock);
* kill: the leader's election loop is cancelled without step-down or release (kill -9).

Prints, per mode, the time from the stop to the next candidate becoming leader.

    .venv/bin/python -m bench.failover --lease 2 --renew 1.2 --retry 0.3 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

from common.aio import TaskGroup
from common.config import load_settings
from common.discovery.leader import LeaderSelector
from common.k8s.backend import K8sDiscoveryBackend
from tests.support.k8s_api import K8sApiDouble, backend_properties


class Became:
    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.at = 0.0

    async def become_leader(self, term: int, work: TaskGroup) -> None:
        self.at = time.perf_counter()
        self.event.set()

    async def stop_being_leader(self) -> None:
        pass


async def first_event(events: list[asyncio.Event]) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def one_round(settings_path: str, args: argparse.Namespace, mode: str, rnd: int) -> float:
    props = backend_properties(
        settings_path,
        **{
            "druid.discovery.k8s.leaderElectionLock": args.lock,
            "druid.discovery.k8s.leaseDuration": f"PT{args.lease}S",
            "druid.discovery.k8s.renewDeadline": f"PT{args.renew}S",
            "druid.discovery.k8s.retryPeriod": f"PT{args.retry}S",
        },
    )
    settings = load_settings("coordinator", properties=props, environ={})
    backends, selectors, listeners = [], [], []
    for i in range(args.candidates):
        env = {"POD_NAME": f"c{i}", "POD_NAMESPACE": f"round-{mode}-{rnd}"}
        b = await K8sDiscoveryBackend.create(settings, environ=env)
        s: LeaderSelector = b.leader_selector("coordinator", f"http://c{i}:8081")
        listener = Became()
        s.register_listener(listener)
        backends.append(b)
        selectors.append(s)
        listeners.append(listener)
    try:
        await first_event([x.event for x in listeners])
        leader = next(i for i, s in enumerate(selectors) if s.is_leader())
        # Let followers observe the record for a moment, as in a running cluster.
        await asyncio.sleep(args.retry * 2)
        for i, x in enumerate(listeners):
            if i != leader:
                x.event.clear()
        stopped = time.perf_counter()
        if mode == "clean":
            await selectors[leader].close()
        else:
            task = selectors[leader]._loop_task
            assert task is not None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        others = [x for i, x in enumerate(listeners) if i != leader]
        await first_event([x.event for x in others])
        return min(x.at for x in others if x.event.is_set()) - stopped
    finally:
        for s in selectors:
            await s.close()
        for b in backends:
            await b.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with K8sApiDouble() as api:
            kubeconfig = api.write_kubeconfig(Path(tmp) / "kubeconfig")
            for mode in ("clean", "kill"):
                times = [await one_round(kubeconfig, args, mode, r) for r in range(args.rounds)]
                print(f"failover after {mode:5} stop ({args.lock} lock, lease {args.lease}s, "
                      f"renew {args.renew}s, retry {args.retry}s, {args.candidates} candidates, "
                      f"{args.rounds} rounds): mean {statistics.mean(times):.3f} s, "
                      f"min {min(times):.3f} s, max {max(times):.3f} s")  # fmt: skip


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease", type=float, default=2.0, help="leaseDuration, seconds")
    parser.add_argument("--renew", type=float, default=1.2, help="renewDeadline, seconds")
    parser.add_argument("--retry", type=float, default=0.3, help="retryPeriod, seconds")
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lock", choices=["configmap", "lease"], default="configmap")
    asyncio.run(main(parser.parse_args()))
