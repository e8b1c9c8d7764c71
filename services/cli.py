"""The `dialtone` command. Each area registers its own subcommands from its
`cli` module, so adding a command never touches this file's logic."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# Modules with `register(subparsers)`. A module not yet written is skipped.
COMMAND_MODULES = (
    "dialtone.up",
    "dialtone.media_gateway.cli",
    "dialtone.speech_gateway.cli",
    "dialtone.conversation_runtime.cli",
    "dialtone.integration_gateway.cli",
    "dialtone.caller.cli",
    "dialtone.caller.load",
    "dialtone.language.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialtone", description="dialtone voice platform")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if not _exists(name):
            continue
        importlib.import_module(name).register(subparsers)
    return parser


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is not written yet
        return False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)
