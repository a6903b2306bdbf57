"""The sample feed of docker-compose and kind: the quickstart's wikipedia edits, sent to a Kafka
topic, plus the Kafka supervisor that ingests them, so a fresh cluster ends with queryable data.

    python -m services.sample_feed --overlord http://overlord:8090 --kafka kafka:9092

It waits (up to ``--wait`` seconds) for Kafka and for the overlord to accept the supervisor,
then produces ``--rate`` edits per second until SIGTERM. Posting the spec again on each start
replaces the stored one, so a restarted feed is harmless. Exit 1 if Kafka or the overlord never
came up (the container's restart policy tries again).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import replace

import httpx

from common.auth.clients import PLAIN_CLIENTS
from services import quickstart_ingest as sample
from services.sample_stream import produce_forever

log = logging.getLogger("kdruid.sample_feed")


async def submit_when_ready(
    overlord: str, kafka: str, topic: str, within: float, reset_offsets: bool
) -> bool:
    """Post the sample supervisor until the overlord takes it; False after ``within`` seconds.

    Redirects are followed: a standby overlord answers 307 to the leader, which keeps the
    method and the body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    feed = replace(sample.SAMPLES[0], topic=topic)
    async with PLAIN_CLIENTS.new(timeout=10.0, follow_redirects=True) as http:
        while True:
            try:
                await sample.submit(http, overlord, kafka, feed, reset_offsets)
                return True
            except (RuntimeError, httpx.HTTPError) as exc:
                if loop.time() >= deadline:
                    log.error("the overlord at %s did not take the supervisor: %s", overlord, exc)
                    return False
                log.info("overlord not ready yet (%s); retrying", exc)
            await asyncio.sleep(2.0)


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    deadline = loop.time() + args.wait
    # The producer first: the first records create the topic the supervisor then reads.
    while True:
        producer = asyncio.create_task(produce_forever(args.kafka, args.topic, args.rate, stop))
        await asyncio.sleep(1.0)
        if not producer.done():
            break
        exc = producer.exception()
        if exc is None:  # stopped by a signal before it got going
            return 0
        if loop.time() >= deadline or stop.is_set():
            log.error("cannot produce to Kafka at %s: %s", args.kafka, exc)
            return 1
        log.info("Kafka at %s not ready yet (%s); retrying", args.kafka, exc)
        await asyncio.sleep(2.0)
    log.info("producing %.0f sample edits/s to %s topic %r", args.rate, args.kafka, args.topic)
    remaining = max(1.0, deadline - loop.time())
    if not await submit_when_ready(
        args.overlord, args.kafka, args.topic, remaining, args.reset_offsets
    ):
        stop.set()
        await asyncio.gather(producer, return_exceptions=True)
        return 1
    log.info("supervisor %r submitted to %s", sample.DATASOURCE, args.overlord)
    sent = await producer
    log.info("stopped after %d edits", sent)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.sample_feed", description=__doc__)
    parser.add_argument("--overlord", required=True, help="overlord URL, e.g. http://overlord:8090")
    parser.add_argument("--kafka", required=True, help="Kafka bootstrap HOST:PORT")
    parser.add_argument("--topic", default="wikipedia", help="topic (default wikipedia)")
    parser.add_argument("--rate", type=float, default=20.0, help="edits per second (default 20)")
    parser.add_argument(
        "--wait", type=float, default=300.0, help="seconds to wait for Kafka and the overlord"
    )
    parser.add_argument(
        "--reset-offsets",
        action="store_true",
        help="reset the supervisor's stored offsets first (after a Kafka that lost its topics)",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-5s %(name)s: %(message)s"
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
