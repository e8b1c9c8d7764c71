from __future__ import annotations

import argparse

from dialtone.common.service_main import add_config_argument, service_main


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("conversation-runtime", help="run the conversation runtime service")
    add_config_argument(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dialtone.conversation_runtime.config import ConversationRuntimeConfig
    from dialtone.conversation_runtime.service import ConversationRuntimeApp

    return service_main("conversation-runtime", ConversationRuntimeConfig, ConversationRuntimeApp, args)
