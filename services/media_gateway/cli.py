from __future__ import annotations

import argparse

from dialtone.common.service_main import add_config_argument, service_main


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("media-gateway", help="run the media gateway service")
    add_config_argument(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dialtone.media_gateway.config import MediaGatewayConfig
    from dialtone.media_gateway.service import MediaGatewayApp

    return service_main("media-gateway", MediaGatewayConfig, MediaGatewayApp, args)
