"""conversation_runtime: YAML dialogs executed as deterministic state machines.

Commands: ``dialtone conversation-runtime`` (the service) and ``dialtone dialog validate|test|graph``
(operator tooling that runs offline).
"""
from __future__ import annotations

import argparse
import sys

from dialtone.common.service_main import add_config_argument, service_main


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("conversation-runtime", help="run the conversation runtime service")
    add_config_argument(parser)
    parser.set_defaults(func=_run)

    dialog = subparsers.add_parser("dialog", help="validate, test and draw dialogs (offline)")
    commands = dialog.add_subparsers(dest="dialog_command", metavar="COMMAND", required=True)
    validate = commands.add_parser("validate", help="check dialog files; print every error as file:line:col")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--format", choices=("text", "json"), default="text",
                          help="json: one array of diagnostics (file, line, col, severity, kind, message, state)")
    validate.set_defaults(func=_validate)
    test = commands.add_parser("test", help="run conversation test files on a virtual clock")
    test.add_argument("files", nargs="+", metavar="FILE")
    test.add_argument("--min-coverage", type=float, default=0.0, metavar="N",
                      help="fail when state or transition coverage of a dialog is below N %%")
    test.set_defaults(func=_test)
    graph = commands.add_parser("graph", help="print the state graph (Mermaid or DOT)")
    graph.add_argument("file", metavar="FILE")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    graph.set_defaults(func=_graph)


def _run(args: argparse.Namespace) -> int:
    from dialtone.conversation_runtime.config import ConversationRuntimeConfig
    from dialtone.conversation_runtime.service import ConversationRuntimeApp

    return service_main("conversation-runtime", ConversationRuntimeConfig, ConversationRuntimeApp, args)


def _validate(args: argparse.Namespace) -> int:
    import json

    from dialtone.conversation_runtime.core.errors import DialogError, DialogLoadError
    from dialtone.conversation_runtime.core.loader import load_dialog
    from dialtone.conversation_runtime.dialog_testing import is_test_file

    failed = False
    diagnostics: list[tuple[str, DialogError]] = []
    lines: list[str] = []
    for file in args.files:
        if is_test_file(file):
            error = DialogError(file, 1, 1, "test_file", "this is a conversation test file (it has 'cases'): run "
                                "`dialtone dialog test` on it; validate takes dialog files")
            failed = True
            diagnostics.append(("error", error))
            lines.append(str(error))
            continue
        try:
            dialog = load_dialog(file)
        except DialogLoadError as exc:
            failed = True
            diagnostics += [("error", error) for error in exc.errors]
            lines += [str(error) for error in exc.errors]
            continue
        diagnostics += [("warning", warning) for warning in dialog.warnings]
        lines += [f"{warning.file}:{warning.line}:{warning.col}: warning: {warning.message}"
                  + (f" (state '{warning.state}')" if warning.state else "") for warning in dialog.warnings]
        lines.append(f"{file}: ok (dialog {dialog.name}, {len(dialog.states)} states, version {dialog.version})")
    if args.format == "json":
        print(json.dumps([{"file": d.file, "line": d.line, "col": d.col, "severity": severity, "kind": d.kind,
                           "message": d.message, "state": d.state} for severity, d in diagnostics], indent=1))
    else:
        print("\n".join(lines))
    return 1 if failed else 0


def _test(args: argparse.Namespace) -> int:
    from dialtone.conversation_runtime.core.errors import DialogLoadError
    from dialtone.conversation_runtime.dialog_testing import Coverage, run_test_file

    failed = False
    coverage: dict[str, Coverage] = {}
    for file in args.files:
        try:
            result = run_test_file(file)
        except DialogLoadError as exc:
            failed = True
            for error in exc.errors:
                print(error)
            continue
        for case in result.cases:
            print(f"{'PASS' if case.passed else 'FAIL'} {file}: {case.name}"
                  + (f"\n     {case.message}" if not case.passed else "")
                  + "".join(f"\n     note: {note} (taken as false)" for note in case.notes))
            failed |= not case.passed
        merged = coverage.setdefault(result.dialog.source, Coverage(result.dialog))
        if merged.dialog is not result.dialog:  # the same dialog file loaded again by another test file
            merged.states |= result.coverage.states
            ids = {id(t): i for i, t in enumerate(result.dialog.all_transitions())}
            base = merged.dialog.all_transitions()
            merged.transitions |= {id(base[ids[t]]) for t in result.coverage.transitions}
        else:
            merged.states |= result.coverage.states
            merged.transitions |= result.coverage.transitions
    for cov in coverage.values():
        print("\n".join(cov.report()))
        if min(cov.state_percent, cov.transition_percent) < args.min_coverage:
            print(f"coverage of {cov.dialog.name} is below --min-coverage {args.min_coverage:g}%")
            failed = True
    return 1 if failed else 0


def _graph(args: argparse.Namespace) -> int:
    from dialtone.conversation_runtime.core.errors import DialogLoadError
    from dialtone.conversation_runtime.core.loader import load_dialog
    from dialtone.conversation_runtime.graph import to_dot, to_mermaid

    try:
        dialog = load_dialog(args.file)
    except DialogLoadError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    sys.stdout.write(to_dot(dialog) if args.format == "dot" else to_mermaid(dialog))
    return 0
