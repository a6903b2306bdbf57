"""The ``kdruid`` command: ``kdruid <role> [--config FILE]`` and ``kdruid quickstart``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from typing import cast

from fastapi import FastAPI

from common.config import ROLES, Settings, load_settings
from common.errors import ConfigError

log = logging.getLogger("kdruid")


def app_factory(role: str) -> Callable[[Settings], FastAPI]:
    """``services.<role>.app.create_app`` (imported lazily: a process loads only its role)."""
    module = importlib.import_module(f"services.{role}.app")
    return cast(Callable[[Settings], FastAPI], module.create_app)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_role(role: str, config: str | None) -> int:
    from common.serve import serve_forever

    try:
        settings = load_settings(role, config_path=config)
    except ConfigError as exc:
        print(f"kdruid {role}: configuration error: {exc}", file=sys.stderr)
        return 2
    app = app_factory(role)(settings)
    log.info("starting %s on port %d", role, settings.node.plaintext_port)
    serve_forever(app, settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kdruid", description="Apache Druid's cluster as Kubernetes-native Python services."
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for role in ROLES:
        p = sub.add_parser(role, help=f"run the {role}")
        p.add_argument("--config", help="a Druid runtime.properties file")
    q = sub.add_parser("quickstart", help="run every role locally, with sample data")
    q.add_argument(
        "--dir", default="var/quickstart", help="data directory (default var/quickstart)"
    )
    q.add_argument(
        "--kafka", metavar="HOST:PORT", help="use this Kafka broker instead of the bundled one"
    )
    q.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="listen on this address of this machine (default 127.0.0.1: this machine only; "
        "0.0.0.0: every interface)",
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level.upper())
    if args.command == "quickstart":
        from services.quickstart import run_quickstart

        return run_quickstart(args.dir, args.kafka, args.bind)
    return run_role(args.command, args.config)


if __name__ == "__main__":
    sys.exit(main())
