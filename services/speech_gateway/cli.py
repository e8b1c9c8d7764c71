from __future__ import annotations

import argparse

from dialtone.common.service_main import add_config_argument, service_main


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("speech-gateway", help="run the speech gateway service")
    add_config_argument(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dialtone.speech_gateway.config import SpeechGatewayConfig
    from dialtone.speech_gateway.service import SpeechGatewayApp

    return service_main("speech-gateway", SpeechGatewayConfig, SpeechGatewayApp, args)
