from __future__ import annotations

import argparse

from dialtone.common.service_main import add_config_argument, service_main


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("integration-gateway", help="run the integration gateway service")
    add_config_argument(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dialtone.integration_gateway.config import IntegrationGatewayConfig
    from dialtone.integration_gateway.service import IntegrationGatewayApp

    return service_main("integration-gateway", IntegrationGatewayConfig, IntegrationGatewayApp, args)
