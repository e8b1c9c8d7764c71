"""The common ``main`` of a service process: parse --config, load it, log, serve."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from dialtone.common.config import ConfigError, ServiceConfig, load_config
from dialtone.common.logging import setup_logging
from dialtone.common.server import ServiceApp, run_service

C = TypeVar("C", bound=ServiceConfig)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", metavar="FILE", default=None,
                        help="YAML config file (environment variables DIALTONE_<SERVICE>__KEY override keys)")


def service_main(service: str, schema: type[C], make_app: Callable[[C], ServiceApp],
                 args: argparse.Namespace) -> int:
    try:
        config = load_config(schema, args.config, service=service)
    except ConfigError as exc:
        print(f"dialtone {service}: bad config: {exc}", file=sys.stderr)
        return 2
    setup_logging(service, config.log.level, config.log.format)
    try:
        app = make_app(config)
        return asyncio.run(run_service(service, config, app))
    except ConfigError as exc:
        print(f"dialtone {service}: bad config: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        logging.getLogger(service).error("cannot start: %s", exc)
        return 1
